"""Tests for scandeck.docfiles: real Bluesky runs written and read back in both layouts."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

import msgpack
import msgpack_numpy
import numpy as np
import pytest

from scandeck.docfiles import DOCUMENT_NAMES, read_documents, write_documents, write_documents_to
from scandeck.exceptions import DocumentFileError, ScandeckError

Docs = list[tuple[str, dict[str, Any]]]
FORMATS = ["jsonl", "msgpack"]


def normalise(value: Any) -> Any:
    """What JSON keeps of a value: numpy -> builtins, tuples -> lists."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    if isinstance(value, np.ndarray):
        return normalise(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_plan(plan: Any) -> Docs:
    from bluesky import RunEngine

    RE = RunEngine(context_managers=[])
    docs: Docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE(plan)
    return docs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Docs]:
    """Documents of count, scan, grid_scan and an array + external-file detector."""
    import bluesky.plans as bp
    from ophyd.sim import SynSignal, SynSignalWithRegistry, det, det4, motor, motor1, motor2

    arr = SynSignal(func=lambda: np.arange(12.0).reshape(3, 4), name="arr")
    ext = SynSignalWithRegistry(
        func=lambda: np.ones((4, 4), dtype="u2"),
        name="ext",
        save_path=str(tmp_path_factory.mktemp("ext")),
    )
    return {
        "count": run_plan(bp.count([det], num=3)),
        "scan": run_plan(bp.scan([det], motor, -1, 1, 5)),
        "grid_scan": run_plan(bp.grid_scan([det4], motor1, -1, 1, 3, motor2, -2, 2, 4)),
        "arrays": run_plan(bp.count([arr, ext], num=2)),
    }


def test_runs_fixture_has_numpy_and_external_data(runs: dict[str, Docs]) -> None:
    names = {name for docs in runs.values() for name, _ in docs}
    assert {"start", "descriptor", "event", "resource", "datum", "stop"} <= names
    events = [doc for name, doc in runs["count"] if name == "event"]
    assert isinstance(events[0]["data"]["det"], np.floating)  # the numpy case is exercised
    assert DOCUMENT_NAMES >= names


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("plan", ["count", "scan", "grid_scan", "arrays"])
def test_round_trip_one_file_per_run(runs: dict[str, Docs], plan: str, fmt: str, tmp_path: Path) -> None:
    docs = runs[plan]
    paths = write_documents(docs, tmp_path, format=fmt)  # type: ignore[arg-type]
    uid = docs[0][1]["uid"]
    assert paths == [tmp_path / f"{uid}.{fmt}"]
    assert sorted(os.listdir(tmp_path)) == [f"{uid}.{fmt}"]  # no .part left over
    back = list(read_documents(paths[0]))
    assert [n for n, _ in back] == [n for n, _ in docs]
    assert normalise(back) == normalise(docs)


def test_msgpack_keeps_numpy_types_and_jsonl_turns_them_into_builtins(tmp_path: Path) -> None:
    doc = {
        "uid": "u1",
        "time": 1.0,
        "f32": np.float32(0.1),
        "i64": np.int64(-(2**62)),
        "flag": np.bool_(True),
        "img": np.arange(6, dtype="i2").reshape(2, 3),
        "pair": (1, 2),
    }
    (mp,) = write_documents([("start", doc)], tmp_path / "mp", format="msgpack")
    ((_, got),) = list(read_documents(mp))
    assert got["img"].dtype == np.dtype("i2") and got["img"].shape == (2, 3)
    assert got["i64"] == -(2**62) and isinstance(got["i64"], np.int64)
    assert got["f32"] == np.float32(0.1) and got["pair"] == [1, 2]

    (js,) = write_documents([("start", doc)], tmp_path / "js", format="jsonl")
    ((_, got),) = list(read_documents(js))
    assert got == normalise(doc)
    assert got["img"] == [[0, 1, 2], [3, 4, 5]] and type(got["flag"]) is bool
    assert got["f32"] == float(np.float32(0.1))  # widened exactly, not rounded to 0.1


