"""A bound on what a client can make the gateway hold before a request's headers end.

httptools (uvicorn's HTTP/1.1 parser) sets no limit on the request head: it buffers a
header line however long, and uvicorn keeps every field, so one socket sending
megabytes of header lines grew the process by as much before the app saw anything
(issue #15). `BoundedHttpToolsProtocol` counts the bytes of the head as they arrive,
and its fields, and answers 431 and closes the connection the moment either is over
its limit: before the request exists for the app, so before Host, Origin or auth.
"""

from __future__ import annotations

import logging
from typing import Final

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["MAX_HEADER_FIELDS", "MAX_HEAD_BYTES", "BoundedHttpToolsProtocol"]

log = logging.getLogger("mcpgate.gateway")

MAX_HEAD_BYTES: Final = 32 * 1024
"""The request line and every header line, up to and including the blank line that ends them."""
MAX_HEADER_FIELDS: Final = 100
_LINGER_SECONDS: Final = 2.0

_BODY = b"request headers too large: at most 32768 bytes and 100 fields\n"
_REFUSAL: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\n"
    b"connection: close\r\n"
    b"\r\n" % len(_BODY)
) + _BODY


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing at once."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the size and field count of each head."""

    # Per connection: bytes of the current head fed to the parser so far, and whether
    # the parser is inside a head (true from the connection's first byte until the
    # head ends, and again from the end of one message to the end of the next head).
    _head_bytes = 0
    _in_head = True
    _fields = 0
    _over = False  # the head has too many fields
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused or self.transport.is_closing():
            return  # answered and closing: drop what is still arriving
        while data and self._in_head:
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._refuse()
                return
            # Feed no more than the head may still take: if it has not ended by then,
            # it is too large, and nothing beyond the limit was ever buffered.
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            self._feed(piece)
            if self._refused or self.transport.is_closing():
                return  # refused, or answered 400 as malformed: nothing more to parse
            if not self._in_head:
                # The head ended inside `piece`; what follows it there was body, already fed.
                break
            if self._head_bytes >= MAX_HEAD_BYTES:
                self._refuse()
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        # uvicorn's own data_received, with a refused head told apart from a malformed one.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._over:
                self._refuse()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fields = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > MAX_HEADER_FIELDS:
            self._over = True
            raise _HeadTooLarge  # httptools stops parsing and raises HttpParserCallbackError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # A pipelined request may begin in the same read: its head is counted from
        # the next read on, so what it can hold stays under the limit plus one read.
        self._in_head = True
        self._head_bytes = 0

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        reason = "request headers too large"
        log.info(
            "request refused with %d: %s",
            431,
            reason,
            extra={"fields": {"status": 431, "reason": reason}},
        )
        # A request still being answered on this connection (pipelining) gets no
        # interleaved bytes: the connection just closes.
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        self.transport.write(_REFUSAL)
        # Closing with unread input would reset the connection, and the client, still
        # sending its head, would lose the answer: end our side, drop what still comes
        # (nothing is kept), and close a moment later.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(_LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
