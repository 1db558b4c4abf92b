"""Server-sent events, read from the bytes of a response as they arrive.

The stream is the server's text: a line is bounded (a server that never sends a newline must not
fill memory), and what is not an event (comments, retry fields) is skipped, as the SSE standard
says.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE_BYTES = 4 * 1024 * 1024
"""Longer than any one chunk of an answer a server sends, short of hurting memory."""


class MalformedStream(ValueError):
    """The bytes are not a stream of server-sent events."""


@dataclass(frozen=True)
class Event:
    data: str
    event: str = "message"


class EventReader:
    """Feed it the response's bytes in any pieces; it hands back each complete event."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._data: list[str] = []
        self._event = ""
        self._broken: MalformedStream | None = None

    def feed(self, piece: bytes) -> list[Event]:
        if self._broken is not None:
            raise self._broken
        self._pending += piece
        events: list[Event] = []
        while True:
            end = self._line_end()
            if end is None:
                break
            line_end, next_start = end
            line = bytes(self._pending[:line_end])
            del self._pending[:next_start]
            try:
                event = self._take(line)
            except MalformedStream as err:
                return self._break(err, events)
            if event is not None:
                events.append(event)
        if len(self._pending) > MAX_LINE_BYTES:
            too_long = f"a line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB"
            return self._break(MalformedStream(too_long), events)
        return events

    def _break(self, err: MalformedStream, events: list[Event]) -> list[Event]:
        """The events before a bad line count, whatever piece they came in with: the error
        is raised once they are handed back (now if there are none)."""
        self._broken = err
        self._pending.clear()
        if events:
            return events
        raise err

    def close(self) -> list[Event]:
        """The end of the stream: an event without its blank line still counts."""
        if self._broken is not None:
            raise self._broken
        events = self.feed(b"\n") if self._pending else []
        if self._data:
            events.append(Event("\n".join(self._data), self._event or "message"))
            self._data, self._event = [], ""
        return events

    def _line_end(self) -> tuple[int, int] | None:
        """Where the first line ends, and where the next one starts (CR, LF or CRLF)."""
        pending = self._pending
        newline = pending.find(b"\n")
        carriage = pending.find(b"\r")
        if carriage != -1 and (newline == -1 or carriage < newline):
            if carriage == len(pending) - 1:
                return None  # a CR last may be the first half of a CRLF
            return carriage, carriage + (2 if pending[carriage + 1] == 0x0A else 1)
        if newline == -1:
            return None
        return newline, newline + 1

    def _take(self, raw: bytes) -> Event | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedStream("text that is not UTF-8") from None
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = Event("\n".join(self._data), self._event or "message")
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None
