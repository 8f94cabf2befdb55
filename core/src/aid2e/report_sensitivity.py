"""Ax's own sensitivity analysis of a saved campaign, for its report: each objective's Sobol
indices of the parameters (``SensitivityAnalysisPlot``) from a GP Ax fits to the saved data.

This is the one part of a report that imports Ax and torch, so it is asked for separately
(``aid2e report --sensitivity``; by default only for campaigns small enough to fit in seconds).
It reads the saved experiment and never takes the campaign's lock.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: ``--sensitivity auto`` fits the model for at most this many completed trials (a GP's fit grows
#: with the cube of the data; the report of a large campaign stays quick without it).
AUTO_LIMIT = 300
#: ... and at least this many: fewer say nothing about the parameters.
AUTO_MINIMUM = 5


def wanted(mode: str, completed: int) -> bool:
    """Whether ``mode`` (``yes``, ``no`` or ``auto``) computes the analysis for ``completed`` trials."""
    return mode == "yes" or (mode == "auto" and AUTO_MINIMUM <= completed <= AUTO_LIMIT)


def sensitivity(path: str | Path, objectives: list[str]) -> dict[str, Any]:
    """``{"figures": [{"objective", "figure"}], "seconds"}`` (plotly figures as JSON), or
    ``{"skipped": why}`` when Ax cannot compute it (too little data, no model)."""
    import warnings

    from .ax_bridge import AxBridge
    from .errors import ConfigError
    from .state_records import read_saved

    started = time.perf_counter()
    try:
        saved = read_saved(Path(path).expanduser())
    except ConfigError as exc:  # e.g. a run's first seconds: trial records, no Ax snapshot yet
        return {"skipped": f"no saved Ax experiment to analyse: {exc}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from ax.adapter.registry import Generators
            from ax.analysis.plotly.sensitivity import SensitivityAnalysisPlot

            experiment = AxBridge.from_snapshot(saved.ax).experiment
            data = experiment.lookup_data()
            if data.df.empty:
                return {"skipped": "no data in the saved experiment yet"}
            adapter = Generators.BOTORCH_MODULAR(experiment=experiment, data=data)
            figures = []
            for name in objectives:
                card = SensitivityAnalysisPlot(metric_name=name).compute(experiment=experiment, adapter=adapter)
                figures.append({"objective": name, "figure": card.get_figure().to_plotly_json()})
        except Exception as exc:  # Ax could not fit or analyse: the report says so and goes on
            log.debug("sensitivity failed", exc_info=True)
            text = " ".join(str(exc).split())[:300] or type(exc).__name__
            return {"skipped": f"Ax could not compute it: {type(exc).__name__}: {text}"}
    return {"figures": figures, "seconds": time.perf_counter() - started}


__all__ = ["AUTO_LIMIT", "AUTO_MINIMUM", "sensitivity", "wanted"]
