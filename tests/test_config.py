"""The config file is validated: unknown keys and sections (with a did-you-mean), types,
ranges and unknown categories are errors that name the file, the line and the key (exit 3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from supportcli.cli import main
from supportcli.config import load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def run_with(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str]:
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    code = main(["--config", str(config), "triage", "--demo", "-n", "1", "--format", "json"])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("text", "line", "key", "says"),
    [
        ('[triage]\nshop_adresses = ["a@b.example"]\n', 2, "triage.shop_adresses",
         "did you mean shop_addresses?"),
        ('[tirage]\nshop_addresses = ["a@b.example"]\n', 1, "tirage",
         "unknown section (did you mean triage?)"),
        ('# mine\n[triage]\nshop_addresses = "a@b.example"\n', 3, "triage.shop_addresses",
         "must be a list of strings"),
        ("[triage.category_weights]\nfeedback = 1\nbilling_payment = -2\n", 3,
         "triage.category_weights.billing_payment", "must be at least 0"),
        ("[triage]\ncategory_weights = { chargebacks = 2 }\n", 2,
         "triage.category_weights.chargebacks", "unknown category"),
        ("[triage.sla_hours]\nurgent = 0\n", 2, "triage.sla_hours.urgent", "must be above 0"),
        ("[triage.sla_hours]\nsoon = 1\n", 2, "triage.sla_hours.soon", "unknown urgency"),
        ("[triage]\nreview_threshold = 1.5\n", 2, "triage.review_threshold", "at most 1"),
        ('[triage]\nreview_threshold = "high"\n', 2, "triage.review_threshold",
         "must be a number"),
        ("[labels]\nown_weight = -1\n", 2, "labels.own_weight", "must be above 0"),
        ('[model]\ntarget_accuracy = 2\n', 2, "model.target_accuracy", "at most 1"),
        ('[report]\ntimezone = "Mars/Olympus"\n', 2, "report.timezone", "unknown time zone"),
        ('[report]\nbusiness_hours = "whenever"\n', 2, "report.business_hours", "expected"),
        ('[smtp]\nhost = "h"\nprot = 25\n', 3, "smtp.prot", "did you mean port?"),
        ('[accounts.shop]\nhost = "h"\nusrname = "u"\n', 3, "accounts.shop.usrname",
         "did you mean username?"),
        ('[accounts.shop]\nhost = "h"\nport = 99999\n', 3, "accounts.shop.port",
         "at most 65535"),
    ],
)
def test_config_problems_name_the_file_the_line_and_the_key(
    text: str, line: int, key: str, says: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = run_with(tmp_path, capsys, text)
    assert code == 3, err
    first = err.splitlines()[0]
    assert f"{tmp_path / 'config.toml'}, line {line}: {key}: " in first, first
    assert says in first
    assert "Traceback" not in err


def test_every_problem_is_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_with(tmp_path, capsys, "[triage]\nshop_adresses = []\nfoo = 1\nbar = 2\n")
    assert code == 3
    assert "hint: 2 more problems in this file" in err


def test_custom_categories_may_have_weights(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[labels]\nextra_categories = ["gift_cards"]\n'
                      "[triage.category_weights]\ngift_cards = 1.3\nfeedback = 0\n",
                      encoding="utf-8")
    settings = load_settings(config)
    assert settings.category_weights["gift_cards"] == 1.3
    assert settings.category_weights["feedback"] == 0


def test_every_config_example_in_the_readme_is_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    config = tmp_path / "config.toml"
    config.write_text("\n".join(blocks), encoding="utf-8")
    config.chmod(0o600)
    settings = load_settings(config)
    assert settings.shop_addresses


def test_supportcli_home_moves_the_state_not_the_config(
    tmp_path: Path, isolated_state: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("SUPPORTCLI_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    user_config = tmp_path / "xdg" / "supportcli" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('[triage]\nshop_addresses = ["help@shop.example"]\n', encoding="utf-8")
    (isolated_state / "config.toml").write_text('[triage]\nshop_addresses = ["old@x.example"]\n',
                                                encoding="utf-8")
    settings = load_settings()
    assert settings.config_path == user_config
    assert settings.shop_addresses == ("help@shop.example",)
    assert settings.state_dir == isolated_state
    assert f"ignoring {isolated_state / 'config.toml'}" in caplog.text


def test_sections_read_later_are_typed_settings(tmp_path: Path) -> None:
    from supportcli.config import SmtpCredential

    config = tmp_path / "config.toml"
    config.write_text(
        '[labels]\nown_weight = 5\n[report]\nshop_name = "Tea & Co"\n'
        '[smtp]\nhost = "smtp.example.com"\nfrom = "reports@shop.example"\n'
        'username = "reports"\npassword_command = ["pass", "smtp"]\n'
        '[accounts.shop]\nhost = "imap.example.com"\nusername = "me@shop.example"\n'
        'password_env = "SHOP_PASSWORD"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.own_weight == 5.0 and settings.shop_name == "Tea & Co"
    smtp, credential = settings.smtp()
    assert smtp.host == "smtp.example.com" and smtp.port == 587
    assert credential == SmtpCredential(username="reports", password_command=("pass", "smtp"))
    assert settings.accounts()["shop"].host == "imap.example.com"
    bare = load_settings()  # the isolated, absent config
    assert bare.own_weight == 3.0 and bare.shop_name is None and bare.accounts() == {}


def test_no_raw_config_is_read_outside_config() -> None:
    package = Path(__file__).resolve().parents[1] / "supportcli"
    readers = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if p.name != "config.py" and re.search(r"settings\.raw\b", p.read_text())]
    assert readers == []
