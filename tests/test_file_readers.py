"""File readers: every registered reader through one contract, then each format against its reference reader.

Files are written by each format's own library (tifffile, fabio, h5py, numpy,
csv) into tmp_path; what a reader returns must equal, exactly, what that
library (or numpy.loadtxt / np.load) reads back.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
from file_samples import HAS_FABIO, SpeReader, frames, sample_files, write_cbf, write_edf, write_hdf5, write_tiff

import scandeck.registry
from scandeck.exceptions import ScandeckError, UnknownName, UnreadableFile
from scandeck.files import readers
from scandeck.files.readers import (
    FILE_READERS,
    RESERVED_KEYS,
    FileReader,
    data_key_names,
    get_reader,
    jsonable,
    load_entry_points,
    reader_for,
    register_reader,
)

BUILTIN = ["tiff", *(["image"] if HAS_FABIO else []), "hdf5", "table", "npy", "bytes"]
needs_fabio = pytest.mark.skipif(not HAS_FABIO, reason="fabio is not installed")


@pytest.fixture
def clean_readers() -> Iterator[None]:
    """Undo whatever a test registers."""
    saved = FILE_READERS.snapshot()
    yield
    FILE_READERS.restore(saved)


def _same(got: np.ndarray, want: Any) -> None:
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f")


def _unreadable(reader: str, path: Path, *words: str) -> UnreadableFile:
    with pytest.raises(UnreadableFile) as info:
        get_reader(reader).describe(str(path))
    err = info.value
    assert err.reader == reader and err.path == str(path)
    text = str(err)
    assert str(path) in text
    for word in words:
        assert word in text, text
    return err


# --- the contract, on every registered reader --------------------------------------------------


def test_builtins_registered_in_order() -> None:
    assert list(FILE_READERS.snapshot()) == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_reader_contract(name: str, tmp_path: Path) -> None:
    path = sample_files(tmp_path)[name]
    reader = get_reader(name)
    assert isinstance(reader, FileReader) and reader.name == name
    assert reader_for(path) is reader
    layout = reader.describe(str(path))
    json.dumps(layout.info, allow_nan=False)  # strict JSON: the panel parses it
    assert name == "bytes" or layout.data_keys
    for key, entry in layout.data_keys.items():
        assert key.isidentifier() and not key.startswith("_") and key not in RESERVED_KEYS
        assert set(entry) == {"dtype", "dtype_numpy", "shape"}
        value = reader.read(str(path), key)
        assert isinstance(value, np.ndarray)
        assert list(value.shape) == entry["shape"]
        assert entry["dtype"] == ("array" if entry["shape"] else entry["dtype"])
        if entry["dtype_numpy"] != "<U0":
            assert value.dtype.str == entry["dtype_numpy"]
    with pytest.raises(UnreadableFile, match="no-such-key"):
        reader.read(str(path), "no-such-key")


def test_reader_for_matches_names_case_insensitively() -> None:
    assert reader_for("/data/A/SCAN_0001.TIF").name == "tiff"
    assert reader_for("run.TIFF").name == "tiff"
    assert reader_for("x.Csv").name == "table"
    assert reader_for("x.xye").name == "table"
    assert reader_for("entry.nxs").name == "hdf5"
    assert reader_for("report.docx").name == "bytes"
    assert reader_for("tif").name == "bytes"  # a pattern matches the whole name
    if HAS_FABIO:
        assert reader_for("det_0001.cbf").name == "image"
        assert reader_for("det.edf.gz").name == "image"


def test_key_names() -> None:
    assert data_key_names(["/entry/data/data", "/entry/data_data", "/entry_data/data"], prefix="dataset") == [
        "entry_data_data",
        "entry_data_data_2",
        "entry_data_data_3",
    ]
    names = data_key_names(["2theta (deg)", "", "path", "lambda", "_x_", "Å"], prefix="col")
    assert names == ["col_2theta_deg", "col", "path_", "lambda_", "x", "col_2"]


def test_jsonable() -> None:
    value = {
        "nan": np.float32("nan"),
        "inf": float("-inf"),
        "int": np.int64(3),
        "arr": np.arange(3, dtype="u1"),
        "big": np.zeros(10_000),
        "text": b"caf\xc3\xa9\x00\x00",
        "raw": b"\xff\xfe",
        7: (1, 2.5),
        "long": "x" * 40_000,
    }
    out = jsonable(value)
    json.dumps(out, allow_nan=False)
    assert out["nan"] == "nan" and out["inf"] == "-inf" and out["int"] == 3 and out["arr"] == [0, 1, 2]
    assert out["big"].startswith("<array of shape [10000]")
    assert out["text"] == "café" and out["raw"] == "<2 bytes>" and out["7"] == [1, 2.5]
    assert len(out["long"]) < 33_000 and out["long"].endswith("(cut: 40000 characters)")


# --- TIFF --------------------------------------------------------------------------------------


def test_tiff_single_page_and_stack(tmp_path: Path) -> None:
    one = write_tiff(
        tmp_path / "one.tif",
        frames(1)[0],
        description="exposure=0.1",
        software="LabCam 2.1",
        datetime="2024:05:06 07:08:09",
        resolution=(100, 50),
        resolutionunit="CENTIMETER",
    )
    stack = write_tiff(tmp_path / "stack.tiff", frames(4, dtype="<f4"))
    tiff = get_reader("tiff")
    layout = tiff.describe(str(one))
    assert layout.data_keys == {"image": {"dtype": "array", "dtype_numpy": "<u2", "shape": [24, 32]}}
    info = layout.info
    assert info["description"] == "exposure=0.1" and info["software"] == "LabCam 2.1"
    assert info["datetime"] == "2024:05:06 07:08:09"
    assert info["resolution"] == [100.0, 50.0] and info["resolution_unit"] == "CENTIMETER"
    assert info["shape"] == [24, 32] and info["dtype"] == "uint16" and info["pages"] == 1
    _same(tiff.read(str(one), "image"), tifffile.imread(one))
    assert tiff.describe(str(stack)).data_keys["image"]["shape"] == [4, 24, 32]
    assert tiff.describe(str(stack)).info["pages"] == 4
    _same(tiff.read(str(stack), "image"), tifffile.imread(stack))


def test_truncated_and_corrupt_tiff(tmp_path: Path) -> None:
    whole = write_tiff(tmp_path / "whole.tif", frames(3)).read_bytes()
    with tifffile.TiffFile(tmp_path / "whole.tif") as tif:
        inside = tif.pages[0].dataoffsets[0] + 10
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[:inside])  # inside the first page's image data
    _unreadable("tiff", cut, "a truncated TIFF: the image data of page 0 ends at byte", f"has {inside} bytes")
    half = tmp_path / "half.tif"
    half.write_bytes(whole[: len(whole) // 2])  # a whole first page, the next one missing
    _unreadable("tiff", half, "a truncated TIFF: its next page starts at byte", f"has {len(whole) // 2} bytes")
    tail = tmp_path / "tail.tif"
    tail.write_bytes(whole[:-100])  # the last page's IFD is cut
    _unreadable("tiff", tail)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a TIFF file at all")
    _unreadable("tiff", junk, "not a readable TIFF")
    with pytest.raises(FileNotFoundError):  # a vanished file is not "unreadable": the watcher tells them apart
        get_reader("tiff").describe(str(tmp_path / "gone.tif"))


# --- fabio -------------------------------------------------------------------------------------


@needs_fabio
def test_fabio_formats_against_fabio(tmp_path: Path) -> None:
    import fabio

    image = get_reader("image")
    edf = write_edf(tmp_path / "one.edf", frames(1, dtype="<i4"), {"ExposureTime": "0.5", "Motor": "th 12.5"})
    cbf = write_cbf(tmp_path / "one.cbf", frames(1, dtype="<i4")[0] * 3, {"x": "1"})
    for path in (edf, cbf):
        layout = image.describe(str(path))
        with fabio.open(str(path)) as ref:
            _same(image.read(str(path), "image"), ref.data)
            assert layout.info == {str(k): str(v) for k, v in ref.header.items()}
        assert layout.data_keys["image"]["shape"] == [24, 32]
    assert image.describe(str(edf)).info["Motor"] == "th 12.5"


@needs_fabio
def test_fabio_multi_frame_is_a_stack(tmp_path: Path) -> None:
    import fabio

    path = write_edf(tmp_path / "three.edf", frames(3, dtype="<f4"))
    image = get_reader("image")
    assert image.describe(str(path)).data_keys["image"]["shape"] == [3, 24, 32]
    with fabio.open(str(path)) as ref:
        want = np.stack([ref.data] + [ref.getframe(i).data for i in range(1, ref.nframes)])
    _same(image.read(str(path), "image"), want)


@needs_fabio
def test_truncated_edf(tmp_path: Path) -> None:
    whole = write_edf(tmp_path / "whole.edf", frames(1, dtype="<f4")).read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(whole[:-100])
    _unreadable("image", cut, "fabio says")
    junk = tmp_path / "junk.cbf"
    junk.write_bytes(b"\x00" * 10)
    _unreadable("image", junk, "fabio cannot read")
    whole = write_cbf(tmp_path / "whole.cbf", frames(1, dtype="<i4")[0]).read_bytes()
    cbf = tmp_path / "cut.cbf"
    cbf.write_bytes(whole[:-300])  # fabio checks the binary's MD5, logs, then raises a bare AssertionError
    _unreadable("image", cbf, "Checksum")


# --- HDF5 --------------------------------------------------------------------------------------


def test_hdf5_datasets_and_attributes(tmp_path: Path) -> None:
    path = write_hdf5(tmp_path / "scan.h5")
    with h5py.File(path, "a") as f:
        f.attrs["bytes"] = np.bytes_(b"raw\xff")
        f.attrs["nan"] = np.nan
        f.attrs["vector"] = np.arange(3)
        f["a/b_c"] = np.arange(4, dtype="i2")
        f["a_b/c"] = np.arange(5, dtype="u8")
        f["size"] = np.ones((2, 2), dtype=bool)
        f["0001/x"] = np.arange(3.0)
        f["text"] = "hello"
        f.create_dataset("names", data=["Ni", "Cu"], dtype=h5py.string_dtype())
        f["fixed"] = np.array([b"ab", b"cd"])
        f["pairs"] = np.array([(1, 2.5), (3, 4.5)], dtype=[("n", "<i4"), ("x", "<f8")])
        f["ref"] = f["a/b_c"].ref
        f["link"] = h5py.SoftLink("/a/b_c")  # the same dataset twice: one key
    hdf5 = get_reader("hdf5")
    layout = hdf5.describe(str(path))
    keys = layout.data_keys
    datasets = layout.info["datasets"]
    assert set(keys) == set(datasets)
    assert datasets["a_b_c"]["path"] == "/a/b_c" and datasets["a_b_c_2"]["path"] == "/a_b/c"
    assert datasets["size_"]["path"] == "/size" and datasets["dataset_0001_x"]["path"] == "/0001/x"
    assert keys["entry_count_time"] == {"dtype": "number", "dtype_numpy": "<f8", "shape": []}
    assert keys["text"]["dtype"] == "string" and keys["names"]["shape"] == [2]
    assert layout.info["skipped"] == {"/ref": "object or region references"}
    assert "link" not in str(keys)
    info = layout.info
    json.dumps(info, allow_nan=False)
    assert info["attrs"]["creator"] == "file_samples" and info["attrs"]["nan"] == "nan"
    assert info["attrs"]["vector"] == [0, 1, 2] and info["attrs"]["bytes"] == "<4 bytes>"
    assert info["groups"]["/entry"] == {"NX_class": "NXentry"}
    assert datasets["entry_data_data"]["attrs"] == {"units": "counts"}
    with h5py.File(path, "r") as f:
        for key, entry in datasets.items():
            ds = f[entry["path"]]
            text = h5py.check_string_dtype(ds.dtype) is not None
            want = np.asarray(ds.asstr()[()], dtype=str) if text else ds[()]
            _same(hdf5.read(str(path), key), want)
    assert hdf5.read(str(path), "names").tolist() == ["Ni", "Cu"]


def test_text_that_is_not_utf8_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "raw.h5"
    with h5py.File(path, "w") as f:
        f.attrs["note"] = b"\xff\xfe raw"
        f["fixed"] = np.array([b"x\xff", b"yy"])  # "ASCII" text that is not
    with h5py.File(path, "r") as f:
        assert f.attrs["note"] == "\udcff\udcfe raw"  # h5py hands its bytes on as surrogates
        raw = f["fixed"][()]
    hdf5 = get_reader("hdf5")
    layout = hdf5.describe(str(path))
    assert layout.info["attrs"]["note"] == "\\xff\\xfe raw"
    json.dumps(layout.info, ensure_ascii=False).encode("utf-8")  # text, printable and storable
    assert hdf5.read(str(path), "fixed").tolist() == [b.decode("ascii", "backslashreplace") for b in raw]
    assert jsonable({"lone": "a\ud800b"}) == {"lone": "a\\ud800b"}


def test_same_structure_same_keys(tmp_path: Path) -> None:
    a, b = write_hdf5(tmp_path / "a.h5"), write_hdf5(tmp_path / "b.h5")
    hdf5 = get_reader("hdf5")
    assert hdf5.describe(str(a)).data_keys == hdf5.describe(str(b)).data_keys


def test_truncated_hdf5(tmp_path: Path) -> None:
    whole = write_hdf5(tmp_path / "whole.h5").read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole[: len(whole) // 2])
    _unreadable("hdf5", cut, "not a readable HDF5 file", "truncated")


# --- tables ------------------------------------------------------------------------------------


def _write_rows(path: Path, rows: list[list[Any]], delimiter: str) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def _columns(path: Path) -> dict[str, np.ndarray]:
    table = get_reader("table")
    return {key: table.read(str(path), key) for key in table.describe(str(path)).data_keys}


def test_csv_and_tsv_with_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    values = rng.normal(size=(50, 3)) * 1e3
    header = ["2theta (deg)", "Intensity", "sigma I"]
    for name, delimiter in (("p.csv", ","), ("p.tsv", "\t")):
        path = _write_rows(tmp_path / name, [header, *values.tolist()], delimiter)
        layout = get_reader("table").describe(str(path))
        assert list(layout.data_keys) == ["col_2theta_deg", "Intensity", "sigma_I"]
        assert layout.info["columns"]["sigma_I"] == "sigma I"
        assert layout.info["delimiter"] == ("comma" if delimiter == "," else "tab")
        want = np.loadtxt(path, delimiter=delimiter, skiprows=1)
        for j, column in enumerate(_columns(path).values()):
            _same(column, want[:, j])


def test_xy_whitespace_comments_and_commented_header(tmp_path: Path) -> None:
    path = tmp_path / "pattern.xy"
    path.write_text(
        "# sample: Ni powder\n# wavelength 1.5406\n\n#  2theta   intensity\n"
        "10.00   105.5\n10.02\t  99.25\n  10.04  101.0  \n",
        encoding="latin-1",
    )
    layout = get_reader("table").describe(str(path))
    assert layout.info["delimiter"] == "whitespace"
    assert layout.info["comments"] == ["sample: Ni powder", "wavelength 1.5406", "2theta   intensity"]
    assert layout.info["header_line"] == 4
    assert list(layout.data_keys) == ["col_2theta", "intensity"]
    want = np.loadtxt(path)
    for j, column in enumerate(_columns(path).values()):
        _same(column, want[:, j])


def test_dat_without_header(tmp_path: Path) -> None:
    path = tmp_path / "scan.dat"
    path.write_text("# plain numbers\n# by a logger\n\n1 2 3\n4 5 6\n", encoding="utf-8")
    layout = get_reader("table").describe(str(path))
    assert list(layout.data_keys) == [
        "col0",
        "col1",
        "col2",
    ]  # "by a logger" has 3 words, but a blank line follows it
    want = np.loadtxt(path)
    for j, column in enumerate(_columns(path).values()):
        _same(column, want[:, j])
    assert layout.info["header_line"] is None and layout.info["comments"] == ["plain numbers", "by a logger"]


def test_lines_end_only_at_line_ends(tmp_path: Path) -> None:
    # Windows vendor software writes cp1252: its "..." is byte 0x85, which Latin-1 text reads as NEL,
    # a line break to str.splitlines, as are form feeds and U+2028: a comment's tail became a row.
    path = tmp_path / "pattern.xy"
    path.write_bytes(b"# Ni powder\x85 300 K\n# 2theta intensity\n10.0 105.5\r\n10.02 99.25\x0c\n10.04 101.0\n")
    layout = get_reader("table").describe(str(path))
    assert layout.info["comments"] == ["Ni powder\x85 300 K", "2theta intensity"]
    assert list(layout.data_keys) == ["col_2theta", "intensity"]
    want = np.loadtxt(path, encoding="latin-1")
    for j, column in enumerate(_columns(path).values()):
        _same(column, want[:, j])
    lines = tmp_path / "sep.dat"
    lines.write_text("# a\u2028b c\n1 2\n", encoding="utf-8")
    assert get_reader("table").describe(str(lines)).info["comments"] == ["a\u2028b c"]


def test_comments_at_the_end_of_a_row(tmp_path: Path) -> None:
    path = tmp_path / "scan.dat"
    path.write_text("# x y\n1.0 2.0 # the peak\n2.0 3.0\n3.0 4.0#\n", encoding="utf-8")
    want = np.loadtxt(path)
    cols = _columns(path)
    assert list(cols) == ["x", "y"]
    for j, column in enumerate(cols.values()):
        _same(column, want[:, j])
    quoted = tmp_path / "q.csv"
    quoted.write_text('"sample #",I\n1,2 # first\n', encoding="utf-8")
    assert list(_columns(quoted)) == ["sample", "I"]  # a quoted # is text


def test_numbers_are_numbers_as_loadtxt_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "odd.dat"
    for text, field in (("1 2\n1_0 4\n", "1_0"), ("1 2\n3 \u0664\n", "\u0664")):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ValueError):
            np.loadtxt(path, encoding="utf-8")
        _unreadable("table", path, "is not a number", field)


def test_bad_tables_name_the_line(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y,z\n1,2,3\n4,5,6\n# note\n7,8\n", encoding="utf-8")
    err = _unreadable("table", ragged, "line 5 has 2 fields where line 1 has 3")
    assert err.reader == "table"
    word = tmp_path / "word.csv"
    word.write_text("x,y\n1,2\n3,oops\n", encoding="utf-8")
    _unreadable("table", word, "line 3, field 2: 'oops' is not a number")
    binary = tmp_path / "frame.dat"
    binary.write_bytes(np.arange(10, dtype="<u2").tobytes())
    _unreadable("table", binary, "NUL bytes")


def test_empty_fields_are_nan(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "gaps.csv", [["a", "b"], [1, ""], ["", 2]], ",")
    cols = _columns(path)
    assert np.isnan(cols["a"][1]) and np.isnan(cols["b"][0]) and cols["a"][0] == 1 and cols["b"][1] == 2


# --- NPY and bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=">i4").reshape(2, 3, 4),
        np.asfortranarray(np.linspace(0, 1, 12).reshape(3, 4)),
        np.array(3.5),
        np.zeros((0, 4), dtype="u1"),
        np.array([(1, 2.0)], dtype=[("n", "<i2"), ("x", "<f4")]),
    ],
)
def test_npy_against_numpy(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    npy = get_reader("npy")
    layout = npy.describe(str(path))
    assert layout.data_keys["array"]["shape"] == list(array.shape)
    assert layout.info["fortran_order"] == (
        array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
    )
    _same(npy.read(str(path), "array"), np.load(path, allow_pickle=False))


def test_npy_objects_and_truncation(tmp_path: Path) -> None:
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _unreadable("npy", objects, "pickled", "never unpickles")
    whole = tmp_path / "whole.npy"
    np.save(whole, np.arange(100.0))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(whole.read_bytes()[:-8])
    _unreadable("npy", cut, "truncated")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy")
    _unreadable("npy", junk, "not a readable .npy file")


def test_bytes_reader(tmp_path: Path) -> None:
    path = tmp_path / "blob.raw"
    path.write_bytes(b"\x00" * 100)
    layout = reader_for(path).describe(str(path))
    assert (reader_for(path).name, layout.data_keys, layout.info) == ("bytes", {}, {})


# --- the registry ------------------------------------------------------------------------------


def test_register_reader(clean_readers: None, tmp_path: Path) -> None:
    spe = SpeReader()
    register_reader(spe)
    register_reader(spe)  # the same object again is fine
    with pytest.raises(ScandeckError, match="overwrite=True"):
        register_reader(SpeReader())
    assert reader_for("a.SPE") is spe

    class OmeTiff(SpeReader):
        name, patterns = "ome_tiff", ("*.ome.tif", "*.ome.tiff")

    ome = OmeTiff()
    register_reader(ome)  # after the built-ins, but tried before them
    assert reader_for("cells.OME.tif") is ome and reader_for("cells.tif").name == "tiff"

    class BetterTiff(SpeReader):
        name, patterns = "tiff", ("*.tif",)

    better = BetterTiff()
    register_reader(better, overwrite=True)  # replaces the built-in
    assert reader_for("x.tif") is better and reader_for("x.ome.tif") is ome

    class Nameless:
        patterns = ("*.x",)

    with pytest.raises(TypeError, match="lacks name"):
        FILE_READERS.register("x", Nameless())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="register it under that name"):
        FILE_READERS.register("other", SpeReader())
    with pytest.raises(UnknownName, match="no file reader named 'nope'.*table"):
        get_reader("nope")


def test_entry_point_readers(clean_readers: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    good = EntryPoint("spe", "file_samples:SpeReader", "scandeck.file_readers")  # a class: instantiated
    eps = {"scandeck.file_readers": [good]}
    monkeypatch.setattr(scandeck.registry, "entry_points", lambda group: eps.get(group, []))
    assert "spe" not in FILE_READERS.names()  # nothing loaded on import ...
    load_entry_points()  # ... until reader_for first looks (it calls this once per process)
    reader = reader_for(tmp_path / "sample.spe")
    assert isinstance(reader, SpeReader) and get_reader("spe") is reader
    assert list(FILE_READERS.snapshot())[-1] == "spe"  # after the built-ins
    path = tmp_path / "sample.spe"
    np.arange(8, dtype="<f4").tofile(path)
    _same(reader.read(str(path), "spectrum"), np.arange(8, dtype="<f4"))

    eps["scandeck.file_readers"].append(EntryPoint("broken", "no_such_module_xyz:Nope", "scandeck.file_readers"))
    with pytest.raises(ScandeckError, match="'broken'.*failed to load"):
        load_entry_points()
    assert readers.FILE_READERS is FILE_READERS
