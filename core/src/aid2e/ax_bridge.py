"""The one module of aid2e that imports Ax (lazily): a small facade over both Ax client APIs.

:class:`AxBridge` wraps the deprecated ``AxClient`` (the seed README's API) and the new
``ax.Client`` behind the same calls, in aid2e's own terms (plain dicts and
:class:`~aid2e.types.Measurement`). Nothing else in aid2e touches Ax objects; plugins never do.
Ax has no locks: the scheduler calls the bridge from one thread only.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import ConfigError
from .types import Measurement

log = logging.getLogger(__name__)

AXCLIENT, CLIENT = "AxClient", "Client"


def _quiet_ax() -> None:
    """Ax's loggers print INFO per trial on their own handlers; keep them to warnings
    unless the user asked aid2e for DEBUG."""
    if logging.getLogger("aid2e").getEffectiveLevel() <= logging.DEBUG:
        return
    for name in list(logging.root.manager.loggerDict):
        if name == "ax" or name.startswith("ax."):
            logger = logging.getLogger(name)
            for handler in logger.handlers:
                handler.setLevel(max(handler.level, logging.WARNING))


class _FewerTrialsToDebug(logging.Filter):
    """Ax warns "N trials requested but only M could be generated" when it waits for data (the
    end of its initial batch): for aid2e, which asks ahead, that is normal, so it goes to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "could be generated" in record.getMessage():
            log.debug("Ax: %s", record.getMessage())
            return False
        return True


_FEWER_TRIALS = _FewerTrialsToDebug()


@contextlib.contextmanager
def _fewer_trials_to_debug() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("ax.api.client", "ax.service.ax_client")]
    for logger in loggers:
        logger.addFilter(_FEWER_TRIALS)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(_FEWER_TRIALS)


