"""The ``aid2e`` command line.

Usage::

    aid2e plugins list [--all] [--json]
    aid2e status PATH [--json]     # a campaign's trials, from its saved state (PATH: <job_output_dir>/<name>/)
    aid2e resume PATH [--max-trials N]  # continue a campaign after a crash, Ctrl-C or a finished run
    aid2e report PATH [-o FILE]    # one HTML file showing the campaign (opens offline)
    aid2e dashboard PATH [--port P]  # the same views, live in the browser
    aid2e validate FILE            # check a campaign file (one line per problem, exit 2)
    aid2e run FILE [--max-trials N] [--output-dir DIR]  # run a campaign file (in <output_dir>/<name>)
    aid2e init [DIR]               # a starter campaign that runs at once
    aid2e schema                   # the JSON Schema of campaign files
    aid2e --version
    aid2e -v plugins list          # DEBUG logging (e.g. why a plugin failed) on stderr

Each subcommand is a small ``_add_<name>(subparsers)`` function that adds its parser and sets
``func`` to a ``(args) -> int`` handler; add new ones to ``_SUBCOMMANDS``. This module imports
neither Ax nor torch: listing plugins and showing a campaign's status must stay fast.
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
from .errors import Aid2eError, ConfigError

log = logging.getLogger(__name__)

#: ``provides`` key -> label in the table, in display order.
_PROVIDES_LABELS = {
    "backends": "backends",
    "job_kinds": "job kinds",
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


# ---------------------------------------------------------------- status
#: Widest parameters cell and result cell in the status table (``--json`` has everything).
PARAMS_WIDTH = 48
RESULT_WIDTH = 72
_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {0x7F: "\\x7f", 10: "\\n", 9: "\\t", 13: "\\r"}


def _printable(text: str) -> str:
    """Text for one table cell: control characters (newlines, escapes) shown escaped."""
    return str(text).translate(_CONTROL)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 3)] + "..."


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return _printable(value)
    return _printable(json.dumps(value) if not isinstance(value, (int, bool)) else str(value))


def _format_parameters(parameters: dict[str, Any], width: int = PARAMS_WIDTH) -> str:
    """``x=0.3, y=0.25``; when too wide, as many as fit and ``... (+N more)``."""
    parts = [f"{_printable(k)}={_format_value(v)}" for k, v in parameters.items()]
    text = ", ".join(parts)
    if len(text) <= width:
        return text or "-"
    shown: list[str] = []
    for i, part in enumerate(parts):
        more = f"... (+{len(parts) - i} more)"
        if len(", ".join([*shown, part, more])) > width:
            return ", ".join([*shown, f"... (+{len(parts) - len(shown)} more)"]) if shown else \
                _clip(part, width - len(more) - 2) + ", " + more
        shown.append(part)
    return ", ".join(shown)


def _format_runtime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _state_cell(trial: Any) -> str:
    """The trial's state; a penalized trial's says so (its values are the campaign's penalty)."""
    return f"{trial.status} (penalized)" if trial.penalized else trial.status


def _format_result(trial: Any) -> str:
    if trial.status == "COMPLETED" and trial.metrics:
        parts = []
        for name, m in trial.metrics.items():
            mean = "?" if m.get("mean") is None else f"{m['mean']:.6g}"
            sem = f" +- {m['sem']:.2g}" if m.get("sem") is not None else ""
            parts.append(f"{_printable(name)}={mean}{sem}")
        text = ", ".join(parts)
        if trial.penalized and trial.message.strip():  # why it was penalized: the failure's first line
            why = trial.message.strip().splitlines()[0]
            text += f" ({_printable(why.removeprefix('penalized: '))})"  # the state cell says penalized
        return _clip(text, RESULT_WIDTH)
    if trial.message:
        first = next((line for line in trial.message.splitlines() if line.strip()), trial.message)
        return _clip(_printable(first.strip()), RESULT_WIDTH)
    if trial.status == "RUNNING" and trial.backend is None and not any(job.backend for job in trial.jobs):
        return "(being submitted)"  # a trial made of stages has no handle of its own: its jobs have them
    return ""


def _job_cell(trial: Any) -> str:
    if trial.jobs:  # made of stages: its jobs by state (each on its own row below, see _job_rows)
        counts: dict[str, int] = {}
        for job in trial.jobs:
            counts[job.status] = counts.get(job.status, 0) + 1
        return f"{len(trial.jobs)} jobs: " + ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    if trial.backend is None:
        return "-"
    return _clip(_printable(f"{trial.backend} {trial.native_id or '?'}"), 48)


def _job_rows(trial: Any, now: float) -> list[tuple[str, ...]]:
    """One row per job of a trial made of stages: ``stage/job``, its state, backend and job id,
    runtime, and why it ended when it did not complete."""
    rows = []
    for job in trial.jobs:
        where = "-" if job.backend is None else _clip(_printable(f"{job.backend} {job.native_id or '?'}"), 48)
        end = job.ended_at if job.ended_at is not None else (now if job.status == "RUNNING" else None)
        runtime = None if job.started_at is None or end is None else max(0.0, end - job.started_at)
        first = job.message.splitlines()[0] if job.message else ""
        note = "" if job.status == "COMPLETED" else _clip(_printable(first), RESULT_WIDTH)
        if job.attempts > 1:
            note = f"attempt {job.attempts}" + (f"; {note}" if note else "")
        rows.append(("", job.status, _clip(_printable(f"  {job.stage}/{job.name}"), 60), where,
                     _format_runtime(runtime), note))
    return rows


def _summary(state: Any) -> str:
    counts = state.counts()
    total = len(state.trials)
    penalized = sum(t.penalized for t in state.trials)
    text = f"{total} trial{'s' if total != 1 else ''}: " + ", ".join(
        f"{n} {s.lower()}" + (f" ({penalized} penalized)" if s == "COMPLETED" and penalized else "")
        for s, n in counts.items() if n or s in ("COMPLETED", "FAILED", "RUNNING"))
    best = state.best()
    if best:
        parts = [f"{_printable(name)}={value:.6g} ({'min' if minimize else 'max'}imize, trial {index})"
                 for name, (value, index, minimize) in best.items()]
        label = "best per objective (not one Pareto point)" if state.multi_objective else "best"
        return f"{text}; {label}: {'; '.join(parts)}"
    metrics = state.metric_names()
    if state.objectives is not None:
        goal = ", ".join(f"{'min' if m else 'max'}imize {_printable(n)}" for n, m in state.objectives.items())
        return f"{text}; no completed trial yet ({goal})"
    if metrics:
        return f"{text}; metrics: {', '.join(map(_printable, metrics))} (objective direction not in the saved state)"
    return text


def _cmd_status(args: argparse.Namespace) -> int:
    import time

    from .state import read_state

    state = _read_state(read_state, args.path)
    now = time.time()
    controller = _controller(args.path)
    if args.pareto:
        state = _front_of(state)
    if args.csv:
        _print_csv(state, now)
        return 0
    if args.json:
        best = {name: {"mean": value, "trial": index, "minimize": minimize}
                for name, (value, index, minimize) in state.best().items()}
        print(json.dumps({
            "experiment": state.name,
            "source": str(state.source),
            "controller": None if controller is None else {
                "pid": controller.pid, "host": controller.host, "since": controller.since},
            "saved_at": state.saved_at,
            "counts": state.counts(),
            "objectives": state.objectives,
            "best": best,
            "trials": [t.to_json(now) for t in state.trials],
        }, indent=2))
        return 0
    saved = ""
    if state.saved_at is not None:
        saved = f", saved {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(state.saved_at))}"
    print(f"experiment {_printable(state.name or '?')} ({state.source}{saved})")
    if os.path.isdir(args.path):
        print(f"controller: {controller.describe()}" if controller is not None
              else f"no controller: resume with aid2e resume {os.path.abspath(args.path)}")
    if state.trials:
        rows = []
        for t in state.trials:
            rows.append((str(t.index), _state_cell(t), _format_parameters(t.parameters), _job_cell(t),
                         _format_runtime(t.runtime(now)), _format_result(t)))
            if t.jobs and (args.jobs or t.status == "RUNNING"):
                rows += _job_rows(t, now)
        print(format_table(rows, ("Trial", "State", "Parameters", "Job", "Runtime", "Result / reason")))
    else:
        print("no trials yet")
    print(_summary(state))
    return 0


def _read_state(read: Callable[[str], Any], path: str) -> Any:
    """``read(path)`` of a campaign's saved state (status, report); a state file of an unexpected
    shape is one line, never a traceback."""
    try:
        return read(path)
    except Aid2eError:
        raise
    except Exception as exc:
        log.debug("reading %s failed", path, exc_info=True)
        raise ConfigError(f"cannot read the campaign state at {path}: {type(exc).__name__}: "
                          f"{_printable(str(exc))[:200]}") from exc


def _front_of(state: Any) -> Any:
    """``state`` with only its best trial (one objective) or its Pareto set (several), as the
    report computes them (penalized trials are never among them)."""
    import dataclasses

    from .report_data import best_trial, pareto_set, usable_trials

    objectives = state.objectives or {}
    if not objectives:
        raise ConfigError("--pareto needs the objectives' directions, which this saved state does not give "
                          "(give the campaign directory, with its experiment.json)")
    names = list(objectives)
    usable = usable_trials(state, names)
    if len(names) == 1:
        best = best_trial(usable, names[0], objectives[names[0]])
        keep = {best["index"]} if best is not None else set()
    else:
        keep = set(pareto_set(usable, names, [objectives[n] for n in names]))
    return dataclasses.replace(state, trials=[t for t in state.trials if t.index in keep])


def _print_csv(state: Any, now: float) -> None:
    """One row per trial: index, state, each parameter, each metric's mean and sem, times, job, reason."""
    import csv

    parameters = list(dict.fromkeys(name for t in state.trials for name in t.parameters))
    metrics = state.metric_names()
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["trial", "state", "penalized", *parameters, *[c for m in metrics for c in (m, f"{m}_sem")],
                     "started_at", "ended_at", "runtime_s", "backend", "job_id", "reason"])
    for t in state.trials:
        values = [(t.metrics.get(m) or {}) for m in metrics]
        writer.writerow([t.index, t.status, t.penalized, *[t.parameters.get(p, "") for p in parameters],
                         *[_blank(v.get(k)) for v in values for k in ("mean", "sem")],
                         _blank(t.started_at), _blank(t.ended_at), _blank(t.runtime(now)), t.backend or "",
                         t.native_id or "", t.message.splitlines()[0] if t.message else ""])


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _controller(path: str) -> Any:
    """Who holds the campaign directory ``path`` now (None: nobody, or not a directory)."""
    from .ownership import holder

    return holder(path) if os.path.isdir(path) else None


