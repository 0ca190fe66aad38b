"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for judge tests.

``JudgeServer(script, default)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models``
from a real ``ThreadingHTTPServer`` on a free port, in a background thread. Each POST takes
the next behaviour from ``script`` (then ``default``). Behaviours:

- ``("good", {token: prob, ...})``: 200 with ``choices[0].logprobs.content[0].top_logprobs``
  built from those first-token probabilities (text = the most likely token);
- ``("nologprobs", text)``: 200 with the text only (``logprobs: null``);
- ``("text", text)``: 200 with logprobs whose tokens are the text (no numbers);
- ``("malformed", None)``: 200 with a truncated JSON body;
- ``("429", seconds)``: 429 with ``Retry-After: seconds``;
- ``("500", None)``: 500;
- ``("slow", seconds)``: sleep, then a good answer (for client timeouts);
- ``("reject_logprobs", None)``: 400 "logprobs are not supported" when logprobs were asked,
  else a good text answer "42".

Every request is recorded (``server.requests``: path, headers, JSON body, start/end times).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Behaviour = tuple[str, Any]
GOOD = (
    "good",
    {"80": 0.5, "90": 0.3, " 90": 0.1, "Sure": 0.1},
)  # score (80*.5 + 90*.4)/.9 = 84.44, mass 0.9


def _completion(text: str, top: dict[str, float] | None, model: str) -> dict[str, Any]:
    logprobs = None
    if top is not None:
        entries = [
            {"token": t, "logprob": math.log(p), "bytes": list(t.encode())}
            for t, p in sorted(top.items(), key=lambda kv: -kv[1])
        ]
        logprobs = {
            "content": [
                {
                    "token": entries[0]["token"],
                    "logprob": entries[0]["logprob"],
                    "bytes": entries[0]["bytes"],
                    "top_logprobs": entries,
                }
            ]
        }
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
    }


class JudgeServer:
    """Context manager running the scripted server; ``base_url`` ends in ``/v1``."""

    def __init__(self, script: Iterable[Behaviour] = (), default: Behaviour = GOOD) -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def do_GET(self) -> None:
                with server._lock:
                    record = {"path": self.path, "headers": dict(self.headers)}
                    server.requests.append(record)
                if self.path.rstrip("/").endswith("/models"):
                    body = {"object": "list", "data": [{"id": "judge-model", "object": "model"}]}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                start = time.monotonic()
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    kind, arg = server.script.pop(0) if server.script else server.default
                    record = {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": body,
                        "start": start,
                        "behaviour": kind,
                    }
                    server.requests.append(record)
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    self._respond(kind, arg, body)
                finally:
                    with server._lock:
                        server.active -= 1
                    record["end"] = time.monotonic()

            def _respond(self, kind: str, arg: Any, body: dict[str, Any]) -> None:
                model = body.get("model", "?")
                if kind == "slow":
                    time.sleep(arg)
                    kind, arg = GOOD
                if kind == "delay":  # a good answer after a short pause (concurrency tests)
                    time.sleep(arg)
                    kind, arg = GOOD
                if kind == "good":
                    text = max(arg, key=arg.get)
                    top = arg if body.get("logprobs") else None
                    self._send(200, json.dumps(_completion(text, top, model)).encode())
                elif kind == "nologprobs":
                    self._send(200, json.dumps(_completion(arg, None, model)).encode())
                elif kind == "text":
                    top = {arg: 0.7, "I": 0.2, "The": 0.1}
                    self._send(200, json.dumps(_completion(arg, top, model)).encode())
                elif kind == "malformed":
                    self._send(200, json.dumps(_completion("50", None, model)).encode()[:37])
                elif kind == "429":
                    self._send(429, b'{"error": "rate limited"}', {"Retry-After": str(arg)})
                elif kind == "500":
                    self._send(500, b'{"error": "internal"}')
                elif kind == "reject_logprobs":
                    if body.get("logprobs"):
                        self._send(400, b'{"error": "logprobs are not supported"}')
                    else:
                        self._send(200, json.dumps(_completion("42", None, model)).encode())
                else:
                    raise ValueError(f"unknown behaviour {kind!r}")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]
