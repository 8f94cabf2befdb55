"""Shared pieces of the benchmark suite (``python bench/run.py``): machine facts, Ax clients,
timed objectives, a generation timer and the child-process protocol.

Every case runs in its own Python process (``python bench/<case>.py ... --out FILE``) so that
peak memory, imports and the runtime timing shims of one case never leak into another. A case
writes one JSON object to ``--out``; :func:`run_case` starts it and reads that back.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


# ------------------------------------------------------------------ machine and process facts
def machine_info() -> dict[str, Any]:
    """CPU count and model, memory, load, Python/Ax/torch/aid2e versions, date (no Ax import)."""
    from importlib.metadata import PackageNotFoundError, version

    def _version(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    model = None
    with _quiet_open("/proc/cpuinfo") as text:
        for line in text.splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with _quiet_open("/proc/meminfo") as text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": mem_gb,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "ax_platform": _version("ax-platform"),
        "torch": _version("torch"),
        "botorch": _version("botorch"),
        "joblib": _version("joblib"),
        "aid2e": _version("aid2e"),
        "git_commit": _git(["rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_git(["status", "--porcelain", "--", "core", "plugins"])),
    }


class _quiet_open:
    """``with _quiet_open(path) as text``: the file's text, or "" if it cannot be read."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> str:
        try:
            return Path(self.path).read_text()
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        return None


def _git(args: list[str]) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory (MiB) of this process and of its reaped children (ru_maxrss)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1)}


def quiet() -> None:
    """Keep Ax's per-trial INFO logs and warnings out of the benchmark's output."""
    warnings.simplefilter("ignore")
    logging.disable(logging.INFO)


# ------------------------------------------------------------------ Ax clients
def make_client(name: str, strategy: str) -> Any:
    """An ``ax.Client`` with one float parameter ``x`` minimising ``objective``.

    ``strategy``: ``"sobol"`` (quasi-random only, never capped in flight) or ``"botorch"``
    (Ax's default for ``ax.Client``: center point, Sobol, then BoTorch).
    """
    from ax import Client, RangeParameterConfig

    from aid2e.testing.experiments import sobol_generation_strategy

    client = Client(random_seed=0)
    client.configure_experiment(name=name, parameters=[
        RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0))])
    client.configure_optimization(objective="-objective")
    if strategy == "sobol":
        client.set_generation_strategy(sobol_generation_strategy())
    elif strategy == "botorch":
        client.configure_generation_strategy()  # Ax's default ("fast": Center+Sobol+MBM)
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    return client


class GenTimer:
    """Runtime shims that add up the time spent inside Ax generation (this process only).

    * ``gen``: ``GenerationStrategy.gen``, the call every loop uses (aid2e's bridge through
      ``Client.get_next_trials``, Ax's Orchestrator directly);
    * ``next_trials``: ``aid2e.ax_bridge.AxBridge.next_trials`` (gen plus creating the trials);
    * ``complete``: ``AxBridge.complete`` (Ax's ``complete_trial``: bookkeeping, not generation);
      ``complete_many``: the same for a wave of completions in one data update.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def install(self, *, bridge: bool) -> GenTimer:
        from ax.generation_strategy.generation_strategy import GenerationStrategy

        self._wrap(GenerationStrategy, "gen", "gen")
        if bridge:
            from aid2e.ax_bridge import AxBridge

            self._wrap(AxBridge, "next_trials", "next_trials")
            self._wrap(AxBridge, "complete", "complete")
            self.wrap_optional("aid2e.ax_bridge", "AxBridge.complete_many", "complete_many")
        return self

    def wrap_optional(self, module: str, path: str, key: str) -> GenTimer:
        """Also time ``module.path`` (``"Class.method"`` or ``"function"``) if it exists: for
        breakdowns that name aid2e internals, which may be renamed; missing ones are skipped."""
        import importlib

        owner: Any = importlib.import_module(module)
        *parents, attribute = path.split(".")
        for name in parents:
            owner = getattr(owner, name, None)
        if owner is not None and callable(getattr(owner, attribute, None)):
            self._wrap(owner, attribute, key)
        return self

    def _wrap(self, owner: Any, attribute: str, key: str) -> None:
        original = getattr(owner, attribute)
        self.seconds[key], self.calls[key] = 0.0, 0

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        setattr(owner, attribute, timed)

    def as_dict(self) -> dict[str, Any]:
        return {f"{k}_s": round(v, 4) for k, v in self.seconds.items()} | {
            f"{k}_calls": v for k, v in self.calls.items()}


# ------------------------------------------------------------------ timed objectives
def timed_sleeper(log_path: str, seconds: float) -> Callable[[float], dict[str, float]]:
    """An objective ``f(x)`` that sleeps ``seconds`` and appends ``"start end"`` (epoch seconds)
    to ``log_path``; works in threads and in loky/process workers (one short O_APPEND write)."""

    def sleeper(x: float) -> dict[str, float]:
        started = time.time()
        time.sleep(seconds)
        ended = time.time()
        with open(log_path, "a") as handle:
            handle.write(f"{started!r} {ended!r}\n")
        return {"objective": (x - 0.3) ** 2}

    return sleeper


def read_intervals(log_path: str | Path) -> list[tuple[float, float]]:
    try:
        lines = Path(log_path).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [(float(a), float(b)) for a, b in (line.split() for line in lines if line.strip())]


def slots_busy(intervals: Sequence[tuple[float, float]], wall: float) -> float:
    """Mean trials in flight: the integral of running trials over time, divided by ``wall``."""
    return sum(end - start for start, end in intervals) / wall if wall > 0 else math.nan


def ideal_wall(trials: int, slots: int, seconds: float) -> float:
    """Waves of ``slots`` trials of ``seconds`` each, with no cost at all between them."""
    return math.ceil(trials / slots) * seconds


# ------------------------------------------------------------------ the child-process protocol
def write_result(path: str | None, result: dict[str, Any]) -> None:
    result = {**result, "peak_rss_mb": peak_rss_mb()}
    text = json.dumps(result, indent=1)
    if path:
        Path(path).write_text(text)
    else:
        print(text)


def run_case(script: str, args: Sequence[str], timeout: float = 900) -> dict[str, Any]:
    """Run ``bench/<script>`` in a fresh Python with ``args`` plus ``--out``; return its JSON,
    or ``{"error": ...}`` with the tail of its stderr."""
    with tempfile.TemporaryDirectory(prefix="aid2e-bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(BENCH_DIR / script), *args, "--out", str(out)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s: {' '.join(command[1:])}"}
        if done.returncode != 0 or not out.exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            return {"error": f"exit {done.returncode}: {tail}"}
        return json.loads(out.read_text())
