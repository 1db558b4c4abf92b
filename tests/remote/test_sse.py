"""The server-sent events parser: whatever pieces the bytes arrive in, the same events."""

import pytest

from termllm.remote.sse import MAX_LINE_BYTES, Event, EventReader, MalformedStream

STREAM = (
    ": a comment, as keep-alives are sent\n"
    'data: {"text": "héllo 日本"}\n'
    "\n"
    "event: error\n"
    "data: first line\n"
    "data: second line\n"
    "\n"
    "retry: 100\n"
    "id: 7\n"
    "data: [DONE]\n"
    "\n"
)
EVENTS = [
    Event('{"text": "héllo 日本"}'),
    Event("first line\nsecond line", "error"),
    Event("[DONE]"),
]


def read_all(*pieces: bytes) -> list[Event]:
    reader = EventReader()
    events = [event for piece in pieces for event in reader.feed(piece)]
    return events + reader.close()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_stream_split_at_any_byte_gives_the_same_events(newline: str) -> None:
    data = STREAM.replace("\n", newline).encode()
    assert read_all(data) == EVENTS
    # Every split, including inside a UTF-8 character and between a CR and its LF.
    for cut in range(len(data) + 1):
        assert read_all(data[:cut], data[cut:]) == EVENTS, cut
    assert read_all(*(data[i : i + 1] for i in range(len(data)))) == EVENTS


def test_line_endings_may_be_mixed() -> None:
    assert read_all(b"data: a\r\ndata: b\rdata: c\n\r\n") == [Event("a\nb\nc")]


def test_comments_and_unknown_fields_are_skipped() -> None:
    reader = EventReader()
    assert reader.feed(b": ping\n\nid: 1\nretry: 5\nfoo: bar\nnocolon\n\n") == []
    assert reader.feed(b"data:no space\nfoo: ignored\n\n") == [Event("no space")]
    assert reader.close() == []


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert read_all(b"data:  two\ndata\n\n") == [Event(" two\n")]


def test_an_event_type_applies_to_its_own_event_only() -> None:
    assert read_all(b"event: ping\n\ndata: x\n\n") == [Event("x")]


@pytest.mark.parametrize("tail", [b"data: last", b"data: last\n", b"data: last\r"])
def test_an_event_without_its_blank_line_counts_at_close(tail: bytes) -> None:
    reader = EventReader()
    assert reader.feed(b"data: one\n\n" + tail) == [Event("one")]
    assert reader.close() == [Event("last")]
    assert reader.close() == []


def test_a_line_up_to_the_limit_is_read() -> None:
    reader = EventReader()
    line = b"data: " + b"x" * (MAX_LINE_BYTES - len(b"data: "))
    assert reader.feed(line) == []
    [event] = reader.feed(b"\n\n")
    assert len(event.data) == MAX_LINE_BYTES - len(b"data: ")


def test_a_line_over_the_limit_is_malformed_before_more_than_the_limit_is_held() -> None:
    reader = EventReader()
    piece = b"x" * (256 * 1024)
    fed = 0
    with pytest.raises(MalformedStream, match="longer than 4 MiB"):
        while fed <= 4 * MAX_LINE_BYTES:
            reader.feed(piece)
            fed += len(piece)
    # It gave up on the first piece that took the line past the limit.
    assert fed == MAX_LINE_BYTES


def test_a_long_stream_of_short_lines_is_not_a_long_line() -> None:
    reader = EventReader()
    event = b"data: " + b"y" * 1000 + b"\n\n"
    count = 0
    for _ in range(2 * MAX_LINE_BYTES // len(event)):
        count += len(reader.feed(event))
    assert count == 2 * MAX_LINE_BYTES // len(event)


@pytest.mark.parametrize(
    "data", [b"data: \xff\xfe\n\n", b"data: caf\xc3\n\n", b"\xc0\x80: x\n"], ids=str
)
def test_text_that_is_not_utf8_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedStream, match="not UTF-8"):
        read_all(data)


@pytest.mark.parametrize("bad", [b"data: \xff\n\n", b"data: " + b"z" * (MAX_LINE_BYTES + 1)])
def test_the_events_before_a_bad_line_come_out_whatever_the_pieces(bad: bytes) -> None:
    good = b"data: one\n\ndata: two\n\n"
    for cut in (0, 5, len(good), len(good) + 3):
        data = good + bad
        reader = EventReader()
        events: list[Event] = []
        with pytest.raises(MalformedStream):
            for piece in (data[:cut], data[cut:]):
                events += reader.feed(piece)
            reader.close()
        assert events == [Event("one"), Event("two")], cut
        with pytest.raises(MalformedStream):
            reader.feed(b"data: after\n\n")
