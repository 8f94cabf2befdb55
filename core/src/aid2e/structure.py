"""Configuration records from users' dicts: one path (cattrs) for the scheduler's config and every
backend's, each problem one line naming the key, what it accepts and what it got.

A configuration is a frozen attrs record whose fields say their type and, through
:func:`check`, what else they accept; :func:`structure` turns a mapping into it::

    @frozen(kw_only=True)
    class PoolConfig:
        workers: int = field(default=4, validator=check("a positive integer", lambda v: v >= 1))
        tmp_dir: str | None = None

    structure(PoolConfig, {"workers": 0}, what="pool config")
    # ConfigError: pool config 'workers' must be a positive integer, got 0

Types are strict: ``"3"`` is not an integer, ``1`` is not ``true``, a bool is not a number
(cattrs alone would convert them). An unknown key is refused with the valid ones and the closest.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NewType, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError

from .errors import ConfigError

T = TypeVar("T")

#: A filesystem path given as text or a path object; kept as text.
PathText = NewType("PathText", str)


class Invalid(ValueError):
    """A value a key does not accept: ``expected`` says what it accepts (``"a positive integer"``)."""

    def __init__(self, expected: str, value: Any, key: str | None = None) -> None:
        super().__init__(f"must be {expected}, got {value!r}")
        self.expected, self.value, self.key = expected, value, key


def check(expected: str, test: Callable[[Any], bool]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: ``value`` must pass ``test`` (None passes: the field's default or
    an optional key left out), else :class:`Invalid` saying it must be ``expected``."""

    def validate(_instance: Any, attribute: Any, value: Any) -> None:
        if value is not None and not test(value):
            raise Invalid(expected, value, attribute.name)

    return validate


def positive_int(_instance: Any, attribute: Any, value: Any) -> None:
    check("a positive integer", lambda v: v >= 1)(_instance, attribute, value)


def non_negative_int(_instance: Any, attribute: Any, value: Any) -> None:
    check("a non-negative integer", lambda v: v >= 0)(_instance, attribute, value)


def at_least(minimum: float) -> Callable[[Any, Any, Any], None]:
    return check(f">= {minimum}", lambda v: v >= minimum)


def between(low: float, high: float) -> Callable[[Any, Any, Any], None]:
    return check(f"between {low} and {high}", lambda v: low <= v <= high)


# ---------------------------------------------------------------- strict scalars
def _bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("true or false", value)
    return value


def _int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid("an integer", value)
    return value


def _float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid("a number", value)
    return float(value)


def _str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("a string", value)
    return value


def _path(value: Any, _type: Any) -> str:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, str) or hasattr(value, "__fspath__"):
        return str(os.fspath(value))
    raise Invalid("a path", value)


converter = cattrs.Converter(detailed_validation=True)
for _type, _hook in ((bool, _bool), (int, _int), (float, _float), (str, _str), (PathText, _path)):
    converter.register_structure_hook(_type, _hook)


def reject_unknown_keys(config: Mapping[str, Any], valid: Iterable[str], what: str) -> None:
    """Raise a one-line ConfigError naming the first unknown key of ``config``, the valid ones
    and the closest valid one."""
    valid = sorted(valid)
    unknown = sorted(str(k) for k in config if k not in valid)
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {what} key {unknown[0]!r}; valid keys: {', '.join(valid)}{hint}")


def structure(cls: type[T], data: Mapping[str, Any] | T | None, *, what: str) -> T:
    """``data`` (a mapping of ``cls``'s field names; None: the defaults) as a ``cls`` record,
    or a one-line :class:`ConfigError` (``"<what> '<key>' must be <expected>, got <value>"``)
    chained to its cause."""
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a dict, got {type(data).__name__}")
    reject_unknown_keys(data, [f.name for f in attrs.fields(cls)], what)  # type: ignore[arg-type]
    try:
        return converter.structure(dict(data), cls)
    except Invalid as exc:  # a validator
        raise ConfigError(_line(what, exc.key, exc)) from exc
    except BaseValidationError as exc:
        key, cause = _first(exc)
        if isinstance(cause, ConfigError):  # a field's own check said it in full, with its cause
            raise cause  # noqa: B904
        raise ConfigError(_line(what, key, cause)) from exc


def _first(exc: BaseException, key: str | None = None) -> tuple[str | None, BaseException]:
    """The first leaf problem of a cattrs validation error, with the outermost key it is under
    (cattrs names the attribute in a note of each exception it wraps)."""
    if key is None:
        key = next((n.name for n in getattr(exc, "__notes__", ()) if getattr(n, "name", None) is not None), None)
    inner = getattr(exc, "exceptions", None)
    return _first(inner[0], key) if inner else (key, exc)


def _line(what: str, key: Any, cause: BaseException) -> str:
    if isinstance(cause, Invalid) and cause.key is not None:
        key = cause.key
    where = f"{what} {key!r}" if key is not None else what
    if isinstance(cause, Invalid):
        return f"{where} must be {cause.expected}, got {cause.value!r}"
    text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
    return f"{where}: {text}"


__all__ = ["Invalid", "PathText", "at_least", "between", "check", "converter", "non_negative_int",
           "positive_int", "reject_unknown_keys", "structure"]
