"""The dRICH example's Python stages, shared by examples/drich_workflow.py (the Python API) and
examples/drich/campaign.yaml (a campaign file, which names them "drich_stages:geometry" and
"drich_stages:analyze"): the trial's compact file, and the pi/K separations with their errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from aid2e.geometry import CompactGeometry, XmlParameter

HERE = Path(__file__).resolve().parent
MOMENTA = (10.0, 20.0)
PENALTY = {"piK_sep_10": 0.0, "piK_sep_20": 0.0}

COMPACT = CompactGeometry(HERE / "drich.xml", [
    XmlParameter("aerogel_thickness", ".//constant[@name='DRICH_aerogel_thickness']", unit="cm"),
    XmlParameter("mirror_focus", ".//detector[@name='DRICH']/mirror", attribute="focus_tune_x", unit="cm"),
])


def geometry(aerogel_thickness: float, mirror_focus: float, job_dir: str) -> dict[str, str]:
    """The trial's copy of drich.xml in the job's directory; its path is the stage's output."""
    return COMPACT({"aerogel_thickness": aerogel_thickness, "mirror_focus": mirror_focus}, job_dir)


def separation(inputs: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """pi/K separation (standard deviations) per momentum with its standard error, from the
    simulations' outputs (the last stage: its result is the trial's metrics)."""
    found = {(job["fan_out"]["particle"], job["fan_out"]["momentum"]): job["result"] for job in inputs["simulate"]}
    metrics = {}
    for momentum in MOMENTA:
        pi, kaon = found[("pi+", momentum)], found[("kaon+", momentum)]
        width = math.sqrt((pi["sigma"] ** 2 + kaon["sigma"] ** 2) / 2)
        sep = (pi["theta"] - kaon["theta"]) / width
        # errors of the two means over the width; the widths' own error is small next to them
        sem = math.sqrt(pi["sigma"] ** 2 / pi["events"] + kaon["sigma"] ** 2 / kaon["events"]) / width
        metrics[f"piK_sep_{momentum:g}"] = (sep, sem)
    return metrics


def analyze(aerogel_thickness: float, mirror_focus: float, inputs: dict[str, Any]) -> dict[str, Any]:
    return separation(inputs)
