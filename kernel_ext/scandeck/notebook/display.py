"""Rich HTML displays of catalogs, runs and streams for Jupyter.

:func:`runs_table_html` renders index rows (the columns of ``scandeck ls``, from
:mod:`scandeck.listing`); :func:`catalog_html`, :func:`run_html` and
:func:`stream_html` render the objects of :mod:`scandeck.catalog`, and
:func:`install_reprs` makes IPython use them as those objects' ``text/html``
(their ``__repr__`` stays the ``text/plain``). Every value from a document is
escaped, its control characters too: metadata is user input.

The HTML carries its own ``<style>``, scoped under the ``scandeck-html`` class
and coloured with JupyterLab's theme variables (``--jp-*``, with fallbacks that
read on light and dark backgrounds alike), so it follows the theme.

Importing this module imports neither numpy, pandas nor ipywidgets.
"""

from __future__ import annotations

import html
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..listing import (
    DATA_KEY_HEADER,
    ExtraColumn,
    RunCells,
    cell,
    compact,
    data_key_rows,
    list_runs,
    local_time,
    local_time_offset,
    num_points,
    run_table,
    running_first,
)
from ..safe_text import printable
from .progress import format_duration

if TYPE_CHECKING:
    from ..catalog import Catalog, Run, Stream
    from ..sources.protocol import RunSummary

__all__ = [
    "ROOT_CLASS",
    "STATUS_CLASSES",
    "catalog_html",
    "catalog_listing",
    "install_reprs",
    "run_html",
    "runs_table_html",
    "snapshot_note",
    "status_badge",
    "stream_html",
    "uninstall_reprs",
]

log = logging.getLogger(__name__)

#: The class of every display's outer ``<div>``; all style rules are scoped under it.
ROOT_CLASS = "scandeck-html"
#: Badge class of each run status; anything else gets ``sd-unknown``.
STATUS_CLASSES = {
    "running": "sd-running",
    "success": "sd-success",
    "abort": "sd-abort",
    "fail": "sd-fail",
    "incomplete": "sd-incomplete",
}
#: Runs :func:`catalog_html` lists by default.
CATALOG_ROWS = 10

_R = f".{ROOT_CLASS}"
# Theme variables of JupyterLab; the fallbacks (translucent greys, mid-tone
# colours) stay legible on light and dark backgrounds (classic notebook, VS Code).
_STYLE = f"""
{_R} {{ font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, inherit); line-height: 1.4; margin: 2px 0; }}
{_R} .sd-title {{ font-weight: 600; margin: 0 0 4px 0; }}
{_R} .sd-muted {{ color: var(--jp-ui-font-color2, rgba(127, 127, 127, 0.9)); }}
{_R} table.sd-table {{ border-collapse: collapse; border-spacing: 0; margin: 0; width: auto;
  font-size: inherit; color: inherit; table-layout: auto; }}
{_R} table.sd-table th, {_R} table.sd-table td {{ padding: 2px 10px 2px 0; text-align: left;
  vertical-align: top; white-space: nowrap; border: none; max-width: 28em; overflow: hidden;
  text-overflow: ellipsis; background: none; color: inherit; }}
{_R} table.sd-table thead th {{ font-weight: 600; color: var(--jp-ui-font-color2, inherit);
  border-bottom: 1px solid var(--jp-border-color1, rgba(127, 127, 127, 0.45)); }}
{_R} table.sd-table tbody tr:nth-child(odd) {{ background: none; }}
{_R} table.sd-table tbody tr:hover {{
  background: var(--jp-rendermime-table-row-hover-background, rgba(127, 127, 127, 0.12)); }}
{_R} table.sd-table td.sd-num, {_R} table.sd-table th.sd-num {{ text-align: right;
  font-variant-numeric: tabular-nums; }}
{_R} table.sd-fields th {{ font-weight: normal; color: var(--jp-ui-font-color2, inherit); padding-right: 14px; }}
{_R} code {{ font-family: var(--jp-code-font-family, ui-monospace, monospace); font-size: 0.95em;
  background: none; color: inherit; padding: 0; }}
{_R} .sd-badge {{ display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 0.92em;
  line-height: 1.5; border: 1px solid currentColor; white-space: nowrap; }}
{_R} .sd-running {{ color: var(--jp-info-color1, #2f7fd8); background: rgba(47, 127, 216, 0.14); }}
{_R} .sd-success {{ color: var(--jp-success-color1, #2e9d4c); background: rgba(46, 157, 76, 0.14); }}
{_R} .sd-abort {{ color: var(--jp-warn-color1, #e08a00); background: rgba(224, 138, 0, 0.14); }}
{_R} .sd-fail, {_R} .sd-incomplete {{ color: var(--jp-error-color1, #d9463b);
  background: rgba(217, 70, 59, 0.14); }}
{_R} .sd-unknown {{ color: var(--jp-ui-font-color2, #888); background: rgba(127, 127, 127, 0.14); }}
{_R} .sd-dot {{ display: inline-block; width: 0.5em; height: 0.5em; border-radius: 50%;
  background: currentColor; margin: 0 0.35em 0.08em 0; vertical-align: middle;
  animation: scandeck-pulse 1.6s ease-in-out infinite; }}
@keyframes scandeck-pulse {{ 0%, 100% {{ opacity: 1; }} 50% {{ opacity: 0.25; }} }}
@media (prefers-reduced-motion: reduce) {{ {_R} .sd-dot {{ animation: none; }} }}
{_R} tr.sd-row-running td {{ font-weight: 500; }}
{_R} .sd-footer, {_R} .sd-empty {{ margin-top: 3px; color: var(--jp-ui-font-color2, inherit); font-size: 0.92em; }}
{_R} details.sd-stream {{ margin: 4px 0 0 0; }}
{_R} details.sd-stream > summary {{ cursor: pointer; }}
{_R} details.sd-stream > table {{ margin: 2px 0 4px 1.2em; }}
{_R} .sd-section {{ font-weight: 600; margin: 8px 0 0 0; }}
{_R} .sd-stale {{ font-style: italic; color: var(--jp-ui-font-color2, inherit); }}
{_R} .sd-failed {{ color: var(--jp-warn-color1, #e08a00); cursor: help; }}
{_R} .sd-pending {{ color: var(--jp-ui-font-color3, rgba(127, 127, 127, 0.7)); }}
"""


