"""The output area of a bound cell: a status line, a progress bar, the cell's outputs.

All three are ipywidgets, changed by setting their state: comm messages that
the front end routes by widget, whatever cell is running at the time.
"""

from __future__ import annotations

import html
from typing import Any

from ..exceptions import require


def _widgets() -> Any:
    return require("ipywidgets", "notebook")


class BindingView:
    """Widgets of one binding; :meth:`display` puts them in the current cell's output."""

    def __init__(self) -> None:
        w = _widgets()
        self._status = w.HTML()
        self._out = w.Output()
        self._progress_box = w.Box()
        self._progress: Any = None
        self._progress_uid: str | None = None
        self.box = w.VBox([self._status, self._progress_box, self._out])

    def display(self) -> None:
        from IPython.display import display

        display(self.box)

    def status(self, text: str) -> None:
        self._status.value = (
            f'<span style="font-size:90%;color:var(--jp-ui-font-color2,#666)">{html.escape(text)}</span>'
        )

    def show(self, outputs: list[dict[str, Any]]) -> None:
        """Replace the shown outputs with ``outputs`` in one update."""
        self._out.outputs = tuple(outputs)

    @property
    def outputs(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._out.outputs)

    def progress(self, state: Any) -> None:
        """Show the followed run's progress (a new bar for each new run)."""
        from .progress import RunProgress

        if state.uid is None or state.start is None:
            return
        if state.uid != self._progress_uid:
            self._progress_uid = state.uid
            self._progress = RunProgress(state.start)
            self._progress_box.children = (self._progress.widget,)
        self._progress.update(state.num_events, state.status)
