"""``aid2e report``: one self-contained HTML file of a campaign (:mod:`aid2e.report_data` drawn by
:mod:`aid2e.report_page`), written atomically; by default ``report.html`` in the campaign
directory, where its links to the jobs' output files work as they are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import atomic

REPORT_FILE = "report.html"


def write(path: str | Path, output: str | Path | None = None, *, data: dict[str, Any] | None = None) -> Path:
    """Write the report of the campaign saved under ``path`` (its directory, or a file written by
    ``save_experiment``) to ``output`` (default: ``report.html`` in that directory, or next to
    that file) and return where; ``data`` (from :func:`aid2e.report_data.build`) if it is built
    already."""
    from .report_data import build
    from .report_page import page

    if data is None:
        data = build(path)
    home = Path(data["directory"])  # the campaign directory, or the directory of a save_experiment file
    target = Path(output).expanduser().resolve() if output is not None else home / REPORT_FILE
    base = os.path.relpath(home, target.parent)
    files_base = "" if base == "." else base.replace(os.sep, "/") + "/"
    atomic.write_bytes(target, page(data, files_base=files_base).encode("utf-8"))
    return target


__all__ = ["REPORT_FILE", "write"]
