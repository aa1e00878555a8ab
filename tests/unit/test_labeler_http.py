"""HTTP readings every backend shares (`labelers.http`): retry hints, status codes, transport errors."""

from __future__ import annotations

import email.utils
import time


try:  # the HTTP client under both SDKs: httpx2 here, httpx elsewhere
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx

from mikupal.labelers.base import AUTH_ERROR, BAD_REQUEST, CONNECTION_ERROR, RATE_LIMITED, SERVER_ERROR, TIMEOUT
from mikupal.labelers.gemini import GEMINI_SERVER_CODES
from mikupal.labelers.http import retry_after_header, status_error, transport_error


def test_retry_after_in_seconds_milliseconds_or_a_date():
    assert retry_after_header(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert retry_after_header(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_header({"retry-after": when}) <= 30
    assert retry_after_header({"retry-after": "soon"}) is None and retry_after_header(None) is None


def test_status_codes_retried_or_final():
    e = status_error(429, "slow down", 2.0)
    assert (e.reason, e.retryable, e.retry_after, e.fatal) == (RATE_LIMITED, True, 2.0, False)
    assert status_error(503, "busy", None).reason == SERVER_ERROR
    assert status_error(408, "late", None).reason == TIMEOUT
    assert (status_error(401, "who", None).reason, status_error(401, "who", None).fatal) == (AUTH_ERROR, True)
    bad_key = status_error(400, "API_KEY_INVALID", None, auth=True)
    assert (bad_key.reason, bad_key.fatal) == (AUTH_ERROR, True)
    assert status_error(429, "slow", None, auth=True).reason == RATE_LIMITED  # a rate limit is not a bad key
    plain = status_error(400, "bad", None)
    assert (plain.reason, plain.retryable, plain.fatal) == (BAD_REQUEST, False, False)
    # any 5xx is the server's fault for OpenAI-compatible servers; Gemini retries only the four it documents
    assert status_error(501, "no", None).reason == SERVER_ERROR
    assert status_error(501, "no", None, server_codes=GEMINI_SERVER_CODES).reason == BAD_REQUEST


def test_transport_errors_are_retried_and_others_are_not_mapped():
    t = transport_error(httpx.ReadTimeout("read"))
    c = transport_error(httpx.ConnectError("refused"))
    assert (t.reason, t.retryable, c.reason, c.retryable) == (TIMEOUT, True, CONNECTION_ERROR, True)
    assert transport_error(ValueError("bug")) is None
