"""The plugin manager: built-ins and entry points (group ``aid2e``), loaded one by one.

A plugin that fails to import, to register or to answer a hook is reported with status
``error`` and its message; it never takes the host down. ``AID2E_DISABLE_PLUGINS=a,b`` keeps
plugins (by entry-point or distribution name) from being imported at all.

Hooks are called through pluggy, one plugin at a time, so each record keeps its plugin. A plugin
must register at least one ``@aid2e.hookimpl``; an ``aid2e_*`` function that is not a known hook
(a misspelling) or not decorated is its error, as is a hook that raises or yields the wrong record
type or the same name twice. A plugin in error provides nothing.

Names are unique across plugins: a backend, job kind or adapter (``kind->produces``) that two
plugins provide is an error on both rows, naming both, and the name is withheld: a lookup of it
raises :class:`~aid2e.errors.PluginConflictError`; neither silently wins. The built-ins get no
precedence (a third party cannot quietly replace ``script``, and the core does not quietly shadow a
plugin's kind): uninstall one of the two, or disable one with ``AID2E_DISABLE_PLUGINS``. Each
plugin's other records stay in use.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from typing import Any

import pluggy
from attrs import define, field

from . import hookspecs
from .errors import PluginConflictError, PluginNotInstalledError, error_line
from .types import BackendInfo, JobAdapter, JobKind

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "aid2e"
DISABLE_ENV = "AID2E_DISABLE_PLUGINS"
HOOK_PREFIX = "aid2e_"

#: hook name -> (record type, key in ``provides``)
REGISTRATION_HOOKS: dict[str, tuple[type, str]] = {
    "aid2e_backends": (BackendInfo, "backends"),
    "aid2e_job_kinds": (JobKind, "job_kinds"),
    "aid2e_job_adapters": (JobAdapter, "job_adapters"),
}
#: key in ``provides`` -> what one of its records is called in messages
RECORD_WORDS = {"backends": "backend", "job_kinds": "job kind", "job_adapters": "job adapter"}
#: hooks that existed once -> what a plugin still implementing one is told
REMOVED_HOOKS = {
    "aid2e_storages": "aid2e_storages was removed (a campaign's state is a directory aid2e keeps itself): "
                      "delete this hook",
}
NO_HOOKIMPLS = "registers no hook implementations: decorate its functions with @aid2e.hookimpl"

#: Names users import from ``aid2e`` that live in plugin distributions.
KNOWN_RUNNERS = {
    "JobLibRunner": "aid2e-joblib",
    "SlurmRunner": "aid2e-psij",
    "PsijRunner": "aid2e-psij",
    "PanDARunner": "aid2e-panda",
    "PanDAiDDSRunner": "aid2e-panda",
}
#: Plugin distribution -> the core's extra that installs it.
DIST_EXTRAS = {"aid2e-joblib": "joblib", "aid2e-psij": "slurm", "aid2e-panda": "panda",
               "aid2e-containers": "containers"}
#: Job kinds that live in plugin distributions.
KNOWN_KINDS = {"container": "aid2e-containers"}
#: Backend name -> the distribution that provides it, for the error saying what to install.
KNOWN_BACKENDS = {"joblib": "aid2e-joblib", "slurm": "aid2e-psij", "psij": "aid2e-psij", "panda": "aid2e-panda",
                  "panda-idds": "aid2e-panda"}


@define(kw_only=True)
class PluginInfo:
    """One row of ``aid2e plugins list``."""

    name: str
    version: str
    entry_point: str
    status: str  # active | error | disabled
    builtin: bool = False
    provides: dict[str, list[str]] = field(factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "builtin": self.builtin,
            # every kind of record is listed, empty or not, so scripts need no key checks
            "provides": {key: list(self.provides.get(key, ())) for _t, key in REGISTRATION_HOOKS.values()},
            "error": self.error,
        }


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ep.name


def _record_label(record: Any) -> str:
    if isinstance(record, JobAdapter):
        return f"{record.kind}->{record.produces}"
    return record.name


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _and_list(names: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(names)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _unknown_hook_text(hook_name: str) -> str:
    if hook_name in REMOVED_HOOKS:
        return REMOVED_HOOKS[hook_name]
    import difflib

    known = sorted(REGISTRATION_HOOKS)
    close = difflib.get_close_matches(hook_name, known, n=1)
    hint = f"did you mean {close[0]}?" if close else f"the hooks are {', '.join(known)}"
    return f"{hook_name} is not an aid2e hook ({hint})"


def hook_problem(pm: pluggy.PluginManager, plugin: Any) -> str | None:
    """What is wrong with how a registered ``plugin`` declares its hooks, or None.

    pluggy's ``check_pending`` for one plugin (a hookimpl without a hookspec, unless
    ``optionalhook``), plus what pluggy skips silently: an ``aid2e_*`` function without
    ``@hookimpl``, and a plugin with no hookimpl at all.
    """
    callers = pm.get_hookcallers(plugin) or []
    for caller in callers:
        if not caller.has_spec() and any(
                impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()):
            return _unknown_hook_text(caller.name)
    undecorated = sorted(
        name for name in dir(plugin)
        if name.startswith(HOOK_PREFIX) and inspect.isroutine(getattr(plugin, name, None))
        and pm.parse_hookimpl_opts(plugin, name) is None
    )
    if not callers:
        return NO_HOOKIMPLS + (f" ({', '.join(undecorated)})" if undecorated else "")
    if undecorated:
        name = undecorated[0]
        if name in REGISTRATION_HOOKS:
            return f"{name} is not decorated with @aid2e.hookimpl, so aid2e would never call it"
        return _unknown_hook_text(name)
    return None


def own_duplicates(records: Mapping[str, list[Any]]) -> str | None:
    """One plugin's records naming the same thing twice, as its error; None if all are distinct."""
    for key, recs in records.items():
        labels = [_record_label(r) for r in recs]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            return f"yields {RECORD_WORDS[key]} {twice[0]!r} more than once"
    return None


