"""Plain HTTP to the Hub and its CDN: redirects followed by hand, credentials kept on the Hub.

huggingface_hub's own download helpers delete partial files on any error and retry for ~23 s when
the Hub is down; termllm needs ranged reads that resume and fail fast, so it talks HTTP itself
through huggingface_hub's shared client (proxies, offline switch and request ids stay consistent).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urljoin, urlsplit

from termllm import __version__
from termllm.errors import HubError, NetworkError
from termllm.hub.failures import Target, offline_error, translate, unreachable
from termllm.safe_text import one_line

if TYPE_CHECKING:
    import httpx2

_MAX_REDIRECTS = 10
STALL_BYTES = 16 * 1024
"""A body has stalled when its next this many bytes (or its rest, if fewer) take longer than
hub.timeout_s to arrive: the Hub, or a download server, answering that slowly is unreachable."""


@dataclass(frozen=True)
class Probe:
    """What a HEAD on a resolve URL tells: where the bytes are, how many, at which commit."""

    data_url: str
    size: int
    commit: str | None
    etag: str | None
    """The blob name huggingface_hub would use: the LFS sha256, or the git blob id."""


def origin(url: str) -> tuple[str, str, int]:
    split = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(split.scheme, 0)
    return split.scheme, (split.hostname or "").lower(), split.port or default_port


class HubHttp:
    """Requests on behalf of one HubClient: its endpoint, token and timeout."""

    def __init__(self, endpoint: str, token: str | None, offline: bool, timeout_s: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.offline = offline
        self.timeout_s = timeout_s
        self._token = token
        self._hub_origin = origin(self.endpoint)
        self._hub_headers: dict[str, str] | None = None

    def is_hub(self, url: str) -> bool:
        return origin(url) == self._hub_origin

    def server(self, url: str) -> str:
        """How an error names the server behind `url` (never the signed CDN URL itself)."""
        if self.is_hub(url):
            return f"the Hub at {self.endpoint}"
        split = urlsplit(url)
        port = f":{split.port}" if split.port else ""
        return f"the download server {split.scheme}://{split.hostname}{port}"

    def network_error(self, err: Exception, url: str) -> NetworkError:
        """The error for a failed connection; `url` is used when `err` does not name its own."""
        from termllm.hub import hf

        if isinstance(err, hf.httpx2.RequestError):
            # httpx2 raises RuntimeError when the error carries no request.
            with suppress(RuntimeError):
                url = str(err.request.url)
        return unreachable(err, self.server(url), self.timeout_s)

    def body(self, response: httpx2.Response) -> Iterator[bytes]:
        """`response`'s raw bytes as they arrive, ended by a NetworkError once they stall.

        The read timeout alone cannot end a trickle, since every byte restarts it: this is a
        progress deadline, moved on by each STALL_BYTES received. A read still waits at most
        timeout_s, so a stalled body fails within twice hub.timeout_s.
        """
        deadline = time.monotonic() + self.timeout_s
        owed = STALL_BYTES
        for chunk in response.iter_raw():
            owed -= len(chunk)
            if owed <= 0:
                owed = STALL_BYTES
                deadline = time.monotonic() + self.timeout_s
            elif time.monotonic() > deadline:
                raise NetworkError(
                    f"lost the connection to {self.server(str(response.url))}: less than"
                    f" {STALL_BYTES // 1024} KiB arrived in {self.timeout_s:g} s (hub.timeout_s)"
                )
            yield chunk

    def headers_for(self, url: str) -> dict[str, str]:
        """The token goes to the Hub's own origin only, never to a CDN it redirects to."""
        from termllm.hub import hf

        if self._hub_headers is None:
            # token=None lets huggingface_hub find HF_TOKEN or the saved token file.
            self._hub_headers = hf.build_hf_headers(
                token=self._token, library_name="termllm", library_version=__version__
            )
        headers = dict(self._hub_headers)
        if not self.is_hub(url):
            headers.pop("authorization", None)
        # Ranges count raw bytes; a compressed body would make them meaningless.
        headers["accept-encoding"] = "identity"
        return headers

    @contextmanager
    def open(
        self,
        method: str,
        url: str,
        target: Target,
        *,
        byte_range: str | None = None,
        stop_at_other_origin: bool = False,
    ) -> Iterator[httpx2.Response]:
        """A streamed response, after following redirects hop by hop.

        HTTP errors become termllm errors; connection failures stay httpx2.TransportError so that
        callers can decide to retry. With `stop_at_other_origin`, a redirect off the Hub is
        returned as is (its headers carry the file's metadata and the CDN location).
        """
        from termllm.hub import hf

        if self.offline:
            raise offline_error(target)
        session = hf.get_session()
        timeout = hf.httpx2.Timeout(self.timeout_s)
        for _ in range(_MAX_REDIRECTS):
            headers = self.headers_for(url)
            if byte_range is not None:
                headers["range"] = byte_range
            request = session.build_request(method, url, headers=headers, timeout=timeout)
            try:
                response = self._send(session, request)
            except hf.OfflineModeIsEnabled as err:
                raise offline_error(target) from err
            if response.has_redirect_location:
                location = urljoin(url, response.headers["location"])
                if not stop_at_other_origin or self.is_hub(location):
                    response.close()
                    url = location
                    continue
            if response.is_error:
                _raise_for_status(response, target, self.timeout_s)
            try:
                yield response
            finally:
                response.close()
            return
        raise HubError(f"too many redirects while fetching {target.file} from {target.where}")

    def _send(self, session: httpx2.Client, request: httpx2.Request) -> httpx2.Response:
        """Send `request` and return once its status and headers are in, within twice timeout_s.

        Each read waits at most timeout_s, but headers trickled a byte at a time would restart
        that wait for as long as the server likes (up to httpcore's 100 KiB of headers). No
        portable way interrupts a read from outside, so the send runs in a thread of its own
        and is left behind once too late; its response, if one comes, is closed there.
        """
        exchange = _Exchange(session, request)
        threading.Thread(target=exchange.run, name="termllm-hub-send", daemon=True).start()
        return exchange.result(2 * self.timeout_s, self)

    def probe(self, url: str, target: Target) -> Probe:
        """HEAD a resolve URL: the CDN location (if any), the size and the commit."""
        from termllm.hub import hf

        try:
            with self.open("HEAD", url, target, stop_at_other_origin=True) as response:
                headers = response.headers
                final_url = str(response.url)
        except hf.httpx2.TransportError as err:
            raise self.network_error(err, url) from err
        size = _byte_count(headers.get("x-linked-size") or headers.get("content-length") or "")
        if size is None:
            raise HubError(f"the Hub did not say how large {target.file} is")
        location = headers.get("location")
        data_url = urljoin(final_url, location) if location else final_url
        etag = headers.get("x-linked-etag") or headers.get("etag")
        return Probe(
            data_url=data_url,
            size=size,
            commit=headers.get("x-repo-commit"),
            etag=_normalize_etag(etag) if etag else None,
        )


