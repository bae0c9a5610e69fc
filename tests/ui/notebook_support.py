"""What the browser tests do with notebooks: write one, open it with its kernel ready, run cells,
start a producer process and always stop it, count what the page's Bokeh plots hold.

Fixtures (the lab, the browser page) are in ``conftest.py``; these are plain functions.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import nbformat

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
CELLS = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
STATUS_BAR = "#jp-main-statusbar"

# The most values any data source of the page's Bokeh documents holds in a column (-1: none has it),
# counting only the finite ones when asked (a heatmap's unmeasured cells are NaN).
SHOWN = """([name, finiteOnly]) => {
    let most = -1;
    for (const doc of (window.Bokeh?.documents ?? [])) {
        for (const model of doc.all_models) {
            const data = model.data;
            if (data === undefined || data === null) continue;
            const column = data instanceof Map ? data.get(name) : data[name];
            if (column === undefined) continue;
            most = Math.max(most, finiteOnly ? Array.from(column).filter(Number.isFinite).length : column.length);
        }
    }
    return most;
}"""

# A real RunEngine runs {plan} (an expression that may use per_step) into the default store:
# once half of argv[1] points are taken it prints "half" and waits for the file argv[2]; "done" at the end.
HALF_WAY_PRODUCER = """
import sys
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.plans as bp
from bluesky import RunEngine
{imports}
import scandeck

points, go = int(sys.argv[1]), Path(sys.argv[2])
{setup}
RE = RunEngine({{}}, context_managers=[])
RE.subscribe(scandeck.open_catalog().writer())
steps = []


def per_step(detectors, step, pos_cache, take_reading=None):
    if len(steps) == points // 2:
        print("half", flush=True)
        while not go.exists():
            yield from bps.sleep(0.05)
    steps.append(step)
    yield from bps.one_nd_step(detectors, step, pos_cache)


RE({plan})
print("done", flush=True)
"""


def write_notebook(path: Path, *cells: str | nbformat.NotebookNode) -> None:
    """A notebook of these cells (sources become code cells) on the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    nbformat.write(nb, path)


def wait_for_kernel(page: Any, lab: Any, path: str, timeout: float = 30) -> None:
    """Wait until the notebook's kernel is connected to the page and idle.

    A cell run before the page holds its kernel is dropped silently (its prompt
    stays ``[ ]``). The toolbar's execution indicator says idle while the status
    bar still says "No Kernel | Initializing", so it cannot tell; the server's
    count of the page's websockets on the kernel and the status bar's "Idle" can.
    """
    from playwright.sync_api import expect

    deadline = time.monotonic() + timeout
    while True:
        kernels = [s["kernel"] for s in lab.api("sessions") if s["path"] == path]
        if kernels and kernels[0]["connections"] >= 1 and kernels[0]["execution_state"] == "idle":
            break
        assert time.monotonic() < deadline, f"no idle, connected kernel for {path}: {kernels}"
        time.sleep(0.1)
    expect(page.locator(STATUS_BAR)).to_contain_text("| Idle", timeout=timeout * 1000)


def open_notebook(page: Any, lab: Any, path: str, cells: int, kernel_timeout: float = 30) -> Any:
    """Open the notebook at ``path`` (under the lab's root) and wait for its cells and its idle kernel.

    Returns the locator of its cells. The status bar is awaited in the browser first:
    Playwright's waits keep the page's requests flowing, sleeping in Python would not.
    """
    from playwright.sync_api import expect

    page.goto(lab.page_url(path))
    located = page.locator(CELLS)
    expect(located).to_have_count(cells, timeout=30_000)
    expect(page.locator(STATUS_BAR)).to_contain_text("| Idle", timeout=kernel_timeout * 1000)
    wait_for_kernel(page, lab, path, timeout=kernel_timeout)
    return located


def run_cell(page: Any, cell: Any) -> None:
    """Click into the cell's editor and press Shift+Enter, as a user does."""
    cell.locator(".jp-InputArea-editor .cm-content").click()
    page.keyboard.press("Shift+Enter")


def wait_for_idle(page: Any, timeout: float = 20) -> None:
    """Wait until the status bar says the kernel is idle."""
    from playwright.sync_api import expect

    expect(page.locator(STATUS_BAR)).to_contain_text("| Idle", timeout=timeout * 1000)


@contextmanager
def producer(args: Sequence[str], env: dict[str, str] | None = None, stdin: bool = False) -> Iterator[Any]:
    """A process writing runs (its stdout a text pipe, stdin too if asked), killed if still running at exit."""
    proc = subprocess.Popen(
        list(args), env=env, stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdin is not None:
            proc.stdin.close()
        proc.stdout.close()


def half_way_producer(
    plan: str, points: int, go: Path, env: dict[str, str], imports: str = "", setup: str = ""
) -> AbstractContextManager[Any]:
    """:data:`HALF_WAY_PRODUCER` running ``plan`` of ``points`` points, started (a :func:`producer`)."""
    code = HALF_WAY_PRODUCER.format(imports=imports, setup=setup, plan=plan)
    return producer([sys.executable, "-c", code, str(points), str(go)], env=env)


def number_from_store(env: dict[str, str], code: str) -> int:
    """What ``code`` prints, run in another process over the store ``env`` names (the kernel's store)."""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(proc.stdout)


def shown(page: Any, column: str, finite: bool = False) -> int:
    """The most values (finite ones only if ``finite``) a Bokeh data source of the page holds in ``column``."""
    return page.evaluate(SHOWN, [column, finite])


def wait_until_shown(page: Any, column: str, count: int, finite: bool = False, timeout: float = 30) -> None:
    """Wait until :func:`shown` is ``count``."""
    page.wait_for_function(
        f"([name, finite, count]) => ({SHOWN})([name, finite]) === count",
        arg=[column, finite, count],
        timeout=timeout * 1000,
    )
