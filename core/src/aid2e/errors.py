"""Errors aid2e raises for things a user can fix; each message is one line naming the thing to fix."""

from __future__ import annotations


class Aid2eError(Exception):
    """Base of every error aid2e raises on purpose."""


class ConfigError(Aid2eError, ValueError):
    """A configuration value, argument or input file is wrong."""


class PluginNotInstalledError(Aid2eError, ImportError):
    """A name or kind needs a plugin distribution that is not installed (or failed to load)."""


class SubmitError(Aid2eError):
    """A backend refused a job (bad queue, unreachable batch system, ...)."""


class FailureRateExceededError(Aid2eError):
    """Too many trials failed; the run stopped launching new ones."""


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped a run; the message says what was left running and how to resume.

    A ``KeyboardInterrupt``, so code that already catches Ctrl-C keeps working.
    """


class StateWriteError(Aid2eError):
    """The campaign's state could not be saved (disk full, permissions); the last saved state is intact."""