class _Exchange:
    """One `session.send` run in another thread, with its outcome handed back or discarded."""

    def __init__(self, session: httpx2.Client, request: httpx2.Request) -> None:
        self._session = session
        self._request = request
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._response: httpx2.Response | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            response = self._session.send(self._request, stream=True, follow_redirects=False)
        except BaseException as err:  # handed to the waiting thread, which raises it
            with self._lock:
                self._error = err
        else:
            with self._lock:
                if self._abandoned:
                    response.close()
                    return
                self._response = response
        self._done.set()

    def result(self, limit_s: float, http: HubHttp) -> httpx2.Response:
        if not self._done.wait(limit_s):
            with self._lock:
                late = self._response is None and self._error is None
                self._abandoned = late
            if late:
                raise NetworkError(
                    f"cannot reach {http.server(str(self._request.url))}: no complete answer"
                    f" within {limit_s:g} s (twice hub.timeout_s)"
                )
        if self._error is not None:
            raise self._error
        assert self._response is not None
        return self._response


def _normalize_etag(etag: str) -> str:
    # The same normalisation as huggingface_hub: weak ETags and quotes are noise.
    return etag.removeprefix("W/").strip('"')


def _raise_for_status(response: httpx2.Response, target: Target, timeout_s: float) -> NoReturn:
    from termllm.hub import hf

    # The error's kind is in the X-Error-Code header; its body is left unread, so that a server
    # cannot stall or flood termllm with it, nor hand huggingface_hub JSON it cannot parse.
    response.close()
    headers_only = hf.httpx2.Response(
        response.status_code, headers=response.headers, content=b"", request=response.request
    )
    try:
        hf.hf_raise_for_status(headers_only)
    except hf.HfHubHTTPError as err:
        raise translate(err, target, timeout_s) from err
    raise HubError(f"the Hub answered HTTP {response.status_code} for {target.where}")


def body_span(response: httpx2.Response) -> tuple[int, int | None]:
    """Where a 200 or 206 body starts in the file, and the file size the server claims."""
    if response.status_code != 206:
        return 0, _byte_count(response.headers.get("content-length", ""))
    value = response.headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    span, _, total = spec.partition("/")
    first = _byte_count(span.partition("-")[0])
    if unit != "bytes" or first is None:
        raise HubError(
            "the download server sent an unreadable Content-Range: "
            + one_line(repr(value), max_chars=80)
        )
    return first, _byte_count(total)


def _byte_count(text: str) -> int | None:
    """A size or an offset as a server wrote it: ASCII digits only (str.isdigit also takes "²",
    which int() refuses), and few enough for a file (int() refuses thousands of digits)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None
