"""Plots draw offline in any kernel: BokehJS, Panel's JS and CSS come with the outputs, not from a CDN.

In a real kernel started without the scandeck server's environment, whichever
order a notebook loads things in (``%load_ext scandeck`` first, ``hv.extension``
before ``import scandeck.plot``, or the shipped notebook's order), the JS in
effect when the plot shows is the installed bokeh's and panel's, inline, and the
plot's own output links nothing on a CDN. The browser side (a plot drawing in
JupyterLab with every off-machine request blocked) is ``tests/ui/test_lab_offline_plot.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import bokeh
import panel
import pytest
from kernel_harness import KernelSession

import scandeck
from scandeck import offline

VARIABLES = ("BOKEH_RESOURCES", "PANEL_INLINE", "HOLOVIEWSRC")
CDN = re.compile(r"https?://cdn\.(?:bokeh\.org|holoviz\.org|jsdelivr\.net)[^\s\"'\\]*")
# Each JS bundle's last characters: present in an output only if the file was embedded.
BOKEH_JS = (Path(bokeh.__file__).parent / "server" / "static" / "js" / "bokeh.min.js").read_text()[-80:]
PANEL_JS = (Path(panel.__file__).parent / "dist" / "panel.min.js").read_text()[-80:]

SHOW_HV = 'import holoviews as hv\nhv.extension("bokeh")'
ORDERS = {
    "load_ext first": ["%load_ext scandeck\n%catalog {store}", SHOW_HV],
    "hv.extension before scandeck": [SHOW_HV, "import scandeck.plot"],
    "shipped notebook": [
        "%load_ext scandeck\n%catalog {store}",
        'import holoviews as hv\nimport scandeck.plot\n\nhv.extension("bokeh")',
    ],
}
PLOT = 'import scandeck.plot\nscandeck.plot.line(x="motor", y="det", width=400)'


def payloads(outputs: list[dict[str, Any]]) -> list[str]:
    """Every output's data, as text (display_data and execute_result bundles)."""
    return [json.dumps(m["content"].get("data", {})) for m in outputs]


def fetched(loader: str) -> list[str]:
    """The URLs a loader script has the browser fetch (Panel's autoload: ``const js_urls = [...]``, ...)."""
    urls: list[str] = []
    for name in ("js_urls", "js_modules", "js_exports", "css_urls"):
        found = re.search(rf"const {name} = (.*);\n", loader)
        assert found, f"no {name} in the loader: not Panel's autoload script any more?"
        value = json.loads(found.group(1))
        urls += list(value.values()) if isinstance(value, dict) else value
    return urls


def loaders(outputs: list[dict[str, Any]]) -> list[str]:
    """The scripts among ``outputs`` that load BokehJS: inline (its text) or from a CDN (its URL)."""
    scripts = [m["content"].get("data", {}).get("application/javascript", "") for m in outputs]
    return [js for js in scripts if BOKEH_JS in js or "cdn.bokeh.org/bokeh/release/bokeh-" in js]


@pytest.fixture
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline variables in what the kernel inherits (another test may have set them here)."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("order", list(ORDERS))
def test_plot_js_is_inline_whatever_the_order(order: str, tmp_path: Path, bare_environment: None) -> None:
    store = tmp_path / "store"
    scandeck.open_catalog(store).close()
    kernel = KernelSession({"SCANDECK_DATA": str(tmp_path / "data")})
    try:
        loads = [kernel.execute(code.format(store=store))["outputs"] for code in ORDERS[order]]
        shown = payloads(kernel.execute(PLOT)["outputs"])
        inherited = kernel.execute(f"import os; print([os.environ.get(n) for n in {VARIABLES!r}])")
    finally:
        kernel.close()

    # The BokehJS in effect when the plot shows (the last loaded) is the installed one, with Panel's.
    every = [js for cell in loads for js in loaders(cell)]
    assert every, "no cell loaded BokehJS"
    assert BOKEH_JS in every[-1] and PANEL_JS in every[-1]
    assert fetched(every[-1]) == []
    if order == "hv.extension before scandeck":
        # HoloViews' own default was the CDN; import scandeck.plot loaded the JS again, inline.
        assert len(every) == 2
        assert fetched(every[0]) and all(CDN.fullmatch(url) for url in fetched(every[0]))
        assert loaders(loads[1]) == every[-1:]
    else:
        assert len(every) == 1
    # The plot itself links no stylesheet or script on a CDN (Panel's CSS embedded too).
    assert shown and "application/vnd.holoviews_exec.v0+json" in "".join(shown)
    assert [m.group() for text in shown for m in CDN.finditer(text)] == []
    assert str(offline.RC_FILE) in "".join(kernel_text(inherited))


def kernel_text(reply: dict[str, Any]) -> list[str]:
    return [m["content"].get("text", "") for m in reply["outputs"]]


def test_environment_sets_what_the_user_left_unset() -> None:
    environ = {"PANEL_INLINE": "false"}
    added = offline.set_environment(environ)
    assert added == {"BOKEH_RESOURCES": "inline", "HOLOVIEWSRC": str(offline.RC_FILE)}
    assert environ["PANEL_INLINE"] == "false"  # the user's choice stands
    assert offline.RC_FILE.is_file()


def test_bokeh_resources_cdn_switches_it_off() -> None:
    environ = {"BOKEH_RESOURCES": "cdn"}
    assert offline.set_environment(environ) == {}
    assert environ == {"BOKEH_RESOURCES": "cdn"}
