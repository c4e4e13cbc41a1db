"""Story identity: canonical URLs and the stable ids derived from them."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

# Query parameters that only say where a reader came from; they never change the article.
_TRACKING_PARAMS = frozenset(
    {
        "ref",
        "ref_src",
        "ref_url",
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "cmpid",
        "ocid",
        "smid",
        "sr_share",
        "spm",
        "share",
        "src",
        "s_cid",
        "wt_mc",
        "utm",
    }
)
_TRACKING_PREFIXES = ("utm_", "__hs", "hsa_", "pk_", "mtm_", "vero_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WHITESPACE = re.compile(r"\s")
# An absolute http(s) URL with a host: all a link or image needs to be usable in Discord.
_WEB_URL = re.compile(r"https?://[^\s/?#@:]+(?::\d+)?(?:[/?#]\S*)?", re.IGNORECASE)
# A URL already in canonical form, as most links in feeds are: lower-case scheme and host, no
# port, credentials, query or fragment, and a path without whitespace or control characters.
_ALREADY_CANONICAL = re.compile(r"https?://[a-z0-9.-]+/[^\s\x00-\x1f\x7f?#]*")


class InvalidURL(ValueError):
    """Raised for anything that is not an absolute http(s) URL with a host."""


def is_web_url(value: str) -> bool:
    """True for an absolute http(s) URL with a host (what Discord accepts for links and images).

    A regular expression rather than canonical_url: it runs for every image of every story.
    """
    return _WEB_URL.fullmatch(value) is not None


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """The form of `url` under which one article has one identity.

    Lower-cases scheme and host, drops default ports, fragments and tracking parameters
    (utm_*, ref, fbclid, ...), and keeps every other parameter in its order: sites such as
    research-live.com need `?id=` to find the article.
    """
    text = url.strip()
    if _ALREADY_CANONICAL.fullmatch(text):
        # A quarter of a seed's parsing went into splitting and joining such URLs again.
        return text
    return _canonical_url_parsed(text)


def _canonical_url_parsed(text: str) -> str:
    """canonical_url the general way: split the URL, clean its parts, join them again."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as error:
        raise InvalidURL(f"not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL("not an http(s) URL")
    host = (parts.hostname or "").lower()
    if not host or _WHITESPACE.search(text):
        raise InvalidURL("not an http(s) URL with a host")
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username or parts.password:
        raise InvalidURL("URL carries credentials")
    query = parts.query
    if query:
        # Filter the raw pairs rather than decode and re-encode them: the rest stays byte-exact.
        pairs = query.split("&")
        query = "&".join(p for p in pairs if p and not _is_tracking(unquote_plus(p.split("=")[0])))
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def story_id(canonical: str) -> int:
    """A stable, positive 63-bit id for a canonical URL (fits SQLite's INTEGER PRIMARY KEY).

    Derived rather than assigned, so a rebuilt database keeps every id, and a related link
    knows the id its story would have before that story is loaded.
    """
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