@contextlib.contextmanager
def _warnings_to_debug() -> Iterator[None]:
    """Model-fitting chatter (jitter, small noise, winsorisation) goes to DEBUG, not the terminal."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        log.debug("Ax: %s: %s", warning.category.__name__, warning.message)


def _kind_of(obj: Any) -> str | None:
    from ax.api.client import Client
    from ax.service.ax_client import AxClient

    if isinstance(obj, AxClient):
        return AXCLIENT
    if isinstance(obj, Client):
        return CLIENT
    return None


class AxBridge:
    """Uniform access to an ``AxClient`` or ``ax.Client`` and its experiment."""

    def __init__(self, client: Any) -> None:
        kind = _kind_of(client)
        if kind is None:
            raise ConfigError(
                "AxScheduler needs an ax.Client or ax.service.ax_client.AxClient "
                f"(or None, then load_experiment), got {type(client).__name__}"
            )
        self.client = client
        self.kind = kind
        try:
            self.experiment  # noqa: B018  (raises if no experiment is configured yet)
        except Exception as exc:
            raise ConfigError(
                "the Ax client has no experiment yet: call create_experiment (AxClient) or "
                "configure_experiment and configure_optimization (ax.Client) first"
            ) from exc
        if self.experiment.optimization_config is None:
            raise ConfigError("the Ax experiment has no objective: configure its optimization first")
        _quiet_ax()

    # ------------------------------------------------------------ what the experiment is
    @property
    def experiment(self) -> Any:
        if self.kind == AXCLIENT:
            return self.client.experiment
        return self.client._experiment

    @property
    def name(self) -> str:
        return self.experiment.name or "experiment"

    @property
    def parameter_names(self) -> list[str]:
        return list(self.experiment.search_space.parameters)

    @property
    def objective_names(self) -> list[str]:
        return list(self.experiment.optimization_config.objective.metric_names)

    @property
    def metric_names(self) -> list[str]:
        return list(self.experiment.metrics)

    def minimize(self, metric: str) -> bool:
        """Whether the objective ``metric`` is minimised."""
        objective = self.experiment.optimization_config.objective
        for sub_objective in objective._parsed[1]:  # [(metric name, weight), ...] per objective
            for name, weight in sub_objective:
                if name == metric:
                    return weight < 0
        raise KeyError(metric)

    @property
    def is_multi_objective(self) -> bool:
        return bool(self.experiment.optimization_config.objective.is_multi_objective)

    def _generation_strategy(self) -> Any:
        if self.kind == AXCLIENT:
            return self.client.generation_strategy
        return self.client._generation_strategy_or_choose()

    def lift_parallelism(self, limit: int) -> None:
        """Raise Ax's cap on trials in flight per generation node to at least ``limit``
        (BoTorch nodes cap at 3 by default)."""
        from ax.generation_strategy.transition_criterion import MaxGenerationParallelism

        for node in self._generation_strategy()._nodes:
            for criterion in node.pausing_criteria:
                if isinstance(criterion, MaxGenerationParallelism) and criterion.threshold < limit:
                    log.debug("raising %s max parallelism %d -> %d", node.name, criterion.threshold, limit)
                    criterion.threshold = limit

    # ------------------------------------------------------------ trials
    def next_trials(self, count: int) -> tuple[dict[int, dict[str, Any]], bool]:
        """Up to ``count`` new RUNNING trials ``{index: parameters}`` and whether Ax is done.

        Fewer (or none) come back while Ax waits for data; that is not an error.
        """
        from ax.exceptions.core import DataRequiredError
        from ax.exceptions.generation_strategy import MaxParallelismReachedException

        try:
            with _warnings_to_debug(), _fewer_trials_to_debug():
                if self.kind == AXCLIENT:
                    trials, done = self.client.get_next_trials(max_trials=count)
                else:
                    trials, done = self.client.get_next_trials(max_trials=count), False
        except (DataRequiredError, MaxParallelismReachedException) as exc:
            log.debug("Ax cannot generate now: %s", exc)
            return {}, False
        except Exception as exc:
            from ax.exceptions.core import OptimizationComplete

            if isinstance(exc, OptimizationComplete):
                return {}, True
            raise
        return {int(i): dict(p) for i, p in trials.items()}, bool(done)

    def attach_trial(self, parameters: Mapping[str, Any]) -> int:
        """Add a trial with given parameters (RUNNING); a bad parameterisation is a ConfigError."""
        try:
            self.experiment.search_space.check_membership(dict(parameters), raise_error=True)
        except Exception as exc:
            raise ConfigError(f"trial parameters {dict(parameters)!r} are outside the search space: {exc}") from exc
        try:
            if self.kind == AXCLIENT:
                _, index = self.client.attach_trial(parameters=dict(parameters))
            else:
                index = self.client.attach_trial(parameters=dict(parameters))
                self.experiment.trials[index].mark_running(no_runner_required=True)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"bad trial parameters {dict(parameters)!r}: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("ax."):
                raise ConfigError(f"bad trial parameters {dict(parameters)!r}: {exc}") from exc
            raise
        return int(index)

    def sync_trial(self, index: int, parameters: Mapping[str, Any], status: str,
                   metrics: Mapping[str, Measurement], message: str) -> None:
        """Bring Ax's trial ``index`` up to a newer aid2e record (used when loading saved state
        whose Ax snapshot is older than its trial records)."""
        trials = self.experiment.trials
        if index not in trials:
            if index != len(trials):
                raise ConfigError(f"saved state has trial {index} but the Ax snapshot ends at trial {len(trials) - 1}")
            if self.attach_trial(parameters) != index:
                raise ConfigError(f"could not restore trial {index} into the Ax experiment")
        current = trials[index].status.name
        if current == status or current != "RUNNING":
            return
        if status == "COMPLETED":
            self.complete(index, metrics)
        elif status == "FAILED":
            self.fail(index, message)
        elif status == "ABANDONED":
            self.abandon(index, message)

    def restore_exact_data(self, exact: Mapping[int, Mapping[str, Measurement]]) -> None:
        """Ax's JSON snapshot keeps 10 significant decimals (pandas ``to_json``); put back the
        exact values aid2e recorded, ``{trial index: {metric: Measurement}}``, in one update."""
        from ax.core.data import Data

        df = self.experiment.lookup_data().df
        if df.empty or not exact:
            return
        df = df.copy()
        changed = False
        for row, index, name in zip(df.index, df["trial_index"], df["metric_name"], strict=True):
            value = exact.get(int(index), {}).get(name)
            if value is None:
                continue
            sem = float("nan") if value.sem is None else value.sem
            old_sem = df.at[row, "sem"]
            if df.at[row, "mean"] != value.mean or not (old_sem == sem or (old_sem != old_sem and sem != sem)):
                df.loc[row, "mean"], df.loc[row, "sem"] = value.mean, sem
                changed = True
        if changed:
            self.experiment.attach_data(Data(df=df))

    def parameters_of(self, index: int) -> dict[str, Any]:
        return dict(self.experiment.trials[index].arm.parameters)

    def complete(self, index: int, metrics: Mapping[str, Measurement]) -> None:
        raw = {name: (m.mean, m.sem) for name, m in metrics.items()}
        self.client.complete_trial(trial_index=index, raw_data=raw)

    def complete_many(self, outcomes: Mapping[int, Mapping[str, Measurement]]) -> None:
        """Complete several trials with one update of the experiment's data.

        Ax's ``complete_trial`` merges each trial's data into all the experiment's data (O(n)
        per call: 8 ms a trial at 1000 trials); a wave of completions is merged once here.
        Trials lacking a metric of the optimization config go through ``complete_trial``,
        which decides what that means.
        """
        from ax.core.data import Data

        config = self.experiment.optimization_config
        needed = set(config.metric_names) if config is not None else set()
        batch = {i: m for i, m in outcomes.items() if needed <= set(m)}
        for index in outcomes.keys() - batch.keys():
            self.complete(index, outcomes[index])
        if len(batch) <= 1:
            for index, metrics in batch.items():
                self.complete(index, metrics)
            return
        datas = []
        for index, metrics in batch.items():
            trial = self.experiment.trials[index]
            trial._validate_can_attach_data()
            raw: Any = {name: (m.mean, m.sem) for name, m in metrics.items()}
            if self.kind == CLIENT:  # as ax.Client.attach_data shapes it: no progression (step NaN)
                raw = [(float("nan"), raw)]
            datas.append(trial._raw_evaluations_to_data(raw_data={trial.arm.name: raw}))
        self.experiment.attach_data(Data.from_multiple_data(datas))
        for index in batch:
            self.experiment.trials[index].mark_completed()

    def generation_ignores_data(self) -> bool:
        """Whether the next candidates come from a generator that does not look at data
        (quasi-random: Sobol, uniform), so generating them early loses nothing."""
        try:
            specs = self._generation_strategy().current_node.generator_specs
            return bool(specs) and all(spec.generator_enum.value in ("Sobol", "Uniform") for spec in specs)
        except Exception:  # an unusual node: assume it learns from data
            return False

    def generation_nodes(self, indices: list[int]) -> dict[int, str]:
        """The name of the Ax generation node (e.g. Sobol, MBM) that made each of trials
        ``indices``, where Ax records it."""
        names = {}
        for index in indices:
            try:
                name = self.experiment.trials[index].generator_runs[0]._generation_node_name
            except Exception:  # an attached trial, or an Ax without node names
                continue
            if isinstance(name, str) and name:
                names[index] = name
        return names

    def fail(self, index: int, reason: str) -> None:
        trial = self.experiment.trials[index]
        trial.update_run_metadata({"aid2e_failure": reason})
        trial.mark_failed(reason=reason)

    def retract(self, index: int, reason: str) -> None:
        """Make trial ``index`` FAILED with ``reason`` and drop its data, also when Ax has it as
        COMPLETED (a result Ax cannot take, found in a saved state)."""
        from ax.core.data import Data

        data = self.experiment.data
        if index in data.trial_indices:
            df = data.full_df
            self.experiment.data = Data(df=df[df["trial_index"] != index])
        trial = self.experiment.trials[index]
        trial.update_run_metadata({"aid2e_failure": reason})
        trial.mark_failed(reason=reason, unsafe=True)

    def abandon(self, index: int, reason: str) -> None:
        self.experiment.trials[index].mark_abandoned(reason=reason)

    def unfinished_trials(self) -> list[int]:
        """Indexes of trials that are neither completed, failed nor abandoned."""
        return [i for i, t in self.experiment.trials.items() if not t.status.is_terminal]

    # ------------------------------------------------------------ answers
    def best(self) -> dict[str, Any] | None:
        """Best observed parameters (single objective), or None if nothing completed."""
        if not self._any_completed():
            return None
        with _warnings_to_debug():
            if self.kind == AXCLIENT:
                found = self.client.get_best_parameters(use_model_predictions=False)
                return None if found is None else dict(found[0])
            params, _prediction, _index, _arm = self.client.get_best_parameterization(
                use_model_predictions=False
            )
        return dict(params)

    def pareto(self) -> dict[int, dict[str, Any]]:
        """Pareto-optimal observed trials ``{index: parameters}`` (several objectives)."""
        if not self._any_completed():
            return {}
        with _warnings_to_debug():
            if self.kind == AXCLIENT:
                found = self.client.get_pareto_optimal_parameters(use_model_predictions=False)
                return {int(i): dict(v[0]) for i, v in found.items()}
            frontier = self.client.get_pareto_frontier(use_model_predictions=False)
        return {int(idx): dict(params) for params, _o, idx, _arm in frontier}

    def _any_completed(self) -> bool:
        return any(t.status.is_completed for t in self.experiment.trials.values())

    # ------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready snapshot of the client (experiment + generation strategy), compacted.

        Ax's own snapshot stores the experiment twice (again inside the generation strategy),
        every generator run twice (in its trial and in the strategy's history) and the data as
        one pandas JSON table per trial: 7.4 MB and 4.5 s to decode at 1000 trials. Here the
        strategy keeps only the last generator run of each node and model (all it reads to go
        on: a Sobol sequence's position), the experiment is encoded once, and the data is one
        table of columns under ``"data"`` with exact floats (Ax's keeps 10 decimals).
        """
        exp, gs = self.experiment, self._maybe_generation_strategy()
        data = exp.data
        kept = (gs._experiment, gs._generator_runs) if gs is not None else None
        try:
            from ax.core.data import Data

            exp.data = Data()
            if gs is not None:
                gs._experiment, gs._generator_runs = None, _last_run_per_model(gs._generator_runs)
            with _warnings_to_debug():
                ax = self.client.to_json_snapshot() if self.kind == AXCLIENT else self.client._to_json_snapshot()
        finally:
            exp.data = data
            if gs is not None:
                gs._experiment, gs._generator_runs = kept
        return {"api": self.kind, "snapshot": ax, "data": _data_to_json(data)}

    def _maybe_generation_strategy(self) -> Any:
        if self.kind == AXCLIENT:
            return self.client._generation_strategy
        return self.client._maybe_generation_strategy

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> AxBridge:
        """The client a :meth:`snapshot` (or an older full Ax snapshot) describes."""
        api = data.get("api")
        with _warnings_to_debug():
            if api == AXCLIENT:
                from ax.service.ax_client import AxClient

                bridge = cls(AxClient.from_json_snapshot(data["snapshot"]))
            elif api == CLIENT:
                from ax.api.client import Client

                bridge = cls(Client._from_json_snapshot(data["snapshot"]))
            else:
                raise ConfigError(f"not an aid2e experiment file (unknown Ax API {api!r})")
        if data.get("data") is not None:
            bridge.experiment.data = _data_from_json(data["data"])
        return bridge


def _last_run_per_model(runs: list[Any]) -> list[Any]:
    """The last generator run of each (generation node, model), in their original order; the
    very last run stays last (Ax restores the current node from it)."""
    last: dict[tuple[Any, Any], int] = {}
    for position, run in enumerate(runs):
        last[(run._generation_node_name, run._generator_key)] = position
    return [runs[i] for i in sorted(last.values())]


def _data_to_json(data: Any) -> dict[str, list[Any]] | None:
    """Ax ``Data`` as ``{column: [values]}``; NaN as null (strict JSON), floats exact."""
    import math

    df = data.full_df
    if df.empty:
        return None
    return {column: [None if isinstance(v, float) and math.isnan(v) else v for v in df[column].tolist()]
            for column in df.columns}


def _data_from_json(columns: Mapping[str, list[Any]]) -> Any:
    import pandas as pd
    from ax.core.data import Data

    df = pd.DataFrame(dict(columns))
    for column in ("mean", "sem", "step"):
        if column in df:
            df[column] = df[column].astype(float)
    return Data(df=df)
