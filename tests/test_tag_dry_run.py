"""tag's dry run without IMAP mail: what it leaves alone is listed on stderr, a long list ends
with "…and N more" (the IMAP round trip is in test_tag.py)."""

from __future__ import annotations

import pytest

from supportcli import resources
from supportcli.cli import main


def test_a_long_left_alone_list_ends_with_and_n_more(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", str(resources.demo_dir()), "--format", "json"]) == 0
    capsys.readouterr()
    assert main(["tag"]) == 0
    out, err = capsys.readouterr()
    assert out == ""  # nothing would be added: the listing (stdout) is empty
    lines = err.splitlines()
    assert lines[0] == "would tag 0 message(s) (dry run: nothing changed; add --apply)"
    assert lines[1] == "left 38 message(s) alone:"
    reasons = [line for line in lines if line.endswith(": not from an IMAP folder")]
    assert len(reasons) == 10
    assert lines[-1] == "  …and 28 more"
