"""Nothing a run carries can run code or rewrite a terminal (issue 10, section 3).

Runs here carry what a careless or hostile RunEngine user can put in them: terminal
escape sequences in metadata, a right-to-left override, C1 controls, uids and stream
names that are Python f-string bait. The command line is run as a real process on a
real store; queries go through the real parser and SQLite; the snippets are parsed by
IPython's own argument parser.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from event_model import compose_run

import scandeck
from scandeck.exceptions import AmbiguousUID, InvalidQuery, QuerySyntaxError, UnsafeValue
from scandeck.queries import Key, ScanID, parse
from scandeck.safe_text import UNSAFE, printable

#: Retitles the terminal, then clears it.
TERM = "\x1b]0;pwned\x07\x1b[2J"
#: Reads as "report<exe.png" on screen: a right-to-left override.
BIDI = "report\u202egnp.exe"
#: An 8-bit CSI (C1), which some terminals obey as ESC [.
C1 = "\x9b31mred"
#: Code, if anything expands {...} in it.
PWN = "x{open('PWNED','w').write('1')}"


def write_run(
    cat: Any, *, uid: str | None = None, stream: str = "primary", key: str = "det", **metadata: Any
) -> str:
    """One finished run of two events (compose_run); returns its uid."""
    bundle = compose_run(uid=uid, metadata={"plan_name": "count", **metadata})
    writer = cat.writer()
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name=stream, data_keys={key: {"dtype": "number", "shape": [], "source": "sim:det"}}
    )
    writer("descriptor", desc.descriptor_doc)
    for i in range(2):
        writer("event", desc.compose_event(data={key: float(i)}, timestamps={key: 0.0}))
    writer("stop", bundle.compose_stop(exit_status="success"))
    writer.close()
    return bundle.start_doc["uid"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store of runs with hostile metadata, stream names, data keys and uids."""
    path = tmp_path_factory.mktemp("hostile") / "store"
    cat = scandeck.open_catalog(path)
    uids = {
        "term": write_run(
            cat, scan_id=1, purpose=TERM, sample=BIDI, operator=C1, stream=f"dark{TERM}", key="det\x1b[31m"
        ),
        "pwn": write_run(cat, uid=PWN, scan_id=2),
        "amb1": write_run(cat, uid="amb\x1b[2J-1", scan_id=3),
        "amb2": write_run(cat, uid="amb\x1b[2J-2", scan_id=4),
    }
    yield {"path": path, "uids": uids, "cat": cat}
    cat.close()


