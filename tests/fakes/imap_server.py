"""A small IMAP4rev1 server on 127.0.0.1 for tests.

It speaks, over a real TCP socket, the part of RFC 3501 a mailbox reader needs:
CAPABILITY, STARTTLS (or implicit TLS), LOGIN, SELECT, CREATE, UID SEARCH, UID FETCH
(``BODY[]``, ``BODY.PEEK[]``, ``RFC822``, ``FLAGS``, ``UID``, answered as literals), UID STORE,
UID COPY, EXPUNGE, NOOP, CLOSE and LOGOUT, with per-folder UIDs and UIDVALIDITY; and, when
the test advertises them, UID MOVE (RFC 6851) and UID EXPUNGE (UIDPLUS, RFC 4315). Fetching
``BODY[]`` (not ``PEEK``) sets ``\\Seen``, as a real server does, so a client that marks
messages by accident is caught. Every command is logged; a test can make the next
``<command>`` answer NO, or drop the connection when it arrives (a crash or a network cut
in the middle of a run).

The server runs in its own thread; each connection is a thread (socketserver).
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from typing import Iterator

import pytest


@dataclass
class Stored:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Folder:
    uidvalidity: int = 1
    uidnext: int = 1
    messages: list[Stored] = field(default_factory=list)

    def add(self, raw: bytes, flags: set[str] | None = None) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.messages.append(Stored(uid, raw, set(flags or ())))
        return uid


def _tokens(text: str) -> list[str]:
    """IMAP arguments: atoms, "quoted strings" (with \\ escapes) and parenthesised lists kept whole."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == " ":
            i += 1
        elif c == '"':
            j, buf = i + 1, []
            while text[j] != '"':
                if text[j] == "\\":
                    j += 1
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        elif c == "(":
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(text[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append(text[i:j])
            i = j
        else:
            j = text.find(" ", i)
            j = len(text) if j < 0 else j
            out.append(text[i:j])
            i = j
    return out


def _in_set(uid: int, spec: str, largest: int) -> bool:
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        lo_n = largest if lo == "*" else int(lo)
        hi_n = lo_n if not hi else (largest if hi == "*" else int(hi))
        if min(lo_n, hi_n) <= uid <= max(lo_n, hi_n):
            return True
    return False


class _Handler(socketserver.StreamRequestHandler):
    server: "_Server"

    def setup(self) -> None:
        if self.server.owner.implicit_tls is not None:
            self.request = self.server.owner.implicit_tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def send(self, line: str | bytes) -> None:
        self.wfile.write(line if isinstance(line, bytes) else line.encode("utf-8") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        owner = self.server.owner
        self.user: str | None = None
        self.folder: str | None = None
        self.send(f"* OK [CAPABILITY {owner.capability()}] Tamtam test IMAP ready")
        while True:
            try:
                line = self.rfile.readline()
            except (OSError, ssl.SSLError):
                return
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            words = rest.split(" ", 2)
            name = words[0].upper()
            if name == "UID" and len(words) > 1:
                name = f"UID {words[1].upper()}"
                args = words[2] if len(words) > 2 else ""
            else:
                args = rest[len(words[0]):].strip()
            owner.log.append(name)  # the command only: never a password
            action = owner.take_fault(name)
            if action == "drop":
                self.request.shutdown(socket.SHUT_RDWR)
                return
            if action is not None:
                self.send(f"{tag} {action}")
                continue
            try:
                if not self.run(tag, name, args):
                    return
            except (OSError, ssl.SSLError):
                return
            except Exception as exc:  # noqa: BLE001 - a malformed command is the client's bug: say BAD
                self.send(f"{tag} BAD {type(exc).__name__}: {exc}")

    def run(self, tag: str, name: str, args: str) -> bool:
        owner = self.server.owner
        if name == "CAPABILITY":
            self.send(f"* CAPABILITY {owner.capability()}")
        elif name == "NOOP":
            pass
        elif name == "LOGOUT":
            self.send("* BYE logging out")
            self.send(f"{tag} OK LOGOUT completed")
            return False
        elif name == "STARTTLS":
            if owner.starttls is None:
                self.send(f"{tag} BAD STARTTLS not offered")
                return True
            self.send(f"{tag} OK Begin TLS negotiation now")
            self.request = owner.starttls.wrap_socket(self.request, server_side=True)
            self.rfile = self.request.makefile("rb")
            self.wfile = self.request.makefile("wb")
            return True
        elif name == "LOGIN":
            user, password = _tokens(args)[:2]
            if owner.users.get(user) != password:
                self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
                return True
            self.user = user
        elif self.user is None:
            self.send(f"{tag} BAD log in first")
            return True
        elif name in ("SELECT", "EXAMINE"):
            folder = _tokens(args)[0]
            box = owner.folders.get(folder)
            if box is None:
                self.send(f"{tag} NO [NONEXISTENT] no folder {folder}")
                return True
            self.folder = folder
            self.send(r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)")
            self.send(f"* {len(box.messages)} EXISTS")
            self.send("* 0 RECENT")
            self.send(f"* OK [UIDVALIDITY {box.uidvalidity}] UIDs valid")
            self.send(f"* OK [UIDNEXT {box.uidnext}] Predicted next UID")
            self.send(f"{tag} OK [READ-WRITE] SELECT completed")
            return True
        elif name == "CREATE":
            folder = _tokens(args)[0]
            if folder in owner.folders:
                self.send(f"{tag} NO [ALREADYEXISTS] folder exists")
                return True
            owner.folders[folder] = Folder()
        elif self.folder is None:
            self.send(f"{tag} BAD select a folder first")
            return True
        elif name == "UID SEARCH":
            box = owner.folders[self.folder]
            keys = [k.upper() for k in _tokens(args)]
            found = [m.uid for m in box.messages if all(self._matches(m, k) for k in keys)]
            self.send("* SEARCH" + "".join(f" {u}" for u in found))
        elif name == "UID FETCH":
            spec, items = _tokens(args)[:2]
            self._fetch(spec, items.strip("()").upper().split())
        elif name == "UID STORE":
            spec, how, flags = _tokens(args)[:3]
            self._store(spec, how.upper(), set(flags.strip("()").split()))
        elif name == "UID COPY":
            spec, target = _tokens(args)[:2]
            if target not in owner.folders:
                self.send(f"{tag} NO [TRYCREATE] no folder {target}")
                return True
            box = owner.folders[self.folder]
            largest = max((m.uid for m in box.messages), default=0)
            for m in box.messages:
                if _in_set(m.uid, spec, largest):
                    owner.folders[target].add(m.raw, m.flags - {r"\Deleted"})
        elif name == "UID MOVE":
            spec, target = _tokens(args)[:2]
            if target not in owner.folders:
                self.send(f"{tag} NO [TRYCREATE] no folder {target}")
                return True
            box = owner.folders[self.folder]
            largest = max((m.uid for m in box.messages), default=0)
            for seq in range(len(box.messages), 0, -1):
                m = box.messages[seq - 1]
                if _in_set(m.uid, spec, largest):
                    owner.folders[target].add(m.raw, m.flags)
                    del box.messages[seq - 1]
                    self.send(f"* {seq} EXPUNGE")
        elif name in ("EXPUNGE", "CLOSE", "UID EXPUNGE"):
            box = owner.folders[self.folder]
            largest = max((m.uid for m in box.messages), default=0)
            for seq in range(len(box.messages), 0, -1):
                if name == "UID EXPUNGE" and not _in_set(box.messages[seq - 1].uid, _tokens(args)[0], largest):
                    continue  # UIDPLUS: only the messages named
                if r"\Deleted" in box.messages[seq - 1].flags:
                    del box.messages[seq - 1]
                    if name != "CLOSE":
                        self.send(f"* {seq} EXPUNGE")
            if name == "CLOSE":
                self.folder = None
        else:
            self.send(f"{tag} BAD unknown command {name}")
            return True
        self.send(f"{tag} OK {name} completed")
        return True

    @staticmethod
    def _matches(m: Stored, key: str) -> bool:
        return {"ALL": True, "UNSEEN": r"\Seen" not in m.flags, "SEEN": r"\Seen" in m.flags,
                "DELETED": r"\Deleted" in m.flags, "UNDELETED": r"\Deleted" not in m.flags}[key]

    def _fetch(self, spec: str, items: list[str]) -> None:
        box = self.server.owner.folders[self.folder]  # type: ignore[index]
        largest = max((m.uid for m in box.messages), default=0)
        for seq, m in enumerate(box.messages, 1):
            if not _in_set(m.uid, spec, largest):
                continue
            if any(i in ("BODY[]", "RFC822") for i in items):
                m.flags.add(r"\Seen")
            head = f"* {seq} FETCH (UID {m.uid}"
            if "FLAGS" in items:
                head += f" FLAGS ({' '.join(sorted(m.flags))})"
            body = next((i for i in items if i in ("BODY[]", "BODY.PEEK[]", "RFC822")), None)
            if body is None:
                self.send(head + ")")
                continue
            label = "RFC822" if body == "RFC822" else "BODY[]"
            self.send(f"{head} {label} {{{len(m.raw)}}}".encode() + b"\r\n" + m.raw + b")\r\n")

    def _store(self, spec: str, how: str, flags: set[str]) -> None:
        box = self.server.owner.folders[self.folder]  # type: ignore[index]
        largest = max((m.uid for m in box.messages), default=0)
        for seq, m in enumerate(box.messages, 1):
            if not _in_set(m.uid, spec, largest):
                continue
            if how.startswith("+"):
                m.flags |= flags
            elif how.startswith("-"):
                m.flags -= flags
            else:
                m.flags = set(flags)
            if not how.endswith(".SILENT"):
                self.send(f"* {seq} FETCH (UID {m.uid} FLAGS ({' '.join(sorted(m.flags))}))")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "ImapServer"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client refusing our test certificate is what some tests want


class ImapServer:
    """One account's folders behind a real socket. ``implicit_tls`` (IMAPS) or ``starttls``
    take a server SSL context."""

    def __init__(self, *, users: dict[str, str] | None = None, implicit_tls: ssl.SSLContext | None = None,
                 starttls: ssl.SSLContext | None = None, capabilities: tuple[str, ...] = ()):
        self.users = users or {"bounces": "mot de passe"}
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.extra_capabilities = capabilities
        self.folders: dict[str, Folder] = {"INBOX": Folder()}
        self.log: list[str] = []
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def capability(self) -> str:
        caps = ["IMAP4rev1", *self.extra_capabilities]
        if self.starttls is not None:
            caps.append("STARTTLS")
        return " ".join(caps)

    def deliver(self, raw: bytes, folder: str = "INBOX", flags: set[str] | None = None) -> int:
        """Put a message in a folder, as the MTA would; returns its UID."""
        with self._lock:
            return self.folders.setdefault(folder, Folder()).add(raw, flags)

    def fail_next(self, command: str, reply: str = "NO [UNAVAILABLE] try later") -> None:
        """The next ``command`` (e.g. "UID STORE") is answered ``reply`` instead of done."""
        self._faults.setdefault(command.upper(), []).append(reply)

    def drop_on(self, command: str) -> None:
        """The next ``command`` closes the connection without an answer."""
        self._faults.setdefault(command.upper(), []).append("drop")

    def take_fault(self, command: str) -> str | None:
        with self._lock:
            queue = self._faults.get(command)
            return queue.pop(0) if queue else None

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        return {m.uid: set(m.flags) for m in self.folders[folder].messages}

    def start(self) -> "ImapServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    server = ImapServer().start()
    yield server
    server.stop()

