"""The plugin manager: built-ins and entry points (group ``aid2e``), loaded one by one.

A plugin that fails to import, to register or to answer a hook is reported with status
``error`` and its message; it never takes the host down. ``AID2E_DISABLE_PLUGINS=a,b`` keeps
plugins (by entry-point or distribution name) from being imported at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import pluggy
from attrs import define, field

from . import hookspecs
from .errors import PluginNotInstalledError, error_line
from .types import BackendInfo, JobAdapter, JobKind, StorageInfo

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "aid2e"
DISABLE_ENV = "AID2E_DISABLE_PLUGINS"

#: hook name -> (record type, key in ``provides``)
REGISTRATION_HOOKS: dict[str, tuple[type, str]] = {
    "aid2e_backends": (BackendInfo, "backends"),
    "aid2e_job_kinds": (JobKind, "job_kinds"),
    "aid2e_storages": (StorageInfo, "storages"),
    "aid2e_job_adapters": (JobAdapter, "job_adapters"),
}

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


class PluginManager:
    """aid2e's view of its plugins: a pluggy manager plus a status row per plugin."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager("aid2e")
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._records: dict[str, dict[str, list[Any]]] = {}
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
                self.pm.register(module, name=name)
            except Exception as exc:  # a broken plugin must not take the host down
                log.debug("plugin %s failed to load", name, exc_info=True)
                info.status, info.error = "error", error_line(exc)
                self._infos[name] = info
                continue
            self._infos[name] = info
            self._collect(name, module)

    def register(self, plugin: Any, name: str, *, version: str = "0", builtin: bool = False) -> None:
        """Register an in-process plugin (a module or object with hookimpls), e.g. in tests."""
        info = PluginInfo(name=name, version=version, entry_point="(in-process)", status="active",
                          builtin=builtin)
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            info.status, info.error = "error", error_line(exc)
            self._infos[name] = info
            return
        self._infos[name] = info
        self._collect(name, plugin)

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name`` (no error if it is absent)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self._infos.pop(name, None)
        self._records.pop(name, None)

    def _collect(self, name: str, plugin: Any) -> None:
        """Call each registration hook of one plugin, checking what it yields."""
        records: dict[str, list[Any]] = {}
        info = self._infos[name]
        for hook_name, (record_type, key) in REGISTRATION_HOOKS.items():
            impl = getattr(plugin, hook_name, None)
            if impl is None:
                continue
            try:
                got = list(impl() or ())
                for record in got:
                    if not isinstance(record, record_type):
                        raise TypeError(
                            f"{hook_name} yielded {type(record).__name__}, expected {record_type.__name__}"
                        )
            except Exception as exc:
                log.debug("plugin %s failed in %s", name, hook_name, exc_info=True)
                info.status, info.error = "error", error_line(exc)
                self._records[name] = {}
                info.provides = {}
                return
            if got:
                records[key] = got
        self._records[name] = records
        info.provides = {key: sorted(_record_label(r) for r in recs) for key, recs in records.items()}

    # ------------------------------------------------------------ queries
    def plugins(self, *, include_builtin: bool = True) -> list[PluginInfo]:
        rows = sorted(self._infos.values(), key=lambda i: (not i.builtin, i.name))
        return [r for r in rows if include_builtin or not r.builtin]

    def _all(self, key: str) -> Iterator[Any]:
        for name, info in self._infos.items():
            if info.status == "active":
                yield from self._records.get(name, {}).get(key, ())

    def backends(self) -> dict[str, BackendInfo]:
        return {r.name: r for r in self._all("backends")}

    def job_kinds(self) -> dict[str, JobKind]:
        return {r.name: r for r in self._all("job_kinds")}

    def storages(self) -> dict[str, StorageInfo]:
        return {r.name: r for r in self._all("storages")}

    def job_adapters(self) -> list[JobAdapter]:
        return list(self._all("job_adapters"))

    def job_kind(self, name: str) -> JobKind:
        """The job kind ``name``, or an error saying which distribution provides it."""
        kinds = self.job_kinds()
        if name in kinds:
            return kinds[name]
        raise PluginNotInstalledError(self._missing_text(f"job kind {name!r}", KNOWN_KINDS.get(name)))

    def runner_class(self, name: str) -> Any:
        """The backend factory whose class name is ``name`` (``JobLibRunner``, ...)."""
        for info in self.backends().values():
            if getattr(info.factory, "__name__", None) == name:
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

