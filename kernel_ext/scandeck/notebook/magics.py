"""The IPython magics of ``%load_ext scandeck``: %catalog, %scans, %%bind, %bindings, %unbind, %provenance.

None of them expands ``{expression}`` or ``$name`` in its line (``@no_var_expand``):
their arguments are uids, names and queries, which come from run data and from
cells the Scans panel inserts, and must stay data.
"""

from __future__ import annotations

import atexit
import html
import re
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..exceptions import ScandeckError
from ..provenance.batch import batch_scan, live_front_end
from .cellexec import cell_id
from .magic_args import unquote_arg

if TYPE_CHECKING:
    from ..catalog import Catalog
    from .binding import Binding

_N_OPTION = re.compile(r"(?:^|\s)(?:-n|--limit)\s+(\d+)(?=\s|$)")
_COLUMNS_OPTION = re.compile(r"(?:^|\s)--columns(?:\s+|=)(\S+)(?=\s|$)")


@magics_class
class ScandeckMagics(Magics):
    """Magics bound to one IPython shell; they share the session's catalog."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._catalog: Catalog | None = None
        self._loop: Any = None
        # Not "bindings": that name is the %bindings magic method.
        self._bindings: dict[int, Binding] = {}
        atexit.register(self.unbind_all)

    # -- the session's catalog -------------------------------------------------------------

    @property
    def session_catalog(self) -> Catalog:
        """The catalog ``%catalog`` chose (default: the embedded store)."""
        if self._catalog is None:
            from ..opening import open_catalog

            self._catalog = open_catalog()
        return self._catalog

    @no_var_expand
    @line_magic
    def catalog(self, line: str) -> Catalog:
        """Select the session's catalog and show it.

        Usage: ``%catalog [NAME|PATH|URI]``, in quotes if you like
        (``%catalog "my store"``). Without an argument, show the
        current one (the embedded default store unless chosen otherwise).
        Its table of runs updates in place while a run it lists is running.
        """
        from ..opening import open_catalog

        target = unquote_arg(line.strip())
        if target:
            self._catalog = open_catalog(target)
        return self.session_catalog

    # -- listing ---------------------------------------------------------------------------

    @no_var_expand
    @line_magic
    def scans(self, line: str) -> None:
        """Show runs of the session's catalog as a table, running ones first.

        Usage: ``%scans [QUERY] [-n N] [--columns NAMES]``, e.g.
        ``%scans sample == "Ni" -n 5 --columns peak_cen,tags``. ``--columns`` adds
        computed columns, ``tags``, ``comments``, start fields, ``stop.FIELD``,
        ``data.KEY.min|max`` and values reruns published with ``scandeck.glue``
        (``peak-fit.cen``; comma-separated); a stale value is in italics, a failed
        one a warning sign whose tooltip holds the error.
        While a run it lists is running, the table updates in place; its
        footer says when it was last read.
        """
        from ..listing import list_runs
        from .live_listing import show_listing

        limit = 20
        match = _N_OPTION.search(line)
        if match:
            limit = int(match.group(1))
            line = line[: match.start()] + line[match.end() :]
        names = None
        match = _COLUMNS_OPTION.search(line)
        if match:
            names = unquote_arg(match.group(1))
            line = line[: match.start()] + line[match.end() :]
        cat = self.session_catalog.search(line.strip()) if line.strip() else self.session_catalog
        columns = None
        if names:
            from .run_columns import column_cells

            columns = column_cells(cat, names)  # an unknown column fails now, with the closest name
        show_listing(
            self.shell,
            lambda: (list_runs(cat, limit or None), len(cat), cat.name),
            cat.source,
            live=live_front_end(self.shell),
            columns=columns,
        )
        hint = cat.empty_hint if line.strip() else None
        if hint:  # a field no run has (a typo?) matched nothing: say so, and the closest field
            print(hint)

    # -- bound cells -----------------------------------------------------------------------

    def _loop_for_shell(self) -> Any:
        from ..pipeline.loop import KernelLoop

        if self._loop is None:
            self._loop = KernelLoop(self.shell)
        return self._loop

    @no_var_expand
    @magic_arguments()
    @argument("--uid", help="follow this run (uid or unique prefix) only")
    @argument("--scan", type=int, help="follow the newest run with this scan_id only")
    @argument("--stream", default="primary", help="the stream whose rows df holds (default primary)")
    @argument(
        "--on",
        choices=("event", "run"),
        default="event",
        help="re-run on each batch of events (default) or once per finished run",
    )
    @argument("--every", type=float, default=0.2, help="at most one re-run per this many seconds (default 0.2)")
    @argument(
        "--fill",
        default="",
        help="external array keys (images) to read into df, comma-separated, or 'all'; "
        "external scalars are always read",
    )
    @argument(
        "--window",
        type=int,
        help="keep only the newest N rows: df holds those N (new, event within them); "
        "memory stays bounded however long the run",
    )
    @cell_magic
    def bind(self, line: str, cell: str) -> None:
        """Re-run this cell as data arrives, its output replaced in place.

        Inside the cell: ``run`` (the Run), ``df`` (the stream's rows so far, a
        pandas DataFrame), ``new`` (rows since the cell last ran), ``event``
        (the newest row, a dict). With ``--window N`` the binding keeps only the
        newest N rows: ``df`` holds those (``new`` the ones since the cell last ran
        that are still among them, ``event`` the newest); ``run`` is the whole Run
        as always. Without ``--uid``/``--scan`` the cell follows
        the newest run and then each new run as it starts. Under papermill or
        nbclient it runs once, on the run the parameters name (``scan_uid``) or the
        newest (see :func:`scandeck.provenance.batch.batch_scan`).
        """
        from .binding import Binding, BindOptions, run_once

        args = parse_argstring(self.bind, line)
        args.uid, args.stream = unquote_arg(args.uid), unquote_arg(args.stream)
        if args.every < 0:
            raise ScandeckError("--every must be zero or more seconds")
        if args.window is not None and args.window < 1:
            raise ScandeckError(f"--window keeps the newest N rows: give N of 1 or more, not {args.window}")
        cat = self.session_catalog
        uid = None
        if args.uid:
            uid = cat[args.uid].uid
        elif args.scan is not None:
            uid = cat[args.scan].uid
        if not live_front_end(self.shell):
            if uid is None:
                key = batch_scan(self.shell)  # the run the parameters name (terminal: None)
                run = cat[key if key is not None else -1]
            else:
                run = cat[uid]
            run_once(self.shell, cat, run, cell, args.stream, fill_option(args.fill), args.window)
            return
        from .view import BindingView

        options = BindOptions(
            uid=uid,
            stream=args.stream,
            on=args.on,
            every=args.every,
            fill=fill_option(args.fill),
            window=args.window,
        )
        cell_id = self._cell_id()
        for old in [b for b in self._bindings.values() if cell_id and b.cell_id == cell_id]:
            # The cell was run again: its previous binding's output area is gone.
            del self._bindings[old.id]
            old.stop()
        view = BindingView()
        binding = Binding(self.shell, self._loop_for_shell(), cat, cell, options, view, cell_id)
        self._bindings[binding.id] = binding
        view.display()
        binding.start()

    def _cell_id(self) -> str | None:
        """The front end's id of the executing cell (JupyterLab sends it), if any."""
        return cell_id(self.shell)

    @line_magic
    def bindings(self, line: str) -> Any:
        """List the bindings: id, target run, events seen, executions, failures, last error."""
        from IPython.display import HTML

        rows = [b.summary() for b in self._bindings.values()]
        if not rows:
            return HTML("<p>no bindings: use <code>%%bind</code> in a cell</p>")
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows
        )
        return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    @no_var_expand
    @line_magic
    def unbind(self, line: str) -> None:
        """End bindings: ``%unbind ID [ID ...]`` or ``%unbind --all``."""
        words = line.split()
        if not words:
            raise ScandeckError("say which binding to end: %unbind ID, or %unbind --all")
        if "--all" in words:
            self.unbind_all()
            return
        for word in words:
            try:
                binding = self._bindings.pop(int(word.lstrip("#")))
            except (ValueError, KeyError):
                known = ", ".join(str(i) for i in self._bindings) or "none"
                raise ScandeckError(f"no binding {word!r}; bindings: {known}") from None
            binding.stop()

    def unbind_all(self) -> None:
        """End every binding (also at kernel shutdown)."""
        while self._bindings:
            _, binding = self._bindings.popitem()
            binding.stop()

    # -- provenance ------------------------------------------------------------------------

    @no_var_expand
    @magic_arguments()
    @argument(
        "action",
        nargs="?",
        choices=("show", "save"),
        default="show",
        help="show (default): what would be recorded; save: record the notebook as saved",
    )
    @argument("--name", help="the record's name (default: the notebook's file stem)")
    @argument("--tag", action="append", default=[], help="tag the record (repeat for more)")
    @argument("--path", help="the notebook file (default: this kernel's notebook, from Jupyter)")
    @line_magic
    def provenance(self, line: str) -> Any:
        """Show or save the provenance of this notebook: parameters, runs read, environment.

        Usage: ``%provenance`` shows what would be recorded; ``%provenance save
        [--name NAME] [--tag TAG ...] [--path NOTEBOOK.ipynb]`` records the notebook
        file as saved and prints the record id. In JupyterLab with scandeck's
        extension the notebook is saved first; elsewhere save it yourself.
        """
        from ..provenance import recording

        args = parse_argstring(self.provenance, line)
        recording.ExecutionClock.install(self.shell)
        if args.action == "show":
            return recording.preview(self.shell, path=args.path, name=args.name)
        record, note = recording.record_interactive(self.shell, path=args.path, name=args.name, tags=args.tag)
        if note:
            print(note)
        print(f"recorded {record.id} ({record.name}, {len(record.inputs)} input runs)")
        return None


def fill_option(text: str) -> bool | tuple[str, ...]:
    """``--fill img,cam`` -> ``("cam", "img")``; ``--fill all`` -> True."""
    if text.strip() == "all":
        return True
    return tuple(sorted(k.strip() for k in text.split(",") if k.strip()))


def load(shell: Any) -> ScandeckMagics:
    """Register the magics and HTML reprs with ``shell``."""
    from ..provenance.recording import ExecutionClock
    from .display import install_reprs
    from .live_listing import install_catalog_display

    magics = ScandeckMagics(shell)
    shell.register_magics(magics)
    install_reprs(shell)
    install_catalog_display(shell, lambda: live_front_end(shell))  # a shown catalog updates in place
    ExecutionClock.install(shell)  # %provenance save checks the notebook was saved after the last cell
    from ..provenance.frontend import FrontEnd

    FrontEnd.of(shell).open(shell)  # ... and asks JupyterLab to save it when it was not
    return magics


def unload(shell: Any) -> None:
    from .live_listing import uninstall_catalog_display

    uninstall_catalog_display(shell)
    magics = shell.magics_manager.registry.get("ScandeckMagics")
    if magics is not None:
        magics.unbind_all()
        if magics._loop is not None:
            magics._loop.close()
