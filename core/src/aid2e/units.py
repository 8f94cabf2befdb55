"""The one reader of sizes (memory) and durations (walltimes, time limits) wherever aid2e takes them.

Sizes (:func:`size_bytes`): ``"4G"``, ``"1.5G"``, ``"512M"``, ``"512MiB"``, ``"64MB"``, ``"2048K"``,
``"1T"`` (powers of 1024, any case), ``"4096B"`` (bytes), ``"4000"`` (a bare number in text is MB,
as ``sbatch --mem`` reads it) or an ``int`` of bytes.

Durations (:func:`duration_seconds`): Slurm's ``--time`` forms ``"MM"``, ``"MM:SS"``, ``"HH:MM:SS"``,
``"D-HH"``, ``"D-HH:MM"``, ``"D-HH:MM:SS"`` (a bare number in text is minutes, as Slurm reads it),
a number with units ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"``, ``"1h30m"``, or an ``int``/``float``
of seconds (``numbers="minutes"`` for arguments documented as minutes). A ``timedelta`` is taken too.

Both raise a one-line :class:`~aid2e.errors.ConfigError` (a ``ValueError``) naming what is accepted.
Stdlib only.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from .errors import ConfigError

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])I?)?(B?)\s*", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
#: Slurm's --time: [D-]a[:b[:c]]
_CLOCK = re.compile(r"\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*")
_UNITS = re.compile(r"\s*(?:\d+(?:\.\d+)?\s*[smhd]\s*)+", re.IGNORECASE)
_UNIT_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

SIZE_FORMS = "a size like '4G', '1.5G', '512M' or '4000' (MB)"
DURATION_FORMS = "HH:MM:SS, D-HH:MM:SS, minutes ('30') or a number with a unit ('90s', '2h')"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def size_bytes(value: Any, *, what: str = "memory") -> int | None:
    """Bytes of a size (see the module docstring); None for None or ``""``."""
    if value is None or value == "":
        return None
    size = 0
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match:
            number, unit, only_bytes = float(match.group(1)), (match.group(2) or "").upper(), match.group(3)
            if not unit and not only_bytes:
                unit = "M"
            size = int(number * 1024 ** _POWERS[unit])
    if size > 0:
        return size
    raise ConfigError(f"{what} {value!r} is not {SIZE_FORMS}")


def size_mb(value: Any, *, what: str = "memory") -> int | None:
    """A size in whole MB (at least 1); None when not set."""
    size = size_bytes(value, what=what)
    return None if size is None else max(1, size // 1024 ** 2)


def duration_seconds(value: Any, *, what: str = "walltime", numbers: str = "seconds") -> float | None:
    """Seconds of a duration (see the module docstring); None for None or ``""``.

    ``numbers`` says what an ``int``/``float`` counts: ``"seconds"`` (the default) or ``"minutes"``
    (for arguments that have always taken minutes, like ``SlurmRunner(time_limit=30)``)."""
    if value is None or value == "":
        return None
    seconds: float = 0.0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif _is_number(value):
        seconds = float(value) * (60.0 if numbers == "minutes" else 1.0)
    elif isinstance(value, str):
        seconds = _text_seconds(value)
    if seconds > 0 and math.isfinite(seconds):
        return seconds
    raise ConfigError(f"{what} {value!r} is not {DURATION_FORMS}")


def _text_seconds(text: str) -> float:
    """Seconds of a duration written as text; 0 when it is not one."""
    match = _CLOCK.fullmatch(text)
    if match:
        days, first, second, third = match.groups()
        if days is not None:  # D-HH[:MM[:SS]]
            return int(days) * 86400 + int(first) * 3600 + int(second or 0) * 60 + int(third or 0)
        if third is not None:  # HH:MM:SS
            return int(first) * 3600 + int(second) * 60 + int(third)
        return int(first) * 60 + int(second or 0)  # MM or MM:SS
    if _UNITS.fullmatch(text):
        return sum(float(number) * _UNIT_SECONDS[unit.lower()] for number, unit in _UNIT_PART.findall(text))
    return 0.0


def format_duration(seconds: float | None) -> str | None:
    """``[D-]HH:MM:SS`` (what Slurm's ``--time`` and :func:`duration_seconds` read), whole seconds."""
    if seconds is None:
        return None
    days, rest = divmod(int(seconds), 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


__all__ = ["DURATION_FORMS", "SIZE_FORMS", "duration_seconds", "format_duration", "size_bytes", "size_mb"]
