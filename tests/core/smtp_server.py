"""A small SMTP server for tests that drive the real SMTP backend (the outside world).

It can refuse every connection for a while (``refusing``: greets with 421, as a
mail server that is down for maintenance does), answer every MAIL command with a
temporary error (``temporary_failure``, e.g. "451 ...": up, but not accepting mail just
now), and stall the first session until released at one of three moments
(``hold_first``), so a test can kill the sending worker there:

- ``"DATA"``: before answering the DATA command (nothing of the message sent yet);
- ``"DATA-END"``: after the message's final "." but before the "250" that accepts it
  (the server has the message; the client does not know it yet);
- ``"QUIT"``: before answering QUIT (the message was accepted with "250").

``hold_first_data = True`` is the older spelling of ``hold_first = "DATA"``. A message
counts as delivered once its final "." has been received, as for a real server (which
may deliver a message whose "250" never reached the client: the one duplicate SMTP
allows). ``envelopes`` holds the RCPT TO addresses of each delivered message
(``messages[i]`` was delivered to ``envelopes[i]``). ``on_quit``, if set, is called
(in the server's thread) when a QUIT arrives, before it is answered."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message


class SMTPServer:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refusing = False
        self.temporary_failure: str | None = None
        self.envelopes: list[list[str]] = []
        self.hold_first: str | None = None
        self.hold_first_data = False
        self.on_quit: Callable[[], None] | None = None
        self.holding = threading.Event()  # set when a session is stalled at DATA
        self.release = threading.Event()
        self.sessions = 0
        self._lock = threading.Lock()
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                owner._session(self.rfile, self.wfile)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SMTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def _session(self, rfile, wfile) -> None:
        def reply(line: str) -> None:
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        with self._lock:
            self.sessions += 1
            first = self.sessions == 1
        hold = (self.hold_first or ("DATA" if self.hold_first_data else None)) if first else None

        def stall(moment: str) -> None:
            if hold == moment:
                self.holding.set()
                self.release.wait(timeout=120)

        try:
            if self.refusing:
                reply("421 Service not available, try again later")
                return
            reply("220 test-smtp ready")
            rcpts: list[str] = []
            while True:
                line = rfile.readline()
                if not line:
                    return  # the client went away: nothing delivered
                verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
                if verb in {"EHLO", "HELO"}:
                    reply("250 test-smtp")
                elif verb == "MAIL" and self.temporary_failure:
                    reply(self.temporary_failure)
                elif verb in {"MAIL", "RSET"}:
                    rcpts = []
                    reply("250 OK")
                elif verb == "RCPT":
                    address = line.decode(errors="replace").split(":", 1)[-1].strip()
                    rcpts.append(address.split(">", 1)[0].lstrip("<"))
                    reply("250 OK")
                elif verb == "NOOP":
                    reply("250 OK")
                elif verb == "DATA":
                    stall("DATA")
                    reply("354 End data with <CR><LF>.<CR><LF>")
                    data = bytearray()
                    while True:
                        chunk = rfile.readline()
                        if not chunk:
                            return  # cut off mid-message: nothing delivered
                        if chunk in {b".\r\n", b".\n"}:
                            break
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    with self._lock:
                        self.messages.append(message_from_bytes(bytes(data)))
                        self.envelopes.append(rcpts)
                    rcpts = []
                    stall("DATA-END")
                    reply("250 OK queued")
                elif verb == "QUIT":
                    if self.on_quit is not None:
                        self.on_quit()
                    stall("QUIT")
                    reply("221 Bye")
                    return
                else:
                    reply("502 Command not implemented")
        except OSError:
            return  # the client's socket died: nothing more to do