def _add_status(subparsers: Any, common: argparse.ArgumentParser) -> None:
    status = subparsers.add_parser(
        "status", parents=[common], help="a campaign's trials and their results, from its saved state",
        description="Show every trial of a campaign (index, parameters, state, backend and job id, runtime, "
                    "metrics or failure reason) from its saved state, without loading Ax; for trials made of "
                    "stages, each job (stage/job, state, backend and job id). Works while the campaign runs.",
    )
    status.add_argument("path", metavar="PATH",
                        help="the experiment directory <job_output_dir>/<experiment name>/, its "
                             "experiment.json or trials.json, or a file written by save_experiment")
    status.add_argument("--json", action="store_true",
                        help="print every trial in full (all parameters, whole messages, jobs) as JSON")
    status.add_argument("--jobs", action="store_true",
                        help="list the jobs of every trial made of stages (default: of running ones only)")
    status.add_argument("--csv", action="store_true",
                        help="print one CSV row per trial (parameters, each metric and its sem, times, job, reason)")
    status.add_argument("--pareto", action="store_true",
                        help="only the best trial (one objective) or the Pareto set (several; penalized trials "
                             "never count)")
    status.set_defaults(func=_cmd_status)


# ---------------------------------------------------------------- report
def _cmd_report(args: argparse.Namespace) -> int:
    import time

    from .report import write
    from .report_data import build, counts_line

    started = time.perf_counter()
    data = _read_state(build, args.path)
    from .report_sensitivity import AUTO_LIMIT, AUTO_MINIMUM, sensitivity, wanted

    usable = data["usable"]
    names = [o["name"] for o in data["objectives"]]
    if wanted(args.sensitivity, usable) and names:
        data["sensitivity"] = sensitivity(args.path, names)  # Ax and torch load here, and only here
        note = (f"sensitivity by Ax in {data['sensitivity']['seconds']:.1f} s" if "figures" in data["sensitivity"]
                else f"sensitivity skipped: {data['sensitivity']['skipped']}")
    elif args.sensitivity == "auto":
        data["sensitivity"] = {"skipped": f"{usable} completed trials: Ax's sensitivity is computed for "
                                          f"{AUTO_MINIMUM} to {AUTO_LIMIT} (aid2e report --sensitivity yes forces it)"}
        note = "no sensitivity"
    else:
        note = "no sensitivity"
    try:
        where = write(args.path, args.output, data=data)
    except OSError as exc:
        print(f"aid2e: error: cannot write the report to {args.output or args.path}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    print(f"wrote {where} ({len(data['trials'])} trials: {counts_line(data)}; {note}; "
          f"{time.perf_counter() - started:.1f} s)")
    return 0


def _add_report(subparsers: Any, common: argparse.ArgumentParser) -> None:
    report = subparsers.add_parser(
        "report", parents=[common], help="write one HTML file showing a campaign (opens offline)",
        description="Write one self-contained HTML file of a campaign, from its saved state: the summary, each "
                    "objective per trial with the best so far, the hypervolume and Pareto front (several "
                    "objectives), the parameters, generation and job times, and every trial with links to its "
                    "jobs' output. Works while the campaign runs; opens offline.",
    )
    report.add_argument("path", metavar="PATH", help="the campaign directory <job_output_dir>/<experiment name>/")
    report.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="where to write it (default: report.html in the campaign directory)")
    report.add_argument("--sensitivity", choices=("auto", "yes", "no"), default="auto",
                        help="Ax's sensitivity analysis of the parameters (loads Ax and torch, fits a GP): auto "
                             "(default) for campaigns of 5 to 300 completed trials, yes, or no")
    report.set_defaults(func=_cmd_report)


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import serve

    if not args.refresh > 0:
        print(f"aid2e dashboard: error: --refresh must be more than 0 seconds, got {args.refresh:g}", file=sys.stderr)
        return 2
    try:
        server = serve(args.path, host=args.host, port=args.port, every=args.refresh)
    except ConfigError as exc:
        print(f"aid2e: error: {exc}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    print(f"aid2e dashboard of {args.path}: http://{shown}:{port}/ (redrawn every {args.refresh:g} s; Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        print("aid2e dashboard stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


def _add_dashboard(subparsers: Any, common: argparse.ArgumentParser) -> None:
    dashboard = subparsers.add_parser(
        "dashboard", parents=[common], help="serve a campaign's report live in the browser",
        description="Serve the report's views of a campaign, redrawn as its trials finish, from its saved state. "
                    "It only reads (it never takes the campaign's lock), so it runs next to a running "
                    "controller. Listens on 127.0.0.1 unless --host says otherwise.",
    )
    dashboard.add_argument("path", metavar="PATH", help="the campaign directory <job_output_dir>/<experiment name>/")
    dashboard.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1, "
                                                               "this machine only)")
    dashboard.add_argument("--port", type=int, default=8080, help="the port (default: 8080; 0: any free one)")
    dashboard.add_argument("--refresh", type=float, default=5.0, metavar="S",
                           help="seconds between redraws (default: 5)")
    dashboard.set_defaults(func=_cmd_dashboard)


