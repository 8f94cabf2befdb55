"""The cattrs converter (preconf JSON) for aid2e's records, with job specs tagged by ``kind``.

``to_json(obj)`` / ``from_json(data, cls)`` round-trip handles, results, requests and the
scheduler's state. Job specs carry their ``kind``; an unknown kind is a clear error naming it.
Function jobs store their function as ``module:qualname`` (it must be importable to load).
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from cattrs.preconf.json import make_converter

from .errors import ConfigError, PluginNotInstalledError
from .types import FunctionJob, JobRequest, Resources

T = TypeVar("T")

converter = make_converter(forbid_extra_keys=True)


def qualified_name(obj: Any) -> str:
    """``module:qualname`` of a function or class (what :func:`resolve` reads back);
    ``<unimportable ...>`` for a lambda or a local function, which cannot be loaded again."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname or "<lambda>" in qualname:
        return f"<unimportable {obj!r}>"
    return f"{module}:{qualname}"


def resolve(ref: str, *, what: str = "function") -> Any:
    """The object named ``module:qualname`` (``pkg.mod:Class.method``): the one resolver of such
    names (saved function jobs, saved runners). A one-line :class:`ConfigError` naming ``what``
    and ``ref`` when it cannot be imported, chained to the import error."""
    module_name, _, qualname = str(ref).partition(":")
    if not module_name or not qualname:
        raise ConfigError(f"cannot load {what} {ref!r}: expected 'module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load {what} {ref!r}: {exc}") from exc
    return obj


def dump_job(spec: Any) -> dict[str, Any]:
    """A job spec as a JSON-ready dict with its ``kind`` tag."""
    if isinstance(spec, FunctionJob):
        body: dict[str, Any] = {"function": qualified_name(spec.function), "call_style": spec.call_style}
    else:
        body = converter.unstructure(spec)
    return {"kind": spec.kind, **body}


def load_job(data: dict[str, Any]) -> Any:
    """A job spec from :func:`dump_job`'s output, its kind looked up among installed plugins."""
    from .plugins import get_plugin_manager

    if not isinstance(data, dict) or "kind" not in data:
        raise ConfigError(f"a job spec needs a 'kind' field, got {data!r}")
    body = dict(data)
    kind = body.pop("kind")
    try:
        spec_type = get_plugin_manager().job_kind(kind).spec_type
    except PluginNotInstalledError as exc:  # stored data naming a kind nobody provides
        raise ConfigError(f"cannot load a job spec: {exc}") from exc
    if spec_type is FunctionJob:
        _check_keys(body, required={"function"}, optional={"call_style"}, what="a function job")
        return FunctionJob(function=resolve(body["function"]),
                           call_style=body.get("call_style", "kwargs"))
    try:
        return converter.structure(body, spec_type)
    except Exception as exc:  # cattrs reports nested errors as exception groups: flatten to one line
        from cattrs import transform_error

        details = "; ".join(transform_error(exc)) if hasattr(exc, "exceptions") else str(exc)
        raise ConfigError(f"bad {kind} job spec: {details}") from exc


def _check_keys(data: Any, *, required: set[str], optional: set[str], what: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, got {type(data).__name__}")
    missing, extra = required - set(data), set(data) - required - optional
    if missing:
        raise ConfigError(f"{what} lacks {sorted(missing)}")
    if extra:
        raise ConfigError(f"{what} has unknown keys {sorted(extra)}")


def _structure_request(data: Any, _cls: Any) -> JobRequest:
    _check_keys(data, required={"experiment", "trial_index", "parameters", "job", "workdir"},
                optional={"resources", "labels", "token"}, what="a job request")
    return JobRequest(
        experiment=data["experiment"],
        trial_index=data["trial_index"],
        parameters=dict(data["parameters"]),
        job=load_job(data["job"]),
        workdir=data["workdir"],
        resources=converter.structure(data.get("resources", {}), Resources),
        labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
        token=str(data.get("token", "")),
    )


converter.register_unstructure_hook(
    JobRequest,
    lambda req: {
        "experiment": req.experiment,
        "trial_index": req.trial_index,
        "parameters": dict(req.parameters),
        "job": dump_job(req.job),
        "workdir": req.workdir,
        "resources": converter.unstructure(req.resources),
        "labels": dict(req.labels),
        "token": req.token,
    },
)
converter.register_structure_hook(JobRequest, _structure_request)


def to_json(obj: Any) -> Any:
    """A JSON-ready structure (dicts, lists, scalars) for an aid2e record."""
    return converter.unstructure(obj)


def from_json(data: Any, cls: type[T]) -> T:
    """Rebuild a ``cls`` record from :func:`to_json`'s output."""
    return converter.structure(data, cls)
