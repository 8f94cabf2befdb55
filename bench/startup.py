"""Item 3: start-up cost of ``import aid2e`` and ``aid2e plugins list``, each in fresh processes.

    python bench/startup.py --repeat 5

For each command: the first run's time (the nearest to cold this can get without dropping the
OS page cache, which needs root), the median of ``--repeat`` runs, and the same for a bare
``python -c pass`` as the floor. Whether torch or ax got imported is checked with
``python -X importtime`` (every module a process imports is listed on its stderr).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import benchlib

HEAVY = ("torch", "ax", "botorch", "gpytorch", "pandas", "numpy", "scipy", "joblib")


def _aid2e_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m aid2e``."""
    script = Path(sys.executable).with_name("aid2e")
    if script.exists():
        return [str(script)]
    found = shutil.which("aid2e")
    return [found] if found else [sys.executable, "-m", "aid2e"]


def _time(command: list[str], repeat: int) -> dict[str, Any]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            return {"error": f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()[-300:]}"}
    return {"first_s": times[0], "median_s": statistics.median(times), "best_s": min(times)}


def _imported(command: list[str]) -> dict[str, Any]:
    """Top-level packages among ``HEAVY`` that ``command`` (a python invocation) imports."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True)
    tops = set()
    count = 0
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name and name != "package":
                count += 1
                tops.add(name.split(".")[0])
    return {"heavy_imported": sorted(t for t in tops if t in HEAVY), "modules": count}


def run(args: argparse.Namespace) -> dict[str, Any]:
    python = [sys.executable]
    cli = _aid2e_command()
    return {
        "repeat": args.repeat,
        "python_floor": _time([*python, "-c", "pass"], args.repeat),
        "import_aid2e": {**_time([*python, "-c", "import aid2e"], args.repeat),
                         **_imported(["-c", "import aid2e"])},
        "plugins_list": {**_time([*cli, "plugins", "list"], args.repeat),
                         **_imported(["-m", "aid2e", "plugins", "list"]),
                         "command": " ".join(Path(cli[0]).name if i == 0 else c for i, c in enumerate(cli))
                         + " plugins list"},
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", help="write the JSON result here (default: print it)")
    return p


if __name__ == "__main__":
    arguments = parser().parse_args()
    benchlib.write_result(arguments.out, run(arguments))
