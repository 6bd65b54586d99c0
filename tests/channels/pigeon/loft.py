"""The pigeons' loft: a tiny HTTP service on 127.0.0.1 the throwaway pigeon kind posts to.

``POST /notes`` with ``Authorization: Bearer <token>`` and ``{"loft": …, "text": …}``
answers 201 ``{"id": …}`` and keeps the note; a text over :data:`CARRIES` characters or
empty is refused with 400, a wrong token with 401. Like the other fakes it logs every
request and misbehaves on demand: :meth:`Loft.fail_next` answers with any status (429
with a ``Retry-After``), :meth:`Loft.hold_next` keeps a note and then holds the answer
back (cut short when the loft stops) to provoke a read timeout.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The loft's own rule, written here rather than imported: a fake must not take the
#: product's word for what the service accepts.
CARRIES = 140


@dataclass(frozen=True)
class Note:
    id: int
    loft: str
    text: str


class Loft:
    def __init__(self, token: str = "pigeon-token-123"):
        self.token = token
        self.notes: list[Note] = []
        #: every request seen: (method, path, status answered)
        self.requests: list[tuple[str, str, int]] = []
        self._faults: list[tuple[int, int | None]] = []
        self._holds: list[float] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the loft is not started"
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    @property
    def texts(self) -> list[str]:
        with self._lock:
            return [n.text for n in self.notes]

    def fail_next(self, status: int, retry_after: int | None = None) -> None:
        with self._lock:
            self._faults.append((status, retry_after))

    def hold_next(self, seconds: float) -> None:
        with self._lock:
            self._holds.append(seconds)

    def start(self) -> "Loft":
        self._closing.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"loft": self}))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="pigeon-loft", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Loft":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], dict[str, Any], float]:
        """(status, extra headers, JSON answer, seconds to hold the answer) for one request."""
        if (method, path) != ("POST", "/notes"):
            return 404, {}, {"error": f"no route {method} {path}"}, 0
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"error": "unknown token"}, 0
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            hold = self._holds.pop(0) if self._holds else 0.0
        if fault is not None:
            status, retry_after = fault
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, extra, {"error": f"the loft answers {status}"}, 0
        try:
            data = json.loads(body.decode("utf-8"))
            loft, text = str(data["loft"]), data["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {}, {"error": f"bad request: {exc}"}, 0
        if not text.strip() or len(text) > CARRIES:
            return 400, {}, {"error": f"a pigeon carries 1 to {CARRIES} characters, not {len(text)}"}, 0
        with self._lock:
            note = Note(len(self.notes) + 1, loft, text)
            self.notes.append(note)
        return 201, {}, {"id": note.id}, hold


class _Handler(BaseHTTPRequestHandler):
    loft: Loft
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, answer, hold = self.loft.handle(self.command, self.path, headers, body)
        with self.loft._lock:
            self.loft.requests.append((self.command, self.path, status))
        if hold and self.loft._closing.wait(hold):
            return  # the loft is closing: the answer is never sent
        data = json.dumps(answer).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
