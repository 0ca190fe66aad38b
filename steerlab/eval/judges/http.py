"""Judge backend for any OpenAI-compatible chat-completions endpoint (vLLM, hosted APIs).

``POST {base_url}/chat/completions`` with ``temperature`` 0, a few ``max_tokens`` and, where
the server offers them, ``logprobs``/``top_logprobs`` (a server that rejects them with HTTP
400 is asked again without, and the text is parsed instead). Requests run on
``concurrency`` threads under a shared rate limit, retry (tenacity) with exponential backoff
on HTTP 429 / 408 / 5xx, timeouts, connection errors and malformed bodies (honouring
``Retry-After``), and land in an on-disk cache (:class:`~steerlab.eval.judges.cache.
CompletionCache`). After the last retry a request becomes a failed :class:`Completion`,
never an exception. The API key is read from an environment variable at request time and
sent as ``Authorization: Bearer``; it is never stored in the cache, ``repr`` or logs.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import tenacity

from steerlab.eval.judges.backends import Completion, Messages
from steerlab.eval.judges.cache import CompletionCache, cache_key

__all__ = ["HTTPBackend"]

logger = logging.getLogger(__name__)
_RETRY_STATUS = frozenset({408, 409, 425, 429})


class _Retryable(Exception):
    """A failed attempt worth retrying, with the server's ``Retry-After`` delay if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _RetryAfterOrExponential(tenacity.wait.wait_base):
    """tenacity wait: the server's ``Retry-After`` when it sent one, else ``backoff × 2^i``
    for the i-th retry; both capped at ``max_backoff`` seconds."""

    def __init__(self, backoff: float, max_backoff: float) -> None:
        self.exponential = tenacity.wait_exponential(multiplier=backoff, max=max_backoff)
        self.max_backoff = max_backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_backoff)
        return self.exponential(retry_state)


