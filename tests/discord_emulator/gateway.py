"""The gateway websocket: HELLO, heartbeats, IDENTIFY/READY, sequence numbers, RESUME and replay.

Frames are plain TEXT JSON: discord.py asks for ``compress=zlib-stream`` in the query string but
only decompresses BINARY frames, so an uncompressed server is valid for it.

Every dispatch is appended to the session's log with the next sequence number and a per-connection
writer sends it. A dropped connection leaves the session resumable: a RESUME (op 6) on
``resume_gateway_url`` with the last sequence the client saw replays the missed dispatches and then
sends RESUMED. An unknown or invalidated session gets op 9 ``false`` and the client IDENTIFYs again.
A client that closes with 1000/1001 ends its session, as on Discord.

Intents are honoured: events the client did not subscribe to are not sent, and MESSAGE_CREATE
content is blanked without the MESSAGE_CONTENT intent (unless the bot is mentioned or the author).

Shards (https://discord.com/developers/docs/events/gateway#sharding): one token may hold many
sessions at once, one per IDENTIFY; ``shard: [id, count]`` makes a session receive only the
guilds with ``(guild_id >> 22) % count == id`` (READY, GUILD_CREATE and every guild event);
events without a guild go to shard 0 only; an IDENTIFY without ``shard`` is ``[0, 1]``. Several
sessions may claim the same shard, or use different counts: each gets its own copy of the
events, as on Discord. A shard outside ``0 <= id < count`` closes with 4010, more than
``limits.guilds_per_shard`` guilds on one session with 4011. Session starts spend the token's
daily budget (``limits.session_start_total``); an IDENTIFY beyond it resets the token (REST
answers 401 and IDENTIFY 4004 from then on) and ends every session with 4004. An IDENTIFY in a
``shard_id % limits.max_concurrency`` bucket already used within ``limits.identify_window``
gets op 9 ``false`` and starts nothing (the client IDENTIFYs again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Close codes the emulator uses (https://discord.com/developers/docs/topics/opcodes-and-status-codes)
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTH_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's routing formula: the shard that receives a guild's events."""
    return (guild_id >> 22) % shard_count


def valid_shard(shard: Any) -> tuple[int, int] | None:
    """``[id, count]`` with ``0 <= id < count`` as a tuple, or None when Discord refuses it."""
    if not isinstance(shard, list) or len(shard) != 2:
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shard):
        return None
    shard_id, count = shard
    return (shard_id, count) if 0 <= shard_id < count else None


