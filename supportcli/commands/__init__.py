"""Command groups split out of ``cli.py``: each module holds one Typer sub-app that ``cli``
mounts (``app.add_typer(label_app, name="label")``)."""
