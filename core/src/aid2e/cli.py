"""The ``aid2e`` command line.

Usage::

    aid2e plugins list [--all] [--json]
    aid2e --version
    aid2e -v plugins list          # DEBUG logging (e.g. why a plugin failed) on stderr

Each subcommand is a small ``_add_<name>(subparsers)`` function that adds its parser and sets
``func`` to a ``(args) -> int`` handler; add new ones to ``_SUBCOMMANDS``. This module imports
neither Ax nor torch: listing plugins must stay fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from . import __version__
from .errors import Aid2eError

log = logging.getLogger(__name__)

#: ``provides`` key -> label in the table, in display order.
_PROVIDES_LABELS = {
    "backends": "backends",
    "job_kinds": "job kinds",
    "storages": "storages",
    "job_adapters": "job adapters",
}


# ---------------------------------------------------------------- plugins
def _format_provides(provides: dict[str, list[str]]) -> str:
    keys = [k for k in _PROVIDES_LABELS if provides.get(k)]
    keys += sorted(k for k in provides if k not in _PROVIDES_LABELS and provides[k])
    parts = [f"{_PROVIDES_LABELS.get(k, k)}: {', '.join(provides[k])}" for k in keys]
    return "; ".join(parts) or "-"


def _provides_cell(info: Any) -> str:
    if info.status == "error":
        return info.error or "error"
    if info.status == "disabled":
        from .plugins import DISABLE_ENV

        return f"(disabled by {DISABLE_ENV})"
    return _format_provides(info.provides)


def format_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cmd_plugins_list(args: argparse.Namespace) -> int:
    from .plugins import get_plugin_manager

    infos = get_plugin_manager().plugins(include_builtin=args.all)
    if args.json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
        return 0
    if not infos:
        print("no plugins installed (aid2e plugins list --all also shows the built-ins)")
        return 0
    rows = [(i.name, i.version, i.status, _provides_cell(i)) for i in infos]
    print(format_table(rows, ("Name", "Version", "Status", "Provides")))
    return 0


def _add_plugins(subparsers: Any, common: argparse.ArgumentParser) -> None:
    plugins = subparsers.add_parser("plugins", parents=[common], help="installed plugins",
                                    description="Inspect installed aid2e plugins.")
    sub = plugins.add_subparsers(dest="plugins_command", metavar="COMMAND", required=True)
    lst = sub.add_parser(
        "list", parents=[common], help="list plugins, their status and what they provide",
        description="List installed plugins (entry-point group 'aid2e'), their status "
                    "(active, error, disabled) and what each provides.",
    )
    lst.add_argument("--all", action="store_true", help="include the core's built-in plugin")
    lst.add_argument("--json", action="store_true",
                     help="print a JSON list of plugin records instead of a table")
    lst.set_defaults(func=_cmd_plugins_list)


# ---------------------------------------------------------------- parser and main
#: Functions adding one subcommand each: ``(subparsers, common_parent) -> None``.
_SUBCOMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [_add_plugins]


def build_parser() -> argparse.ArgumentParser:
    # Options valid before and after the subcommand; SUPPRESS keeps a subparser from
    # resetting a value given earlier on the command line.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debugging details to stderr")
    parser = argparse.ArgumentParser(
        prog="aid2e", parents=[common],
        description="Bayesian-optimization campaigns for detector design.",
    )
    parser.add_argument("--version", action="version", version=f"aid2e {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aid2e`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2), --help and --version (0)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if getattr(args, "verbose", False):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except Aid2eError as exc:
        log.debug("command failed", exc_info=True)
        print(f"aid2e: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aid2e: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. ``aid2e plugins list | head -1``
        try:  # keep the interpreter from complaining when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