def _e(value: Any) -> str:
    """``value`` as escaped HTML text (quotes too, so it is safe in attributes), its control
    and bidi-override characters written as escapes (:func:`~scandeck.safe_text.printable`)."""
    return html.escape(printable(str(value)), quote=True)


def _wrap(body: str) -> str:
    return f'<div class="{ROOT_CLASS}"><style>{_STYLE}</style>{body}</div>'


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Iterable[int] = (),
    cls: str = "",
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table of already-escaped cell HTML (header text is escaped here)."""
    numeric = set(numeric)

    def td(i: int, tag: str, content: str) -> str:
        num = ' class="sd-num"' if i in numeric else ""
        return f"<{tag}{num}>{content}</{tag}>"

    head = "".join(td(i, "th", _e(h)) for i, h in enumerate(header))
    body = []
    for n, row in enumerate(rows):
        rc = f' class="{row_classes[n]}"' if row_classes and row_classes[n] else ""
        body.append(f"<tr{rc}>" + "".join(td(i, "td", c) for i, c in enumerate(row)) + "</tr>")
    classes = " ".join(c for c in ("sd-table", cls) if c)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def status_badge(status: str) -> str:
    """A coloured badge for a run status; a running run's has a pulsing dot."""
    cls = STATUS_CLASSES.get(status, "sd-unknown")
    dot = '<span class="sd-dot"></span>' if status == "running" else ""
    return f'<span class="sd-badge {cls}">{dot}{_e(status)}</span>'


def _meta_cell(value: Any) -> str:
    """Short cell text; the whole value in a tooltip when the cell shows less."""
    text = cell(value)
    full = compact(value) if value is not None else ""
    if full and full != text:
        return f'<span title="{_e(full)}">{_e(text)}</span>'
    return _e(text)


def _uid_cell(uid: str) -> str:
    return f'<code title="{_e(uid)}">{_e(uid[:8])}</code>'


def _events_text(s: RunSummary) -> str:
    planned = num_points(s.start)
    if s.status == "running" and planned is not None:
        return f"{s.num_events} / {planned}"
    return str(s.num_events)


# -- run tables --------------------------------------------------------------------------------

#: The cells of ``%scans`` and catalog reprs: HTML, every run value escaped.
_HTML_CELLS = RunCells(
    scan_id=lambda scan_id: "" if scan_id is None else _e(scan_id),
    uid=lambda uid: _uid_cell(uid),
    meta=lambda value: _meta_cell(value),
    status=lambda status: status_badge(status),
    events=lambda s: _e(_events_text(s)),
    time=lambda t: _time_cell(t),
)


def _time_cell(t: float | None) -> str:
    """Local date and time; the UTC offset on hover (tables are for people, in their zone)."""
    return f'<span title="{_e(local_time_offset(t))}">{_e(local_time(t))}</span>'


