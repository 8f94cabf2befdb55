"""Optimise the sampling calorimeter with a container objective: each trial runs in its own container.

    bash scripts/services/containers.sh          # (root) podman, dockerd and the busybox test image
    python examples/container_detector_optimization.py [--trials N] [--jobs N] [--engine podman|docker]

The container is the small busybox image the service script builds without a registry
(``localhost/aid2e-test:latest``), so the model of calorimeter_model.py is written again in awk:
the container reads ``params.json`` from its working directory (the trial directory, mounted at
/aid2e/trial) and writes ``{"resolution": ...}`` to ``$AID2E_RESULT_FILE``. The model's constants
come from calorimeter_model.py, and at the end every trial's value is compared with the Python
model. With ``--engine docker`` set ``DOCKER_HOST`` (the service script's dockerd listens on
unix:///run/aid2e-docker.sock).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calorimeter_model as model  # noqa: E402

#: calorimeter_model.energy_resolution, term by term, in awk. Debian's busybox awk has no math
#: library, so sqrt, exp and log are written out too (Newton, Taylor after range reduction, atanh
#: series): they agree with the C library to about 1e-15.
RESOLUTION_AWK = r"""
function sqrt_(x,   g, i) { if (x <= 0) return 0; g = x > 1 ? x : 1
  for (i = 0; i < 80; i++) g = (g + x / g) / 2; return g }
function exp_(x,   k, s, t, i) { k = 0; while (x > 0.25 || x < -0.25) { x /= 2; k++ }
  s = 1; t = 1; for (i = 1; i < 25; i++) { t *= x / i; s += t }
  while (k-- > 0) s *= s; return s }
function log_(y,   e, z, z2, s, t, i) { e = 0; while (y > 1.5) { y /= 2; e++ } while (y < 0.75) { y *= 2; e-- }
  z = (y - 1) / (y + 1); z2 = z * z; s = 0; t = z
  for (i = 1; i < 60; i += 2) { s += t / i; t *= z2 }
  return 2 * s + e * 0.69314718055994531 }
BEGIN { RS = "\001" }
{
  s = $0; gsub(/[{} "\n]/, "", s); n = split(s, kv, ",")
  for (i = 1; i <= n; i++) { split(kv[i], p, ":"); v[p[1]] = p[2] + 0 }
  a = v["absorber_mm"]; d = v["scintillator_mm"]
  f = d * DEDX_SCINT / (d * DEDX_SCINT + a * DEDX_LEAD)
  sampling = 0.027 * sqrt_(d / f) / sqrt_(E)
  pe = E * 1000.0 * f * PE_PER_MEV * (1.0 - exp_(-d / 2.0))
  photo = 1.0 / sqrt_(pe)
  shower_max = log_(E * 1000.0 / 7.4) - 0.5
  depth = LAYERS * (a / X0_LEAD + d / X0_SCINT)
  leak = 0.5 * exp_(-(depth - shower_max) / 3.5)
  r = sqrt_(sampling * sampling + photo * photo + leak * leak + CONSTANT * CONSTANT)
  printf "{\"resolution\": %.17g}\n", r > ENVIRON["AID2E_RESULT_FILE"]
}
"""


def container_command(energy_gev: float = 10.0) -> list[str]:
    """``awk -v NAME=VALUE ... PROGRAM params.json``: an argv list, no shell in or out of the container."""
    constants = {
        "E": energy_gev, "LAYERS": model.LAYERS, "X0_LEAD": model.X0_LEAD_MM, "X0_SCINT": model.X0_SCINT_MM,
        "DEDX_LEAD": model.DEDX_LEAD, "DEDX_SCINT": model.DEDX_SCINT, "PE_PER_MEV": model.PE_PER_MEV,
        "CONSTANT": model.CONSTANT_TERM,
    }
    argv = ["awk"]
    for name, value in constants.items():
        argv += ["-v", f"{name}={value!r}"]
    return argv + [RESOLUTION_AWK, "params.json"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--engine", default="podman", choices=["podman", "docker"])
    parser.add_argument("--image", default="localhost/aid2e-test:latest")
    parser.add_argument("--output", default="./aid2e_jobs")
    args = parser.parse_args()

    from ax.service.ax_client import AxClient, ObjectiveProperties

    from aid2e import AxScheduler, JobLibRunner

    ax_client = AxClient(verbose_logging=False, random_seed=7)
    ax_client.create_experiment(
        name=f"calorimeter_container_{int(time.time())}",
        parameters=[
            {"name": "absorber_mm", "type": "range", "bounds": [1.0, 10.0], "value_type": "float"},
            {"name": "scintillator_mm", "type": "range", "bounds": [1.0, 10.0], "value_type": "float"},
        ],
        objectives={"resolution": ObjectiveProperties(minimize=True)},
    )
    runner = JobLibRunner(n_jobs=args.jobs, config={"container_engine": args.engine})
    scheduler = AxScheduler(ax_client, runner, config={"job_output_dir": args.output})
    scheduler.set_container_objective(container_image=args.image, container_command=container_command())

    started = time.perf_counter()
    best = scheduler.run_optimization(max_trials=args.trials)
    elapsed = time.perf_counter() - started
    runner.close()

    worst = 0.0
    for record in scheduler.trials.values():
        if record.status != "COMPLETED":
            print(f"trial {record.index} {record.status}: {record.message}")
            continue
        expected = model.energy_resolution(record.parameters["absorber_mm"], record.parameters["scintillator_mm"])
        worst = max(worst, abs(record.metrics["resolution"].mean - expected) / expected)
    first = scheduler.trials[0].handle
    print(f"{args.trials} trials in {elapsed:.1f} s, {runner.capacity} {args.engine} containers at a time")
    print(f"image {first.extra['container_image']} = {first.extra['container_image_id']}")
    print(f"best: absorber {best['absorber_mm']:.2f} mm, scintillator {best['scintillator_mm']:.2f} mm -> "
          f"sigma_E/E = {100 * model.energy_resolution(best['absorber_mm'], best['scintillator_mm']):.2f}% at 10 GeV")
    print(f"largest relative difference between the container (awk) and the Python model: {worst:.1e}")
    print(f"state saved under {scheduler.experiment_dir}")


if __name__ == "__main__":
    main()