def find_conflicts(records: Mapping[str, Mapping[str, list[Any]]]) -> dict[tuple[str, str], list[str]]:
    """``(provides key, label) -> plugins`` for every name more than one plugin provides.

    ``records`` maps plugin name -> provides key -> records; plugins are listed in sorted order.
    """
    owners: dict[tuple[str, str], list[str]] = {}
    for plugin in sorted(records):
        for key, recs in records[plugin].items():
            for label in {_record_label(r) for r in recs}:
                owners.setdefault((key, label), []).append(plugin)
    return {name: plugins for name, plugins in owners.items() if len(plugins) > 1}


def conflict_text(key: str, label: str, plugins: Iterable[str]) -> str:
    """The one line for a name several plugins provide: both (all) plugins and how to fix it."""
    return (f"{RECORD_WORDS[key]} {label!r} is provided by both {_and_list(plugins)}: "
            f"uninstall one, or disable one with {DISABLE_ENV}")


class PluginManager:
    """aid2e's view of its plugins: a pluggy manager plus a status row per plugin."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("aid2e")
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        #: plugin name -> provides key -> records, for plugins without an error of their own
        self._records: dict[str, dict[str, list[Any]]] = {}
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        if load_entry_points:
            self._load_entry_points()

    # ------------------------------------------------------------ loading
    def _load_entry_points(self) -> None:
        disabled = _disabled_names()
        eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        seen: set[tuple[str, str]] = set()
        for ep in eps:
            dist = getattr(ep, "dist", None)
            dist_name = _dist_name(ep)
            version = dist.version if dist is not None else "unknown"
            builtin = dist_name == "aid2e"
            key = (dist_name, ep.name)
            if key in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add(key)
            several = sum(1 for other in eps if _dist_name(other) == dist_name) > 1
            name = f"{dist_name} ({ep.name})" if builtin or several else dist_name
            info = PluginInfo(
                name=name,
                version=version,
                entry_point=f"{ep.name} = {ep.value}",
                status="active",
                builtin=builtin,
            )
            if {ep.name, dist_name} & disabled:
                info.status = "disabled"
                self._infos[name] = info
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self._infos[name] = info
                self._fail(name, "failed to load", exc)
                continue
            self._add(module, info)
        self._refresh()

    def register(self, plugin: Any, name: str, *, version: str = "0", builtin: bool = False) -> None:
        """Register an in-process plugin (a module or object with hookimpls), e.g. in tests."""
        self._add(plugin, PluginInfo(name=name, version=version, entry_point="(in-process)",
                                     status="active", builtin=builtin))
        self._refresh()

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name`` (no error if it is absent)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self._infos.pop(name, None)
        self._records.pop(name, None)
        self._refresh()

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        """Register one plugin with pluggy, check its hooks and collect its records."""
        name = info.name
        if name in self._infos:
            raise ValueError(f"a plugin named {name!r} is already registered")
        self._infos[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # e.g. a hookimpl argument the hookspec does not have
            self._fail(name, "failed to register", exc)
            return
        problem = hook_problem(self.pm, plugin)
        if problem is not None:
            self._fail(name, "declares its hooks wrongly", problem)
            return
        records: dict[str, list[Any]] = {}
        for hook_name, (record_type, key) in REGISTRATION_HOOKS.items():
            try:
                got = self._call(plugin, hook_name)
                for record in got:
                    if not isinstance(record, record_type):
                        raise TypeError(
                            f"{hook_name} yielded {type(record).__name__}, expected {record_type.__name__}"
                        )
            except Exception as exc:
                self._fail(name, f"failed in {hook_name}", exc)
                return
            if got:
                records[key] = got
        problem = own_duplicates(records)
        if problem is not None:
            self._fail(name, "names a record twice", problem)
            return
        self._records[name] = records
        info.provides = {key: sorted(_record_label(r) for r in recs) for key, recs in records.items()}

    def _call(self, plugin: Any, hook_name: str) -> list[Any]:
        """The records ``plugin``'s implementation of ``hook_name`` yields, called through pluggy."""
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        answers = self.pm.subset_hook_caller(hook_name, remove_plugins=others)()
        for answer in answers:
            if isinstance(answer, (str, bytes)) or not isinstance(answer, Iterable):
                raise TypeError(f"{hook_name} must yield its records (or return a list of them), "
                                f"not return a {type(answer).__name__}")
        return [record for answer in answers for record in answer]

    def _fail(self, name: str, what: str, problem: BaseException | str) -> None:
        """Mark plugin ``name`` as an error that provides nothing (and drop it from pluggy)."""
        if isinstance(problem, pluggy.PluginValidationError):  # its lines name the hook and signature
            text = "; ".join(line.strip() for line in str(problem).splitlines() if line.strip())
        else:
            text = problem if isinstance(problem, str) else error_line(problem)
        log.debug("plugin %s %s: %s", name, what, text, exc_info=isinstance(problem, BaseException))
        info = self._infos[name]
        info.status, info.error, info.provides = "error", text, {}
        self._records.pop(name, None)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)

    def _refresh(self) -> None:
        """Recompute the names several plugins provide and the rows they put in error."""
        self._conflicts = find_conflicts(self._records)
        for name in self._records:
            texts = [conflict_text(key, label, plugins)
                     for (key, label), plugins in sorted(self._conflicts.items()) if name in plugins]
            info = self._infos[name]
            info.status, info.error = ("error", "; ".join(texts)) if texts else ("active", None)

    # ------------------------------------------------------------ queries
    def plugins(self, *, include_builtin: bool = True) -> list[PluginInfo]:
        rows = sorted(self._infos.values(), key=lambda i: (not i.builtin, i.name))
        return [r for r in rows if include_builtin or not r.builtin]

    def _all(self, key: str) -> Iterator[Any]:
        """Every usable record of one kind: from plugins without an error of their own, and not
        a name in conflict."""
        for records in self._records.values():
            for record in records.get(key, ()):
                if (key, _record_label(record)) not in self._conflicts:
                    yield record

    def _refuse_conflict(self, key: str, label: str) -> None:
        plugins = self._conflicts.get((key, label))
        if plugins is not None:
            raise PluginConflictError(conflict_text(key, label, plugins))

    def backends(self) -> dict[str, BackendInfo]:
        """Usable backends by name (a name two plugins provide is left out: see :meth:`backend`)."""
        return {r.name: r for r in self._all("backends")}

    def job_kinds(self) -> dict[str, JobKind]:
        """Usable job kinds by name (a name two plugins provide is left out: see :meth:`job_kind`)."""
        return {r.name: r for r in self._all("job_kinds")}

    def job_adapters(self) -> list[JobAdapter]:
        """Usable adapters (one that two plugins provide is left out: see :meth:`job_adapter`)."""
        return list(self._all("job_adapters"))

    def backend(self, name: str) -> BackendInfo:
        """The backend ``name``; an error if no plugin or several provide it."""
        self._refuse_conflict("backends", name)
        backends = self.backends()
        if name in backends:
            return backends[name]
        raise PluginNotInstalledError(self._missing_text(f"backend {name!r}", KNOWN_BACKENDS.get(name)))

    def job_kind(self, name: str) -> JobKind:
        """The job kind ``name``, or an error saying which distribution provides it (or that
        several do)."""
        self._refuse_conflict("job_kinds", name)
        kinds = self.job_kinds()
        if name in kinds:
            return kinds[name]
        raise PluginNotInstalledError(self._missing_text(f"job kind {name!r}", KNOWN_KINDS.get(name)))

    def job_adapter(self, kind: str, runs: Iterable[str]) -> JobAdapter | None:
        """The adapter turning a ``kind`` job into one of the kinds in ``runs``; None if no plugin
        adapts it; an error if the only adapters that would are provided by several plugins."""
        runs = frozenset(runs)
        for adapter in self.job_adapters():
            if adapter.kind == kind and adapter.produces in runs:
                return adapter
        for produces in sorted(runs):
            self._refuse_conflict("job_adapters", f"{kind}->{produces}")
        return None

    def runner_class(self, name: str) -> Any:
        """The backend factory whose class name is ``name`` (``JobLibRunner``, ...)."""
        for records in self._records.values():
            for info in records.get("backends", ()):
                if getattr(info.factory, "__name__", None) == name:
                    self._refuse_conflict("backends", info.name)
                    return info.factory
        dist = KNOWN_RUNNERS.get(name)
        if dist is None:
            raise AttributeError(f"module 'aid2e' has no attribute {name!r}")
        raise PluginNotInstalledError(self._missing_text(name, dist))

    def _missing_text(self, what: str, dist: str | None) -> str:
        if dist is None:
            return f"no installed plugin provides {what}"
        info = self._infos.get(dist)
        if info is not None and info.status == "error":
            return f"{what} comes from {dist}, which failed to load: {info.error}"
        if info is not None and info.status == "disabled":
            return f"{what} comes from {dist}, which is disabled by {DISABLE_ENV}"
        extra = DIST_EXTRAS.get(dist, dist)
        return f"{what} needs the {dist} plugin: pip install {dist} (or pip install 'aid2e[{extra}]')"


_manager: PluginManager | None = None
_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = PluginManager()
        return _manager


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (the next call reloads entry points; for tests)."""
    global _manager
    with _lock:
        _manager = None

