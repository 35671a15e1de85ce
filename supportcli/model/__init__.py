"""The model stage: messages in, category and urgency probabilities and the cues that fired
out. ``text`` (what the model reads), ``cues``, ``features`` (a scikit-learn composition),
``classifier``; ``artifacts`` and ``registry`` (saved models), ``training``, ``evaluation``
and ``dataset`` (labelled sets)."""
