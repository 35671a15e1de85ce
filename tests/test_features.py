"""What the model sees: the input record, the scikit-learn featurizer (its character n-grams
equal TfidfVectorizer's, its word pairs learn what single words cannot), short views, and
names from ``get_feature_names_out``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from supportcli.model.classifier import build_pipeline
from supportcli.model.features import CharGrams, CueFeatures, WordPairs, build_features
from supportcli.model.text import ModelInput, message_input, short_views, to_text

CORPUS = [
    "Where is my order #10234? It was supposed to ship on Monday.",
    "Refund please: the mug arrived broken, photos attached.",
    "Ich habe eine Rückbuchung veranlasst, das Paket kam nie an!",
    "Bonjour, ma commande n'est toujours pas arrivée. Merci de me rembourser.",
    "Hola, quiero cancelar mi pedido 5531 antes del envío.",
    "Can I change the delivery address for order 77812?",
    "Wholesale inquiry: we run three cafés and would like your price list.",
    "Your invoice INV-2231 is attached.  Thanks\tfor your business.",
    "Password reset link does not work, I cannot log in.",
    "THIS IS THE THIRD TIME I WRITE!! NOBODY ANSWERS MY EMAILS",
    "",
    "İstanbul straße ǅemal 𐐀𐐁 \ud800 lone surrogate",
]


def test_to_text_is_the_subject_and_the_new_text() -> None:
    assert to_text(" Where is it? ", "  New text ", "> old quote") == "Where is it?\nNew text"
    assert to_text("Re: x", "", "quoted only") == "Re: x\nquoted only"
    assert len(to_text("s", "x" * 5000)) == 3000


def test_a_message_becomes_a_record_the_cues_can_read() -> None:
    from factories import message

    m = message(subject="Out of office", text="Back Monday", automated="auto-reply")
    item = message_input(m, "Europe/Berlin")
    assert item == ModelInput("Out of office\nBack Monday", m.date, "Europe/Berlin", "auto-reply")
    assert "auto" not in item.text  # no marker words in what the vectorizers read


@pytest.mark.parametrize("max_features", [None, 300])
def test_char_grams_equal_scikit_learns_char_wb_tfidf(max_features: int | None) -> None:
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2,
                                sublinear_tf=True, max_features=max_features)
    expected = reference.fit_transform(CORPUS)
    ours = CharGrams((3, 5), 2, max_features)
    assert np.allclose(ours.fit_transform(CORPUS).toarray(), expected.toarray())
    assert list(ours.get_feature_names_out()) == list(reference.get_feature_names_out())
    unseen = ["Brand new words: Rückbuchung, chargeback!", "", *CORPUS[:3]]
    assert np.allclose(ours.transform(unseen).toarray(), reference.transform(unseen).toarray())
    assert np.allclose(ours.transform(CORPUS[:4]).toarray(),  # per batch: the same rows
                       ours.transform(CORPUS).toarray()[:4])


def test_the_per_word_cache_changes_nothing_stays_bounded_and_is_not_pickled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = CharGrams((3, 5), 2).fit(CORPUS)
    first = ours.transform(CORPUS).toarray()
    assert ours.__dict__["_rows"]  # the words seen so far
    assert np.allclose(ours.transform(CORPUS[::-1]).toarray()[::-1], first)
    assert "_rows" not in pickle.loads(pickle.dumps(ours)).__dict__
    monkeypatch.setattr(CharGrams, "CACHED_WORDS", 5)
    assert np.allclose(ours.transform(CORPUS).toarray(), first)
    assert len(ours.__dict__["_rows"]) <= len(" ".join(CORPUS).split())


# The class hangs on the noun and the verb together: an exclusive or, which no linear model
# over single words, bigrams or character n-grams of these texts separates.
XOR = {
    ("transfer", "late"): "other",
    ("transfer", "declined"): "billing_payment",
    ("parcel", "late"): "billing_payment",
    ("parcel", "declined"): "other",
}
UNEVEN = [("transfer", "late")] * 3 + [("transfer", "declined"), ("parcel", "late")] + [
    ("parcel", "declined")] * 2
FILLERS = ["hello", "please help", "thanks a lot", "regards", "any news", "quick question"]


def _xor_texts(seed: int, n: int, cells: list[tuple[str, str]] = UNEVEN,
               ) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        noun, verb = cells[i % len(cells)]
        filler = FILLERS[(i // len(cells) + int(rng.integers(2))) % len(FILLERS)]
        texts.append(f"{filler} my {noun} is {verb} {filler}")
        labels.append(XOR[noun, verb])
    return texts, labels


def _accuracy(pair_weight: float) -> float:
    texts, labels = _xor_texts(0, 120)
    held_texts, held_labels = _xor_texts(1, 40, list(XOR))  # every cell as often
    pipeline = build_pipeline()
    weights = dict(pipeline.named_steps["features"].transformer_weights, pairs=pair_weight)
    pipeline.set_params(features__transformer_weights=weights, features__chars__min_df=1)
    pipeline.fit(texts, labels)
    return float(np.mean(pipeline.predict(held_texts) == np.array(held_labels)))


def test_word_pairs_learn_what_single_words_cannot() -> None:
    assert _accuracy(0.6) == 1.0
    assert _accuracy(0.0) < 0.9  # the same pipeline without the block: XOR is not linear


def test_word_pairs_are_chosen_for_every_target_and_need_labels() -> None:
    texts, labels = _xor_texts(0, 60)
    other = ["a" if "hello" in t else "b" for t in texts]
    pairs = WordPairs(max_words=4, min_df=3).fit(texts, np.column_stack([labels, other]))
    words = set(pairs.words_)
    assert {"transfer", "parcel", "late", "declined"} & words and "hello" in words
    names = pairs.get_feature_names_out()
    assert len(names) == pairs.transform(texts).shape[1] > 0
    assert all(" + " in n for n in names)
    unlabelled = WordPairs().fit(texts)
    assert unlabelled.transform(texts).shape == (len(texts), 0)


def test_a_text_pairs_only_its_best_candidate_words() -> None:
    texts = ["a b c d e f", "a b c d e f", "a b c d e f", "a b", "c d"]
    labels = ["x", "x", "x", "y", "z"]
    pairs = WordPairs(per_text=3, min_df=1).fit(texts, labels)
    n = len(pairs.words_)
    assert pairs.pairs("f e d c b a") == [0 * n + 1, 0 * n + 2, 1 * n + 2]  # the three best
    best = pairs.words_[:3]
    names = set(pairs.get_feature_names_out())
    assert {f"{best[0]} + {best[1]}", f"{best[1]} + {best[2]}"} <= names


def test_the_union_weighs_its_blocks_and_names_every_column() -> None:
    union = build_features()
    x = union.fit_transform(CORPUS[:10], np.array(["a", "b"] * 5))
    names = union.get_feature_names_out()
    assert x.shape[1] == len(names)
    blocks = {n.split("__")[0] for n in names}
    assert blocks == {"words", "chars", "cues", "pairs"}
    weights = union.transformer_weights
    for block in ("words", "chars"):
        columns = np.array([n.startswith(f"{block}__") for n in names])
        norms = np.sqrt(np.asarray(x[:, columns].multiply(x[:, columns]).sum(axis=1))).ravel()
        assert np.allclose(norms[norms > 0], weights[block])
    cues = np.array([n.startswith("cues__") for n in names])
    assert set(np.unique(x[:, cues].toarray())) <= {0.0, weights["cues"]}
    assert list(CueFeatures().get_feature_names_out()) == [n[6:] for n in names[cues]]


def test_fitted_features_pickle_and_give_the_same_matrix() -> None:
    union = build_features().fit(CORPUS, np.array(["a", "b", "c"] * 4))
    again = pickle.loads(pickle.dumps(union))
    assert (again.transform(CORPUS) != union.transform(CORPUS)).nnz == 0
    assert union.transform(["never seen zzkq wvvb", ""]).shape[0] == 2


def test_short_views_are_the_opening_and_the_subject_without_greeting() -> None:
    from factories import message

    long = message(
        subject="Membership fee question",
        text="Hi there,\nWhen is the yearly club fee due? I paid last March. Also, can I pay "
        "by PayPal this time? My partner usually handles it but is away.\nThanks, Ann",
    )
    assert short_views(long) == [
        "\nWhen is the yearly club fee due? I paid last March.",
        "Membership fee question\n",
    ]
    no_greeting = message(subject="", text="Hi I need a refund for the mug that broke")
    assert short_views(no_greeting) == []  # "Hi I need …" is the request itself
    short = message(subject="", text="Is the hood detachable?")
    assert short_views(short) == []  # the one view would be the whole text again


def test_what_the_model_reads_is_built_without_numpy_or_scikit_learn() -> None:
    import subprocess
    import sys

    code = ("import sys; import supportcli.model.text, supportcli.model.cues; "
            "print(sorted(m for m in ('numpy', 'scipy', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
