"""Plain HTTP to the Hub and its CDN: redirects followed by hand, credentials kept on the Hub.

huggingface_hub's own download helpers delete partial files on any error and retry for ~23 s when
the Hub is down; termllm needs ranged reads that resume and fail fast, so it talks HTTP itself
through huggingface_hub's shared client (proxies, offline switch and request ids stay consistent).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urljoin, urlsplit

from termllm import __version__
from termllm.errors import HubError, NetworkError
from termllm.hub.failures import Target, offline_error, translate, unreachable

if TYPE_CHECKING:
    import httpx2

_MAX_REDIRECTS = 10


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
                response = session.send(request, stream=True, follow_redirects=False)
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
        raise HubError(f"too many redirects while fetching {target.filename} from {target.where}")

    def probe(self, url: str, target: Target) -> Probe:
        """HEAD a resolve URL: the CDN location (if any), the size and the commit."""
        from termllm.hub import hf

        try:
            with self.open("HEAD", url, target, stop_at_other_origin=True) as response:
                headers = response.headers
                final_url = str(response.url)
        except hf.httpx2.TransportError as err:
            raise self.network_error(err, url) from err
        size_text = headers.get("x-linked-size") or headers.get("content-length")
        if size_text is None or not size_text.isdigit():
            raise HubError(f"the Hub did not say how large {target.filename} is")
        location = headers.get("location")
        data_url = urljoin(final_url, location) if location else final_url
        etag = headers.get("x-linked-etag") or headers.get("etag")
        return Probe(
            data_url=data_url,
            size=int(size_text),
            commit=headers.get("x-repo-commit"),
            etag=_normalize_etag(etag) if etag else None,
        )


def _normalize_etag(etag: str) -> str:
    # The same normalisation as huggingface_hub: weak ETags and quotes are noise.
    return etag.removeprefix("W/").strip('"')


def _raise_for_status(response: httpx2.Response, target: Target, timeout_s: float) -> NoReturn:
    from termllm.hub import hf

    try:
        # Error bodies are small and huggingface_hub reads them for its messages.
        response.read()
        hf.hf_raise_for_status(response)
    except hf.HfHubHTTPError as err:
        raise translate(err, target, timeout_s) from err
    finally:
        response.close()
    raise HubError(f"the Hub answered HTTP {response.status_code} for {target.where}")


def body_span(response: httpx2.Response) -> tuple[int, int | None]:
    """Where a 200 or 206 body starts in the file, and the file size the server claims."""
    if response.status_code != 206:
        length = response.headers.get("content-length", "")
        return 0, int(length) if length.isdigit() else None
    value = response.headers.get("content-range", "")
    unit, _, spec = value.partition(" ")
    span, _, total = spec.partition("/")
    first = span.partition("-")[0]
    if unit != "bytes" or not first.isdigit():
        raise HubError(f"the download server sent an unreadable Content-Range: {value!r}")
    return int(first), int(total) if total.isdigit() else None
