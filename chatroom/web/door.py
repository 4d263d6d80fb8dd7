"""The web door: one browser connection, on the same room core as every client.

``ChatHandler`` hands a connection here when its first bytes are an HTTP request.
websockets' sans-I/O ``ServerProtocol`` parses the request and makes every WebSocket
frame; this only moves bytes.  A plain ``GET`` gets a page (``pages.py``) and the
connection ends; ``GET /ws`` with an upgrade from a page of this server (its
``Origin`` must be this host: a page elsewhere cannot borrow a visitor's browser;
and the host must be a name this server answers to: ``hosts.py``)
becomes a WebSocket whose binary messages each carry one frame of PROTOCOL.md, fed to
the connection's ``ServerSession`` exactly as a TCP client's bytes are -- the same
handshake, password proofs, limits, rate limit and outbox ("too slow") apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from chatroom.logfmt import about
from chatroom.server.doors import Door, DoorPort
from chatroom.server.hub import append_entry
from chatroom.server.metrics import CONTENT_TYPE
from chatroom.server.session import CloseReason
from chatroom.server.wire import Outgoing
from chatroom.web.frames import Cutter
from chatroom.web.hosts import HostCheck
from chatroom.web.pages import SECURITY_HEADERS, page_for
from chatroom.web.wire import WEBSOCKET, WsBytes

__all__ = ["WebDoor", "http_claims", "web_door"]

log = logging.getLogger("chatroom.server")
# websockets reports every HTTP answer at INFO: ours says what matters.
_ws_log = logging.getLogger("chatroom.web.websockets")
_ws_log.setLevel(logging.WARNING)

RECV_SIZE = 64 * 1024

#: Page requests one kept-alive connection answers before it closes.
MAX_PAGES = 100

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 421: "Misdirected Request",
            503: "Service Unavailable"}

#: A text message, or its continuation.
_TEXT = (Opcode.TEXT, Opcode.CONT)

_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ")


def http_claims(prefix: bytes) -> bool | None:
    """A connection's first bytes are an HTTP request: a method and a space.  A prefix
    of one (``G``, ``GE``) cannot tell yet (``server/sniff.py``)."""
    if prefix.startswith(_METHODS):
        return True
    if any(method.startswith(prefix) for method in _METHODS):
        return None
    return False


def web_door(hosts: HostCheck) -> Door:
    """The web door, answering to the names ``hosts`` allows (composition: ``app.py``)."""
    return Door("http", http_claims, lambda handler, first: WebDoor(handler, hosts).run(first))


def _plain(status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    """A short answer that ends the connection."""
    data = body.encode() if isinstance(body, str) else body
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))), ("Connection", "close"),
                       *SECURITY_HEADERS])
    return Response(status, _REASONS[status], headers, data)


def same_origin(request: Request) -> bool:
    """A browser names the page that opened the socket in ``Origin``; it must be a page
    of this server (scheme aside: behind TLS or not, the host and port are ours).  No
    Origin at all is not a browser page: allowed, as any TCP client is."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == (request.headers.get("Host") or "").lower()