class _RateLimiter:
    """At most ``rate`` request starts per second, shared by all threads."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if not rate else 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.interval == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), else None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse(body: Any) -> Completion:
    """A :class:`Completion` from chat-completions JSON; raises on a malformed body."""
    choice = body["choices"][0]
    text = choice["message"]["content"]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise TypeError(f"message.content is {type(text).__name__}, expected a string")
    top: dict[str, float] | None = None
    logprobs = choice.get("logprobs")
    if logprobs and logprobs.get("content"):
        top = {}
        for entry in logprobs["content"][0].get("top_logprobs") or []:
            token, lp = str(entry["token"]), float(entry["logprob"])
            top[token] = max(lp, top.get(token, float("-inf")))
        top = top or None
    return Completion(text=text, top_logprobs=top)


class HTTPBackend:
    """An OpenAI-compatible chat-completions judge backend.

    Args:
        base_url: the API root, e.g. ``http://localhost:8000/v1`` or
            ``https://api.openai.com/v1`` (``/chat/completions`` is appended).
        model: the served model name.
        api_key_env: environment variable holding the API key (unset: no Authorization
            header, as a local vLLM server needs none).
        concurrency: number of requests in flight at once (threads).
        rate_limit: most request starts per second (``None``: unlimited).
        max_retries: retries after the first attempt.
        backoff: first retry delay in seconds, doubled per retry, capped at ``max_backoff``.
            A ``Retry-After`` header overrides it (also capped).
        timeout: read timeout per request in seconds.
        connect_timeout: connect timeout in seconds (also bounds :meth:`check`).
        cache_dir: on-disk completion cache, or ``None`` for none.
        max_tokens: tokens to generate (enough for "100" or "REFUSAL").
        top_logprobs: how many top log-probabilities to ask for (OpenAI allows up to 20).
        vision: the model takes images (sent as base64 ``image_url`` parts).

    Raises:
        ValueError: bad settings (empty URL or model, concurrency < 1, ...).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 4,
        rate_limit: float | None = None,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 60.0,
        connect_timeout: float = 3.0,
        cache_dir: str | os.PathLike | None = None,
        max_tokens: int = 5,
        top_logprobs: int = 20,
        vision: bool = False,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if not (isinstance(concurrency, int) and concurrency >= 1):
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if rate_limit is not None and not rate_limit > 0:
            raise ValueError(f"rate_limit must be > 0 requests/s or None, got {rate_limit!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_tokens = max_tokens
        self.top_logprobs = top_logprobs
        self.vision = vision
        self.logprobs = top_logprobs > 0
        self.name = f"http:{model}"
        self.cache = CompletionCache(cache_dir) if cache_dir is not None else None
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        self._limiter = _RateLimiter(rate_limit)
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._connect_timeout = connect_timeout
        self._client = httpx.Client(
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def __repr__(self) -> str:
        return f"HTTPBackend(base_url={self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": 0.0}
        if self.logprobs:
            params.update(logprobs=True, top_logprobs=self.top_logprobs)
        return params

    def check(self) -> None:
        """Fail fast: ``GET {base_url}/models`` within ``connect_timeout`` seconds.

        Raises:
            ConnectionError: the endpoint is unreachable (refused, DNS, timeout).
            PermissionError: the server rejects the API key (HTTP 401/403).
        """
        url = f"{self.base_url}/models"
        try:
            r = self._client.get(
                url, headers=self._headers(), timeout=httpx.Timeout(self._connect_timeout)
            )
        except httpx.HTTPError as exc:
            raise ConnectionError(
                f"judge endpoint {self.base_url} is unreachable ({type(exc).__name__}: {exc}); "
                f"expected an OpenAI-compatible server answering GET {url} within "
                f"{self._connect_timeout:g} s. Is the server running and the base_url right?"
            ) from exc
        if r.status_code in (401, 403):
            where = f"${self.api_key_env}" if self.api_key_env else "no API key configured"
            raise PermissionError(
                f"judge endpoint {self.base_url} rejected the API key (HTTP {r.status_code}); "
                f"the key is read from {where}"
            )
        if r.status_code >= 400:
            logger.warning("GET %s answered HTTP %d; continuing", url, r.status_code)

    def _attempt(self, messages: Messages) -> Completion:
        """One request. Returns a parsed or finally-failed :class:`Completion`; raises
        :class:`_Retryable` for what is worth another attempt."""
        while True:
            self._limiter.wait()
            payload = {"model": self.model, "messages": messages, **self._params()}
            with self._count_lock:
                self.requests_sent += 1
            try:
                r = self._client.post(
                    f"{self.base_url}/chat/completions", json=payload, headers=self._headers()
                )
            except httpx.TimeoutException as exc:
                raise _Retryable(f"timeout ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from exc
            if r.status_code == 400 and self.logprobs and "logprob" in r.text.lower():
                logger.warning("%s rejects logprobs; parsing text instead", self.base_url)
                self.logprobs = False
                continue  # not a failed attempt: ask again without logprobs
            if r.status_code == 200:
                try:
                    return _parse(r.json())
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise _Retryable(f"malformed response ({type(exc).__name__}: {exc})") from exc
            if r.status_code in _RETRY_STATUS or r.status_code >= 500:
                raise _Retryable(f"HTTP {r.status_code}: {r.text[:200]}", _retry_after(r))
            return Completion.failed(f"HTTP {r.status_code}: {r.text[:200]}")

    def _post(self, messages: Messages) -> Completion:
        """One request with retries (tenacity); a failed Completion after the last one."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=_RetryAfterOrExponential(self.backoff, self.max_backoff),
            reraise=True,
        )
        try:
            return retrying(self._attempt, messages)
        except _Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", self.max_retries + 1)
            return Completion.failed(f"gave up after {attempts} attempts: {exc.reason}")

    def _one(self, messages: Messages) -> Completion:
        if self.cache is None:
            return self._post(messages)
        key = cache_key(self.model, messages, self._params())
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        result = self._post(messages)
        self.cache.put(key, result)  # no-op for failures
        # if the server refused logprobs meanwhile, also key it by what was finally asked
        final = cache_key(self.model, messages, self._params())
        if final != key:
            self.cache.put(final, result)
        return result

    def complete(self, requests: Sequence[Messages]) -> list[Completion]:
        """Run the requests ``concurrency`` at a time; one Completion each, in order."""
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))
