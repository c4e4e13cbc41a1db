"""Discord's request validation: the limits that make a real send fail with 400.

Errors come back the way Discord shapes them, so discord.py turns them into an ``HTTPException``
with ``code == 50035`` and a text such as ``In embeds.0.title: Must be 256 or fewer in length.``::

    {"code": 50035, "message": "Invalid Form Body",
     "errors": {"embeds": {"0": {"title": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", ...}]}}}}}

Modelled: content 2000; at most 10 embeds; title 256, description 4096, 25 fields (name 256,
value 1024, both required), footer 2048, author name 256, all embeds together 6000 characters
(counted like discord.py's ``len(Embed)``); image/thumbnail/icon URLs http(s) or ``attachment://``;
empty messages (50006); components (5 rows of 5, custom_id 100, label 80, unique custom ids);
``allowed_mentions`` parse/list exclusivity; autocomplete choices (25, name/value 1-100);
application command definitions on sync (names, descriptions, options, choices, ordering).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_FIELD_LIMITS = {"title": 256, "description": 4096}
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
CHOICES_MAX = 25
CHOICE_MAX = 100
COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")

Path = Sequence[str | int]


class ApiError(Exception):
    """An error answer: HTTP status plus Discord's JSON error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        errors: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class FormErrors:
    """Collects field errors into Discord's nested ``errors`` tree."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: Path, code: str, message: str) -> None:
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def raise_if_any(self) -> None:
        if self.tree:
            raise ApiError(400, 50035, "Invalid Form Body", self.tree)


def check_length(
    errs: FormErrors, path: Path, value: Any, maximum: int, *, minimum: int = 0
) -> None:
    if value is None:
        if minimum:
            errs.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return
    text = str(value)
    if minimum and not minimum <= len(text) <= maximum:
        errs.add(
            path, "BASE_TYPE_BAD_LENGTH", f"Must be between {minimum} and {maximum} in length."
        )
    elif len(text) > maximum:
        errs.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {maximum} or fewer in length.")


def check_count(errs: FormErrors, path: Path, items: Sequence[Any], maximum: int) -> None:
    if len(items) > maximum:
        errs.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {maximum} or fewer in length.")


def check_url(errs: FormErrors, path: Path, url: Any, *, allow_attachment: bool) -> None:
    if url is None:
        return
    schemes = ("http", "https", "attachment") if allow_attachment else ("http", "https")
    parts = urlsplit(str(url))
    if parts.scheme not in schemes:
        allowed = ", ".join(repr(s) for s in schemes)
        errs.add(
            path,
            "URL_TYPE_INVALID_SCHEME",
            f'Scheme "{parts.scheme}" is not supported. Scheme must be one of ({allowed}).',
        )
    elif not parts.netloc:
        errs.add(path, "URL_TYPE_INVALID_URL", "Not a well formed URL.")


def embed_length(embed: dict[str, Any]) -> int:
    """Counted characters of one embed, exactly like discord.py's ``len(Embed)``."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for fld in embed.get("fields") or []:
        total += len(fld.get("name") or "") + len(fld.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def validate_embed(errs: FormErrors, path: Path, embed: dict[str, Any]) -> None:
    for key, maximum in EMBED_FIELD_LIMITS.items():
        check_length(errs, (*path, key), embed.get(key), maximum)
    check_url(errs, (*path, "url"), embed.get("url"), allow_attachment=False)
    fields = embed.get("fields") or []
    check_count(errs, (*path, "fields"), fields, FIELDS_MAX)
    for i, fld in enumerate(fields):
        check_length(errs, (*path, "fields", i, "name"), fld.get("name"), FIELD_NAME_MAX, minimum=1)
        check_length(
            errs, (*path, "fields", i, "value"), fld.get("value"), FIELD_VALUE_MAX, minimum=1
        )
    if footer := embed.get("footer"):
        check_length(errs, (*path, "footer", "text"), footer.get("text"), FOOTER_MAX, minimum=1)
        check_url(
            errs, (*path, "footer", "icon_url"), footer.get("icon_url"), allow_attachment=True
        )
    if author := embed.get("author"):
        check_length(
            errs, (*path, "author", "name"), author.get("name"), AUTHOR_NAME_MAX, minimum=1
        )
        check_url(errs, (*path, "author", "url"), author.get("url"), allow_attachment=False)
        check_url(
            errs, (*path, "author", "icon_url"), author.get("icon_url"), allow_attachment=True
        )
    for media in ("image", "thumbnail"):
        if item := embed.get(media):
            check_url(errs, (*path, media, "url"), item.get("url"), allow_attachment=True)


def validate_components(errs: FormErrors, path: Path, rows: list[dict[str, Any]]) -> None:
    check_count(errs, path, rows, 5)
    seen: set[str] = set()
    for r, row in enumerate(rows):
        children = row.get("components") or []
        check_count(errs, (*path, r, "components"), children, 5)
        for c, comp in enumerate(children):
            here = (*path, r, "components", c)
            check_length(errs, (*here, "label"), comp.get("label"), 80)
            custom_id = comp.get("custom_id")
            if comp.get("type") == 2 and comp.get("style") == 5:
                if not comp.get("url"):
                    errs.add((*here, "url"), "BASE_TYPE_REQUIRED", "This field is required")
                continue
            if custom_id is None:
                errs.add((*here, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
                continue
            check_length(errs, (*here, "custom_id"), custom_id, 100, minimum=1)
            if custom_id in seen:
                errs.add(
                    (*here, "custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                )
            seen.add(custom_id)


def validate_allowed_mentions(errs: FormErrors, path: Path, am: dict[str, Any]) -> None:
    parse = am.get("parse") or []
    for kind in ("users", "roles"):
        listed = am.get(kind) or []
        check_count(errs, (*path, kind), listed, 100)
        if kind in parse and listed:
            errs.add(
                path,
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{kind}"] and {kind}: {listed} are mutually exclusive.',
            )


def validate_message(
    body: dict[str, Any], *, prefix: Path = (), creating: bool = True, files: int = 0
) -> None:
    """Raise ``ApiError`` the way Discord rejects a message create/edit body."""
    errs = FormErrors()
    content = body.get("content")
    check_length(errs, (*prefix, "content"), content, CONTENT_MAX)
    embeds = body.get("embeds") or []
    check_count(errs, (*prefix, "embeds"), embeds, EMBEDS_MAX)
    for i, embed in enumerate(embeds):
        validate_embed(errs, (*prefix, "embeds", i), embed)
    if sum(embed_length(e) for e in embeds) > EMBED_TOTAL_MAX:
        errs.add(
            (*prefix, "embeds"),
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}",
        )
    validate_components(errs, (*prefix, "components"), body.get("components") or [])
    if (am := body.get("allowed_mentions")) is not None:
        validate_allowed_mentions(errs, (*prefix, "allowed_mentions"), am)
    errs.raise_if_any()
    has_something = (
        content
        or embeds
        or body.get("components")
        or files
        or body.get("attachments")
        or body.get("sticker_ids")
        or body.get("poll")
    )
    if creating and not has_something:
        raise ApiError(400, 50006, "Cannot send an empty message")


def validate_choices(choices: list[dict[str, Any]], *, prefix: Path = ("data", "choices")) -> None:
    """Autocomplete answers: at most 25 choices, names and string values 1-100 characters."""
    errs = FormErrors()
    check_count(errs, prefix, choices, CHOICES_MAX)
    for i, choice in enumerate(choices):
        check_length(errs, (*prefix, i, "name"), choice.get("name"), CHOICE_MAX, minimum=1)
        value = choice.get("value")
        if isinstance(value, str):
            check_length(errs, (*prefix, i, "value"), value, CHOICE_MAX, minimum=1)
        elif value is None:
            errs.add((*prefix, i, "value"), "BASE_TYPE_REQUIRED", "This field is required")
    errs.raise_if_any()


def _validate_options(errs: FormErrors, path: Path, options: list[dict[str, Any]]) -> None:
    check_count(errs, path, options, 25)
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        here = (*path, i)
        name = opt.get("name") or ""
        if not COMMAND_NAME_RE.match(name) or name != name.lower():
            errs.add((*here, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        if name in names:
            errs.add(
                (*here, "name"),
                "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                "Option name already exists",
            )
        names.add(name)
        check_length(errs, (*here, "description"), opt.get("description"), 100, minimum=1)
        choices = opt.get("choices") or []
        check_count(errs, (*here, "choices"), choices, CHOICES_MAX)
        for c, choice in enumerate(choices):
            check_length(errs, (*here, "choices", c, "name"), choice.get("name"), 100, minimum=1)
        if opt.get("type") in (1, 2):
            _validate_options(errs, (*here, "options"), opt.get("options") or [])
            continue
        if opt.get("required"):
            if seen_optional:
                errs.add(
                    here,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True


def validate_commands(commands: list[dict[str, Any]]) -> None:
    """A bulk overwrite body: what Discord checks before replacing the registered commands."""
    errs = FormErrors()
    check_count(errs, (), [c for c in commands if c.get("type", 1) == 1], 100)
    seen: set[tuple[int, str]] = set()
    for i, cmd in enumerate(commands):
        kind = cmd.get("type", 1)
        name = cmd.get("name") or ""
        if kind == 1:
            if not COMMAND_NAME_RE.match(name) or name != name.lower():
                errs.add((i, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            check_length(errs, (i, "description"), cmd.get("description"), 100, minimum=1)
        else:
            check_length(errs, (i, "name"), name, 32, minimum=1)
        if (kind, name) in seen:
            errs.add(
                (i, "name"),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        seen.add((kind, name))
        _validate_options(errs, (i, "options"), cmd.get("options") or [])
    errs.raise_if_any()
