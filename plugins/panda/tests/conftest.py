"""Fixtures of the PanDA backend's tests: one loopback stand-in PanDA server for the session.

panda-client reads the server address from the environment once, when first imported, so the
server (bound to 127.0.0.1) is started and its address put in ``os.environ`` before any test
imports panda-client; credentials are set per test with monkeypatch. A guard refuses every
socket connection that is not to the loopback interface, so no test can reach the network.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import sys

import pytest

from aid2e_panda.testing import FakePandaServer

VO = "wlcg"


#: Expiry of the tests' good token: 2100-01-01, so no clock is read when the token is made (at
#: import) and no test depends on how long the suite took to reach it.
FAR_FUTURE = 4_102_444_800


def make_token(sub: str = "aid2e-tester", exp: float = FAR_FUTURE) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": sub, "exp": int(exp)}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


TOKEN = make_token()


def _loopback_only(connect):
    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise ConnectionRefusedError(f"test guard: connection to {host} refused (loopback only)")
        return connect(self, address)

    return guarded


@pytest.fixture(scope="session")
def panda_server():
    server = FakePandaServer(token=TOKEN, vo=VO).start()
    saved = {k: os.environ.get(k) for k in server.environment()}
    if "pandaclient.Client" in sys.modules:  # pragma: no cover - someone imported it first
        pytest.fail("pandaclient.Client was imported before the fake server's address was set")
    os.environ.update(server.environment())
    from pandaclient import Client

    for url in (Client.server_base_path_ssl, Client.server_base_path, Client.baseURLCSRVSSL):
        assert url.startswith("http://127.0.0.1:"), f"panda-client would talk to {url}"
    yield server
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _loopback_only(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _loopback_only(socket.socket.connect_ex))


@pytest.fixture
def server(panda_server, monkeypatch, tmp_path):
    """The session's server, reset to its defaults, with OIDC credentials in the environment
    and a grid node environment (``init_env``) that finds this interpreter as ``python3``."""
    for name in ("PANDA_AUTH", "PANDA_AUTH_VO", "PANDA_AUTH_ID_TOKEN", "OIDC_AUTH_TOKEN_FILE", "OIDC_AUTH_ID_TOKEN",
                 "OIDC_AUTH_VO", "X509_USER_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PANDA_AUTH", "oidc")
    monkeypatch.setenv("PANDA_AUTH_VO", VO)
    monkeypatch.setenv("PANDA_AUTH_ID_TOKEN", TOKEN)
    monkeypatch.setenv("PANDA_NICKNAME", "tester")
    with panda_server.lock:
        panda_server.token, panda_server.vo = TOKEN, VO
        panda_server.shared_fs = False
        panda_server.pilot_enabled = True
        panda_server.failures.clear()
        panda_server.pilot_failures.clear()
        panda_server.requests.clear()
    yield panda_server
    with panda_server.lock:
        panda_server.pilot_enabled = True
        panda_server.failures.clear()


def node_bin(tmp_path_factory) -> str:
    """A directory with ``python3`` -> this interpreter (the grid node's Python with aid2e)."""
    path = tmp_path_factory.mktemp("node-bin")
    (path / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (path / "python3").chmod(0o755)
    return str(path)


@pytest.fixture(scope="session")
def init_env(tmp_path_factory) -> str:
    """What a user's init_env does on the node (here: put a Python with aid2e first on PATH)."""
    return f'export PATH="{node_bin(tmp_path_factory)}:$PATH"'


FAST = {"poll_interval": 0.1, "attempts": 3, "backoff": 0.01, "max_backoff": 0.05}
