"""Reading a feed's bytes from a URL (http or https) or a file, with bounds: a timeout, a size
cap, redirects followed; a feed that cannot be read is FeedUnavailable, naming why in one line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from bot import version
from bot.errors import one_line

FETCH_TIMEOUT_SECONDS = 20
MAX_FEED_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 10
WEB_SCHEMES = frozenset({"http", "https"})
_CHUNK = 64 * 1024


class FeedUnavailable(Exception):
    """The feed could not be read: the message says why, in one line."""


class NotAWebURL(ValueError):
    """A feed named by a URL whose scheme is not http or https."""


@dataclass(frozen=True, slots=True)
class FeedBytes:
    data: bytes
    # The HTTP response's headers feedparser reads: Content-Location (the final URL, against
    # which relative links resolve) and Content-Type (the encoding).
    headers: Mapping[str, str] = field(default_factory=dict)


def is_url(source: str) -> bool:
    """A URL has a scheme of two or more letters and "://"; anything else is a file path."""
    scheme, separator, _ = source.partition("://")
    return bool(separator) and len(scheme) > 1 and scheme.isascii() and scheme.isalpha()


def check_source(source: str) -> str:
    """The feed as given, or NotAWebURL for a URL that newsbot does not fetch (ftp://, file://)."""
    if is_url(source) and urlsplit(source).scheme.lower() not in WEB_SCHEMES:
        raise NotAWebURL(f"only http and https feed URLs can be fetched: {source}")
    return source


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS),
        headers={
            "User-Agent": f"newsbot/{version()} (feed import)",
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, "
            "text/xml;q=0.9, */*;q=0.5",
        },
    )


async def read_feed(source: str, session: aiohttp.ClientSession | None) -> FeedBytes:
    """The feed's bytes: downloaded (session needed) for a URL, else read from the file."""
    if is_url(source):
        if session is None:
            raise ValueError("a feed URL needs an HTTP session")
        return await download(source, session)
    return FeedBytes(await asyncio.to_thread(read_file, Path(source)))


async def download(url: str, session: aiohttp.ClientSession) -> FeedBytes:
    try:
        async with session.get(url, max_redirects=MAX_REDIRECTS) as response:
            if response.status >= 400:
                raise FeedUnavailable(f"HTTP {response.status} {response.reason or ''}".strip())
            if (response.content_length or 0) > MAX_FEED_BYTES:
                raise FeedUnavailable(_too_large())
            data = await _read_capped(response)
            headers = {"content-location": str(response.url)}
            if "Content-Type" in response.headers:
                headers["content-type"] = response.headers["Content-Type"]
            return FeedBytes(data, headers)
    except TimeoutError:
        raise FeedUnavailable(f"no answer within {FETCH_TIMEOUT_SECONDS} s") from None
    except aiohttp.TooManyRedirects:
        raise FeedUnavailable(f"more than {MAX_REDIRECTS} redirects") from None
    except aiohttp.ClientConnectorError as error:
        reason = _os_reason(error.os_error)
        raise FeedUnavailable(f"cannot connect to {error.host}:{error.port}: {reason}") from None
    except aiohttp.ClientError as error:
        raise FeedUnavailable(one_line(error)) from None


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    # Content-Length can be absent or wrong, and compressed bodies grow: count what arrives.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > MAX_FEED_BYTES:
            raise FeedUnavailable(_too_large())
        chunks.append(chunk)
    return b"".join(chunks)


def read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FEED_BYTES + 1)
    except OSError as error:
        raise FeedUnavailable(f"cannot read file: {error.strerror or error}") from None
    if len(data) > MAX_FEED_BYTES:
        raise FeedUnavailable(_too_large())
    return data


def _os_reason(error: OSError) -> str:
    # asyncio's "Connect call failed ('127.0.0.1', 80)" carries the errno but no strerror.
    if error.errno:
        return os.strerror(error.errno)
    return error.strerror or one_line(error)


def _too_large() -> str:
    return f"larger than {MAX_FEED_BYTES // (1024 * 1024)} MiB"
