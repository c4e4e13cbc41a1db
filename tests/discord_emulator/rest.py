"""REST under ``/api/v10``: routing, the request pipeline, and the route handlers.

Pipeline for every request: record it -> match a route (unknown: 404 ``{"message": "404: Not
Found", "code": 0}``, recorded in ``emu.unknown_requests``) -> bot-token check (401; interaction
callbacks and webhook-token routes need none, as on Discord) -> injected failures
(``emu.fail_next``) -> global limit -> route bucket -> handler. Handlers raise ``ApiError`` for
Discord-style errors. Every JSON answer carries exactly ``Content-Type: application/json``
(discord.py only decodes JSON when the header is exactly that).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import interactions as ix
from .limits import (
    MALFORMED_JSON,
    SERVER_ERROR_TEXT,
    CreateFault,
    RateLimiter,
    bucket_hash,
    too_many_requests,
)
from .state import (
    EMBED_LINKS,
    FLAG_EPHEMERAL,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Channel,
    Guild,
    StoredMessage,
)
from .validation import ApiError, FormErrors, validate_choices, validate_commands, validate_message

if TYPE_CHECKING:
    from .emulator import DiscordEmulator, RequestRecord

Handler = Callable[["Ctx"], Awaitable[Any]]
NO_CONTENT = object()


@dataclass
class Faulted:
    """A handler's result whose answer an ``after_create`` rule spoils (see ``CreateFault``)."""

    rule: CreateFault
    payload: dict[str, Any]


@dataclass
class Ctx:
    """What a handler gets: path parameters, query, JSON body and uploaded file names."""

    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: list[dict[str, Any]]
    record: RequestRecord


