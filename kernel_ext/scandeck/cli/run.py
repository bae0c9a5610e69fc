"""``scandeck run``: execute a notebook through papermill and record its provenance.

The notebook runs in a fresh kernel with papermill and the scandeck engine
(:mod:`scandeck.provenance.engine`), in the notebook's directory as Jupyter would
run it. The executed notebook is written next to the input (``<stem>.out.ipynb``)
or to ``--output``, carries the record in ``nb.metadata.scandeck``, and is saved
with the record in the provenance store (``<data dir>/provenance``). A failing
notebook is still written and recorded (status "failed"); the command then says
which cell failed and why, and exits 1.

This module is imported when the parser is built, so it imports nothing heavy at
module level.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
from pathlib import Path
from typing import Any

from ..opening import ENV_CATALOG, catalog_name
from .arguments import add_command, add_parameter_options
from .errors import CliError, report
from .targets import open_target

__all__ = ["EPILOG", "add_arguments", "add_parsers", "cmd_run", "parse_value"]

EPILOG = """\
examples:
  scandeck run analysis.ipynb -p scan_uid 3f2a9c       run on one scan
  scandeck run analysis.ipynb -p threshold 0.5 -p sample Ni --tag nightly
  scandeck run analysis.ipynb -r label 007 -o out/run1.ipynb
  papermill --engine scandeck analysis.ipynb out.ipynb -p scan_uid 3f2a9c   the same, from papermill

-p values are read as papermill reads them: True, False, None, integers and
floats become those; [lists], {dicts} and 'quoted strings' are Python literals;
anything else is a string (-r always passes a string). The notebook runs in its
own directory. --catalog is exported to the kernel as $SCANDECK_CATALOG and passed
as the 'catalog' parameter when the notebook's parameters cell defines one.
'scandeck provenance show ID' shows the record."""


def parse_value(text: str) -> Any:
    """A ``-p`` value: papermill's rules (True/False/None, int, float), then Python literals.

    Floats must be finite (a uid prefix such as ``1234e567`` stays a string);
    ``[...]``, ``{...}``, ``(...)`` and quoted strings are read with
    ``ast.literal_eval``; everything else is the string itself.
    """
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number) or text.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
            return number
        return text
    if text[:1] in "[{(\"'":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return text
    return text


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add run to the ``scandeck`` sub-parsers."""
    parser = add_command(sub, common, "run", "execute a notebook with papermill and record its provenance", EPILOG)
    add_arguments(parser)
    parser.set_defaults(handler=cmd_run)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``run`` arguments to ``parser`` (which already has ``--catalog``)."""
    parser.add_argument("notebook", metavar="NOTEBOOK", type=Path, help="the .ipynb file to execute")
    add_parameter_options(parser, "set", ": numbers, True, None, [..]")
    parser.add_argument("--name", help="the record's name (default: the notebook's file stem)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="PATH",
        help="where to write the executed notebook (default: <stem>.out.ipynb beside it)",
    )
    parser.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="tag the record (repeat for more tags)"
    )
    parser.add_argument(
        "-k",
        "--kernel",
        metavar="NAME",
        help="Jupyter kernel to run in (default: the notebook's own kernelspec; "
        "without one, python3 or a kernelspec of --language)",
    )
    parser.add_argument(
        "--language", metavar="LANG", help="the notebook's language, for one without metadata (default: python)"
    )
    parser.add_argument(
        "--cwd",
        type=Path,
        metavar="DIR",
        help="working directory of the kernel (default: the notebook's directory)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="fail a cell that runs longer than this (default: no limit)",
    )
    return parser


def _output_path(notebook: Path, output: Path | None) -> Path:
    if output is None:
        return notebook.with_name(f"{notebook.stem}.out.ipynb")
    output = output.expanduser()
    if output.is_dir() or str(output).endswith(("/", os.sep)):
        return (output / f"{notebook.stem}.out.ipynb").absolute()
    return output.absolute()


def _check_inputs(args: argparse.Namespace) -> tuple[Path, Path, Any]:
    notebook = args.notebook.expanduser().absolute()
    if not notebook.is_file():
        raise CliError(f"no notebook at {args.notebook}", "give the path of an .ipynb file")
    try:
        from ..provenance.notebooks import read_notebook

        nb = read_notebook(notebook)
    except Exception as err:  # nbformat raises several kinds for a file that is not a notebook
        raise CliError(
            f"{args.notebook} is not a readable notebook: {err}".splitlines()[0], "give the path of an .ipynb file"
        ) from None
    output = _output_path(notebook, args.output)
    if output == notebook:
        raise CliError(
            f"the output {args.output} is the input notebook",
            "give another --output; the input is never overwritten",
        )
    if not output.parent.is_dir():
        raise CliError(
            f"no directory {output.parent} for the output notebook", "create it first, or give another --output"
        )
    return notebook, output, nb


def cmd_run(args: argparse.Namespace) -> int:
    """``scandeck run NOTEBOOK [-p NAME VALUE ...] [--name N] [-o PATH] [--tag T] [--kernel K]``."""
    notebook, output, source_nb = _check_inputs(args)
    parameters: dict[str, Any] = {name: parse_value(value) for name, value in args.parameters}
    parameters.update({name: value for name, value in args.raw_parameters})
    if args.catalog:
        open_target(args).close()  # a mistyped store path fails here, not inside the notebook
        target = catalog_name(args.catalog).portable()  # the kernel runs in the notebook's directory
        os.environ[ENV_CATALOG] = target  # the kernel inherits this process's environment
        from ..provenance.notebooks import parameters_of

        if "catalog" in parameters_of(source_nb) and "catalog" not in parameters:
            parameters["catalog"] = target

    from jupyter_client.kernelspec import NoSuchKernel

    from ..provenance.engine import Recording, execute
    from ..provenance.notebooks import describe_failure, read_notebook

    recording = Recording(kind="batch", name=args.name or notebook.stem, tags=list(args.tag))
    extra: dict[str, Any] = {}
    if args.timeout:
        extra["execution_timeout"] = args.timeout
    try:
        record, _ = execute(
            notebook,
            output,
            parameters=parameters,
            recording=recording,
            kernel_name=args.kernel,
            language=args.language,
            cwd=args.cwd or notebook.parent,
            progress_bar=sys.stderr.isatty(),
            **extra,
        )
    except NoSuchKernel as err:
        raise CliError(
            f"no Jupyter kernel named {err.name!r}",
            "'jupyter kernelspec list' shows the installed kernels; pick one with --kernel",
        ) from None

    inputs = f"{len(record.inputs)} input run{'s' if len(record.inputs) != 1 else ''}"
    took = f", {record.duration:.1f} s" if record.duration is not None else ""
    print(f"record {record.id} ({record.status}, {inputs}{took})")
    print(f"output {output}")
    if recording.kernel_report_error:
        print(
            f"note: the kernel did not report the runs it read ({recording.kernel_report_error}); "
            "the record has no inputs",
            file=sys.stderr,
        )
    if record.status == "failed" and record.error is not None:
        try:
            executed = read_notebook(output)
        except Exception:  # noqa: BLE001 - the message only loses the execution count
            executed = None
        return report(
            "run",
            describe_failure(record.error, executed),
            f"the executed notebook, with the traceback, is {output}",
        )
    return 0
