"""A loopback stand-in for a PanDA server, and a "pilot" that runs its jobs on this machine.

**Why not a real server**: panda-server ships no database schema (its ~115 tables live in an
unpublished project), needs Apache/mod_ssl or a token issuer, CRIC site data, the JEDI daemon
(which needs Rucio) to turn tasks into jobs, and a pilot whose endpoints the published server
no longer routes. So tests (aid2e's, and a user's who wants to try a campaign offline) talk to
:class:`FakePandaServer`, which speaks the same REST protocol (``/api/v1/...``, JSON envelope
``{"success", "message", "data"}``) as a PanDA server for the calls aid2e-panda makes, and are
driven by the unmodified panda-client.

It binds 127.0.0.1 only. What it implements:

* ``file_server/upload_cache_file`` (multipart, as ``Client.putFile`` sends it) and
  ``GET /cache/<name>`` (where a pilot downloads the sandbox from);
* ``task/submit``, ``task/kill``, ``task/get_status``, ``task/get_job_ids``,
  ``task/get_tasks_detailed_info_since``, ``task/get_tasks_modified_since``;
* ``job/get_description``, ``job/kill``, ``job/get_metadata_for_analysis_jobs``;
* authentication: with ``token`` set, every call must carry ``Authorization: Bearer <token>``
  and ``Origin: <vo>`` (else HTTP 403); tasks belong to the caller (the token's ``sub``);
* failure injection (:meth:`FakePandaServer.fail_next`: HTTP 5xx, a hang past the client's
  timeout, ``success: false``) and hand-driven states (:meth:`FakePandaServer.set_state`).

The pilot (a thread) moves each task registered -> ready -> running and its one job defined ->
activated -> starting -> running -> finished/failed, as JEDI and a real pilot would: it downloads
the sandbox through the server's cache URL, unpacks it, runs the job's ``-p`` command with bash,
then publishes the job wrapper's ``userJobMetadata.json`` as the job's metadata. Killing a task
terminates its payload's process group and ends the task ``aborted``.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

API = "/api/v1/"


def _now() -> dict[str, str]:
    return {"__datetime__": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat()}


def _parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dict) and "__datetime__" in value:
        return dt.datetime.fromisoformat(value["__datetime__"])
    if isinstance(value, str) and value not in ("", "None"):
        try:
            return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    return None


class FakePandaServer:
    """See the module docstring. ``token``/``vo``: the credentials every call must carry
    (``None``: no check). ``shared_fs``: the pilot runs each job in the trial directory named
    in the sandbox (a site that sees the controller's file system) instead of a scratch directory.
    """

    def __init__(self, *, token: str | None = None, vo: str | None = None, shared_fs: bool = False,
                 step_delay: float = 0.0) -> None:
        self.token, self.vo = token, vo
        self.shared_fs = shared_fs
        self.step_delay = step_delay
        self.pilot_enabled = True
        self.lock = threading.RLock()
        self.tasks: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.metadata: dict[int, str] = {}
        self.cache: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[str, Any]] = []
        self.pilot_failures: dict[str, str] = {}  # task-name substring -> pilotErrorDiag
        self._next_task, self._next_job = 1000, 5000
        self._procs: dict[int, subprocess.Popen] = {}
        self._dirs: dict[int, Path] = {}
        self._scratch = Path(tempfile.mkdtemp(prefix="aid2e-fake-panda-"))
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakePandaServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        for target in (self._httpd.serve_forever, self._pilot_loop):
            thread = threading.Thread(target=target, daemon=True, name=f"fake-panda-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        with self.lock:
            for proc in self._procs.values():
                _kill_group(proc)
        shutil.rmtree(self._scratch, ignore_errors=True)

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/server/panda"

    def environment(self) -> dict[str, str]:
        """panda-client's variables for this server (no credentials)."""
        return {"PANDA_URL_SSL": self.url, "PANDA_URL": self.url, "PANDACACHE_URL": self.url,
                "PANDA_BEHIND_REAL_LB": "1"}

    # ------------------------------------------------------------ test controls
    def fail_next(self, endpoint: str, how: Any = 503, times: int = 1) -> None:
        """The next ``times`` calls of ``endpoint`` (e.g. ``"task/submit"``) fail: an HTTP code,
        ``"false"`` (HTTP 200 with ``success: false``) or ``("hang", seconds)``."""
        with self.lock:
            self.failures.extend([(endpoint, how)] * times)

    def set_state(self, task_id: int, task_status: str | None = None, job_status: str | None = None,
                  **job_fields: Any) -> None:
        """Put a task (and its job) in the given states by hand (turn ``pilot_enabled`` off first)."""
        with self.lock:
            task = self.tasks[task_id]
            if task_status is not None:
                task["status"] = task_status
                task["modificationTime"] = _now()
            if job_status is not None or job_fields:
                if not task["jobs"]:
                    self._new_job(task)
                job = self.jobs[task["jobs"][-1]]
                if job_status is not None:
                    job["jobStatus"] = job_status
                job.update(job_fields)

    def publish(self, task_id: int, metadata: Any) -> None:
        """Store ``metadata`` as the user metadata of the task's last job."""
        with self.lock:
            task = self.tasks[task_id]
            if not task["jobs"]:
                self._new_job(task)
            self.metadata[task["jobs"][-1]] = json.dumps(metadata)

    def forget(self, task_id: int) -> None:
        """Delete a task, as if it had never been submitted here (it becomes "lost")."""
        with self.lock:
            task = self.tasks.pop(task_id)
            for pid in task["jobs"]:
                self.jobs.pop(pid, None)
                proc = self._procs.pop(pid, None)
                if proc is not None:
                    _kill_group(proc)

    def calls(self, endpoint: str) -> int:
        with self.lock:
            return sum(1 for r in self.requests if r["endpoint"] == endpoint)

    def task_by_name(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            return next((t for t in self.tasks.values() if t["taskName"] == name), None)

    # ------------------------------------------------------------ REST
    def handle(self, method: str, endpoint: str, query: dict[str, str], body: Any,
               headers: dict[str, str], peer: str) -> tuple[int, Any]:
        auth_header = headers.get("authorization")
        record = {"method": method, "endpoint": endpoint, "bearer": auth_header is not None,
                  "origin": headers.get("origin"), "peer": peer}
        with self.lock:
            self.requests.append(record)
            failure = next((f for f in self.failures if f[0] == endpoint), None)
            if failure is not None:
                self.failures.remove(failure)
        if self.token is not None:
            if auth_header != f"Bearer {self.token}" or headers.get("origin") != self.vo:
                record["auth"] = "refused"
                return 403, {"success": False, "message": "authentication failed", "data": None}
            record["auth"] = "ok"
        if failure is not None:
            how = failure[1]
            if isinstance(how, tuple) and how[0] == "hang":
                time.sleep(how[1])
                return 504, "gateway timeout"
            if how == "false":
                return 200, {"success": False, "message": "injected failure", "data": None}
            return int(how), f"<html>{how} injected server error</html>"
        owner = self._owner()
        route = getattr(self, "_api_" + endpoint.replace("/", "__"), None)
        if route is None:
            return 404, {"success": False, "message": f"no such endpoint {endpoint}", "data": None}
        with self.lock:
            return 200, route(query, body, owner)

    def _owner(self) -> str:
        if self.token is None:
            return "anonymous"
        try:
            payload = self.token.split(".")[1]
            import base64

            return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("sub", "user")
        except Exception:  # noqa: BLE001
            return "user"

    @staticmethod
    def _ok(data: Any, message: str = "") -> dict[str, Any]:
        return {"success": True, "message": message, "data": data}

    @staticmethod
    def _no(message: str, data: Any = None) -> dict[str, Any]:
        return {"success": False, "message": message, "data": data}

    def _api_file_server__upload_cache_file(self, query, body, owner):
        name, data = body
        self.cache[name] = data
        return self._ok(None, f"uploaded {name}")

    def _api_task__submit(self, query, body, owner):
        params = body.get("task_parameters") if isinstance(body, dict) else None
        if not isinstance(params, dict):
            return self._no("no task_parameters", 4)
        missing = [k for k in ("taskName", "vo", "prodSourceLabel", "jobParameters", "site") if k not in params]
        if missing:
            return self._no(f"task parameters lack {missing}", 4)
        if params.get("uniqueTaskName") and any(t["taskName"] == params["taskName"] and t["owner"] == owner
                                                for t in self.tasks.values()):
            return self._no(f"task name {params['taskName']} already used", 2)
        self._next_task += 1
        tid = self._next_task
        self.tasks[tid] = {"jediTaskID": tid, "taskName": params["taskName"], "status": "registered",
                           "superStatus": "registered", "owner": owner, "params": params, "jobs": [],
                           "errorDialog": None, "creationDate": _now(), "modificationTime": _now()}
        return self._ok(tid, f"succeeded. new jediTaskID={tid}")

    def _task(self, query, owner):
        try:
            tid = int(query.get("task_id", ""))
        except ValueError:
            return None
        task = self.tasks.get(tid)
        return task if task is not None and task["owner"] == owner else None

    def _api_task__get_status(self, query, body, owner):
        task = self._task(query, owner)
        return self._ok(task["status"]) if task else self._no("Task not found")

    def _api_task__get_job_ids(self, query, body, owner):
        task = self._task(query, owner)
        return self._ok(list(task["jobs"])) if task else self._no("Task not found")

    def _api_task__kill(self, query, body, owner):
        task = self._task({"task_id": str(body.get("task_id"))}, owner)
        if task is None:
            return self._no("task not found")
        if task["status"] in ("done", "finished", "failed", "broken", "aborted"):
            return self._ok([4, f"irrelevant task status {task['status']}"])
        task["status"], task["modificationTime"] = "aborting", _now()
        task["errorDialog"] = "killed by the owner"
        return self._ok([0, "command is registered. will be executed in a few minutes"])

    def _task_row(self, task):
        row = {k: v for k, v in task.items() if k not in ("params", "jobs", "owner")}
        row.update(superStatus=task["status"], userName=task["owner"], site=task["params"].get("site"),
                   cloud=task["params"].get("cloud"))
        return row

    def _mine_since(self, query, owner):
        since = _parse_time(query.get("since"))
        for task in sorted(self.tasks.values(), key=lambda t: -t["jediTaskID"]):
            if task["owner"] != owner:
                continue
            if since is not None and _parse_time(task["modificationTime"]) < since:
                continue
            yield task

    def _api_task__get_tasks_detailed_info_since(self, query, body, owner):
        filters = json.loads(query["filters"]) if query.get("filters") else {}
        rows = []
        for task in self._mine_since(query, owner):
            row = self._task_row(task)
            if all(str(row.get(k)) == str(v) for k, v in filters.items()):
                rows.append(row)
        return self._ok(rows[: int(query.get("n_tasks", 500))])

    def _api_task__get_tasks_modified_since(self, query, body, owner):
        return self._ok({str(t["jediTaskID"]): list(t["jobs"]) for t in self._mine_since(query, owner)})

    def _api_job__get_description(self, query, body, owner):
        out = []
        for pid in body.get("job_ids", []):
            job = self.jobs.get(int(pid))
            out.append(dict(job) if job is not None and self.tasks.get(job["jediTaskID"], {}).get("owner") == owner
                       else None)
        return self._ok(out)

    def _api_job__kill(self, query, body, owner):
        results = []
        for pid in body.get("job_ids", []):
            job = self.jobs.get(int(pid))
            results.append(job is not None)
            if job is not None:
                self._end_job(job, "cancelled", kill=True)
        return self._ok(results)

    def _api_job__get_metadata_for_analysis_jobs(self, query, body, owner):
        task = self._task(query, owner)
        if task is None:
            return self._no("Task not found")
        return self._ok({str(pid): self.metadata[pid] for pid in task["jobs"] if pid in self.metadata})

    # ------------------------------------------------------------ the pilot
    def _new_job(self, task):
        self._next_job += 1
        pid = self._next_job
        self.jobs[pid] = {"PandaID": pid, "jediTaskID": task["jediTaskID"], "jobStatus": "defined",
                          "computingSite": task["params"].get("site"), "transExitCode": None,
                          "pilotErrorCode": 0, "pilotErrorDiag": None, "prodSourceLabel": "user",
                          "creationTime": _now(), "modificationTime": _now()}
        task["jobs"].append(pid)
        return self.jobs[pid]

    def _pilot_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.pilot_enabled:
                    self._pilot_step()
            except Exception:  # noqa: BLE001 - the pilot must keep going
                import traceback

                traceback.print_exc()
            time.sleep(max(0.02, self.step_delay))

    def _pilot_step(self) -> None:
        starts = []
        with self.lock:
            for task in list(self.tasks.values()):
                status = task["status"]
                touch = True
                if status == "registered":
                    task["status"] = "ready"
                    self._new_job(task)["jobStatus"] = "activated"
                elif status == "ready":
                    task["status"] = "running"
                elif status == "running":
                    job = self.jobs[task["jobs"][-1]]
                    if job["jobStatus"] == "activated":
                        job["jobStatus"] = "starting"
                        starts.append((task, job))
                    elif job["jobStatus"] == "starting" and job["PandaID"] in self._procs:
                        job["jobStatus"] = "running"
                    else:
                        touch = self._reap(task, job)
                elif status == "aborting":
                    for pid in task["jobs"]:
                        if self.jobs[pid]["jobStatus"] not in ("finished", "failed", "cancelled", "closed"):
                            self._end_job(self.jobs[pid], "cancelled", kill=True)
                    task["status"] = "aborted"
                else:
                    touch = False
                if touch:
                    task["modificationTime"] = _now()
        for task, job in starts:
            self._start_payload(task, job)

    def _reap(self, task, job) -> bool:
        proc = self._procs.get(job["PandaID"])
        if proc is None or proc.poll() is None:
            return False
        self._procs.pop(job["PandaID"])
        code = proc.returncode
        workdir = self._dirs.pop(job["PandaID"])
        meta = workdir / "userJobMetadata.json"
        if meta.exists():
            self.metadata[job["PandaID"]] = meta.read_text()
        if code == 0:
            self._end_job(job, "finished")
            job["transExitCode"] = 0
            task["status"] = "done"
        else:
            self._end_job(job, "failed")
            job["transExitCode"] = code
            job["pilotErrorCode"] = 1305
            job["pilotErrorDiag"] = f"User payload failed with exit code {code}"
            task["status"], task["errorDialog"] = "failed", "0/1 files finished; jobs failed"
        if not self.shared_fs:
            shutil.rmtree(workdir, ignore_errors=True)
        return True

    def _end_job(self, job, status, kill=False) -> None:
        job["jobStatus"], job["modificationTime"] = status, _now()
        proc = self._procs.pop(job["PandaID"], None) if kill else None
        if proc is not None:
            _kill_group(proc)
            job["pilotErrorCode"], job["pilotErrorDiag"] = 1144, "Job killed by panda server"

    def _fail_job(self, task, job, code, diag) -> None:
        with self.lock:
            job.update(jobStatus="failed", pilotErrorCode=code, pilotErrorDiag=diag, modificationTime=_now())
            task.update(status="failed", errorDialog=f"job {job['PandaID']} failed: {diag}", modificationTime=_now())

    def _start_payload(self, task, job) -> None:
        params = task["params"]
        for pattern, diag in self.pilot_failures.items():
            if pattern in task["taskName"]:
                self._fail_job(task, job, 1099, diag)
                return
        values = " ".join(p["value"] for p in params["jobParameters"] if p.get("type") == "constant")
        archive = re.search(r"-a (\S+)", values)
        command = re.search(r'-p "(.*)"', values)
        if archive is None or command is None:
            self._fail_job(task, job, 1008, "no sandbox or command in the job parameters")
            return
        try:  # download the sandbox from the server, as a pilot does
            with urllib.request.urlopen(f"{params['sourceURL']}/cache/{archive.group(1)}", timeout=30) as reply:
                data = reply.read()
        except Exception as exc:  # noqa: BLE001
            self._fail_job(task, job, 1099, f"Failed to stage-in the sandbox: {exc}")
            return
        workdir = self._scratch / f"job_{job['PandaID']}"
        workdir.mkdir(parents=True, exist_ok=True)
        tar_path = workdir.parent / f"{job['PandaID']}.tar.gz"
        tar_path.write_bytes(data)
        if self.shared_fs:
            with tarfile.open(tar_path) as tar:
                names = {m.name: m for m in tar.getmembers()}
                cmd = json.loads(tar.extractfile(names["aid2e_panda_command.json"]).read())
            # the site sees the controller's files: run where the trial's params file lives
            trial_dir = _trial_dir_of(cmd)
            if trial_dir is not None:
                workdir = trial_dir
        with tarfile.open(tar_path) as tar:
            tar.extractall(workdir, filter="data")
        tar_path.unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PANDA_", "OIDC_", "X509_"))}
        proc = subprocess.Popen(["bash", "-c", unquote(command.group(1))], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=open(workdir / "pilot_stdout.txt", "ab"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        with self.lock:
            if job["jobStatus"] != "starting":  # killed meanwhile
                _kill_group(proc)
                return
            self._procs[job["PandaID"]] = proc
            self._dirs[job["PandaID"]] = workdir


def _trial_dir_of(command: dict) -> Path | None:
    """The trial directory on the controller (shared file system mode), from the params file."""
    return Path(command["trial_dir"]) if command.get("trial_dir") else None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


class _Handler(BaseHTTPRequestHandler):
    server_state: FakePandaServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _reply(self, code: int, payload: Any, raw: bytes | None = None) -> None:
        body = raw if raw is not None else (
            json.dumps(payload).encode() if not isinstance(payload, str) else payload.encode())
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self, method: str) -> None:
        parsed = urlparse(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if method == "GET" and parsed.path.startswith("/cache/"):
            data = self.server_state.cache.get(parsed.path[len("/cache/"):])
            return self._reply(200, None, data) if data is not None else self._reply(404, "not found")
        if not parsed.path.startswith(API):
            return self._reply(404, "not found")
        endpoint = parsed.path[len(API):]
        query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
        body: Any = None
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            head = b"Content-Type: " + ctype.encode() + b"\r\n\r\n"
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
            part = next(p for p in message.iter_parts() if p.get_filename())
            body = (os.path.basename(part.get_filename()), part.get_payload(decode=True))
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        code, payload = self.server_state.handle(method, endpoint, query, body, headers, self.client_address[0])
        self._reply(code, payload)

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")