# ---------------------------------------------------------------- resume
def _modules_of_campaign_file(path: str) -> int | None:
    """A campaign run from a file imports its functions from next to that file, on resume too.
    Returns the trials ``aid2e run`` was asked for (``--max-trials`` or the file's max_trials;
    None: not a file's campaign, or none given)."""
    from pathlib import Path

    from .campaign_file import CampaignFileError, load
    from .campaign_run import FROZEN_FILE, SOURCE_FILE, use_modules_next_to

    try:
        source = json.loads((Path(path) / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(source, dict):
        return None
    if isinstance(source.get("dir"), str):
        use_modules_next_to(Path(source["dir"]))
    total = source.get("max_trials")  # what aid2e run was asked for (the file's, or --max-trials)
    if total is None:
        try:
            frozen = load(Path(path) / FROZEN_FILE)
        except CampaignFileError:
            return None
        total = frozen.get("max_trials") if isinstance(frozen, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _cmd_resume(args: argparse.Namespace) -> int:
    if os.path.isdir(args.path):  # a campaign another controller holds: say so at once, before Ax loads
        from .ownership import refuse_if_held

        refuse_if_held(args.path)
    from .ax_scheduler import AxScheduler  # Ax loads here, only for this command

    _quiet_ax()
    given = {"monitoring_interval": args.monitoring_interval, "max_failed_trials": args.max_failed_trials,
             "tolerated_failure_rate": args.tolerated_failure_rate}
    config = {key: value for key, value in given.items() if value is not None}   # over the saved settings
    total = _modules_of_campaign_file(args.path)
    scheduler = AxScheduler.resume(args.path, config=config)
    if args.max_trials is None:  # a file's campaign goes on to its max_trials
        args.max_trials = max(0, total - len(scheduler.trials)) if total is not None else 0
    running = sum(r.status == "RUNNING" for r in scheduler.trials.values())
    print(f"resuming {scheduler.experiment_dir}: {len(scheduler.trials)} trials saved, {running} in flight; "
          f"{args.max_trials} new")
    return _run(scheduler, args.max_trials, args.path)


def _add_resume(subparsers: Any, common: argparse.ArgumentParser) -> None:
    resume = subparsers.add_parser(
        "resume", parents=[common], help="continue a script or container campaign from its saved state",
        description="Rebuild a campaign from its state directory (its runner and objective as saved), follow "
                    "the trials that were in flight, then launch --max-trials new ones. Function objectives "
                    "resume from Python: AxScheduler.resume(path).",
    )
    resume.add_argument("path", metavar="PATH", help="the experiment directory <job_output_dir>/<experiment name>/")
    resume.add_argument("--max-trials", type=_count, default=None, metavar="K",
                        help="new trials to launch after the in-flight ones (default: for a campaign run from a "
                             "file, what its max_trials still asks for; otherwise 0, only finish those)")
    resume.add_argument("--monitoring-interval", type=float, default=None, metavar="S",
                        help="seconds between status checks (default: as saved)")
    resume.add_argument("--max-failed-trials", type=_count, default=None, metavar="N",
                        help="stop launching once more than N trials failed or were penalized, the earlier ones "
                             "counted (default: as saved; raise it to go on after such a stop)")
    resume.add_argument("--tolerated-failure-rate", type=_rate, default=None, metavar="F",
                        help="stop launching when failed / max(finished, 5) exceeds F, 0 to 1 (default: as saved)")
    resume.set_defaults(func=_cmd_resume)


# ---------------------------------------------------------------- campaign files
def _read_campaign(path: str) -> Any:
    """The checked campaign file at ``path``, or None after printing one line per problem."""
    from .campaign_file import CampaignFileError, read

    try:
        return read(path)
    except CampaignFileError as exc:
        for problem in exc.problems:
            print(_printable(problem.line(exc.source)), file=sys.stderr)
        return None


def _cmd_validate(args: argparse.Namespace) -> int:
    from .campaign_file import backend_statuses, summary

    data = _read_campaign(args.file)
    if data is None:
        return 2
    print(summary(data, args.file, backend_statuses(data)))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    from .campaign_file import SCHEMA, reference

    print(reference() if args.markdown else json.dumps(SCHEMA, indent=2))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import atomic
    from .campaign_run import FROZEN_FILE, SOURCE_FILE, campaign_dir, use_modules_next_to
    from .state_records import saved_identity

    data = _read_campaign(args.file)
    if data is None:
        return 2
    total = args.max_trials if args.max_trials is not None else data.get("max_trials")
    if total is None:
        print(f"{args.file}: max_trials: give max_trials in the file or --max-trials N", file=sys.stderr)
        return 2
    source = Path(args.file).resolve()
    if args.output_dir is not None:  # e.g. scratch space; the frozen file keeps what the file says
        data = {**data, "output_dir": str(Path(args.output_dir).resolve())}
    where = campaign_dir(data, source.parent)
    if where.is_dir() and saved_identity(where) is not None:
        print(f"{args.file}: name: {where} already holds the campaign {data['name']!r}: continue it with aid2e resume "
              f"{where}, or give this campaign another name or output_dir", file=sys.stderr)
        return 2
    try:
        atomic.private_dir(where)
    except OSError as exc:
        key = "--output-dir" if args.output_dir is not None else "output_dir"
        print(f"{args.file}: {key}: cannot create {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    use_modules_next_to(source.parent)
    scheduler = _scheduler_of(data, source.parent)
    atomic.write_bytes(where / FROZEN_FILE, source.read_bytes())  # the campaign's frozen definition
    atomic.write_json(where / SOURCE_FILE, {"file": str(source), "dir": str(source.parent), "max_trials": total})
    print(f"running {where}: {total} trials")
    return _run(scheduler, total, where)


def _scheduler_of(data: Any, base: Any) -> Any:
    """The AxScheduler a campaign file describes (Ax loads here)."""
    from .ax_scheduler import AxScheduler
    from .campaign_run import backends, config, experiment, workflow
    from .plugins import get_plugin_manager

    _quiet_ax()
    runners = backends(data)
    name = data["trial"].get("backend")
    runner = runners[name] if name is not None else get_plugin_manager().backend("joblib").factory()
    scheduler = AxScheduler(experiment(data), runner, config(data, base))
    scheduler.set_workflow(workflow(data, base, runners))
    return scheduler


def _quiet_ax() -> None:
    """Ax prints INFO lines (the generation strategy it chose, ...) to stderr by itself: keep its
    warnings only, unless -v asked for everything."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    from ax.utils.common.logger import set_stderr_log_level

    set_stderr_log_level(logging.WARNING)


def _run(scheduler: Any, total: int, where: Any) -> int:
    """Run ``total`` new trials; print the counts and the best, or how to resume (exit 130). Off a
    terminal (a batch job's log file) progress is printed as time-stamped lines: one per trial
    that ends, and a summary every ten minutes."""
    ours = logging.getLogger("aid2e")
    if not ours.handlers and not logging.getLogger().handlers:  # -v configured the root logger
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        ours.addHandler(handler)
        ours.setLevel(logging.WARNING)  # aid2e's warnings, and ...
        logging.getLogger("aid2e.progress").setLevel(logging.INFO)  # ... every line of progress
        ours.propagate = False
    try:
        best = scheduler.run_optimization(max_trials=total)
    except KeyboardInterrupt as exc:  # CampaignInterrupted says what was left and how to resume
        print(f"aid2e: {exc}" if str(exc) else f"aid2e: interrupted; resume with: aid2e resume {where}",
              file=sys.stderr)
        return 130
    counts = scheduler.book.counts()
    penalized = f" ({counts['PENALIZED']} penalized)" if counts["PENALIZED"] else ""
    print(", ".join(f"{counts[s]} {s.lower()}" + (penalized if s == "COMPLETED" else "")
                    for s in ("COMPLETED", "FAILED", "ABANDONED", "RUNNING"))
          + f"; {_pareto_line(scheduler.experiment_dir) or _best_line(scheduler.trials, best)}")
    return 0


def _pareto_line(directory: Any) -> str | None:
    """With several objectives, the Pareto set as ``aid2e status --pareto`` and the report compute
    it from the saved state (every non-dominated trial; Ax's own set leaves out trials outside the
    objective thresholds, so the two could differ); None with one objective or no saved objectives."""
    from .state import read_state

    try:
        state = read_state(str(directory))
    except Aid2eError:
        return None
    if len(state.objectives or {}) < 2:
        return None
    front = sorted(t.index for t in _front_of(state).trials)
    if not front:
        return None
    return f"Pareto set: trials {', '.join(map(str, front))} (aid2e status {directory} --pareto shows their metrics)"


def _best_line(trials: Any, best: Any) -> str:
    """``best: trial 4, resolution=0.0474 (absorber_mm=2.8, ...)``, or the Pareto set's trials."""
    if not best:
        if not any(r.status == "COMPLETED" and not r.penalized for r in trials.values()):
            return "no trial completed"
        return ("no best trial: no completed trial meets every objective threshold and outcome constraint "
                "(aid2e report DIR shows them all)")
    if all(isinstance(k, int) for k in best):  # several objectives: {trial index: parameters}
        return f"Pareto set: trials {', '.join(map(str, sorted(best)))} (aid2e status shows their metrics)"
    record = next((r for r in trials.values() if r.parameters == best and r.status == "COMPLETED"), None)
    if record is None:
        return f"best: {_format_parameters(best, 200)}"
    metrics = ", ".join(f"{_printable(n)}={m.mean:.6g}" for n, m in record.metrics.items())
    return f"best: trial {record.index}, {metrics} ({_format_parameters(best, 200)})"


def _cmd_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .campaign_run import init

    where = Path(args.directory)
    try:
        written = init(where)
    except ConfigError as exc:  # a file is in the way: invalid input, like a bad campaign file
        print(f"aid2e: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f"next: aid2e validate {where / 'campaign.yaml'} && aid2e run {where / 'campaign.yaml'}")
    return 0


def _add_campaign_files(subparsers: Any, common: argparse.ArgumentParser) -> None:
    validate = subparsers.add_parser(
        "validate", parents=[common], help="check a campaign file",
        description="Check a campaign file (YAML) without running anything: exit 0 and a short summary, or exit 2 "
                    "with one line per problem, FILE: key.path: what is wrong and what is accepted.")
    validate.add_argument("file", metavar="FILE", help="the campaign file (campaign.yaml)")
    validate.set_defaults(func=_cmd_validate)
    schema = subparsers.add_parser(
        "schema", parents=[common], help="print the JSON Schema of campaign files",
        description="Print the JSON Schema of campaign files (for editors: the yaml-language-server reads it).")
    schema.add_argument("--markdown", action="store_true", help="the file's reference as a Markdown table instead")
    schema.set_defaults(func=_cmd_schema)
    run = subparsers.add_parser(
        "run", parents=[common], help="run a campaign file",
        description="Check a campaign file, create its campaign directory <output_dir>/<name> (refused if it holds "
                    "a campaign: continue that one with aid2e resume), keep a copy of the file there, and run it.")
    run.add_argument("file", metavar="FILE", help="the campaign file (campaign.yaml)")
    run.add_argument("--max-trials", type=_count, default=None, metavar="N",
                     help="trials to run (default: the file's max_trials)")
    run.add_argument("--output-dir", default=None, metavar="DIR",
                     help="where the campaign directory <DIR>/<name> goes, instead of the file's output_dir")
    run.set_defaults(func=_cmd_run)
    starter = subparsers.add_parser(
        "init", parents=[common], help="write a starter campaign",
        description="Write a commented starter campaign (campaign.yaml, a toy simulation script and its analysis) "
                    "into DIRECTORY, so that aid2e run works at once. Never overwrites a file.")
    starter.add_argument("directory", metavar="DIR", nargs="?", default=".", help="where (default: here)")
    starter.set_defaults(func=_cmd_init)


def _rate(text: str) -> float:
    """A failure rate for argparse: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value:g}")
    return value


def _count(text: str) -> int:
    """A number of trials for argparse: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of trials, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# ---------------------------------------------------------------- parser and main
#: Functions adding one subcommand each: ``(subparsers, common_parent) -> None``.
_SUBCOMMANDS: list[Callable[[Any, argparse.ArgumentParser], None]] = [
    _add_plugins, _add_status, _add_report, _add_dashboard, _add_resume, _add_campaign_files]


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
    except Exception as exc:  # a bug or an unforeseen input: one line, the traceback with -v
        log.debug("command failed", exc_info=True)
        text = " ".join(str(exc).split())[:300]
        print(f"aid2e: error: {type(exc).__name__}: {text}"
              + ("" if getattr(args, "verbose", False) else " (aid2e -v shows the traceback)"), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