@dataclass
class Route:
    method: str
    template: str
    handler: Handler
    auth: bool = True
    bucket: str | None = "route"  # route | channel | webhook | None (no rate limit)
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        self.regex = re.compile(f"^{pattern}$")

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class RestApi:
    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu
        cmds = "/applications/{application_id}/commands"
        guild_cmds = "/applications/{application_id}/guilds/{guild_id}/commands"
        hook = "/webhooks/{application_id}/{token}"
        hook_msg = f"{hook}/messages/{{message_id}}"  # message_id may be "@original"
        msgs = "/channels/{channel_id}/messages"
        callback = "/interactions/{interaction_id}/{token}/callback"
        no_auth: dict[str, Any] = {"auth": False, "bucket": "webhook"}
        self.routes = [
            Route("GET", "/users/@me", self.get_me),
            Route("GET", "/users/{user_id}", self.get_user),
            Route("GET", "/oauth2/applications/@me", self.get_application),
            Route("GET", "/applications/@me", self.get_application),
            Route("GET", "/gateway", self.get_gateway, auth=False),
            Route("GET", "/gateway/bot", self.get_gateway_bot),
            *(
                route
                for base in (cmds, guild_cmds)
                for route in (
                    Route("GET", base, self.list_commands),
                    Route("PUT", base, self.put_commands),
                    Route("POST", base, self.upsert_command),
                    Route("GET", f"{base}/{{command_id}}", self.get_command),
                    Route("DELETE", f"{base}/{{command_id}}", self.delete_command),
                )
            ),
            Route("POST", callback, self.interaction_callback, auth=False, bucket=None),
            Route("POST", hook, self.followup, **no_auth),
            Route("GET", hook_msg, self.get_hook_msg, **no_auth),
            Route("PATCH", hook_msg, self.edit_hook_msg, **no_auth),
            Route("DELETE", hook_msg, self.delete_hook_msg, **no_auth),
            Route("GET", "/channels/{channel_id}", self.get_channel),
            Route("GET", msgs, self.list_messages),
            Route("POST", msgs, self.send_message, bucket="channel"),
            Route("GET", f"{msgs}/{{message_id}}", self.get_message),
            Route("PATCH", f"{msgs}/{{message_id}}", self.edit_message),
            Route("DELETE", f"{msgs}/{{message_id}}", self.delete_message),
            Route("POST", "/channels/{channel_id}/typing", self.typing),
            Route("GET", "/guilds/{guild_id}", self.get_guild),
            Route("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            Route("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]

    # --- pipeline ------------------------------------------------------------------------------

    async def handle_outside_api(self, request: web.Request) -> web.Response:
        """Anything not under /api/v10 (another API version, a stray URL): recorded 404."""
        return await self._dispatch(request, request.path, in_api=False)

    async def handle(self, request: web.Request) -> web.Response:
        return await self._dispatch(request, "/" + request.match_info["tail"], in_api=True)

    async def _dispatch(self, request: web.Request, path: str, *, in_api: bool) -> web.Response:
        from .emulator import RequestRecord

        emu = self.emu
        authorized = request.headers.get("Authorization") == f"Bot {emu.token}"
        record = RequestRecord(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            at=time.monotonic(),
            authorized=authorized,
        )
        emu.requests.append(record)
        headers: dict[str, str] = {}  # rate-limit headers go on error answers too, as on Discord
        try:
            body, files = await self._read_body(request)
            record.json, record.files = body, [f["filename"] for f in files]
            route, params = self._match(request.method, path) if in_api else (None, {})
            if route is None:
                emu.unknown_requests.append(record)
                raise ApiError(404, 0, "404: Not Found")
            record.route = route.key
            if route.auth and not authorized:
                raise ApiError(401, 0, "401: Unauthorized")
            if rule := emu.take_failure(request.method, path):
                rule.hits.append(path)
                record.injected = True
                payload, extra = rule.response(emu.limits.retry_after)
                return self._answer(record, rule.status, payload, extra)
            if authorized and (retry := self._take_global()):
                payload, extra = too_many_requests(retry, is_global=True)
                return self._answer(record, 429, payload, extra)
            if route.bucket is not None:
                headers, retry = self._take_bucket(route, params)
                if retry:
                    payload, extra = too_many_requests(retry, is_global=False)
                    return self._answer(record, 429, payload, {**headers, **extra})
            ctx = Ctx(
                params=params, query=dict(request.query), body=body, files=files, record=record
            )
            result = await route.handler(ctx)
            if isinstance(result, Faulted):
                return await self._faulted_answer(request, record, result, headers)
            status, result = result if isinstance(result, tuple) else (200, result)
            if result is NO_CONTENT:
                record.status = 204
                return web.Response(status=204, headers=headers)
            return self._answer(record, status, result, headers)
        except ApiError as err:
            return self._answer(record, err.status, err.body(), headers)
        finally:
            emu.notify()

    async def _faulted_answer(
        self, request: web.Request, record: RequestRecord, faulted: Faulted, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Answer a created message the way ``faulted.rule.kind`` says."""
        kind = faulted.rule.kind
        record.fault = kind
        if kind == "delay":
            await asyncio.sleep(faulted.rule.delay)
            return self._answer(record, 200, faulted.payload, headers)
        if kind == "error500":
            return self._answer(
                record, 500, {"message": SERVER_ERROR_TEXT[500], "code": 0}, headers
            )
        if kind == "malformed":
            record.status = 200
            return web.Response(
                status=200,
                body=MALFORMED_JSON,
                headers={**headers, "Content-Type": "application/json"},
            )
        # "cut": the connection goes away before any byte of an answer; the client sees the
        # server disconnect. aiohttp then finds nothing to write the response to.
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=200)

    def _answer(
        self, record: RequestRecord, status: int, body: Any, headers: dict[str, str]
    ) -> web.Response:
        record.status = status
        if status >= 400:
            record.error = body if isinstance(body, dict) else None
        if status == 429:
            self.emu.rate_limit_hits[record.route or f"{record.method} {record.path}"] += 1
        return json_response(status, body, headers)

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            if route.method == method and (m := route.regex.match(path)):
                return route, m.groupdict()
        return None, {}

    def _take_global(self) -> float:
        limits = self.emu.limits
        _, retry = self.emu.rate_limiter.take(
            "global", limits.global_requests, limits.global_window
        )
        return retry

    def _take_bucket(self, route: Route, params: dict[str, str]) -> tuple[dict[str, str], float]:
        limits = self.emu.limits
        if route.bucket == "channel":
            limit, window, major = limits.channel_messages, limits.channel_window, "channel_id"
        elif route.bucket == "webhook":
            limit, window, major = limits.webhook_requests, limits.webhook_window, "token"
        else:
            limit, window = limits.route_requests, limits.route_window
            major = next((k for k in ("channel_id", "guild_id") if k in params), "")
        hash_ = bucket_hash(route.key)
        key = f"{hash_}:{params.get(major, '')}"
        bucket, retry = self.emu.rate_limiter.take(key, limit, window)
        return RateLimiter.headers(bucket, hash_), retry

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if not request.can_read_body:
            return None, []
        if request.content_type == "multipart/form-data":
            form = await request.post()
            body = json.loads(str(form.get("payload_json") or "{}"))
            files = [
                {"field": k, "filename": v.filename, "size": len(v.file.read())}
                for k, v in form.items()
                if isinstance(v, web.FileField)
            ]
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from None

    # --- lookups -------------------------------------------------------------------------------

    def _guild(self, ctx: Ctx) -> Guild:
        guild = self.emu.guilds.get(_int(ctx.params["guild_id"]))
        if guild is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return guild

    def _channel(self, ctx: Ctx, *, need: int = VIEW_CHANNEL) -> tuple[Channel, int]:
        """The channel and the bot's permissions in it; 10003 / 50001 like Discord."""
        channel = self.emu.channels.get(_int(ctx.params["channel_id"]))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        guild = self.emu.guild_of(channel)
        perms = guild.permissions_for(guild.members[self.emu.bot_user.id], channel)
        if not perms & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if perms & need != need:
            raise ApiError(403, 50013, "Missing Permissions")
        return channel, perms

    def _channel_message(self, ctx: Ctx, channel: Channel) -> StoredMessage:
        msg = self.emu.message(_int(ctx.params["message_id"]))
        if msg is None or msg.deleted or msg.channel_id != channel.id or msg.ephemeral:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    def _check_app(self, ctx: Ctx) -> None:
        if ctx.params["application_id"] != str(self.emu.application_id):
            raise ApiError(404, 10002, "Unknown Application")

    # --- identity ------------------------------------------------------------------------------

    async def get_me(self, ctx: Ctx) -> Any:
        return {**self.emu.bot_user.payload(), "verified": True, "mfa_enabled": False, "flags": 0}

    async def get_user(self, ctx: Ctx) -> Any:
        user_id = _int(ctx.params["user_id"])
        for guild in self.emu.guilds.values():
            if member := guild.members.get(user_id):
                return member.user.payload()
        raise ApiError(404, 10013, "Unknown User")

    async def get_application(self, ctx: Ctx) -> Any:
        emu = self.emu
        return {
            "id": str(emu.application_id),
            "name": emu.bot_user.username,
            "description": "",
            "icon": None,
            "summary": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            # A team-owned application names a stand-in user as its owner: the people are
            # the team's members.
            "owner": emu.team.owner_payload() if emu.team else emu.owner_user.payload(),
            "team": emu.team.payload() if emu.team else None,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": emu.bot_user.payload(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
        }

    async def get_gateway(self, ctx: Ctx) -> Any:
        return {"url": self.emu.gateway_url}

    async def get_gateway_bot(self, ctx: Ctx) -> Any:
        return {
            "url": self.emu.gateway_url,
            "shards": self.emu.recommended_shards,
            "session_start_limit": self.emu.gateway.session_start_limit(),
        }

    # --- application commands ------------------------------------------------------------------

    def _command_scope(self, ctx: Ctx) -> tuple[int | None, dict[str, dict[str, Any]]]:
        self._check_app(ctx)
        if "guild_id" not in ctx.params:
            return None, self.emu.commands[None]
        guild_id = _int(ctx.params["guild_id"])
        if guild_id not in self.emu.guilds:
            raise ApiError(403, 50001, "Missing Access")
        return guild_id, self.emu.commands.setdefault(guild_id, {})

    def _stored_command(
        self, scope: int | None, existing: dict[str, dict[str, Any]], cmd: dict[str, Any]
    ) -> dict[str, Any]:
        emu = self.emu
        kind = cmd.get("type", 1)
        old = existing.get(_command_key(kind, cmd["name"]))
        perms = cmd.get("default_member_permissions")
        stored = {
            **cmd,
            "id": old["id"] if old else str(emu.snowflakes.next()),
            "application_id": str(emu.application_id),
            "version": str(emu.snowflakes.next()),
            "type": kind,
            "description": cmd.get("description") or "",
            "options": cmd.get("options") or [],
            # discord.py sends an int; Discord stores and answers a string (or null)
            "default_member_permissions": None if perms is None else str(perms),
            "nsfw": bool(cmd.get("nsfw", False)),
        }
        if scope is not None:
            stored["guild_id"] = str(scope)
        return stored

    async def list_commands(self, ctx: Ctx) -> Any:
        _, scope = self._command_scope(ctx)
        return list(scope.values())

    async def put_commands(self, ctx: Ctx) -> Any:
        guild_id, scope = self._command_scope(ctx)
        if not isinstance(ctx.body, list):
            errs = FormErrors()
            errs.add((), "BASE_TYPE_ARRAY", "Must be an array.")
            errs.raise_if_any()
        validate_commands(ctx.body)
        stored = [self._stored_command(guild_id, scope, cmd) for cmd in ctx.body]
        scope.clear()
        scope.update({_command_key(c["type"], c["name"]): c for c in stored})
        return stored

    async def upsert_command(self, ctx: Ctx) -> Any:
        guild_id, scope = self._command_scope(ctx)
        validate_commands([ctx.body or {}])
        stored = self._stored_command(guild_id, scope, ctx.body)
        key = _command_key(stored["type"], stored["name"])
        status = 200 if key in scope else 201
        scope[key] = stored
        return status, stored

    def _find_command(self, ctx: Ctx) -> tuple[dict[str, dict[str, Any]], str]:
        _, scope = self._command_scope(ctx)
        for key, cmd in scope.items():
            if cmd["id"] == ctx.params["command_id"]:
                return scope, key
        raise ApiError(404, 10063, "Unknown application command")

    async def get_command(self, ctx: Ctx) -> Any:
        scope, key = self._find_command(ctx)
        return scope[key]

    async def delete_command(self, ctx: Ctx) -> Any:
        scope, key = self._find_command(ctx)
        del scope[key]
        return NO_CONTENT

    # --- interactions --------------------------------------------------------------------------

    async def interaction_callback(self, ctx: Ctx) -> Any:
        emu = self.emu
        handle = emu.interactions.get(_int(ctx.params["interaction_id"]))
        if handle is None or handle.token != ctx.params["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        body = ctx.body if isinstance(ctx.body, dict) else {}
        kind, data = body.get("type"), body.get("data") or {}
        already = handle.acknowledged
        record = ix.CallbackRecord(type=kind, data=data, status=0, error=None, after=handle.age)
        handle.callbacks.append(record)
        try:
            if already is not None:
                raise ApiError(400, 40060, "Interaction has already been acknowledged")
            if handle.age > emu.limits.interaction_deadline:
                raise ApiError(404, 10062, "Unknown interaction")
            if kind not in ix.ALLOWED_CALLBACKS[handle.type]:
                errs = FormErrors()
                errs.add(("type",), "INTERACTION_CALLBACK_TYPE_INVALID", "Invalid callback type")
                errs.raise_if_any()
            message = self._apply_callback(handle, kind, data, ctx)
        except ApiError as err:
            record.status, record.error = err.status, err.body()
            raise
        record.status = 200
        if ctx.query.get("with_response") not in ("1", "true", "True"):
            return NO_CONTENT
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            interaction.update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            resource["message"] = message.payload
        return {"interaction": interaction, "resource": resource}

    def _apply_callback(
        self, handle: ix.InteractionHandle, kind: int, data: dict[str, Any], ctx: Ctx
    ) -> StoredMessage | None:
        emu = self.emu
        files = len(ctx.files)
        ephemeral = bool((data.get("flags") or 0) & FLAG_EPHEMERAL)
        if kind == ix.CHANNEL_MESSAGE:
            validate_message(data, prefix=("data",), files=files)
            handle.original = emu.create_message(
                handle.channel,
                data,
                author=emu.bot_user,
                source="interaction",
                ephemeral=ephemeral,
                interaction=handle,
                attachments=self._attachments(handle.channel, ctx),
            )
            return handle.original
        if kind == ix.DEFERRED_CHANNEL_MESSAGE:
            handle.original = emu.create_message(
                handle.channel,
                {"flags": data.get("flags")},
                author=emu.bot_user,
                source="interaction",
                ephemeral=ephemeral,
                loading=True,
                interaction=handle,
            )
            return handle.original
        if kind == ix.DEFERRED_UPDATE_MESSAGE:
            handle.original = handle.source_message
            return None
        if kind == ix.UPDATE_MESSAGE:
            validate_message(data, prefix=("data",), creating=False, files=files)
            assert handle.source_message is not None
            handle.original = emu.edit_message(handle.source_message, data)
            return handle.original
        if kind == ix.AUTOCOMPLETE_RESULT:
            validate_choices(data.get("choices") or [])
        return None

    def _hook_interaction(self, ctx: Ctx) -> ix.InteractionHandle:
        emu = self.emu
        if ctx.params["application_id"] != str(emu.application_id):
            raise ApiError(404, 10015, "Unknown Webhook")
        handle = next(
            (h for h in emu.interactions.values() if h.token == ctx.params["token"]), None
        )
        if handle is None or handle.acknowledged is None:
            raise ApiError(404, 10015, "Unknown Webhook")
        if handle.age > emu.limits.followup_lifetime:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return handle

    def _hook_message(self, ctx: Ctx, handle: ix.InteractionHandle) -> StoredMessage:
        message_id = ctx.params["message_id"]
        if message_id == "@original":
            msg = handle.original
        else:
            candidates = [handle.original, *handle.followup_messages]
            msg = next((m for m in candidates if m and str(m.id) == message_id), None)
        if msg is None or msg.deleted:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    async def followup(self, ctx: Ctx) -> Any:
        emu = self.emu
        handle = self._hook_interaction(ctx)
        body = ctx.body or {}
        validate_message(body, files=len(ctx.files))
        original = handle.original
        if original is not None and original.loading and not handle.followup_messages:
            msg = emu.edit_message(original, body)  # the first followup fills "thinking…"
        else:
            msg = emu.create_message(
                handle.channel,
                body,
                author=emu.bot_user,
                source="followup",
                ephemeral=bool((body.get("flags") or 0) & FLAG_EPHEMERAL),
                interaction=handle,
                attachments=self._attachments(handle.channel, ctx),
            )
        handle.followup_messages.append(msg)
        if ctx.query.get("wait") in ("1", "true", "True"):
            return msg.payload
        return NO_CONTENT

    async def get_hook_msg(self, ctx: Ctx) -> Any:
        return self._hook_message(ctx, self._hook_interaction(ctx)).payload

    async def edit_hook_msg(self, ctx: Ctx) -> Any:
        msg = self._hook_message(ctx, self._hook_interaction(ctx))
        validate_message(ctx.body or {}, creating=False, files=len(ctx.files))
        return self.emu.edit_message(msg, ctx.body or {}).payload

    async def delete_hook_msg(self, ctx: Ctx) -> Any:
        self.emu.delete_message(self._hook_message(ctx, self._hook_interaction(ctx)))
        return NO_CONTENT

    # --- channels and messages -----------------------------------------------------------------

    async def get_channel(self, ctx: Ctx) -> Any:
        channel, _ = self._channel(ctx)
        return channel.payload()

    async def list_messages(self, ctx: Ctx) -> Any:
        channel, perms = self._channel(ctx)
        if not perms & READ_MESSAGE_HISTORY:
            return []
        return [m.payload for m in history_page(self.emu.messages(channel), ctx.query)]

    async def send_message(self, ctx: Ctx) -> Any:
        emu = self.emu
        channel, perms = self._channel(ctx, need=VIEW_CHANNEL | SEND_MESSAGES)
        body = dict(ctx.body or {})
        validate_message(body, files=len(ctx.files))
        nonce = body.get("nonce")
        enforce = nonce is not None and body.get("enforce_nonce")
        if enforce and (previous := emu.find_nonce(emu.bot_user.id, str(nonce))) is not None:
            return previous.created_payload()  # 200 with the first message, nothing created
        dropped = False
        if body.get("embeds") and not perms & EMBED_LINKS:
            if not body.get("content") and not ctx.files:
                raise ApiError(403, 50013, "Missing Permissions")
            body["embeds"], dropped = [], True  # Discord silently drops them when there is text
        if (ref := body.get("message_reference")) and emu.message(int(ref["message_id"])) is None:
            if ref.get("fail_if_not_exists", True):
                errs = FormErrors()
                errs.add(("message_reference",), "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
                errs.raise_if_any()
            body.pop("message_reference")
        msg = emu.create_message(
            channel,
            body,
            author=emu.bot_user,
            source="channel",
            attachments=self._attachments(channel, ctx),
        )
        msg.dropped_embeds = dropped
        if enforce:
            emu.remember_nonce(emu.bot_user.id, str(nonce), msg)
        if fault := emu.take_create_fault(channel.id):
            fault.hits.append(ctx.record.path)
            fault.message_ids.append(msg.id)
            return Faulted(fault, msg.created_payload())
        return msg.created_payload()

    async def get_message(self, ctx: Ctx) -> Any:
        channel, _ = self._channel(ctx, need=VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        return self._channel_message(ctx, channel).payload

    async def edit_message(self, ctx: Ctx) -> Any:
        channel, _ = self._channel(ctx)
        msg = self._channel_message(ctx, channel)
        if msg.author_id != self.emu.bot_user.id:
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        validate_message(ctx.body or {}, creating=False, files=len(ctx.files))
        return self.emu.edit_message(msg, ctx.body or {}).payload

    async def delete_message(self, ctx: Ctx) -> Any:
        channel, perms = self._channel(ctx)
        msg = self._channel_message(ctx, channel)
        if msg.author_id != self.emu.bot_user.id and not perms & MANAGE_MESSAGES:
            raise ApiError(403, 50013, "Missing Permissions")
        self.emu.delete_message(msg)
        return NO_CONTENT

    async def typing(self, ctx: Ctx) -> Any:
        self._channel(ctx, need=VIEW_CHANNEL | SEND_MESSAGES)
        return NO_CONTENT

    def _attachments(self, channel: Channel, ctx: Ctx) -> list[dict[str, Any]]:
        out = []
        for f in ctx.files:
            attachment_id = self.emu.snowflakes.next()
            url = f"https://cdn.discordapp.com/attachments/{channel.id}/{attachment_id}/{f['filename']}"
            out.append(
                {
                    "id": str(attachment_id),
                    "filename": f["filename"],
                    "size": f["size"],
                    "url": url,
                    "proxy_url": url,
                }
            )
        return out

    # --- guilds --------------------------------------------------------------------------------

    async def get_guild(self, ctx: Ctx) -> Any:
        guild = self._guild(ctx)
        data = guild.payload(members=[])
        for key in ("channels", "members", "threads", "voice_states", "presences"):
            data.pop(key, None)
        return data

    async def get_guild_channels(self, ctx: Ctx) -> Any:
        return [c.payload() for c in self._guild(ctx).channels.values()]

    async def get_member(self, ctx: Ctx) -> Any:
        member = self._guild(ctx).members.get(_int(ctx.params["user_id"]))
        if member is None:
            raise ApiError(404, 10007, "Unknown Member")
        return member.payload()


def history_page(messages: list[StoredMessage], query: dict[str, str]) -> list[StoredMessage]:
    """``GET /channels/{id}/messages``: newest first, at most ``limit`` (1-100, default 50),
    ``before``/``after``/``around`` a message id (Discord takes one of them). ``around`` splits
    the limit either side of the id, the message itself counting on the newer side. History
    carries no nonce: callers answer ``payload``, not ``created_payload()``."""
    found = [m for m in messages if not m.ephemeral]  # oldest first
    limit = max(1, min(int(query.get("limit", 50)), 100))
    if around := query.get("around"):
        older = [m for m in found if m.id < int(around)]
        newer = [m for m in found if m.id >= int(around)]
        half = limit // 2
        older = older[len(older) - half :] if half else []
        return (older + newer[: limit - half])[::-1]
    if before := query.get("before"):
        found = [m for m in found if m.id < int(before)]
    if after := query.get("after"):
        return [m for m in found if m.id > int(after)][:limit][::-1]
    return found[::-1][:limit]


def _int(value: str) -> int:
    """Snowflake path parameter; anything else is a 404 like an unknown id."""
    try:
        return int(value)
    except ValueError:
        return -1


def _command_key(kind: int, name: str) -> str:
    return f"{kind}:{name}"