@dataclass(eq=False)
class GatewaySession:
    """One IDENTIFY: its id, intents and the log of every dispatch sent in it."""

    id: str
    intents: int
    shard: tuple[int, int] | None = None
    """``[id, count]`` as IDENTIFY sent it; None when it sent none (Discord's ``[0, 1]``)."""
    frames: list[dict[str, Any]] = field(default_factory=list)
    connection: Connection | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    ready_seq: int = 0

    @property
    def seq(self) -> int:
        return len(self.frames)

    @property
    def shard_id(self) -> int:
        return self.shard[0] if self.shard else 0

    @property
    def shard_count(self) -> int:
        return self.shard[1] if self.shard else 1

    @property
    def connected(self) -> bool:
        return self.connection is not None

    @property
    def ready_sent(self) -> bool:
        conn = self.connection
        return conn is not None and conn.sent_upto >= self.ready_seq

    def receives(self, guild_id: int | None) -> bool:
        """Whether events of ``guild_id`` (None: an event without a guild) come to this session."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id

    def __repr__(self) -> str:
        return f"<GatewaySession {self.id[:8]} shard={list(self.shard or (0, 1))}>"

    def append(self, event: str, data: dict[str, Any]) -> int:
        frame = {"op": 0, "t": event, "s": self.seq + 1, "d": data}
        self.frames.append(frame)
        self.changed.set()
        return frame["s"]


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    path: str
    query: dict[str, str]
    session: GatewaySession | None = None
    sent_upto: int = 0
    resumed_seq: int | None = None
    server_close_code: int | None = None
    heartbeats: int = 0
    writer: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> bool:
        return await self.send_text(json.dumps(payload))

    async def send_text(self, text: str) -> bool:
        async with self.lock:
            if self.ws.closed:
                return False
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
            return True


@dataclass
class GatewayRecord:
    """One thing that happened on the gateway, for tests to assert on."""

    # connect, identify, refused, token_reset, resume, invalid_session, reconnect, drop, close,
    # opcode, malformed, connection_refused (during an outage that refuses connections)
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResumeRecord:
    session_id: str
    seq: int
    replayed: list[str]
    path: str


class Gateway:
    """Serves ``/gateway`` and ``/gateway/resume`` for the single bot the emulator hosts."""

    def __init__(self, emu: DiscordEmulator) -> None:
        self.emu = emu
        self.sessions: list[GatewaySession] = []
        """Every live session of the token, oldest first (connected or waiting for RESUME)."""
        self.connections: set[Connection] = set()
        self.log: list[GatewayRecord] = []
        self.resumes: list[ResumeRecord] = []
        self.identifies = 0
        self.session_starts: list[float] = []
        """Session starts in the current ``session_start_window`` (``emu.session_clock`` times)."""
        self.identify_buckets: dict[int, float] = {}
        """When each ``shard_id % max_concurrency`` bucket last started a session."""
        self._gate = asyncio.Event()
        self._gate.set()
        # During an outage that refuses connections: the HTTP status every new one gets.
        self._refusing: int | None = None

    # --- observation ---------------------------------------------------------------------------

    @property
    def session(self) -> GatewaySession | None:
        """The newest live session (the only one of a bot that does not shard)."""
        return self.sessions[-1] if self.sessions else None

    @property
    def connected(self) -> bool:
        return self.session is not None and self.session.connected

    @property
    def ready_sent(self) -> bool:
        return self.session is not None and self.session.ready_sent

    @property
    def intents(self) -> int:
        return self.session.intents if self.session else 0

    def sessions_for(self, guild_id: int | None) -> list[GatewaySession]:
        """The live sessions that receive the events of ``guild_id``."""
        return [s for s in self.sessions if s.receives(guild_id)]

    def session_start_limit(self) -> dict[str, int]:
        """``session_start_limit`` as ``GET /gateway/bot`` answers it."""
        limits = self.emu.limits
        self._expire_session_starts()
        window_ms = int(limits.session_start_window * 1000)
        if self.session_starts:
            ends = self.session_starts[0] + limits.session_start_window
            reset_after = max(int((ends - self.emu.session_clock()) * 1000), 0)
        else:
            reset_after = window_ms
        return {
            "total": limits.session_start_total,
            "remaining": max(limits.session_start_total - len(self.session_starts), 0),
            "reset_after": reset_after,
            "max_concurrency": limits.max_concurrency,
        }

    # --- dispatching ---------------------------------------------------------------------------

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        intent: int | None = None,
        guild_id: int | None = None,
        shape: Callable[[int], dict[str, Any]] | None = None,
    ) -> int | None:
        """Queue a dispatch on every session of the guild's shard; returns the last sequence
        number given (None when no session took it).

        ``guild_id`` routes it (default: ``data["guild_id"]``; no guild: shard 0 only);
        sessions without ``intent`` are skipped; ``shape(intents)``, if given, builds each
        session's own copy of ``data``. While a socket is down the frame waits in its session's
        log and is replayed on RESUME.
        """
        if guild_id is None and data.get("guild_id") is not None:
            guild_id = int(data["guild_id"])
        seq = None
        for session in self.sessions_for(guild_id):
            if intent is not None and not session.intents & intent:
                continue
            seq = session.append(event, shape(session.intents) if shape else data)
        return seq

    # --- test controls -------------------------------------------------------------------------

    # ``shard`` picks the connected session of that shard id; None the newest session.

    async def drop(self, code: int = 4000, *, shard: int | None = None) -> None:
        """Close the bot's socket with ``code`` (4000 is resumable); the session survives."""
        conn = self._require_connection(shard)
        self.log.append(GatewayRecord("drop", {"code": code, "shard": shard}))
        await self._close(conn, code)

    @contextlib.asynccontextmanager
    async def outage(
        self, code: int = 4000, *, shard: int | None = None, refuse: bool = False
    ) -> AsyncIterator[None]:
        """Drop the socket and hold reconnections (before HELLO) until the block exits; with
        ``refuse``, answer each one 503 instead of upgrading it, as Discord's front end does
        while the gateway is down (the client fails its handshake and backs off)."""
        self._gate.clear()
        self._refusing = 503 if refuse else None
        try:
            await self.drop(code, shard=shard)
            yield
        finally:
            self._refusing = None
            self._gate.set()

    async def request_reconnect(self, *, shard: int | None = None) -> None:
        """Send op 7 RECONNECT: the client closes and resumes."""
        conn = self._require_connection(shard)
        self.log.append(GatewayRecord("reconnect", {"shard": shard}))
        await conn.send({"op": 7, "d": None})

    async def invalidate_session(
        self, *, resumable: bool = False, shard: int | None = None
    ) -> None:
        """Send op 9; with ``resumable=False`` the session is gone and the client re-IDENTIFYs."""
        conn = self._require_connection(shard)
        if not resumable and conn.session in self.sessions:
            self.sessions.remove(conn.session)
        self.log.append(GatewayRecord("invalid_session", {"resumable": resumable, "shard": shard}))
        await conn.send({"op": 9, "d": resumable})

    async def send_malformed(self, text: str, *, shard: int | None = None) -> None:
        """Send ``text`` as one TEXT frame, as it is: e.g. a dispatch cut short, not JSON.

        It takes no sequence number and is not replayed on RESUME; the session goes on.
        """
        conn = self._require_connection(shard)
        self.log.append(GatewayRecord("malformed", {"text": text}))
        await conn.send_text(text)

    async def close_all(self) -> None:
        self._gate.set()
        for conn in list(self.connections):
            await self._close(conn, 1001)

    # --- websocket handler ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self._refusing is not None:
            self.log.append(GatewayRecord("connection_refused", {"status": self._refusing}))
            self.emu.notify()
            return web.Response(status=self._refusing, text="upstream connect error")
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024, timeout=5.0)
        await ws.prepare(request)
        conn = Connection(ws=ws, path=request.path, query=dict(request.query))
        self.connections.add(conn)
        self.log.append(GatewayRecord("connect", {"path": request.path, "query": conn.query}))
        try:
            await self._gate.wait()
            interval = int(self.emu.limits.heartbeat_interval * 1000)
            await conn.send({"op": 10, "d": {"heartbeat_interval": interval}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    try:
                        payload = json.loads(msg.data)
                    except ValueError:
                        await self._close(conn, CLOSE_DECODE_ERROR)
                        break
                    await self._on_payload(conn, payload)
                elif msg.type is WSMsgType.BINARY:
                    await self._close(conn, CLOSE_DECODE_ERROR)
                    break
        finally:
            await self._detach(conn)
        return ws

    async def _on_payload(self, conn: Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            conn.heartbeats += 1
            await conn.send({"op": 11})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session is None:
            await self._close(conn, CLOSE_NOT_AUTHENTICATED)
        elif op in (3, 4):  # presence / voice state updates: accepted, recorded
            self.log.append(GatewayRecord("opcode", {"op": op, "d": data}))
        elif op == 8:
            self._request_members(conn.session, data or {})
        else:
            self.log.append(GatewayRecord("opcode", {"op": op, "d": data}))
            await self._close(conn, CLOSE_UNKNOWN_OPCODE)

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await self._close(conn, CLOSE_ALREADY_AUTHENTICATED)
            return
        if data.get("token") != self.emu.token:
            await self._close(conn, CLOSE_AUTH_FAILED)
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await self._close(conn, CLOSE_INVALID_INTENTS)
            return
        if intents & PRIVILEGED_INTENTS & ~self.emu.privileged_intents:
            await self._close(conn, CLOSE_DISALLOWED_INTENTS)
            return
        raw_shard = data.get("shard")
        shard = None if raw_shard is None else valid_shard(raw_shard)
        if raw_shard is not None and shard is None:
            self.log.append(GatewayRecord("refused", {"shard": raw_shard, "code": 4010}))
            await self._close(conn, CLOSE_INVALID_SHARD)
            return
        session = GatewaySession(id=secrets.token_hex(16), intents=intents, shard=shard)
        guilds = [g for g in self.emu.guilds.values() if session.receives(g.id)]
        if len(guilds) > self.emu.limits.guilds_per_shard:
            self.log.append(GatewayRecord("refused", {"shard": shard, "code": 4011}))
            await self._close(conn, CLOSE_SHARDING_REQUIRED)
            return
        if self._session_starts_spent():
            await self._reset_token(conn)
            return
        if not self._take_identify_bucket(session.shard_id):
            detail = {"resumable": False, "on": "identify", "shard": shard}
            self.log.append(GatewayRecord("invalid_session", detail))
            await conn.send({"op": 9, "d": False})
            return
        self.session_starts.append(self.emu.session_clock())
        self.sessions.append(session)
        self.identifies += 1
        self.log.append(GatewayRecord("identify", {"intents": intents, "shard": data.get("shard")}))
        self._attach(conn, session, sent_upto=0)

        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.emu.bot_user.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.emu.resume_gateway_url,
            "application": {"id": str(self.emu.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "user_settings": {},
        }
        if shard is not None:
            ready["shard"] = list(shard)
        session.append("READY", ready)
        for guild in guilds:
            session.append("GUILD_CREATE", self.emu.guild_create_payload(guild, intents))
        session.ready_seq = session.seq

    def _expire_session_starts(self) -> None:
        starts = self.session_starts
        if starts and self.emu.session_clock() - starts[0] >= self.emu.limits.session_start_window:
            starts.clear()  # the daily window is over: the budget is whole again

    def _session_starts_spent(self) -> bool:
        self._expire_session_starts()
        return len(self.session_starts) >= self.emu.limits.session_start_total

    def _take_identify_bucket(self, shard_id: int) -> bool:
        """One IDENTIFY per ``shard_id % max_concurrency`` bucket per ``identify_window``."""
        limits = self.emu.limits
        if limits.identify_window <= 0:
            return True
        bucket = shard_id % max(limits.max_concurrency, 1)
        now = self.emu.session_clock()
        last = self.identify_buckets.get(bucket)
        if last is not None and now - last < limits.identify_window:
            return False
        self.identify_buckets[bucket] = now
        return True

    async def _reset_token(self, conn: Connection) -> None:
        """One IDENTIFY too many in a day: Discord resets the token and ends every session."""
        self.emu.reset_token()
        self.log.append(GatewayRecord("token_reset", {"sessions": len(self.sessions)}))
        ended = [s.connection for s in self.sessions if s.connection is not None]
        self.sessions.clear()
        for other in [conn, *ended]:
            await self._close(other, CLOSE_AUTH_FAILED)

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = next((s for s in self.sessions if s.id == data.get("session_id")), None)
        seq = data.get("seq") or 0
        if session is None or data.get("token") != self.emu.token or seq > session.seq:
            self.log.append(GatewayRecord("invalid_session", {"resumable": False, "on": "resume"}))
            await conn.send({"op": 9, "d": False})
            return
        if session.connection is not None and session.connection is not conn:
            await self._close(session.connection, 4000)
        replayed = [f["t"] for f in session.frames[seq:] if f["t"] != "RESUMED"]
        self.resumes.append(ResumeRecord(session.id, seq, replayed, conn.path))
        self.log.append(GatewayRecord("resume", {"seq": seq, "replayed": replayed}))
        conn.resumed_seq = session.append("RESUMED", {})
        self._attach(conn, session, sent_upto=seq)

    def _request_members(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.emu.guilds.get(int(data.get("guild_id", 0)))
        if guild is None or not session.receives(guild.id):
            return
        members = list(guild.members.values())
        if user_ids := data.get("user_ids"):
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m.id in wanted]
        elif query := data.get("query"):
            members = [m for m in members if m.user.username.lower().startswith(query.lower())]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if nonce := data.get("nonce"):
            chunk["nonce"] = nonce
        session.append("GUILD_MEMBERS_CHUNK", chunk)  # to the session that asked only

    # --- plumbing ------------------------------------------------------------------------------

    def _attach(self, conn: Connection, session: GatewaySession, *, sent_upto: int) -> None:
        conn.session = session
        conn.sent_upto = sent_upto
        session.connection = conn
        session.changed.set()
        conn.writer = asyncio.create_task(self._writer(conn, session), name="emulator-gw-writer")
        self.emu.notify()

    async def _writer(self, conn: Connection, session: GatewaySession) -> None:
        while not conn.ws.closed:
            await session.changed.wait()
            session.changed.clear()
            while conn.sent_upto < session.seq and not conn.ws.closed:
                frame = session.frames[conn.sent_upto]
                if frame["t"] == "RESUMED" and frame["s"] != conn.resumed_seq:
                    conn.sent_upto += 1
                    continue
                if not await conn.send(frame):
                    return
                conn.sent_upto += 1
                self.emu.notify()

    async def _detach(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if conn.writer is not None:
            conn.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.writer
        session = conn.session
        if session is not None and session.connection is conn:
            session.connection = None
            client_code = conn.ws.close_code if conn.server_close_code is None else None
            if client_code in (1000, 1001) and session in self.sessions:
                self.sessions.remove(session)  # a clean client close ends the session on Discord
        self.log.append(
            GatewayRecord(
                "close", {"server_code": conn.server_close_code, "code": conn.ws.close_code}
            )
        )
        self.emu.notify()

    async def _close(self, conn: Connection, code: int) -> None:
        if conn.server_close_code is None:
            conn.server_close_code = code
        await conn.ws.close(code=code)

    def _require_connection(self, shard: int | None = None) -> Connection:
        if shard is None:
            conn = self.session.connection if self.session else None
        else:
            shard_sessions = [s for s in self.sessions if s.connected and s.shard_id == shard]
            conn = shard_sessions[-1].connection if shard_sessions else None
        if conn is None:
            where = "" if shard is None else f" on shard {shard}"
            raise RuntimeError(f"the bot is not connected to the gateway{where}")
        return conn
