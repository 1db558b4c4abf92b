"""Sequential reads over a ByteSource, fetched in growing chunks.

A GGUF header is thousands of small fields (a big vocabulary alone is 150k strings), so reading
each from the source would mean one syscall, or one HTTP range request, per field. The cursor
fetches 256 KiB first and doubles each refill, so a multi-megabyte header costs a handful of
requests while a small one never pulls more than the first chunk.
"""

from __future__ import annotations

import struct

from termllm.errors import GGUFError
from termllm.gguf.source import ByteSource
from termllm.safe_text import one_line

FIRST_CHUNK = 256 * 1024
MAX_CHUNK = 8 * 1024 * 1024
IMPLAUSIBLE_FIELD_SIZE = 1 << 32  # no header value (a vocabulary, a template) comes near 4 GiB
MAX_HEADER_BYTES = 64 * 1024 * 1024
"""Where reading a header stops. The largest real ones (a 262k-token vocabulary with its scores
and types, or 150k tokens and their merges) take 10-20 MiB; a hostile file's 90 MB key must not
make termllm read (or, from the Hub, download) it to find out."""
MAX_NAME_BYTES = 1024
"""The longest key or tensor name read; real ones are under 100 bytes (ggml's names, 64)."""
_QUOTED_CHARS = 80  # of a key or a name in an error message

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


class Cursor:
    """Reads forward from offset 0; `context` names what is being read, for error messages."""

    def __init__(self, source: ByteSource) -> None:
        self._source = source
        self.size = source.size
        self.context = "the header"
        self._buffer = b""
        self._buffer_start = 0  # file offset of _buffer[0]
        self._pos = 0  # index in _buffer of the next byte; past its end after a long skip

    @property
    def offset(self) -> int:
        return self._buffer_start + self._pos

    def corrupt(self, detail: str) -> GGUFError:
        return GGUFError(f"{self._source.label}: corrupt GGUF file ({detail} in {self.context})")

    def truncated(self) -> GGUFError:
        return GGUFError(
            f"{self._source.label}: truncated GGUF file (it ends at byte {self.size} "
            f"in {self.context}; the download may be incomplete)"
        )

    def check_fits(self, count: int, item_size: int, what: str) -> None:
        """Refuse a count whose items cannot fit before the end of the file.

        Run before looping or allocating on a count read from the file, so a corrupt value
        becomes an error instead of a hang or a MemoryError. Running past the end usually means
        a cut-off download; a field of gigabytes in a header means a corrupt one.
        """
        needed = count * item_size
        if needed > IMPLAUSIBLE_FIELD_SIZE:
            raise self.corrupt(f"{what} of {count:,}")
        if self.offset + needed > self.size:
            raise self.truncated()
        self._check_header_size(self.offset + needed)

    def _check_header_size(self, end: int) -> None:
        if end > MAX_HEADER_BYTES:
            raise GGUFError(
                f"{self._source.label}: the GGUF header runs past {MAX_HEADER_BYTES >> 20} MiB "
                f"(in {self.context}), more than any model's; termllm does not read further"
            )

    def _fill(self, length: int) -> None:
        """Make `length` bytes from the current position available in the buffer."""
        offset = self.offset
        if offset + length > self.size:
            raise self.truncated()
        self._check_header_size(offset + length)
        kept = self._buffer[self._pos :]
        fetch_at = offset + len(kept)
        chunk = FIRST_CHUNK if not self._buffer else min(2 * len(self._buffer), MAX_CHUNK)
        # Never past the header limit: what is needed was checked to end before it.
        end = min(self.size, MAX_HEADER_BYTES)
        wanted = min(max(length - len(kept), chunk), end - fetch_at)
        data = self._source.read_at(fetch_at, wanted)
        if len(kept) + len(data) < length:
            # The source promised `size` bytes and delivered fewer: it shrank under us.
            raise self.truncated()
        self._buffer = kept + data
        self._buffer_start = offset
        self._pos = 0

    def read(self, length: int) -> bytes:
        if self._pos + length > len(self._buffer):
            self._fill(length)
        start = self._pos
        self._pos += length
        return self._buffer[start : self._pos]

    def unpack(self, layout: struct.Struct) -> tuple[object, ...]:
        if self._pos + layout.size > len(self._buffer):
            self._fill(layout.size)
        values = layout.unpack_from(self._buffer, self._pos)
        self._pos += layout.size
        return values

    def u32(self) -> int:
        if self._pos + 4 > len(self._buffer):
            self._fill(4)
        (value,) = U32.unpack_from(self._buffer, self._pos)
        self._pos += 4
        return int(value)

    def u64(self) -> int:
        if self._pos + 8 > len(self._buffer):
            self._fill(8)
        (value,) = U64.unpack_from(self._buffer, self._pos)
        self._pos += 8
        return int(value)

    def skip(self, length: int) -> None:
        """Move past `length` bytes without fetching them if they are not buffered yet."""
        if self.offset + length > self.size:
            raise self.truncated()
        self._check_header_size(self.offset + length)
        self._pos += length

    def string(self) -> str:
        length = self.u64()
        self.check_fits(length, 1, "a string length")
        # Tokens of byte-level vocabularies need not be valid UTF-8 on their own.
        return self.read(length).decode("utf-8", errors="replace")

    def name(self, what: str) -> str:
        """A key or a tensor name: a string refused, before it is read, when far too long."""
        length = self.u64()
        if length > MAX_NAME_BYTES:
            raise self.corrupt(f"{what} of {length:,} bytes")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        # A vocabulary is ~50-250k strings and this runs on every model load: strings wholly
        # inside the buffer are walked in a tight local loop, only one crossing its end goes the
        # general (checked, refilling) way.
        unpack = U64.unpack_from
        remaining = count
        while remaining:
            buffer, pos, end = self._buffer, self._pos, len(self._buffer)
            while remaining and pos + 8 <= end:
                (length,) = unpack(buffer, pos)
                following = pos + 8 + length
                if following > end:
                    break
                pos = following
                remaining -= 1
            self._pos = pos
            if remaining:
                length = self.u64()
                self.check_fits(length, 1, "a string length")
                self.skip(length)
                remaining -= 1


def quoted(text: str) -> str:
    """A key, name or value from a file as an error message quotes it: safe and short."""
    if len(text) <= _QUOTED_CHARS and text.isprintable():
        return repr(text)  # every real name, and quick: the reader quotes each as it goes
    return repr(one_line(text[: 4 * _QUOTED_CHARS], _QUOTED_CHARS))
