"""The Scans panel's search and run rows in real JupyterLab and Chromium (issue 12).

A bad query typed and entered sends one request; a search on a field no run has
says so in the status line with the closest field; the panel's default width
shows typical sample and operator names whole, and long ones in full on hover.
Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.ui

RUN = ".jp-scandeck-run"
LONG_SAMPLE = "LaB6-NIST-SRM-660c-capillary-0.3mm-batch-2026-11"
LONG_OPERATOR = "maria.gonzalez-lopez"


def record_runs(store: Path) -> dict[str, str]:
    """Two runs with a real RunEngine: typical names, and long ones. Returns sample -> uid."""
    import bluesky.plans as bp
    from bluesky import RunEngine
    from ophyd.sim import det, motor

    import scandeck

    cat = scandeck.open_catalog(store)
    RE = RunEngine({}, context_managers=[])  # noqa: N806
    RE.subscribe(cat.writer())
    uids = {
        "CeO2": RE(bp.scan([det], motor, -1, 1, 3), sample="CeO2", operator="asmith")[0],
        LONG_SAMPLE: RE(bp.grid_scan([det], motor, -1, 1, 3), sample=LONG_SAMPLE, operator=LONG_OPERATOR)[0],
    }
    cat.close()
    return uids


def open_panel(lab, page):
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="scandeck-panel"]').click()
    panel = page.locator(".jp-scandeck-panel")
    expect(panel).to_be_visible(timeout=30_000)
    return panel


def test_a_bad_query_sends_one_request_and_an_unknown_field_gets_a_hint(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    record_runs(Path(lab.env["SCANDECK_DATA"]) / "store")
    panel = open_panel(lab, page)
    expect(panel.locator(RUN)).to_have_count(2, timeout=20_000)

    searched: list[str] = []

    def count(request) -> None:
        url = urlsplit(request.url)
        query = parse_qs(url.query, keep_blank_values=True)
        # The run table's pages are searches; its requests for pushed cells (uid=...) are not.
        if url.path.endswith(("/scandeck/api/runs", "/scandeck/api/table")) and "uid" not in query:
            searched.append(query.get("q", [""])[0])

    page.on("request", count)
    search = panel.locator(".jp-scandeck-search")
    search.fill('sample = "Cu"')  # as typed: the debounced search is scheduled
    search.press("Enter")  # ... and Enter runs it at once instead
    error = panel.locator(".jp-scandeck-search-error")
    expect(error).to_be_visible(timeout=10_000)
    search.press("Enter")  # the same refused text again: not sent again
    page.wait_for_timeout(1000)  # past the debounce (300 ms): a second request would be out
    assert searched == ['sample = "Cu"']

    search.fill('smaple == "CeO2"')
    search.press("Enter")
    hint = panel.locator(".jp-scandeck-search-hint")
    expect(hint).to_have_text("no run has the field smaple (did you mean sample?)", timeout=10_000)
    expect(panel.locator(RUN)).to_have_count(0)
    expect(panel.locator(".jp-scandeck-search-error")).to_have_count(0)  # legal, not an error
    page.wait_for_timeout(1000)
    assert searched == ['sample = "Cu"', 'smaple == "CeO2"']
    panel.screenshot(path=str(artifacts / "panel_search_unknown_field.png"))

    search.fill('sample == "CeO2"')
    search.press("Enter")
    expect(panel.locator(RUN)).to_have_count(1, timeout=10_000)
    expect(hint).to_have_count(0)


def test_rows_show_sample_and_operator_whole_and_long_names_on_hover(lab, page, artifacts: Path) -> None:
    from playwright.sync_api import expect

    uids = record_runs(Path(lab.env["SCANDECK_DATA"]) / "store")
    panel = open_panel(lab, page)
    expect(panel.locator(RUN)).to_have_count(2, timeout=20_000)
    assert panel.bounding_box()["width"] >= 320  # the sidebar opens at the panel's width

    typical = panel.locator(f'{RUN}[data-uid="{uids["CeO2"]}"] .jp-scandeck-run-who')
    expect(typical).to_have_text("CeO2 · asmith")
    assert typical.evaluate("e => e.scrollWidth <= e.clientWidth"), "typical names are cut"

    row = panel.locator(f'{RUN}[data-uid="{uids[LONG_SAMPLE]}"]')
    who = row.locator(".jp-scandeck-run-who")
    expect(who).to_have_attribute("title", f"sample: {LONG_SAMPLE}\noperator: {LONG_OPERATOR}")
    expect(row.locator(".jp-scandeck-run-uid")).to_have_attribute("title", uids[LONG_SAMPLE])
    expect(row.locator(".jp-scandeck-run-plan")).to_have_attribute("title", "grid_scan")
    plan = row.locator(".jp-scandeck-run-plan")  # the plan whole: sample and operator give way
    assert plan.evaluate("e => e.scrollWidth <= e.clientWidth"), "the plan name is cut"
    # Cut with an ellipsis (not wrapped, not overflowing the row): the badge stays in view.
    assert who.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    badge, box = row.locator(".jp-scandeck-status-badge").bounding_box(), row.bounding_box()
    assert badge["x"] + badge["width"] <= box["x"] + box["width"]
    panel.screenshot(path=str(artifacts / "panel_long_names.png"))
