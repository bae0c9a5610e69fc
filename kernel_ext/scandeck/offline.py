"""Plots that draw with no internet: BokehJS and Panel's JS come from the installed packages.

By default HoloViews (``hv.extension("bokeh")``), Panel (``pn.extension()``) and
Bokeh (``output_notebook()``) tell the browser to fetch their JavaScript from a
CDN; on an offline beamline network every plot then stays blank ("Bokeh or Panel
library is missing"). scandeck makes them embed it instead ("inline" resources:
the JS of the installed bokeh and panel, sent with the cell's output).

Why inline, and not the JupyterLab extensions those libraries ship: the one
installed (``@pyviz/jupyterlab_pyviz``, from pyviz_comms) carries the comms and
renderers but not BokehJS or Panel's models, and ``jupyter_bokeh`` (not a
dependency) does not either; only the Python packages hold that JS, and inline
resources are how they hand it over. (Panel's own server extension does serve
both files, under ``panel-preview/static/`` and ``panel_dist/``, but a notebook's
loader, Panel's ``load_notebook``, knows two modes only, inline or the CDN, and
that extension may be disabled.) The cost is the size of the loading cell's
output: about 6 MB in the saved notebook, against 57 kB with the CDN.

Why environment variables: they reach every kernel, before or after holoviews
is imported, without importing it (``%load_ext scandeck`` stays light):

- ``BOKEH_RESOURCES=inline``: Bokeh's ``output_notebook()`` and ``save()``;
- ``PANEL_INLINE=true``: ``pn.extension()``;
- ``HOLOVIEWSRC`` naming ``holoviews_rc.py`` next to this module: HoloViews runs
  that file when it is imported, and it makes ``inline=True`` the default of
  ``hv.extension``, which reads no variable of its own; it also registers
  :func:`inline_stylesheets`, because HoloViews' renderer links Panel's CSS on
  the CDN even when inline.

The scandeck server extension sets them in the Jupyter server's environment
(``ScandeckApp.offline_plots``, on by default), so every kernel JupyterLab starts
has them, whether or not the notebook loads scandeck. In a kernel started
elsewhere, :func:`enable` does the same: ``%load_ext scandeck`` and ``import
scandeck.plot`` call it. If ``hv.extension`` already ran with the CDN (called
before scandeck was loaded), :func:`enable` loads the JS again, inline, in the
current cell's output.

A variable the user set is kept: ``BOKEH_RESOURCES=cdn`` (a site with internet
that wants small notebooks) switches all of this off. A user's own
``HOLOVIEWSRC`` wins over ours too; then ``hv.extension`` is inline only once
scandeck has seen HoloViews imported (``import scandeck.plot``, or
``%load_ext scandeck`` after ``import holoviews``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["RC_FILE", "enable", "environment", "inline_holoviews", "inline_stylesheets", "set_environment"]

#: The HoloViews rc file (``HOLOVIEWSRC``) that makes ``hv.extension`` inline by default.
RC_FILE = Path(__file__).with_name("holoviews_rc.py")


def environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables that make Bokeh, Panel and HoloViews embed their JS, given ``environ``.

    Empty when ``environ`` (default ``os.environ``) sets ``BOKEH_RESOURCES`` to
    anything but ``inline``: the user chose where the JS comes from.

    Examples
    --------
    >>> sorted(environment({}))
    ['BOKEH_RESOURCES', 'HOLOVIEWSRC', 'PANEL_INLINE']
    >>> environment({"BOKEH_RESOURCES": "cdn"})
    {}
    """
    environ = os.environ if environ is None else environ
    if environ.get("BOKEH_RESOURCES", "inline") != "inline":
        return {}
    return {"BOKEH_RESOURCES": "inline", "PANEL_INLINE": "true", "HOLOVIEWSRC": str(RC_FILE)}


def set_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set :func:`environment`'s variables in ``environ`` (default ``os.environ``) where unset.

    Returns the variables it set. A process's children (kernels of a Jupyter
    server) inherit them.
    """
    environ = os.environ if environ is None else environ
    added = {name: value for name, value in environment(environ).items() if name not in environ}
    environ.update(added)
    return added


def enable() -> None:
    """In a kernel: plots draw offline from now on, whatever was loaded before.

    Sets the variables (see the module's docstring); if HoloViews is already
    imported, also makes ``hv.extension`` inline and, if it already loaded the
    JS from the CDN, loads it again inline (:func:`inline_holoviews`). Imports
    nothing heavy itself.
    """
    set_environment()
    if "holoviews" in sys.modules and os.environ.get("BOKEH_RESOURCES") == "inline":
        inline_holoviews()


def inline_holoviews() -> bool:
    """Make ``inline=True`` the default of ``hv.extension``; True if it loaded the JS again.

    Also has Panel embed the stylesheets of what HoloViews renders (see
    :func:`inline_stylesheets`). When the notebook extension has already run
    with the CDN resources, the page holds no BokehJS: this loads it inline in
    the current cell's output. Outside IPython (no notebook extension) it does
    nothing.
    """
    import builtins

    if not hasattr(builtins, "__IPYTHON__"):
        return False
    from holoviews.ipython import notebook_extension
    from panel.viewable import Viewable

    # Panel's hook list for rendered models (HoloViews and Panel register theirs there too).
    if inline_stylesheets not in Viewable._preprocessing_hooks:
        Viewable._preprocessing_hooks.append(inline_stylesheets)

    if notebook_extension.inline:
        return False  # inline already (the rc file, or the user's choice): nothing was loaded from a CDN
    notebook_extension.inline = True
    # HoloViews keeps "already loaded" only in this flag; it is set once hv.extension() has run.
    if not getattr(notebook_extension, "_loaded", False):
        return False
    from holoviews.plotting.renderer import Renderer

    Renderer.load_nb(inline=True)
    return True


def inline_stylesheets(viewable: Any, root: Any) -> None:
    """A Panel preprocessing hook: ``root``'s stylesheets from Panel's CDN are embedded instead.

    Panel does this itself for what it displays when ``PANEL_INLINE`` is set,
    but not for the models HoloViews renders through its own renderer (a
    plot's layout links ``loading.css``, ``listpanel.css`` and the theme's CSS
    on cdn.holoviz.org). Does nothing unless Panel is inline.
    """
    from bokeh.models.ui import UIElement
    from panel.config import config
    from panel.io.notebook import patch_inline_stylesheets

    if not config.inline:
        return
    for model in root.select({"type": UIElement}):
        patch_inline_stylesheets(model)