class WebDoor:
    """Serves one browser connection for ``handler`` (the door's port, ``server/doors.py``),
    answering only to the names ``hosts`` allows."""

    def __init__(self, handler: DoorPort, hosts: HostCheck) -> None:
        self.handler = handler
        self.hosts = hosts
        self.conn = handler.conn
        self.server = handler.server
        self.ws = self._protocol()
        self.pages = 0  # pages served on this connection (kept alive between them)
        self.conn.wire = WEBSOCKET  # passes websockets' own bytes through; frames become messages
        self.in_binary = False  # inside a fragmented binary message
        # Once the socket is open: a browser's common frames are cut here, not parsed
        # by websockets (``frames.py``); None before, and for good after anything else.
        self.lane: Cutter | None = None
        self.request_tail = b""  # the last bytes of a request not complete yet
        self.accepted = False  # the WebSocket is open (and not failed by us since)

    def _protocol(self) -> ServerProtocol:
        """websockets' sans-I/O server side, for the connection's next request."""
        return ServerProtocol(max_size=self.max_size(), logger=_ws_log)

    def max_size(self) -> int:
        """The largest WebSocket message: one frame, a 4-byte prefix, a header and a body."""
        limits = self.server.config
        return 4 + limits.max_header + limits.max_body + 1024

    def run(self, first: bytes) -> None:
        try:
            self.pump(first)
        finally:
            self.release()

    def release(self) -> None:
        """websockets' protocol object is a reference cycle by construction (its parser
        is a generator whose frame holds the protocol; a parse error's traceback holds
        that frame too), so it and everything it buffered would wait for the cycle
        collector.  Close the parser and drop the exceptions: refcounting frees it."""
        ws = self.ws
        ws.parser.close()
        ws.parser_exc = None
        ws.handshake_exc = None

    def pump(self, first: bytes) -> None:
        conn = self.conn
        data = first
        while True:
            self.receive(data)
            self.write_out()
            self.handler.flush_batch()
            if conn.session.closed or self.ws.close_expected():
                if not conn.session.closed:
                    conn.close(CloseReason.QUIT if self.ws.close_code == 1000 else CloseReason.LOST)
                return
            data = self.handler.recv_more(RECV_SIZE)
            if not data:
                self.ws.receive_eof()
                return

    def receive(self, data: bytes) -> None:
        """One read: the common frames cut by the lane, the rest parsed by websockets.

        The lane opens only when the read that completed the WebSocket request ended
        with it: then websockets has read nothing past the request, and the lane starts
        at a frame's first byte (a client may pipeline frames behind its request:
        websockets parses those, and all that follows them)."""
        if self.lane is not None:
            payloads, rest = self.lane.cut(data)
            self.feed(payloads)
            if rest is None or self.conn.session.closed:
                return
            self.lane, data = None, rest
        if self.ws.state is not State.CONNECTING:
            self.ws.receive_data(data)
            self.take_events()
            return
        request = self.request_tail + data
        end = request.find(b"\r\n\r\n")  # (the first blank line ends a request)
        ends_here = 0 <= end == len(request) - 4
        self.request_tail = request[-3:]
        self.ws.receive_data(data)
        self.take_events()
        if ends_here and self.accepted and not self.conn.session.closed:
            self.lane = Cutter(self.max_size())

    def write_out(self) -> None:
        """What websockets wrote (the handshake, pongs, a close), in order with the rest."""
        data = b"".join(self.ws.data_to_send())
        if data:
            with self.server.hub.locked(self.handler.batch):
                append_entry(self.handler.batch.entries, self.conn.me, Outgoing(WsBytes(data), b""))

    def request(self, request: Request) -> None:
        if self.ws.eof_sent:
            # websockets parses what follows the request at once: broken WebSocket
            # frames behind it failed the connection before it could be answered.
            log.info("%s: broken WebSocket frames behind the request: closed unanswered", self.conn.address)
            self.conn.close(CloseReason.PROTOCOL_ERROR)
            return
        refusal = self.hosts.refusal(request.headers)
        if refusal is not None:
            status, why = refusal
            log.warning("%s: HTTP request refused (%d): %s", self.conn.address, status, why,
                        extra=about("http_refused", peer=self.conn.address))
            self.respond(_plain(status, why + "\n"))
            return
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, why = self.server.health()
            self.respond(_plain(200 if healthy else 503, why + "\n"))
            return
        if path == "/metrics":
            self.respond(self.metrics())
            return
        if path == "/ws":
            if not same_origin(request):
                log.warning("%s: WebSocket from another site refused (Origin %s)", self.conn.address,
                            request.headers.get("Origin"))
                self.respond(self.ws.reject(403, "a page of another site cannot join this chat\n"))
                return
            response = self.ws.accept(request)
            if response.status_code != 101:
                self.respond(response)
                return
            for name, value in SECURITY_HEADERS[1:]:
                response.headers[name] = value
            self.ws.send_response(response)
            self.accepted = True
            log.debug("%s: WebSocket open", self.conn.address)
            return
        self.serve_page(request)

    def serve_page(self, request: Request) -> None:
        """One of the page's files (or 404), kept alive for the next when it may be."""
        page = page_for(request.path, request.headers.get("Accept-Encoding", ""),
                        request.headers.get("If-None-Match", ""))
        keep = page.status != 404 and self._may_keep(request)
        headers = Headers([("Content-Type", page.content_type), ("Content-Length", str(len(page.body))),
                           ("Connection", "keep-alive" if keep else "close"), *page.headers, *SECURITY_HEADERS])
        response = Response(page.status, page.reason, headers, page.body)
        if keep:
            self.serve_and_keep(response)
        else:
            self.respond(response)

    def _may_keep(self, request: Request) -> bool:
        """A browser fetching the page's files may use one connection for them all
        (HTTP/1.1 keep-alive): unless it says ``close``, up to ``MAX_PAGES``, and only
        when nothing follows the request yet (browsers wait for each answer)."""
        return ("close" not in request.headers.get("Connection", "").lower() and self.pages < MAX_PAGES
                and not self.ws.reader.buffer)

    def serve_and_keep(self, response: Response) -> None:
        """Answer, and read the next request with a fresh parser (websockets' ends the
        stream after a response that is not a WebSocket's).  The connection's handshake
        deadline still ends it, quietly, if it stays idle."""
        with self.server.hub.locked(self.handler.batch):
            append_entry(self.handler.batch.entries, self.conn.me, Outgoing(WsBytes(response.serialize()), b""))
        self.handler.flush_batch()
        self.release()
        self.ws = self._protocol()
        self.request_tail = b""
        self.pages += 1
        self.conn.idle_ok = True

    def metrics(self) -> Response:
        """GET /metrics: Prometheus text for the addresses the operator named, 403 for
        others, 404 when nobody was named (metrics are opt-in)."""
        metrics = self.server.metrics
        if not self.server.config.metrics_from:
            return _plain(404, "not found (metrics are off: chatroom serve --metrics-from ADDRESS turns them on)\n")
        if not metrics.allowed(self.conn.ip):
            log.warning("%s: GET /metrics refused: not an address of --metrics-from", self.conn.address,
                        extra=about("metrics_refused", peer=self.conn.address))
            return _plain(403, "metrics are for the addresses the operator named (--metrics-from)\n")
        return _plain(200, metrics.exposition(), CONTENT_TYPE)

    def respond(self, response: Response) -> None:
        """An HTTP answer that ends the connection (a page, or a refusal)."""
        self.ws.send_response(response)
        self.write_out()
        self.handler.flush_batch()
        self.conn.close(CloseReason.REFUSED if response.status_code >= 400 else CloseReason.QUIT)

    def take_events(self) -> None:
        """What websockets parsed from a read, in order: a request, or our frames (the
        read's binary messages, fed as one piece), or a text message (a mistake)."""
        chunks: list[bytes | bytearray | memoryview] = []  # the read's binary messages, not fed yet
        for event in self.ws.events_received():
            # (Frames count once the socket is accepted -- websockets parses those behind
            # a request before it is answered -- including those ahead of the peer's close
            # in the same read: by then websockets is CLOSING.)
            if isinstance(event, Frame) and self.accepted and self.carries_frames(event):
                chunks.append(event.data)
                continue
            self.feed(chunks)
            chunks = []
            if self.conn.session.closed:
                return  # a refused request, a broken frame: nothing after it counts
            if isinstance(event, Request):
                self.request(event)
            elif isinstance(event, Frame) and self.accepted and event.opcode in _TEXT:
                self.ws.fail(1003, "frames travel in binary messages")  # (ours are binary: a mistake)
                self.accepted = False  # nothing after it counts
        self.feed(chunks)

    def carries_frames(self, frame: Frame) -> bool:
        """Whether a WebSocket frame carries bytes of our frames: a binary message, or a
        continuation of one (a browser may cut a large message into fragments; the
        session's frame decoder reads a stream, so it reassembles them either way).
        The rest are control frames (websockets answers them) or a text message."""
        if frame.opcode is Opcode.BINARY or (frame.opcode is Opcode.CONT and self.in_binary):
            self.in_binary = not frame.fin
            return True
        return False

    def feed(self, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        """The bytes of a read's binary messages, fed to the session in one piece, as a
        TCP client's read is: a burst of chats is one run under the hub lock and one
        fan-out, not one per message (one per message cost a send to every member for
        each: 6 us of server CPU per delivery under a flood, against 0.13 framed)."""
        if not chunks or self.conn.session.closed:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        _, events = self.conn.session.receive_data(bytes(data), time.monotonic())
        self.handler.act_all(events)
