"""The Scans panel's code buttons on runs whose uid or stream name is code in disguise.

In real JupyterLab and Chromium: a run whose uid is ``x{open('PWNED','w').write('1')}``
gets no code (Bind live cell and Insert code show the server's refusal and insert
nothing), and a run whose stream has that name gets a ``%%bind`` cell that runs and
treats the name as data. Either way no file PWNED appears where the kernel runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from event_model import compose_run
from notebook_support import wait_for_kernel, write_notebook

import scandeck

pytestmark = pytest.mark.ui

PWN = "x{open('PWNED','w').write('1')}"
RUN = ".jp-scandeck-run"


def write_run(cat, *, uid: str | None, stream: str, scan_id: int) -> str:
    """A finished run of three events in one stream (compose_run); its uid."""
    bundle = compose_run(uid=uid, metadata={"plan_name": "count", "scan_id": scan_id})
    writer = cat.writer()
    writer("start", bundle.start_doc)
    desc = bundle.compose_descriptor(
        name=stream, data_keys={"det": {"dtype": "number", "shape": [], "source": "sim:det"}}
    )
    writer("descriptor", desc.descriptor_doc)
    for i in range(3):
        writer("event", desc.compose_event(data={"det": 10.0 + i}, timestamps={"det": 0.0}))
    writer("stop", bundle.compose_stop(exit_status="success"))
    writer.close()
    return bundle.start_doc["uid"]


@pytest.mark.timeout(180)
def test_code_buttons_never_run_what_a_uid_or_stream_name_holds(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    cat = scandeck.open_catalog(Path(lab.env["SCANDECK_DATA"]) / "store")  # the server's default
    try:
        write_run(cat, uid=PWN, stream="primary", scan_id=1)
        stream_uid = write_run(cat, uid=None, stream=PWN, scan_id=2)
    finally:
        cat.close()
    write_notebook(lab.root / "hostile.ipynb", "print('ready')")
    pwned = lab.root / "PWNED"  # where the notebook's kernel runs

    page.goto(lab.page_url("hostile.ipynb"))
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    expect(cells).to_have_count(1, timeout=30_000)
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel.locator(RUN)).to_have_count(2, timeout=20_000)
    wait_for_kernel(page, lab, "hostile.ipynb")
    cells.nth(0).locator(".jp-InputArea-editor .cm-content").click()

    # The run whose uid is code: browsable, but both code buttons are refused with the reason.
    panel.locator(f'{RUN}[data-uid="{PWN}"]').click()
    detail = panel.locator(".jp-scandeck-detail")
    expect(detail).to_have_attribute("data-uid", PWN, timeout=10_000)
    notice = panel.locator(".jp-scandeck-notice")
    for action in ("bind", "insert"):
        detail.locator(f'[data-action="{action}"]').click()
        expect(notice).to_have_attribute("data-kind", "error", timeout=10_000)
        expect(notice).to_contain_text("cannot be put into a code cell")
        expect(cells).to_have_count(1)
    page.screenshot(path=str(artifacts / "hostile_uid_refused.png"))

    # The run whose stream is named like code: its %%bind cell runs on that stream, as data.
    panel.locator(f'{RUN}[data-uid="{stream_uid}"]').click()
    expect(detail).to_have_attribute("data-uid", stream_uid, timeout=10_000)
    detail.locator('[data-action="bind"]').click()
    expect(cells).to_have_count(3, timeout=10_000)  # the set-up cell, then the %%bind cell
    bound = cells.nth(2)
    expect(bound).to_contain_text("%%bind --uid " + stream_uid)
    expect(bound.locator(".jp-InputPrompt")).to_contain_text(re.compile(r"\[\d+\]"), timeout=30_000)
    expect(bound.locator(".jp-Cell-outputArea")).to_contain_text("12.0", timeout=30_000)  # df.tail()
    errors = bound.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0
    page.screenshot(path=str(artifacts / "hostile_stream_bound.png"))

    assert not pwned.exists(), "a code button ran code a run carried"
