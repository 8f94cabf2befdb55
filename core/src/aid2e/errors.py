"""Errors aid2e raises for things a user can fix; each message is one line naming the thing to fix."""

from __future__ import annotations


def one_line(text: object, *, last: int | None = None, empty: str = "") -> str:
    """``text`` on one line: its non-blank lines, stripped, joined with `` | `` (only the ``last``
    ones when given: a tool's output ends with what went wrong); ``empty`` when there are none."""
    lines = [" ".join(line.split()) for line in str(text).splitlines() if line.strip()]
    return " | ".join(lines[-last:] if last else lines) or empty


def message_line(exc: BaseException) -> str:
    """An exception's message on one line (its type's name when it has none): for a message
    that already says what failed."""
    return one_line(exc, empty=type(exc).__name__)


def error_line(exc: BaseException) -> str:
    """``Type: message``, first line only: an exception as part of a one-line error."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class Aid2eError(Exception):
    """Base of every error aid2e raises on purpose."""


class ConfigError(Aid2eError, ValueError):
    """A configuration value, argument or input file is wrong."""


class PluginNotInstalledError(Aid2eError, ImportError):
    """A name or kind needs a plugin distribution that is not installed (or failed to load)."""


class PluginConflictError(Aid2eError, ImportError):
    """Several plugins provide the same backend, job kind or adapter; none of them is used."""


class SubmitError(Aid2eError):
    """A backend refused a job (bad queue, unreachable batch system, ...)."""


class GenerationError(Aid2eError):
    """Ax failed to generate new trials (its error is the cause); the campaign's state is kept."""


class FailureRateExceededError(Aid2eError):
    """Too many trials failed; the run stopped launching new ones."""


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a run; the message says what was left running and how to resume.

    A ``KeyboardInterrupt``, so code that already catches Ctrl-C keeps working.
    """


class StateWriteError(Aid2eError):
    """The campaign's state could not be saved (disk full, permissions); the last saved state is intact."""
