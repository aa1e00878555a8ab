"""What every backend reads the same way from HTTP: the server's retry hint (`Retry-After`,
`retry-after-ms`), the status codes that are worth a retry, and transport errors (httpx) as
`LabelerError`s with stable reasons. Service-specific readings (Google's `RetryInfo` and daily
quotas, OpenAI's `insufficient_quota`) stay in their backend, checked before `status_error`."""

from __future__ import annotations

import email.utils
import time
from typing import Any, Container, Optional

from .base import AUTH_ERROR, BAD_REQUEST, CONNECTION_ERROR, RATE_LIMITED, SERVER_ERROR, TIMEOUT, LabelerError

#: 5xx codes that are the server's fault, hence retried (default: every 5xx)
SERVER_CODES = range(500, 600)


def retry_after_header(headers: Any) -> Optional[float]:
    """HTTP `Retry-After` (seconds or an HTTP date) and OpenAI's `retry-after-ms`, in seconds."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
    except Exception:  # noqa: BLE001
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def status_error(
    code: int, msg: str, hint: Optional[float], *, server_codes: Container[int] = SERVER_CODES, auth: bool = False
) -> LabelerError:
    """An HTTP error status -> LabelerError: 429, 5xx and 408 are retried (after `hint` seconds when
    the server gave one); 401/403 (or `auth`: the body says the key is bad) stop every request."""
    if code == 429:
        return LabelerError(RATE_LIMITED, msg, retryable=True, retry_after=hint)
    if code in server_codes:
        return LabelerError(SERVER_ERROR, msg, retryable=True, retry_after=hint)
    if code == 408:
        return LabelerError(TIMEOUT, msg, retryable=True, retry_after=hint)
    if code in (401, 403) or auth:
        return LabelerError(AUTH_ERROR, msg, fatal=True)
    return LabelerError(BAD_REQUEST, msg)


def _httpx_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    timeouts: list[type] = []
    transport: list[type] = []
    for name in ("httpx", "httpx2"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        transport.append(mod.TransportError)
    return tuple(timeouts), tuple(transport)


_TIMEOUTS, _TRANSPORT = _httpx_errors()


def transport_error(e: BaseException) -> Optional[LabelerError]:
    """A timeout or a broken connection below the SDK (httpx) -> a retried LabelerError; None otherwise."""
    if _TIMEOUTS and isinstance(e, _TIMEOUTS):
        return LabelerError(TIMEOUT, f"{type(e).__name__}: the request timed out", retryable=True)
    if _TRANSPORT and isinstance(e, _TRANSPORT):
        return LabelerError(CONNECTION_ERROR, f"{type(e).__name__}: {e}", retryable=True)
    return None
