"""scandeck's magics in a real kernel never run what a uid, name or query holds.

IPython expands ``{expression}`` and ``$name`` in magic lines unless the magic says
``@no_var_expand``. Each case here would create the file ``PWNED`` in the kernel's
working directory if it were expanded; the kernel is driven through jupyter_client
as JupyterLab drives it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_harness import KernelSession, output_text
from test_hostile_metadata import write_run

import scandeck

PWN = "x{open('PWNED','w').write('1')}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A store with a run whose uid is PWN and a run whose stream is named PWN; a kernel on it."""
    root = tmp_path_factory.mktemp("magics")
    store = root / "store"
    cat = scandeck.open_catalog(store)
    uids = {"pwn_uid": write_run(cat, uid=PWN, scan_id=1), "pwn_stream": write_run(cat, scan_id=2, stream=PWN)}
    cat.close()
    work = root / "work"
    work.mkdir()
    kernel = KernelSession({"SCANDECK_DATA": str(root / "data"), "SCANDECK_BIND": "once"})
    kernel.execute(f"import os; os.chdir({str(work)!r}); HOME = 'home'\n%load_ext scandeck\n%catalog {store}")
    yield {"kernel": kernel, "work": work, "store": store, "uids": uids}
    kernel.close()


def run(world: dict, code: str) -> tuple[str, str]:
    """Execute ``code``: ``("ok", text)`` or ``("error", "ename: evalue")``; never PWNED."""
    kernel: KernelSession = world["kernel"]
    try:
        reply = kernel.execute(code)
        outcome = ("ok", kernel.text_of(reply["msg_id"]))
    except AssertionError as err:  # the harness raises the kernel's traceback
        outcome = ("error", str(err))
    pwned = world["work"] / "PWNED"
    if pwned.exists():
        pwned.unlink()  # (so that the next test starts clean)
        pytest.fail(f"{code!r} ran the code in its line")
    return outcome


def test_bind_takes_a_uid_with_braces_as_the_uid(world: dict) -> None:
    status, text = run(world, f"%%bind --uid {PWN}\nprint('bound to', run.uid, len(df))")
    assert status == "ok", text
    assert f"bound to {PWN} 2" in text


def test_bind_takes_a_stream_named_with_braces_as_the_name(world: dict) -> None:
    uid = world["uids"]["pwn_stream"]
    status, text = run(world, f"%%bind --uid {uid} --stream {PWN}\nprint('rows', len(df))")
    assert status == "ok", text
    assert "rows 2" in text


def test_bind_does_not_expand_dollar_names(world: dict) -> None:
    status, text = run(world, "%%bind --uid $HOME\nprint(run.uid)")
    assert status == "error" and "no run with uid or uid prefix '$HOME'" in text


def test_the_panels_bind_snippet_for_a_hostile_stream_runs_as_data(world: dict) -> None:
    from scandeck.server.snippets import code_for

    code = code_for(world["uids"]["pwn_stream"], str(world["store"]), [PWN])
    status, text = run(world, code["setup"])
    assert status == "ok", text
    status, text = run(world, code["bind"])
    assert status == "ok", text
    assert "x" in text and "2" in text  # df.tail(): the stream's two rows


@pytest.mark.parametrize(
    "line",
    [
        f'%scans uid == "{PWN}"',
        f"%unbind {PWN}",
        f"%catalog {PWN}",
        f"%provenance show --name {PWN}",
    ],
)
def test_line_magics_do_not_expand_braces(world: dict, line: str) -> None:
    run(world, line)  # whatever the magic answers, the braces were not run
    run(world, f"%catalog {world['store']}")


def test_scans_finds_the_hostile_uid_as_text(world: dict) -> None:
    status, text = run(world, f'%scans uid == "{PWN}"')
    assert status == "ok", text
    assert html.escape(PWN) in text and text.count("<tr") == 2  # the header and that one run


def test_bound_output_of_a_live_binding_names_the_uid_as_given(world: dict, tmp_path: Path) -> None:
    kernel: KernelSession = world["kernel"]
    run(world, "import os; os.environ['SCANDECK_BIND'] = 'live'")
    try:
        status, text = run(world, f"%%bind --uid {PWN} --on run\nprint('live', run.uid)")
        assert status == "ok", text
        assert kernel.wait_for(
            lambda: any(f"live {PWN}" in output_text(u[2]) for u in kernel.widget_outputs()), 30
        )
        listing = kernel.text_of(kernel.execute("%bindings")["msg_id"])
        assert "run x{open(&#x27; · primary · on run" in listing  # the uid as given, cut to 8
    finally:
        run(world, "%unbind --all\nos.environ['SCANDECK_BIND'] = 'once'")