@pytest.mark.parametrize("fmt", FORMATS)
def test_floats_nan_and_infinity_round_trip_exactly(fmt: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    floats = [0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0]
    floats += [float(x) for x in rng.standard_normal(50) * 10.0 ** rng.integers(-300, 300, 50)]
    doc = {"uid": "f", "time": 0.0, "floats": floats, "special": [math.nan, math.inf, -math.inf]}
    (path,) = write_documents([("start", doc)], tmp_path, format=fmt)  # type: ignore[arg-type]
    ((_, got),) = list(read_documents(path))
    assert got["floats"] == floats
    assert math.copysign(1.0, got["floats"][5]) == -1.0
    nan, inf, ninf = got["special"]
    assert math.isnan(nan) and inf == math.inf and ninf == -math.inf
    if fmt == "jsonl":
        assert "NaN" in path.read_text() and "-Infinity" in path.read_text()


@pytest.mark.parametrize("fmt", FORMATS)
def test_several_runs_in_one_stream_read_in_order(runs: dict[str, Docs], fmt: str, tmp_path: Path) -> None:
    docs = runs["count"] + runs["scan"] + runs["grid_scan"]
    path = tmp_path / f"all.{fmt}"
    with open(path, "wb") as f:
        assert write_documents_to(docs, f, format=fmt) == len(docs)  # type: ignore[arg-type]
    assert normalise(list(read_documents(path))) == normalise(docs)
    # An unknown extension is sniffed from the first byte.
    os.rename(path, tmp_path / "all.dat")
    assert normalise(list(read_documents(tmp_path / "all.dat"))) == normalise(docs)


def test_interleaved_runs_are_split_by_their_links(runs: dict[str, Docs], tmp_path: Path) -> None:
    a, b = runs["count"], runs["scan"]
    # a's start, b's start, then the rest alternating: routing must follow links.
    mixed = [a[0], b[0]] + [d for pair in zip(a[1:], b[1:], strict=False) for d in pair]
    mixed += a[len(b) :] + b[len(a) :]
    paths = write_documents(mixed, tmp_path, format="jsonl")
    assert [p.stem for p in paths] == [a[0][1]["uid"], b[0][1]["uid"]]
    assert normalise(list(read_documents(paths[0]))) == normalise(a)
    assert normalise(list(read_documents(paths[1]))) == normalise(b)


def test_text_stream_for_jsonl(runs: dict[str, Docs]) -> None:
    buf = io.StringIO()
    write_documents_to(runs["count"], buf, format="jsonl")
    assert json.loads(buf.getvalue().splitlines()[0])[0] == "start"
    with pytest.raises(DocumentFileError, match="binary file object"):
        write_documents_to(runs["count"], io.StringIO(), format="msgpack")


# ------------------------------------------------ files written by other tools


def test_reads_suitcase_msgpack_layout(runs: dict[str, Docs], tmp_path: Path) -> None:
    docs = runs["arrays"] + runs["scan"]
    path = tmp_path / f"{docs[0][1]['uid']}.msgpack"
    path.write_bytes(b"".join(msgpack.packb([n, d], default=msgpack_numpy.encode) for n, d in docs))
    back = list(read_documents(path))
    assert normalise(back) == normalise(docs)
    event = next(d for n, d in back if n == "event")
    assert isinstance(event["data"]["arr"], np.ndarray) and event["data"]["arr"].shape == (3, 4)


def test_reads_plain_json_lines_objects_and_blank_lines(runs: dict[str, Docs], tmp_path: Path) -> None:
    docs = runs["scan"]
    lines = [json.dumps(normalise([n, d])) for n, d in docs]
    lines[1] = json.dumps({"name": docs[1][0], "doc": normalise(docs[1][1])})
    lines.insert(2, "   ")
    path = tmp_path / f"{docs[0][1]['uid']}.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\n\n").encode())  # BOM, CRLF
    assert normalise(list(read_documents(path))) == normalise(docs)


def test_our_files_read_with_plain_libraries(runs: dict[str, Docs], tmp_path: Path) -> None:
    """What databroker's msgpack/jsonl backends do to our files works."""
    docs = runs["arrays"]
    (mp,) = write_documents(docs, tmp_path, format="msgpack")
    with open(mp, "rb") as f:
        unpacker = msgpack.Unpacker(f, object_hook=msgpack_numpy.decode, raw=False)
        assert normalise(list(unpacker)) == normalise(docs)
    (js,) = write_documents(docs, tmp_path, format="jsonl")
    assert [json.loads(line) for line in js.read_text().splitlines()] == normalise(docs)


def test_empty_file_has_no_documents(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_bytes(b"")
    (tmp_path / "e.msgpack").write_bytes(b"")
    (tmp_path / "e.bin").write_bytes(b"\n")
    for name in ("e.jsonl", "e.msgpack", "e.bin"):
        assert list(read_documents(tmp_path / name)) == []
    assert write_documents([], tmp_path / "none", format="jsonl") == []


# ------------------------------------------------------------------ read errors

START = ["start", {"uid": "s", "time": 0.0}]


def read_until_error(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], DocumentFileError]:
    got: list[tuple[str, dict[str, Any]]] = []
    with pytest.raises(DocumentFileError) as info:
        for pair in read_documents(path):
            got.append(pair)
    assert isinstance(info.value, ScandeckError) and isinstance(info.value, ValueError)
    return got, info.value


