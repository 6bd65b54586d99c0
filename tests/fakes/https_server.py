"""A tiny HTTPS server on 127.0.0.1 for tests: fixed answers by path, every GET recorded.

It plays the hosts a webhook receiver fetches from — SNS's signing certificates and its
subscription-confirmation links — with a certificate from :class:`tests.fakes.tls.TestCA`,
so the client verifies TLS for real against the test CA.
"""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: "HttpsServer"

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        # the handshake happens in the handler's thread, on its first read
        return self.owner.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(self.path)
        status, body = owner.answers.get(self.path.split("?")[0], (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HttpsServer:
    def __init__(self, context: ssl.SSLContext):
        self.context = context
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def serve(self, path: str, body: bytes, status: int = 200) -> str:
        """Answer GET ``path`` with ``body``; returns its URL."""
        self.answers[path] = (status, body)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> "HttpsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
