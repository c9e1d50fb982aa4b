"""A real OpenAI-compatible chat-completions HTTP server on 127.0.0.1, for tests.

It speaks ``POST /v1/chat/completions`` (plain JSON and Server-Sent Events streaming)
over a real socket, so the real ``openai`` SDK talks to it exactly as it would to
OpenRouter. What it does for a request is chosen by a keyword in the last user message
(so one running server can fail one request and answer the next), or by ``mode`` for
every request:

==================  ==========================================================
``fake:long``       a long answer (``long_words`` words, several paragraphs)
``fake:slow``       a normal answer streamed word by word with a pause between
                    (``fake:slow fake:say TEXT``: TEXT, streamed the same way)
``fake:control``    an answer full of control characters and CR/LF injection
``fake:say TEXT``   exactly TEXT (a literal ``\\n`` in it becomes a line break)
``fake:401``        401 invalid API key (also sent when the Bearer key is wrong)
``fake:402``        402 insufficient credits (OpenRouter's wording)
``fake:429``        429 rate limited
``fake:500``        500 internal server error
``fake:stall``      accept the request, then say nothing for ``stall_seconds``
``fake:broken``     start a chunked stream, send some words, close mid-chunk
==================  ==========================================================

Otherwise the answer echoes the last user message: ``echo: <content>``. Every request
is recorded (path, headers, parsed body) so a test can assert on the system prompt and
the context the bot sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEHAVIOURS = ("long", "slow", "control", "say", "401", "402", "429", "500", "stall", "broken")

_ERRORS: dict[str, tuple[int, str, str]] = {
    "401": (401, "invalid_api_key", "Incorrect API key provided."),
    "402": (402, "insufficient_credits", "Insufficient credits. Add more using the dashboard."),
    "429": (429, "rate_limit_exceeded", "Rate limit exceeded: free-models-per-min."),
    "500": (500, "server_error", "The server had an error while processing your request."),
}


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    behaviour: str
    at: float = field(default_factory=time.monotonic)
    done_at: float | None = None  # when the response was complete (None while in flight)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def system_prompt(self) -> str:
        """The first system message's content ('' when none was sent)."""
        for m in self.messages:
            if m.get("role") == "system":
                return str(m.get("content") or "")
        return ""

    @property
    def last_user(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return str(m.get("content") or "")
        return ""

    @property
    def all_text(self) -> str:
        """Every message's content joined, for 'was this in the context' assertions."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)


def long_answer(words: int) -> str:
    """A deterministic long answer: numbered words in paragraphs of 100 (longer than a line)."""
    parts = []
    for i in range(1, words + 1):
        parts.append(f"word{i}")
        if i % 100 == 0 and i != words:
            parts.append("\n\n")
    return " ".join(parts).replace(" \n\n ", "\n\n")


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAIHTTPServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead of stderr."""

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": self.server.fake.model}]})
        else:
            self._send_json(404, _error_body(404, "not_found", f"no route {self.path}"))

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, _error_body(400, "invalid_json", "body is not JSON"))
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, _error_body(404, "not_found", f"no route {self.path}"))
            return
        behaviour = fake.behaviour_for(body)
        if fake.api_key is not None:
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {fake.api_key}":
                behaviour = "401"
        record = RecordedRequest(
            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, behaviour
        )
        fake._record(record)
        try:
            self._respond(body, behaviour)
        finally:
            record.done_at = time.monotonic()

    def _respond(self, body: dict[str, Any], behaviour: str) -> None:
        fake = self.server.fake
        if behaviour in _ERRORS:
            status, code, message = _ERRORS[behaviour]
            self._send_json(status, _error_body(status, code, message))
            return
        if behaviour == "stall":
            # Wait on the stop event, so that stopping the server ends the stall at once.
            fake._stop.wait(fake.stall_seconds)
            self.close_connection = True
            return
        text = fake.answer_for(body, behaviour)
        if body.get("stream"):
            self._stream(body, text, behaviour)
        else:
            self._send_json(200, _completion(body, text, fake.model))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], text: str, behaviour: str) -> None:
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        # OpenRouter sends SSE comments while the model warms up; clients must skip them.
        self._chunk(b": OPENROUTER PROCESSING\n\n")
        pieces = _pieces(text)
        model = str(body.get("model") or fake.model)
        for i, piece in enumerate(pieces):
            if behaviour == "broken" and i == max(1, len(pieces) // 3):
                # Announce a chunk, send half of it and hang up: an incomplete chunked body.
                half = b'data: {"id": "chatcmpl-fake", "choi'
                self.wfile.write(f"{len(half) * 2:x}\r\n".encode() + half)
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta["role"] = "assistant"
            self._chunk(_sse(_chunk_payload(model, delta, None)))
            if behaviour == "slow" and fake._stop.wait(fake.slow_delay):
                return
        self._chunk(_sse(_chunk_payload(model, {}, "stop")))
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeOpenAIHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeOpenAI:
    """The fake API: ``start()``, point the SDK at ``base_url``, ``stop()``.

    ``api_key``: when set, requests must carry ``Authorization: Bearer <api_key>``.
    ``mode``: a behaviour for every request (``None``: chosen by keyword, else echo).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-key",
        model: str = "fake/model",
        mode: str | None = None,
        stall_seconds: float = 30.0,
        slow_delay: float = 0.05,
        long_words: int = 600,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.mode = mode
        self.stall_seconds = stall_seconds
        self.slow_delay = slow_delay
        self.long_words = long_words
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._httpd: FakeOpenAIHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        self._stop.clear()
        self._httpd = FakeOpenAIHTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def behaviour_for(self, body: dict[str, Any]) -> str:
        """The behaviour a request gets: ``mode``, else a ``fake:<name>`` keyword, else echo."""
        if self.mode:
            return self.mode
        last = RecordedRequest("POST", "", {}, body, "").last_user
        for name in BEHAVIOURS:
            if f"fake:{name}" in last:
                return name
        return "echo"

    def answer_for(self, body: dict[str, Any], behaviour: str) -> str:
        last = RecordedRequest("POST", "", {}, body, "").last_user
        if behaviour == "long":
            return long_answer(self.long_words)
        if behaviour == "control":
            return (
                "safe start\r\nPRIVMSG #other :injected\x00\x01ACTION waves\x01 "
                "\x02bold\x02 \x0304,12colour\x03 done\u2028next line\x7f end"
            )
        if behaviour == "broken":
            return long_answer(60)
        if behaviour == "say" or (behaviour == "slow" and "fake:say" in last):
            return last.split("fake:say", 1)[-1].strip().replace("\\n", "\n")
        return f"echo: {last}"

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def wait_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.requests)} requests, wanted {count}")
                self._lock.wait(remaining)
            return list(self.requests)


def _pieces(text: str) -> list[str]:
    """Split text into streaming deltas the way models do: a word and its space."""
    out: list[str] = []
    word = ""
    for ch in text:
        word += ch
        if ch in " \n":
            out.append(word)
            word = ""
    if word:
        out.append(word)
    return out or [""]


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _chunk_payload(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _completion(body: dict[str, Any], text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model") or model),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": code, "code": status}}