def runs_table_html(
    summaries: Sequence[RunSummary],
    *,
    total: int | None = None,
    title: str = "",
    note: str = "",
    columns: Sequence[ExtraColumn] = (),
) -> str:
    """An HTML table of runs, as ``scandeck ls`` lists them: running runs first, then newest first.

    Parameters
    ----------
    summaries
        Index rows (:meth:`scandeck.catalog.Catalog.summaries`); reordered here.
    total
        How many runs there are in all; a footer "N of M runs" says when the
        table shows fewer.
    title
        A heading above the table (escaped).
    note
        A footer line (escaped): when the table was taken, or that it updates live.
    columns
        More columns (``%scans --columns``), their cells already HTML
        (:func:`scandeck.notebook.run_columns.column_cells`).
    """
    summaries = running_first(summaries)
    parts = [f'<div class="sd-title">{_e(title)}</div>'] if title else []
    footer = [f"{len(summaries)} of {total} runs"] if total is not None and total > len(summaries) else []
    footer += [note] if note else []
    if not summaries:
        parts.append('<div class="sd-empty">no runs</div>')
    else:
        header, rows, numeric = run_table(summaries, _HTML_CELLS, columns)
        row_classes = ["sd-row-running" if s.status == "running" else "" for s in summaries]
        parts.append(_table(header, rows, numeric=numeric, cls="sd-runs", row_classes=row_classes))
    if footer:
        parts.append(f'<div class="sd-footer">{_e(" · ".join(footer))}</div>')
    return _wrap("".join(parts))


def catalog_listing(cat: Catalog, n: int | None = CATALOG_ROWS) -> tuple[list[RunSummary], int, str]:
    """What :func:`catalog_html` shows: ``(runs, how many in all, title)``.

    ``n=None`` (or 0) lists every run. Reads index rows only, never events.
    """
    from ..query import Query

    limit = n or None
    summaries = list_runs(cat, limit)
    total = len(cat) if limit is not None else len(summaries)
    title = f"Catalog {cat.name}"
    if cat.query != Query.all():
        title += f" where {cat.query}"
    title += f" · {total} run{'' if total == 1 else 's'}"
    return summaries, total, title


def snapshot_note(now: float | None = None) -> str:
    """The footer of a listing nobody updates: when it was taken."""
    return f"as of {local_time(time.time() if now is None else now)}"


def catalog_html(cat: Catalog, n: int | None = CATALOG_ROWS, *, note: str | None = None) -> str:
    """A catalog's name, its ``n`` first runs (running, then newest) and how many it has.

    ``n=None`` (or 0) lists every run. Reads index rows only, never events. The
    footer says when it was taken (``note`` replaces that).
    """
    summaries, total, title = catalog_listing(cat, n)
    return runs_table_html(summaries, total=total, title=title, note=snapshot_note() if note is None else note)


# -- one run -----------------------------------------------------------------------------------


def _data_keys_table(data_keys: Mapping[str, Mapping[str, Any]]) -> str:
    rows = data_key_rows(data_keys)
    header = list(DATA_KEY_HEADER)
    if all(r[-1] == "no" for r in rows):  # no external data: the column would only say "no"
        header, rows = header[:-1], [r[:-1] for r in rows]
    cells = [[f"<code>{_e(r[0])}</code>", *(_e(c) for c in r[1:])] for r in rows]
    return _table(header, cells, cls="sd-keys")


def _stream_block(stream: Stream, *, open_: bool) -> str:
    n = len(stream)
    keys = stream.data_keys
    summary = (
        f"<summary><b>{_e(stream.name)}</b> "
        f'<span class="sd-muted">· {n} event{"" if n == 1 else "s"} · '
        f"{len(keys)} data key{'' if len(keys) == 1 else 's'}</span></summary>"
    )
    table = _data_keys_table(keys) if keys else '<div class="sd-empty">no data keys</div>'
    return f'<details class="sd-stream"{" open" if open_ else ""}>{summary}{table}</details>'


def _fields_table(fields: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in fields)
    return f'<table class="sd-table sd-fields"><tbody>{rows}</tbody></table>'


def _run_name(scan_id: int | None, uid: str) -> str:
    return f"scan {scan_id}" if scan_id is not None else f"run {uid[:8]}"


