"""The calls aid2e makes to a PanDA server, through the unmodified panda-client, with retries.

panda-client reads the server's address (``PANDA_URL_SSL``, ``PANDA_URL``, ``PANDACACHE_URL``)
once, when ``pandaclient.Client`` is first imported, so it is imported lazily by
:func:`load_client`, which also turns the client's import-time failures (a DNS lookup of the
cache server unless ``PANDA_BEHIND_REAL_LB`` is set) into one-line configuration errors.

Every call goes through :meth:`PandaAPI.call`: a failed answer (an HTTP error or timeout, which
panda-client reports as a non-zero status, or ``success: false``) is retried with exponential
backoff a bounded number of times and then raised as :class:`PandaServerError` naming the call,
the server and the last answer. Tokens never reach a message or a log line: panda-client's own
output is only shown in verbose mode, and messages here name environment variables, not values.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from aid2e.errors import Aid2eError, ConfigError

from .auth import redact

log = logging.getLogger(__name__)

URL_ENV = ("PANDA_URL_SSL", "PANDA_URL", "PANDACACHE_URL")
_TASK_ID = re.compile(r"jediTaskID=(\d+)")


class PandaServerError(Aid2eError):
    """The PanDA server did not give a usable answer after every attempt."""


def load_client() -> Any:
    """``pandaclient.Client``, imported now; a ConfigError if it cannot be."""
    try:
        from pandaclient import Client
    except ImportError as exc:  # pragma: no cover - panda-client is a dependency
        raise ConfigError(f"panda-client is not installed ({exc}); pip install aid2e-panda") from exc
    except OSError as exc:  # socket.gaierror: the cache server's name does not resolve
        raise ConfigError(
            f"panda-client failed to start ({type(exc).__name__}: {exc}); it resolves the cache server's "
            "name when imported: set PANDA_BEHIND_REAL_LB=1 (and PANDA_URL_SSL, PANDA_URL) before running"
        ) from exc
    return Client


def client_urls(client: Any) -> dict[str, str]:
    """The server addresses the imported client uses."""
    return {"PANDA_URL_SSL": client.baseURLSSL, "PANDA_URL": client.baseURL, "PANDACACHE_URL": client.baseURLCSRVSSL}


def check_urls(client: Any) -> str:
    """The REST base the client talks to; a ConfigError if the environment now names another
    server than the one the client read at import (it would silently talk to the old one)."""
    for name, used in client_urls(client).items():
        wanted = os.environ.get(name)
        if wanted and _netloc(wanted) != _netloc(used) and not (
            name == "PANDACACHE_URL" and "PANDA_BEHIND_REAL_LB" not in os.environ
        ):
            raise ConfigError(
                f"${name} is {wanted} but panda-client was imported with {used}; panda-client reads the server "
                "address once per process: set the PANDA_* variables before the first PanDA runner starts"
            )
    return str(client.server_base_path_ssl)


def _netloc(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def task_id_from_message(message: Any) -> int | None:
    match = _TASK_ID.search(str(message))
    return int(match.group(1)) if match else None


class PandaAPI:
    """The few panda-client calls the backend uses, each retried on failure.

    ``attempts`` is the number of tries of one call, ``backoff`` the first delay (doubled after
    each failure, at most ``max_backoff``).
    """

    def __init__(self, *, attempts: int = 4, backoff: float = 2.0, max_backoff: float = 60.0,
                 verbose: bool = False, sleep: Callable[[float], None] = time.sleep) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.verbose = verbose
        self._sleep = sleep
        self._client: Any = None
        #: calls made (name -> count), for tests and ``aid2e`` diagnostics
        self.calls: dict[str, int] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = load_client()
        return self._client

    @property
    def server(self) -> str:
        return str(self.client.server_base_path_ssl)

    # ------------------------------------------------------------ retry loop
    def call(self, what: str, function: Callable[[], tuple[int, Any]],
             accept: Callable[[Any], tuple[bool, Any, str]],
             before_retry: Callable[[], Any] | None = None) -> Any:
        """Call ``function`` until ``accept(output)`` says it worked; return what it extracted.

        ``accept`` returns ``(ok, value, problem)``. ``before_retry`` runs before each retry and
        may return a value to use instead (e.g. a task a timed-out submission did create).
        """
        last = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1 and before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found
            self.calls[what] = self.calls.get(what, 0) + 1
            try:
                status, output = function()
            except SystemExit as exc:  # panda-client exits on some configuration errors
                raise ConfigError(f"panda-client gave up on {what} (exit {exc.code}); check PANDA_AUTH_VO "
                                  "and the token/proxy variables") from exc
            except Exception as exc:  # noqa: BLE001 - a client bug must not look like a result
                status, output = -1, f"{type(exc).__name__}: {exc}"
            if status == 0:
                ok, value, problem = accept(output)
                if ok:
                    return value
                last = problem
            else:
                last = (f"status {status}: HTTP error, timeout or success=false"
                        + (f" ({_short(output)})" if isinstance(output, str) and output else ""))
            last = redact(last)
            if attempt < self.attempts:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                log.warning("PanDA %s failed (attempt %d of %d, retrying in %.3gs): %s",
                            what, attempt, self.attempts, delay, last)
                self._sleep(delay)
        raise PandaServerError(f"PanDA server {self.server}: {what} failed {self.attempts} times; last: {last}")

    # ------------------------------------------------------------ the calls
    def upload(self, path: str) -> None:
        """Upload a sandbox tarball to the server's cache (``file_server/upload_cache_file``)."""
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            return (out == "True", None, f"upload refused: {_short(out)}")

        self.call("sandbox upload", lambda: c.putFile(path, self.verbose, useCacheSrv=False, reuseSandbox=False),
                  accept)

    def submit_task(self, params: dict[str, Any]) -> int:
        """Submit a task (``task/submit``) and return its jediTaskID. A retry first looks the
        task up by name, so a submission whose answer was lost is not made twice."""
        c = self.client
        name = params["taskName"]

        def accept(out: Any) -> tuple[bool, Any, str]:
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return False, None, f"unexpected answer {_short(out)}"
            code, message = out
            if code in (0, 3):
                task_id = task_id_from_message(message)
                if task_id is not None:
                    return True, task_id, ""
            return False, None, f"submission refused (code {code}): {_short(message)}"

        def find_existing() -> int | None:
            try:
                tasks = self.tasks(filters={"taskName": name})
            except PandaServerError:
                return None
            return next((int(t["jediTaskID"]) for t in tasks if t.get("taskName") == name), None)

        return self.call("task submission",
                         lambda: c.insertTaskParams(params, self.verbose, properErrorCode=True),
                         accept, before_retry=find_existing)

    def kill_task(self, task_id: int) -> str:
        """Kill a task (``task/kill``); returns the server's message (a task already ended or
        unknown is not an error)."""
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            if isinstance(out, (tuple, list)) and len(out) == 2:
                ok, data = out
                if ok:
                    return True, _short(data), ""
                if re.search(r"not found|irrelevant|no such|status", str(data), re.I):
                    return True, _short(data), ""
                return False, None, f"kill refused: {_short(data)}"
            return False, None, f"unexpected answer {_short(out)}"

        return self.call(f"kill of task {task_id}", lambda: c.killTask(task_id, self.verbose), accept)

    def tasks(self, *, since: str | None = None, filters: dict[str, str] | None = None,
              n_tasks: int = 1000) -> list[dict[str, Any]]:
        """The user's tasks (``task/get_tasks_detailed_info_since``): one call for many tasks."""
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            if isinstance(out, list):
                return True, [t for t in out if isinstance(t, dict)], ""
            return False, None, f"unexpected answer {_short(out)}"

        return self.call("task listing", lambda: c.get_tasks_detailed_info_since(
            since=since, filters=filters, n_tasks=n_tasks, verbose=self.verbose), accept)

    def job_ids(self, since: str) -> dict[int, list[int]]:
        """``{jediTaskID: [PandaID, ...]}`` of the user's tasks modified since ``since`` (one call)."""
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            if isinstance(out, dict):
                return True, {int(k): [int(i) for i in (v or [])] for k, v in out.items()}, ""
            return False, None, f"unexpected answer {_short(out)}"

        return self.call("job id listing", lambda: c.getJobIDsJediTasksInTimeRange(since, verbose=self.verbose),
                         accept)

    def jobs(self, panda_ids: list[int]) -> dict[int, Any]:
        """Job specs by PandaID (``job/get_description``, one call for all)."""
        if not panda_ids:
            return {}
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            if isinstance(out, list):
                return True, {int(j.PandaID): j for j in out if j is not None}, ""
            return False, None, f"unexpected answer {_short(out)}"

        return self.call("job status", lambda: c.getJobStatus(list(panda_ids), self.verbose), accept)

    def metadata(self, task_id: int) -> dict[str, Any]:
        """User job metadata of a task's jobs (``job/get_metadata_for_analysis_jobs``), by PandaID."""
        c = self.client

        def accept(out: Any) -> tuple[bool, Any, str]:
            if isinstance(out, dict):
                return True, {str(k): v for k, v in out.items()}, ""
            if isinstance(out, list):  # some servers answer a list of {PandaID, metadata}
                return True, {str(d.get("PandaID")): d.get("metadata") for d in out if isinstance(d, dict)}, ""
            return False, None, f"unexpected answer {_short(out)}"

        return self.call(f"metadata of task {task_id}", lambda: c.getUserJobMetadata(task_id, verbose=self.verbose),
                         accept)


def _short(value: Any, limit: int = 300) -> str:
    text = redact(" ".join(str(value).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."
