"""HoloViews rc file: ``hv.extension(...)`` embeds BokehJS and Panel's JS (works offline).

HoloViews executes the file named by ``$HOLOVIEWSRC`` at the end of ``import
holoviews``; :mod:`scandeck.offline` points it here. A kernel of another Python
environment may inherit the variable too: without scandeck it does nothing.
"""

try:
    from scandeck.offline import inline_holoviews
except ImportError:  # a kernel with no scandeck: HoloViews as it comes
    pass
else:
    inline_holoviews()