@pytest.mark.parametrize(
    "bad, message",
    [
        ('["start", {"uid": ', r"not JSON \(Expecting value at column 18\)"),
        ('["start", {}, 3]', r"not a \[name, doc\] pair \(got a list of length 3\)"),
        ('"hello"', r"not a \[name, doc\] pair \(got a str\)"),
        ('{"name": "stop"}', r"not a \[name, doc\] pair \(got a dict\)"),
        ('["evnt", {}]', "unknown document name 'evnt'; expected one of bulk_datum, "),
        ("[7, {}]", "unknown document name 7"),
        ('["event", [1, 2]]', "the event document must be a mapping, not list"),
    ],
)
def test_jsonl_errors_name_file_and_line(bad: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(json.dumps(START) + "\n\n" + bad + "\n" + json.dumps(START) + "\n")
    got, err = read_until_error(path)
    assert got == [tuple(START)]  # the good document before the bad one was yielded
    assert str(err).startswith(f"{path}: line 3: ")
    assert err.path == str(path) and err.line == 3
    with pytest.raises(DocumentFileError, match=message):
        list(read_documents(path))


def test_invalid_utf8_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(json.dumps(START).encode() + b'\n["stop", {"x": "\xff"}]\n')
    got, err = read_until_error(path)
    assert len(got) == 1 and f"{path}: line 2: not JSON" in str(err)


def pack(*items: object) -> bytes:
    return b"".join(msgpack.packb(i, default=msgpack_numpy.encode) for i in items)


@pytest.mark.parametrize(
    "tail, message",
    [
        (pack(["stop", {"uid": "x"}])[:-4], "truncated msgpack, the file ends 9 bytes into"),
        (b"\x92\xc1", r"not valid msgpack \(FormatError"),
        (pack(["stop"]), r"not a \[name, doc\] pair \(got a list of length 1\)"),
        (pack(["nope", {}]), "unknown document name 'nope'"),
        (pack(["stop", 5]), "the stop document must be a mapping, not int"),
    ],
)
def test_msgpack_errors_name_file_and_document_index(tail: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "run.mpk"
    head = pack(START, ["descriptor", {"uid": "d", "run_start": "s"}])
    path.write_bytes(head + tail)
    got, err = read_until_error(path)
    assert [n for n, _ in got] == ["start", "descriptor"]
    assert str(err).startswith(f"{path}: document index 2 (byte offset {len(head)}): ")
    assert err.index == 2 and err.path == str(path)
    with pytest.raises(DocumentFileError, match=message):
        list(read_documents(path))


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DocumentFileError, match=r"notes.txt: cannot tell the format.*0x68"):
        list(read_documents(path))
    with pytest.raises(FileNotFoundError):
        list(read_documents(tmp_path / "absent.jsonl"))


# ----------------------------------------------------------------- write errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_failure_midway_leaves_no_file(runs: dict[str, Docs], fmt: str, tmp_path: Path) -> None:
    def docs() -> Any:
        yield from runs["count"]  # one complete run ...
        yield from runs["scan"][:4]  # ... and half of another
        raise RuntimeError("detector died")

    with pytest.raises(RuntimeError, match="detector died"):
        write_documents(docs(), tmp_path, format=fmt)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_unencodable_value_names_the_document_and_leaves_no_file(tmp_path: Path) -> None:
    docs = [tuple(START), ("stop", {"uid": "e", "run_start": "s", "bad": object()})]
    for fmt in FORMATS:
        with pytest.raises(DocumentFileError, match=f"document index 1 .stop.: cannot be written as {fmt}"):
            write_documents(docs, tmp_path, format=fmt)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_refuses_to_overwrite_unless_asked(runs: dict[str, Docs], tmp_path: Path) -> None:
    (path,) = write_documents(runs["count"], tmp_path, format="jsonl")
    path.write_text("keep me")
    with pytest.raises(DocumentFileError, match="exists; pass overwrite=True"):
        write_documents(runs["count"], tmp_path, format="jsonl")
    assert path.read_text() == "keep me" and os.listdir(tmp_path) == [path.name]
    assert write_documents(runs["count"], tmp_path, format="jsonl", overwrite=True) == [path]
    assert normalise(list(read_documents(path))) == normalise(runs["count"])


@pytest.mark.parametrize(
    "docs, message",
    [
        (
            [("descriptor", {"uid": "d", "run_start": "s"})],
            "a descriptor document before any start",
        ),
        ([("start", {"uid": "../x", "time": 0})], "start uid '../x' cannot be used as a file name"),
        ([("start", {"time": 0})], "start uid None cannot be used"),
        ([tuple(START), tuple(START)], "document index 1: start uid 's' repeats"),
        ([tuple(START), ("evnt", {})], "document index 1: unknown document name 'evnt'"),
        ([tuple(START), ("stop",)], r"document index 1: not a \[name, doc\] pair"),
    ],
)
def test_write_rejects_bad_streams(docs: Docs, message: str, tmp_path: Path) -> None:
    with pytest.raises(DocumentFileError, match=message):
        write_documents(docs, tmp_path, format="msgpack")
    assert os.listdir(tmp_path) == []


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DocumentFileError, match="unknown format 'csv'"):
        write_documents([], tmp_path, format="csv")  # type: ignore[arg-type]
