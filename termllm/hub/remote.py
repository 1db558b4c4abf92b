"""A file on the Hub read by HTTP range requests, so `termllm info` fetches only a GGUF header.

The GGUF reader asks for small pieces, then bigger ones as it walks the metadata; each miss
fetches at least a window that doubles every time, so a header of a few MiB costs a handful of
requests, and every byte fetched is kept for later reads.

Nothing past MAX_HEADER_BYTES is read: the largest real headers (a 262k-token vocabulary with its
scores and types, or 150k tokens with their merges) take about 10-15 MiB, while a hostile one (a
key 90 MB long) must not make `info` download it to find out. A read that would cross the limit
is refused before any byte of it is fetched.
"""

from __future__ import annotations

import bisect

from termllm.errors import GGUFError, HubError, NetworkError
from termllm.gguf.cursor import MAX_HEADER_BYTES
from termllm.hub.failures import Target
from termllm.hub.http import HubHttp, body_span

_FIRST_WINDOW = 512 * 1024
_MAX_WINDOW = 32 * 1024 * 1024


class HttpRangeSource:
    """A ByteSource over `url` (usually the CDN location the Hub redirected to)."""

    def __init__(self, http: HubHttp, url: str, size: int, label: str, target: Target) -> None:
        self._http = http
        self._url = url
        self._size = size
        self._label = label
        self._target = target
        self._window = _FIRST_WINDOW
        # Disjoint, sorted, non-adjacent spans of the file already fetched: (start, bytes).
        self._starts: list[int] = []
        self._spans: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    @property
    def label(self) -> str:
        return self._label

    def read_at(self, offset: int, length: int) -> bytes:
        end = min(offset + max(length, 0), self._size)
        if offset >= end:
            return b""
        if end > MAX_HEADER_BYTES:
            raise GGUFError(
                f"{self._label}: the GGUF header runs past its first"
                f" {MAX_HEADER_BYTES >> 20} MiB, more than termllm reads of a file on the Hub"
            )
        have_start, have = self._span_at(offset)
        have_end = have_start + len(have)
        if have_end >= end:
            return have[offset - have_start : end - have_start]
        fetch_start = max(offset, have_end)
        fetch_end = min(self._size, MAX_HEADER_BYTES, max(end, fetch_start + self._window))
        self._window = min(self._window * 2, _MAX_WINDOW)
        self._store(fetch_start, self._fetch(fetch_start, fetch_end))
        have_start, have = self._span_at(offset)
        return have[offset - have_start : end - have_start]

    def _span_at(self, offset: int) -> tuple[int, bytes]:
        """The cached span holding `offset`, or an empty one there."""
        index = bisect.bisect_right(self._starts, offset) - 1
        if index >= 0 and self._starts[index] + len(self._spans[index]) > offset:
            return self._starts[index], self._spans[index]
        return offset, b""

    def _store(self, start: int, data: bytes) -> None:
        """Add a span and merge it with any span it touches."""
        end = start + len(data)
        keep_starts: list[int] = []
        keep_spans: list[bytes] = []
        for span_start, span in zip(self._starts, self._spans, strict=True):
            span_end = span_start + len(span)
            if span_end < start or span_start > end:
                keep_starts.append(span_start)
                keep_spans.append(span)
                continue
            if span_start < start:
                data = span[: start - span_start] + data
                start = span_start
            if span_end > end:
                data = data + span[end - span_start :]
                end = span_end
        index = bisect.bisect_left(keep_starts, start)
        keep_starts.insert(index, start)
        keep_spans.insert(index, data)
        self._starts, self._spans = keep_starts, keep_spans

    def _fetch(self, start: int, end: int) -> bytes:
        from termllm.hub import hf

        wanted = end - start
        parts: list[bytes] = []
        received = 0
        try:
            with self._http.open(
                "GET", self._url, self._target, byte_range=f"bytes={start}-{end - 1}"
            ) as response:
                # A server that ignores Range sends the file from byte 0: skip up to `start`.
                skip = start - body_span(response)[0]
                if skip < 0:
                    raise HubError(f"{self._label}: the download server sent the wrong range")
                for chunk in self._http.body(response):
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    parts.append(chunk[: wanted - received])
                    received += len(parts[-1])
                    if received >= wanted:
                        break
        except hf.httpx2.TransportError as err:
            raise self._http.network_error(err, self._url) from err
        if received < wanted:
            raise NetworkError(
                f"{self._label}: the download server sent {received} of {wanted} bytes"
            )
        return b"".join(parts)