def run_html(run: Run) -> str:
    """One run: identity, plan, status, times, key metadata and its streams' data keys.

    Reads the run's index row, start and stop documents and descriptors; never events.
    """
    s = run.refresh()
    start = run.start
    stop = run.stop
    plan = start.get("plan_name")
    head = f"{_run_name(s.scan_id, s.uid)}" + (f" · {cell(plan)}" if plan is not None else "")
    fields: list[tuple[str, str]] = [
        ("uid", f"<code>{_e(s.uid)}</code>"),
        ("scan_id", "-" if s.scan_id is None else _e(s.scan_id)),
        ("plan", _meta_cell(plan) if plan is not None else "-"),
        ("status", status_badge(s.status)),
        ("start time", _time_cell(start.get("time", s.time))),
    ]
    t0 = start.get("time", s.time)
    if stop is not None and isinstance(stop.get("time"), (int, float)) and isinstance(t0, (int, float)):
        took = format_duration(stop["time"] - t0)
        fields.append(
            ("duration", f'{_e(took)} <span class="sd-muted">(stopped {_e(local_time(stop["time"]))})</span>')
        )
    elif s.status == "running" and isinstance(t0, (int, float)):
        fields.append(("duration", f"{_e(format_duration(time.time() - t0))} so far"))
    else:
        fields.append(("duration", "-"))
    fields.append(("events", _e(_events_text(s))))
    for key in ("sample", "operator", "purpose"):
        if start.get(key) is not None:
            fields.append((key, _meta_cell(start[key])))
    if stop is not None and stop.get("reason"):
        fields.append(("reason", _e(stop["reason"])))

    names = list(run)
    if names:
        streams = "".join(_stream_block(run[name], open_=i == 0) for i, name in enumerate(names))
    else:
        streams = '<div class="sd-empty">no streams yet</div>'
    body = (
        f'<div class="sd-title">{_e(head)}</div>{_fields_table(fields)}'
        f'<div class="sd-section">streams</div>{streams}'
    )
    return _wrap(body)


def stream_html(stream: Stream) -> str:
    """One stream: its name, its run, its event count and its data keys."""
    run = stream.run
    n = len(stream)
    head = f"stream {stream.name} of {_run_name(run.scan_id, run.uid)} · {n} event{'' if n == 1 else 's'}"
    keys = stream.data_keys
    table = _data_keys_table(keys) if keys else '<div class="sd-empty">no data keys</div>'
    title = f'<div class="sd-title" title="run {_e(run.uid)}">{_e(head)}</div>'
    return _wrap(title + table)


# -- IPython integration -----------------------------------------------------------------------

_MODULE = "scandeck.catalog"


def _html_or_none(render: Callable[[Any], str], what: str) -> Callable[[Any], str | None]:
    """``render`` for IPython: a failure logs one line and leaves the plain repr to show."""

    def formatter(obj: Any) -> str | None:
        try:
            return render(obj)
        except Exception as err:  # a display must never take the cell down
            log.warning("scandeck: no HTML view of this %s (%s: %s)", what, type(err).__name__, err)
            log.debug("HTML view failed", exc_info=True)
            return None

    formatter.__name__ = f"{what.lower()}_html_formatter"
    formatter.__qualname__ = formatter.__name__
    return formatter


_FORMATTERS: dict[str, Callable[[Any], str | None]] = {
    "Catalog": _html_or_none(catalog_html, "Catalog"),
    "Run": _html_or_none(run_html, "Run"),
    "Stream": _html_or_none(stream_html, "Stream"),
}


def _html_formatter(shell: Any) -> Any:
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return None
        shell = get_ipython()
    if shell is None:
        return None
    return shell.display_formatter.formatters["text/html"]


def install_reprs(shell: Any = None) -> bool:
    """Make IPython show Catalog, Run and Stream as HTML (in ``shell``, else the running one).

    Registers by module and class name, so nothing is imported until such an
    object is shown. Calling it again is harmless. Returns False outside IPython.
    """
    formatter = _html_formatter(shell)
    if formatter is None:
        return False
    module = sys.modules.get(_MODULE)
    for name, fn in _FORMATTERS.items():
        cls = getattr(module, name, None) if module is not None else None
        if cls is not None:
            # Already imported: register the class itself, which also replaces a by-name
            # registration IPython has already resolved (it would shadow a new one).
            formatter.for_type(cls, fn)
        else:
            formatter.for_type_by_name(_MODULE, name, fn)
    return True


def uninstall_reprs(shell: Any = None) -> bool:
    """Undo :func:`install_reprs` (for ``unload_ipython_extension``); False outside IPython."""
    formatter = _html_formatter(shell)
    if formatter is None:
        return False
    for name, fn in _FORMATTERS.items():
        key = f"{_MODULE}.{name}"
        while True:  # registered by name, by class, or both
            try:
                registered = formatter.lookup_by_type(key)
            except KeyError:
                break
            if registered is not fn:
                break  # someone else's formatter: leave it
            formatter.pop(key, None)
    return True