def scandeck_cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """``python -m scandeck.cli ARGS`` with its own data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANDECK_")}
    env["SCANDECK_DATA"] = str(data)
    return subprocess.run(
        [sys.executable, "-m", "scandeck.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def raw_controls(text: str) -> list[str]:
    """The unsafe characters ``text`` holds (line breaks aside)."""
    return [c for c in UNSAFE.findall(text) if c != "\n"]


# -- printable ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ch",
    [
        "\x00",
        "\x07",
        "\x1b",
        "\x7f",
        "\x85",
        "\x9b",
        "\u061c",
        "\u200e",
        "\u200f",
        "\u2028",
        "\u2029",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
        "\ud800",
    ],
)
def test_printable_escapes_every_control_and_bidi_character(ch: str) -> None:
    shown = printable(f"a{ch}b")
    assert shown == f"a\\u{ord(ch):04x}b"
    assert shown.encode("utf-8")  # a lone surrogate can be printed once escaped


def test_printable_keeps_text_and_what_it_is_asked_to_keep() -> None:
    assert printable("Ni – 300 K, 日本") == "Ni – 300 K, 日本"
    assert printable("a\tb\nc\r") == "a\\tb\\nc\\r"
    assert printable("line 1\nline\x1b 2", keep="\n") == "line 1\nline\\u001b 2"
    # On JSON text the escapes are JSON's: the value reads back the same.
    text = json.dumps({"v": TERM + BIDI + C1}, ensure_ascii=False)
    assert json.loads(printable(text)) == {"v": TERM + BIDI + C1}


# -- the command line -------------------------------------------------------------------------


def test_ls_escapes_metadata(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("ls", "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 0, result.stderr
    assert raw_controls(result.stdout) == []
    assert "report\\u202egnp.exe" in result.stdout
    assert "\\u009b31mred" in result.stdout
    assert "\\u001b]0;pwned\\u0007" in result.stdout  # cut to its cell, escaped first


def test_show_escapes_metadata_streams_and_keys(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("show", hostile["uids"]["term"], "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 0, result.stderr
    assert raw_controls(result.stdout) == []
    assert "\\u001b]0;pwned\\u0007\\u001b[2J" in result.stdout
    assert "dark\\u001b]0;pwned" in result.stdout  # the stream name
    assert "det\\u001b[31m" in result.stdout  # the data key


def test_ls_json_is_safe_on_a_terminal_and_reads_back(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("ls", "--json", "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 0, result.stderr
    assert raw_controls(result.stdout) == []
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    (term,) = [r for r in rows if r["uid"] == hostile["uids"]["term"]]
    assert (term["start"]["purpose"], term["start"]["sample"]) == (TERM, BIDI)


def test_error_messages_escape_the_run_values_they_name(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("show", "amb", "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 1
    assert raw_controls(result.stderr) == []
    assert "matches 2 runs: amb\\u001b[2J-" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(AmbiguousUID) as info:
        hostile["cat"]["amb"]
    assert "\x1b" not in str(info.value) and info.value.matches[0].startswith("amb\x1b")


@pytest.mark.parametrize(
    "query",
    [
        "scan_id > 99999999999999999999999999999",
        "not " * 2400 + "scan_id == 1",
        "(" * 1500 + "scan_id == 1" + ")" * 1500,
    ],
)
def test_ls_refuses_unusable_queries_in_one_error(query: str, hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("ls", query, "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("scandeck ls: error: ")
    assert re.search(r"out of range|levels deep", result.stderr.splitlines()[0])


def test_show_with_more_digits_than_a_scan_id_looks_for_a_uid(hostile: dict[str, Any], tmp_path: Path) -> None:
    result = scandeck_cli("show", "9" * 30, "--catalog", str(hostile["path"]), data=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"scandeck show: error: no run with scan_id {'9' * 30} or a uid")
    assert "Traceback" not in result.stderr


# -- queries from Python and text ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "scan_id > 99999999999999999999999999999",
        "scan_id == 99999999999999999999999999999",
        "md.count < -9223372036854775809",
        "scan_id in [1, 9223372036854775808]",
        "x == " + "9" * 5000,  # more digits than int() takes
        "not " * 2400 + "scan_id == 1",
        "(" * 1500 + "scan_id == 1" + ")" * 1500,
    ],
)
def test_search_text_out_of_range_or_too_deep_is_a_syntax_error(text: str, hostile: dict[str, Any]) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        hostile["cat"].search(text)
    assert isinstance(info.value, ValueError)
    assert re.search(r"out of range|levels deep", info.value.message)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Key("scan_id") > 10**30,
        lambda: Key("scan_id") == 10**30,
        lambda: Key("scan_id").in_([1, 10**30]),
        lambda: Key("md.count") <= -(2**63) - 1,
        lambda: Key("x") == 10**5000,
        lambda: ScanID(2**63),
    ],
)
def test_python_queries_out_of_range_raise_invalid_query(build: Any) -> None:
    with pytest.raises(InvalidQuery, match="out of range"):
        build()


def test_catalog_index_out_of_range_is_a_clear_error(hostile: dict[str, Any]) -> None:
    from scandeck.exceptions import RunNotFound

    with pytest.raises(InvalidQuery, match="out of range"):
        hostile["cat"][10**30]
    with pytest.raises(RunNotFound, match="has only 4 matching runs"):
        hostile["cat"][-(10**30)]


def test_the_64_bit_bounds_themselves_search_fine(tmp_path: Path) -> None:
    cat = scandeck.open_catalog(tmp_path / "store")
    try:
        uid = write_run(cat, scan_id=2**63 - 1, low=-(2**63))
        assert [r.uid for r in cat.search("scan_id == 9223372036854775807")] == [uid]
        assert [r.uid for r in cat.search(Key("low") == -(2**63))] == [uid]
        assert len(cat.search("scan_id > 1e30")) == 0  # a float says a larger number
    finally:
        cat.close()


def test_deep_python_queries_are_refused_before_sqlite_sees_them(tmp_path: Path) -> None:
    query = Key("a") == 1
    with pytest.raises(InvalidQuery, match="levels deep"):
        for i in range(40):
            query = ~(query | (Key("b") == i))


def test_nesting_up_to_the_limits_still_searches(tmp_path: Path) -> None:
    cat = scandeck.open_catalog(tmp_path / "store")
    try:
        uid = write_run(cat, a=1)
        assert [r.uid for r in cat.search("not " * 100 + "a == 1")] == [uid]  # even: cancels
        assert [r.uid for r in cat.search("(" * 100 + "a == 1" + ")" * 100)] == [uid]
        text = "a == 1"
        for i in range(15):  # 31 levels of not/or/and
            text = f"not ({text} or b == {i} and c == 2)"
        assert len(parse(text).to_sql()[1]) == 31 and len(cat.search(text)) == 0
    finally:
        cat.close()


# -- snippets: values quoted, unsafe uids refused ---------------------------------------------


def test_snippets_refuse_a_uid_outside_the_uuid_form() -> None:
    from scandeck.server.snippets import code_for

    for uid in (PWN, "a b", "-rf", "x\ny", "ü-1", "a" * 201, ""):
        with pytest.raises(UnsafeValue, match="cannot be put into a code cell"):
            code_for(uid, None, ["primary"])
    assert code_for("2b3d:7.x_y-1", None, [])["bind"].startswith("%%bind --uid 2b3d:7.x_y-1\n")


@pytest.mark.parametrize("stream", [PWN, "dark frames", "-1", "'quoted'", '"dq"', "it's $HOME", "日本"])
def test_the_bind_line_gives_the_magic_each_stream_name_back(stream: str) -> None:
    from IPython.core.magic_arguments import parse_argstring

    from scandeck.notebook.magic_args import unquote_arg
    from scandeck.notebook.magics import ScandeckMagics
    from scandeck.server.snippets import code_for

    first = code_for("abc-1", None, [stream])["bind"].splitlines()[0]
    args = parse_argstring(ScandeckMagics.bind, first[len("%%bind ") :])  # as IPython splits it
    assert (unquote_arg(args.uid), unquote_arg(args.stream)) == ("abc-1", stream)


def test_snippets_quote_catalog_names_and_refuse_what_cannot_be_quoted() -> None:
    from scandeck.notebook.magic_args import unquote_arg
    from scandeck.server.snippets import code_for

    code = code_for("abc-1", "my {x} store", [PWN])
    assert code["setup"] == '%load_ext scandeck\n%catalog "my {x} store"'
    assert unquote_arg(code["setup"].splitlines()[1][len("%catalog ") :]) == "my {x} store"
    assert f"run[{PWN!r}]" in code["load"] and "open_catalog('my {x} store')" in code["load"]
    for bad_stream in ("a\nimport os", "tab\there", "\u202eevil", "both ' and \" quotes"):
        with pytest.raises(UnsafeValue, match="stream name"):
            code_for("abc-1", None, [bad_stream])
    with pytest.raises(UnsafeValue, match="catalog name"):
        code_for("abc-1", "x\nimport os", ["primary"])


# -- notebook HTML -----------------------------------------------------------------------------


def test_notebook_html_escapes_names_keys_and_queries(tmp_path: Path) -> None:
    from scandeck.notebook.display import catalog_html, run_html, stream_html

    script = "<script>alert(1)</script>"
    cat = scandeck.open_catalog(tmp_path / "store")
    try:
        uid = write_run(cat, stream=f"s{script}", key="k<img src=x onerror=alert(1)>", sample=script, purpose=TERM)
        run = cat[uid]
        stream = run[f"s{script}"]
        pages = [run_html(run), stream_html(stream), catalog_html(cat.search(Key("sample") == script))]
        for page in pages:
            assert "<script>" not in page and "<img" not in page
        assert "&lt;script&gt;" in pages[0] and "k&lt;img src=x" in pages[1]
        assert "\x1b" not in pages[0].split("<style>")[0] + pages[0].split("</style>")[1]
    finally:
        cat.close()


# -- plain reprs and query text ------------------------------------------------------------------


def test_plain_reprs_and_query_text_escape_controls(hostile: dict[str, Any]) -> None:
    run = hostile["cat"][hostile["uids"]["amb1"]]
    term = hostile["cat"][hostile["uids"]["term"]]
    shown = [repr(run), repr(term[f"dark{TERM}"])]
    query = Key("purpose") == TERM + BIDI + C1
    shown.append(str(query))
    for text in shown:
        assert raw_controls(text) == [], text
    assert "uid=amb\\u001b[2" in shown[0]
    assert parse(str(query)) == query  # the escapes read back


def test_keeper_lines_escape_the_uids_they_name(redis_server: Any, tmp_path: Path, capsys: Any) -> None:
    import uuid

    from scandeck.catalog import Catalog
    from scandeck.cli import main
    from scandeck.sources import open_source

    bus = f"{redis_server.url}?prefix=test-{uuid.uuid4().hex[:12]}"
    cat = Catalog(open_source(f"{bus}&archive={tmp_path / 'archive'}"))
    try:
        write_run(cat, uid="\x1b[2Jhostile-1", scan_id=1)
    finally:
        cat.close()
    code = main(["keeper", bus, "--once", "--archive", str(tmp_path / "archive")])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert raw_controls(out) == []
    assert out.startswith("persisted run \\u001b[2Jhost (scan 1,")  # uid[:8], escaped


def test_summaries_with_a_limit_beyond_64_bits_is_a_clear_error(tmp_path):
    import scandeck
    from scandeck.exceptions import InvalidQuery

    cat = scandeck.open_catalog(tmp_path / "store")
    with pytest.raises(InvalidQuery, match="limit"):
        cat.summaries(limit=10**30)
    with pytest.raises(InvalidQuery, match="offset"):
        cat.summaries(offset=-1)
    assert cat.summaries(limit=5) == []
    cat.close()


def test_snippets_never_reach_an_attribute_through_unicode_normalisation():
    from scandeck.server.snippets import code_for

    fullwidth = "\uff44\uff4f\uff43\uff55\uff4d\uff45\uff4e\uff54\uff53"  # NFKC: "documents"
    load = code_for("3f2a9c1e-77", "local", [fullwidth])["load"]
    assert f"run[{fullwidth!r}]" in load and "run.\uff44" not in load
