"""The HTTP server protocol: uvicorn's httptools protocol with the bounds it lacks.

uvicorn times out idle keep-alive connections, but not a request whose head (request line and
headers) trickles in, and it buffers a head of any size: 300 connections sending headers
slowly stayed open for ever, and a 20 MB header was read whole. Here a request's head must
arrive within ``PUSHINBOX_HEADER_TIMEOUT_S`` (default ``defaults.HEADER_TIMEOUT_S``) and fit
in ``PUSHINBOX_MAX_HEADER_BYTES`` (default ``defaults.MAX_HEADER_BYTES``); beyond either, the
connection is answered 408 or 431 and closed. A reverse proxy in front should enforce the
same (docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
from asyncio import TimerHandle

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from dispatcher import defaults

__all__ = ["GuardedHttpToolsProtocol"]


def _answer(status: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools, with a deadline and a size cap on each request's head."""

    header_timeout_s = float(os.environ.get("PUSHINBOX_HEADER_TIMEOUT_S",
                                            defaults.HEADER_TIMEOUT_S))
    max_header_bytes = int(os.environ.get("PUSHINBOX_MAX_HEADER_BYTES",
                                          defaults.MAX_HEADER_BYTES))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False
        self._head_timer: TimerHandle | None = None
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, status: bytes) -> None:
        self._refused = True
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(_answer(status))
            self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(b"408 Request Timeout")

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        counting = self._in_head
        super().data_received(data)
        if counting and self._in_head:
            # The parser holds at most the limit plus one read of the socket.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(b"431 Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # A head that arrived in one read of the socket is only measured here.
        self._head_size += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_head_timer()
        if self._head_size > self.max_header_bytes:
            self._refuse(b"431 Request Header Fields Too Large")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)
