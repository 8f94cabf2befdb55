"""Check the PanDA credentials before any trial is generated: an OIDC token or an X.509 proxy.

The mode is panda-client's: ``PANDA_AUTH=oidc`` uses a token (``PANDA_AUTH_ID_TOKEN``, a file
named by ``OIDC_AUTH_TOKEN_FILE``, or ``OIDC_AUTH_ID_TOKEN``) sent as ``Authorization: Bearer``
with ``Origin: <PANDA_AUTH_VO>``; anything else uses the grid proxy in ``X509_USER_PROXY``
(default ``/tmp/x509up_u<uid>``) as the TLS client certificate.

Errors name the variable or file to fix, never a token's value.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import ssl
import time
from typing import Any

from attrs import frozen

from aid2e.errors import ConfigError

#: A credential that expires sooner than this is refused (a campaign lasts hours).
DEFAULT_MIN_VALIDITY = 600.0
TOKEN_VARIABLES = ("PANDA_AUTH_ID_TOKEN", "OIDC_AUTH_TOKEN_FILE", "OIDC_AUTH_ID_TOKEN")


@frozen
class Credentials:
    """What :func:`check_credentials` found: the mode, where the credential came from, until when."""

    mode: str  # "oidc" | "x509"
    source: str  # the variable or file name (never the token)
    expires_at: float | None
    vo: str | None = None


def auth_mode() -> str:
    return "oidc" if os.environ.get("PANDA_AUTH") == "oidc" else "x509"


def check_credentials(min_validity: float = DEFAULT_MIN_VALIDITY, now: float | None = None) -> Credentials:
    """The credentials panda-client will use, or a one-line ConfigError saying what to fix."""
    now = time.time() if now is None else now
    if auth_mode() == "oidc":
        return _check_token(min_validity, now)
    return _check_proxy(min_validity, now)


def _check_token(min_validity: float, now: float) -> Credentials:
    vo = os.environ.get("PANDA_AUTH_VO") or os.environ.get("OIDC_AUTH_VO")
    if not vo:
        raise ConfigError("PANDA_AUTH=oidc needs the virtual organisation in $PANDA_AUTH_VO (e.g. wlcg)")
    token, source = None, None
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name)
        if not value:
            continue
        if name == "OIDC_AUTH_TOKEN_FILE":
            try:
                with open(value) as handle:
                    token = handle.read()
            except OSError as exc:
                raise ConfigError(f"cannot read the PanDA token file ${name} ({value}): {exc.strerror}") from exc
            source = f"${name} ({value})"
            if token != token.strip():
                raise ConfigError(
                    f"the PanDA token file ${name} ({value}) has whitespace or a newline around the token, "
                    "which panda-client sends as part of the Authorization header; write the token alone "
                    "(e.g. printf %s \"$TOKEN\" > file)"
                )
        else:
            token, source = value, f"${name}"
        break
    if source is None:
        raise ConfigError(
            "PANDA_AUTH=oidc but no token: set $PANDA_AUTH_ID_TOKEN or $OIDC_AUTH_TOKEN_FILE "
            "(panda-client would otherwise start an interactive login, which a batch campaign cannot answer)"
        )
    token = (token or "").strip()
    if not token:
        raise ConfigError(f"the PanDA token in {source} is empty")
    claims = _jwt_claims(token)
    expires = claims.get("exp") if claims else None
    if isinstance(expires, (int, float)) and not isinstance(expires, bool):
        if expires <= now:
            raise ConfigError(f"the PanDA token in {source} expired at {_utc(expires)}; get a new one")
        if expires - now < min_validity:
            raise ConfigError(f"the PanDA token in {source} expires at {_utc(expires)}, in less than "
                              f"{min_validity:.0f} s; get a new one before starting the campaign")
        return Credentials(mode="oidc", source=source, expires_at=float(expires), vo=vo)
    return Credentials(mode="oidc", source=source, expires_at=None, vo=vo)


def secrets() -> list[str]:
    """The token values in the environment (to keep them out of messages)."""
    values = [os.environ.get("PANDA_AUTH_ID_TOKEN"), os.environ.get("OIDC_AUTH_ID_TOKEN")]
    path = os.environ.get("OIDC_AUTH_TOKEN_FILE")
    if path:
        try:
            with open(path) as handle:
                values.append(handle.read())
        except OSError:
            pass
    return [v.strip() for v in values if v and len(v.strip()) >= 8]


def redact(text: str) -> str:
    """``text`` without bearer tokens or any token value from the environment."""
    text = re.sub(r"(Bearer\s+)[^\s'\"]+", r"\1***", text)
    for secret in secrets():
        text = text.replace(secret, "***")
    return text


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (not verified: only its expiry is read), None if not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def proxy_path() -> tuple[str, str]:
    """The proxy file panda-client uses and how it was found."""
    path = os.environ.get("X509_USER_PROXY")
    if path:
        return path, "$X509_USER_PROXY"
    return f"/tmp/x509up_u{os.getuid()}", "the default proxy location"


def _check_proxy(min_validity: float, now: float) -> Credentials:
    path, how = proxy_path()
    if not os.path.exists(path):
        raise ConfigError(
            f"no grid proxy at {path} ({how}); create one (voms-proxy-init -voms <vo>) or use a token "
            "with PANDA_AUTH=oidc"
        )
    if not os.access(path, os.R_OK):
        raise ConfigError(f"the grid proxy {path} ({how}) is not readable")
    not_after = proxy_expiry(path)
    if not_after is not None:
        if not_after <= now:
            raise ConfigError(f"the grid proxy {path} ({how}) expired at {_utc(not_after)}; renew it "
                              "(voms-proxy-init)")
        if not_after - now < min_validity:
            raise ConfigError(f"the grid proxy {path} ({how}) expires at {_utc(not_after)}, in less than "
                              f"{min_validity:.0f} s; renew it (voms-proxy-init)")
    return Credentials(mode="x509", source=path, expires_at=not_after)


def proxy_expiry(path: str) -> float | None:
    """notAfter of the first certificate in a PEM proxy file (None if it cannot be read)."""
    try:
        decoded = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a PEM certificate: let the server judge it
        return None
    not_after = decoded.get("notAfter")
    if not not_after:
        return None
    try:
        return float(ssl.cert_time_to_seconds(not_after))
    except ValueError:
        return None


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
