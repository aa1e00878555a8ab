"""Preflight: before any stage runs, ask the labeler service (about a second) whether the key is
accepted and the configured model is served, and check that the model has a price.

    preflight(cfg)            # `mikupal run`, `mikupal label`, `mikupal evaluate ... labeler=...`
    served_models(cfg.labeler)  # `mikupal models --labeler`

Gemini: `client.models.get(model)` (GET v1beta/models/{id}); OpenAI-compatible servers:
`GET /v1/models` (OpenAI, vLLM and Ollama all answer it) and the id must be listed. Any failure is
one line (UserError, exit 2) that names the model and says how to list the served ones. A model
without a price: costs are null and a warning names `labeler.prices.<id>`; with `labeler.max_usd`
set the run refuses to start (the cap could not see any spend).
"""

from __future__ import annotations

import logging
import time
from typing import Optional

from ..config import LabelerConfig
from ..errors import UserError
from .base import AUTH_ERROR, MODEL_NOT_FOUND, LabelerError, read_api_key

log = logging.getLogger("mikupal.labelers")

PREFLIGHT_TIMEOUT_S = 15.0
ATTEMPTS = 3  # a transient 5xx or connection error is asked again (1 s apart) before giving up
LIST_HINT = "`mikupal models --labeler` lists the served ones"


def check_price(lc: LabelerConfig) -> None:
    """No price: refuse with max_usd (it could not be enforced), else warn that costs are null."""
    if lc.kind == "none" or lc.price() is not None:
        return
    key = f"labeler.prices.{lc.model}"
    how = (f"set {key} (USD per 1M tokens) in conf/labeler/{lc.kind}.yaml or on the command line: "
           f"'+labeler.prices={{{lc.model}: {{text: X, image: X, video: X, audio: X, output: Y}}}}'")
    if lc.max_usd is not None:
        raise UserError(f"cannot enforce max_usd without a price for {lc.model}: {how}")
    log.warning("no price for %s: segment costs are null (unknown), not 0; %s", lc.model, how)


def _service(lc: LabelerConfig) -> str:
    if lc.kind == "gemini":
        return lc.base_url or "the Gemini API"
    return lc.base_url or "api.openai.com"


def _key(lc: LabelerConfig) -> Optional[str]:
    key = read_api_key(lc)
    if lc.kind == "gemini" and not key:
        raise UserError(f"labeler=gemini needs an API key: set {lc.api_key_env} or labeler.api_key_file=PATH "
                        "(or labeler=none to write the dataset unlabeled, then `mikupal label`)")
    if lc.kind == "openai" and not key and not lc.base_url:
        raise UserError(f"labeler=openai needs an API key for api.openai.com: set {lc.api_key_env} or "
                        "labeler.api_key_file=PATH (a local server needs labeler.base_url=http://HOST:PORT/v1)")
    return key


def _redact(text: str, key: Optional[str]) -> str:
    return text.replace(key, "***") if key else text


def _ask(lc: LabelerConfig, key: Optional[str], call):
    """Run one service call; map its failure to a LabelerError; retry transient ones."""
    for attempt in range(ATTEMPTS):
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - mapped below
            err = _map(lc, e)
            if not err.retryable or attempt == ATTEMPTS - 1:
                raise LabelerError(err.reason, _redact(err.message, key)) from None
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _map(lc: LabelerConfig, e: BaseException) -> LabelerError:
    if isinstance(e, LabelerError):
        return e
    if lc.kind == "gemini":
        from .gemini import map_error
    else:
        from .openai_compat import map_error
    try:
        return map_error(e)
    except Exception:  # noqa: BLE001 - not an SDK error: say what it was
        return LabelerError("labeler_preflight", f"{type(e).__name__}: {e}")


def _fail(lc: LabelerConfig, err: LabelerError) -> UserError:
    where = _service(lc)
    if err.reason == MODEL_NOT_FOUND:
        return UserError(f"labeler.model={lc.model} is not served by {where} ({err.message}); {LIST_HINT}")
    if err.reason == AUTH_ERROR:
        return UserError(f"labeler={lc.kind}: {where} rejected the API key from "
                         f"{lc.api_key_file or lc.api_key_env} ({err.message})")
    return UserError(f"labeler={lc.kind}: cannot check labeler.model={lc.model} at {where} ({err.message})")


def _gemini_model(lc: LabelerConfig, key: str) -> None:
    from .gemini import make_client

    client = make_client(lc, key, PREFLIGHT_TIMEOUT_S)
    model = _ask(lc, key, lambda: client.models.get(model=lc.model))
    actions = getattr(model, "supported_actions", None)
    if actions and "generateContent" not in actions:
        raise LabelerError(MODEL_NOT_FOUND, f"models/{lc.model} does not support generateContent")


def _openai_ids(lc: LabelerConfig, key: Optional[str]) -> list[str]:
    from openai import OpenAI

    client = OpenAI(api_key=key or "not-needed", base_url=lc.base_url, max_retries=0, timeout=PREFLIGHT_TIMEOUT_S)
    return sorted(m.id for m in _ask(lc, key, lambda: list(client.models.list())))


def preflight(lc: LabelerConfig) -> None:
    """Stop now, in one line, if labeling cannot work: no key, a rejected key, an unserved model,
    or max_usd without a price. No-op for labeler=none and for batch files (no request is sent)."""
    if lc.kind == "none":
        return
    check_price(lc)
    if lc.batch:
        return
    key = _key(lc)
    try:
        if lc.kind == "gemini":
            assert key is not None
            _gemini_model(lc, key)
        elif lc.model not in (ids := _openai_ids(lc, key)):
            raise LabelerError(MODEL_NOT_FOUND, f"not among the {len(ids)} models GET /v1/models lists")
    except LabelerError as e:
        raise _fail(lc, e) from None
    log.info("preflight: %s serves %s", _service(lc), lc.model)


def served_models(lc: LabelerConfig) -> list[str]:
    """The model ids the configured service serves (`mikupal models --labeler`)."""
    if lc.kind == "none":
        raise UserError("labeler=none has no service to ask (choose labeler=gemini or labeler=openai)")
    key = _key(lc)
    try:
        if lc.kind == "openai":
            return _openai_ids(lc, key)
        from .gemini import make_client

        assert key is not None
        client = make_client(lc, key, PREFLIGHT_TIMEOUT_S)
        models = _ask(lc, key, lambda: list(client.models.list(config={"page_size": 100})))
    except LabelerError as e:
        raise _fail(lc, e) from None
    return sorted((m.name or "").removeprefix("models/") for m in models if m.name)
