"""A local Discord for end-to-end tests: the real, unmodified discord.py client logs into it.

Test code only (the ``bot`` package never imports it). It serves REST under ``/api/v10`` and the
gateway at ``/gateway`` (resume URL ``/gateway/resume``) on 127.0.0.1 with an OS-chosen port and
never contacts anything else. Frames are plain TEXT JSON (discord.py only inflates BINARY frames).

Quick start::

    from tests.discord_emulator import running_bot

    async def test_news(discord_emulator):               # fixture: started + client pointed
        emu = discord_emulator
        guild = emu.add_guild("Test Guild")
        channel = emu.add_channel(guild, "news")
        alice = emu.add_member(guild, "alice")
        async with running_bot(make_bot(), emu):          # guild_ready_timeout=0.1 keeps it fast
            handle = await emu.invoke(guild, channel, alice, "news", {"topic": "ai"})
            reply = await handle.response()               # CallbackRecord
            assert reply.type == 4 and reply.embeds[0]["title"]

Reference
=========

``DiscordEmulator(token="emulator-bot-token", *, bot_name="newsbot", limits=None,
privileged_intents=MEMBERS|PRESENCES|MESSAGE_CONTENT)``, an async context manager
(``start()``/``stop()`` also work).

Addresses and identity
    ``api_base``, ``gateway_url``, ``resume_gateway_url``, ``token``, ``application_id``,
    ``bot_user``, ``owner_user`` (the application's owner, in no guild until
    ``add_member(guild, name, user=emu.owner_user)``), ``team``; ``set_team(name, members=[(user,
    role)])`` makes a team own the application (``owner_user`` becomes its admin owner, roles are
    ``"admin"``, ``"developer"``, ``"read_only"``): ``GET /oauth2/applications/@me`` then names
    a team pseudo-user as ``owner`` and lists ``team.members``, as Discord does.
Limits (``emu.limits``, a mutable ``Limits``; change it before or during a test)
    ``interaction_deadline`` 3 s, ``followup_lifetime`` 900 s, ``global_requests`` /
    ``global_window`` 50 per 1 s, ``channel_messages`` / ``channel_window`` 5 per 5 s,
    ``route_requests`` / ``route_window`` 50 per 1 s, ``webhook_requests`` / ``webhook_window``
    5 per 2 s (interaction followups and edits), ``nonce_window`` 300 s, ``retry_after`` 0.05 s
    (of injected 429s), ``heartbeat_interval`` 41.25 s; gateway: ``session_start_total`` 1000
    per ``session_start_window`` 24 h, ``max_concurrency`` 1, ``identify_window`` 0 (Discord's
    is 5 s: set it to have an early IDENTIFY refused), ``guilds_per_shard`` 2500.
World (synchronous; the matching gateway event goes out when the bot is connected)
    ``add_guild(name, *, everyone_permissions=..., bot_permissions=..., shard=None,
    shard_count=None) -> Guild`` (@everyone id == guild id; the bot is a member through its own
    role; ``shard``/``shard_count`` pick the next snowflake that lands on that shard);
    ``add_channel(guild, name, *, bot_permissions=None, topic=None) -> Channel`` (given
    ``bot_permissions`` become exactly the bot's permissions there, via a member overwrite);
    ``add_member(guild, name, *, permissions=None, roles=(), user=None) -> Member``
    (``permissions`` through a personal role, on top of @everyone's; ``user`` makes an existing
    account join, else a new one does); ``add_user(name) -> User`` (an account in no guild);
    ``add_role(guild, name, *, permissions=0, mentionable=False) -> Role``;
    ``set_bot_permissions(channel, perms)`` (CHANNEL_UPDATE);
    ``delete_channel(channel)`` (CHANNEL_DELETE, then REST 404 10003);
    ``remove_guild(guild)`` (GUILD_DELETE); ``user_message(channel, member, content)`` (a human
    posts: MESSAGE_CREATE, content blanked without the MESSAGE_CONTENT intent).
    Permissions are ints or ``discord.Permissions``; bit constants are in ``state``.
Interactions (async)
    ``invoke(guild, channel, member, name, options=None, *, subcommand=None, force=False,
    raw_options=None) -> InteractionHandle``: ``options`` maps option names to values
    (``Channel``/``Member``/``Role`` objects or ids for snowflake options), checked and typed
    against the *registered* command; ``raw_options`` are sent unchecked (a stale or modified
    client: out-of-range or mistyped values, a channel of another guild);
    ``subcommand`` is ``"reload"`` or ``"group sub"``. Raises ``CommandNotAvailable`` when
    ``default_member_permissions`` hides the command from ``member`` unless ``force=True`` (a
    stale client, which also sends text/integer/number/boolean values unchecked),
    ``ValueError``/``TypeError`` for what the Discord client would refuse, and ``LookupError``
    for an unregistered command.
    ``autocomplete(guild, channel, member, name, *, focused, value="", options=None,
    subcommand=None, timeout=2) -> list[choice dict]`` (raises ``InteractionNotAnswered`` if the
    answer is missing or rejected). ``click(message, custom_id, member)`` and
    ``select(message, custom_id, values, member)`` -> ``InteractionHandle`` (component on a
    ``StoredMessage``; disabled or missing components raise ``ValueError``).
InteractionHandle
    ``await response(timeout=2)`` -> first accepted ``CallbackRecord`` (``type``, ``data``,
    ``content``, ``embeds``, ``ephemeral``, ``choices``, ``status``, ``error``, ``after`` seconds
    since creation), raising ``InteractionNotAnswered``; ``await attempt(timeout)`` -> first
    callback even if rejected (e.g. 404 10062 when late); ``await followups(n, timeout)`` ->
    ``[StoredMessage]``; ``await original_message(timeout)`` -> the reply once not "thinking";
    ``callbacks``, ``rejected``, ``acknowledged``, ``original``, ``payload`` (what was
    dispatched), ``id``, ``token``.
Observation
    ``messages(channel_or_id, *, include_ephemeral=True) -> [StoredMessage]`` oldest first
    (``id``, ``content``, ``embeds``, ``components``, ``custom_ids()``, ``flags``,
    ``allowed_mentions`` as sent (None if absent), ``pings``, ``ephemeral``, ``source`` =
    channel|interaction|followup|user, ``dropped_embeds``, ``payload``); ``message(id)``;
    ``pings(msg) -> Pings(everyone, users, roles, replied_user)``, ``would_ping(msg)``;
    ``registered_commands(guild=None)`` (JSON as Discord stores it); ``requests`` and
    ``requests_to(method="*", glob="*")`` -> ``RequestRecord`` (``method``, ``path`` after
    /api/v10, ``query``, ``json``, ``files``, ``at`` (monotonic), ``route`` template,
    ``status``, ``injected``, ``error``); ``unknown_requests``; ``rate_limit_hits`` (Counter of
    429s per ``"METHOD /route/{template}"``); ``gateway.log``, ``gateway.resumes``,
    ``gateway.identifies``, ``gateway.session.frames`` (every dispatch sent to the newest
    session; each session has its own).
Failure injection
    ``fail_next(method, path_glob, status, body=None, times=1, *, code=None, retry_after=None)
    -> FailureRule``: the next ``times`` matching requests (method or ``"*"``, glob on the path
    after /api/v10, e.g. ``"/channels/*/messages"``) get ``status``; ``code`` picks a Discord
    error body (50001, 50013, 10003, ...); 429s carry ``retry_after`` and ``Via``.
    ``rule.hits``/``rule.remaining`` tell what it answered. The request is refused before
    anything is created.
    ``after_create(kind, *, times=1, delay=0.0, channel=None) -> CreateFault``: the next
    ``times`` channel messages (``POST /channels/{id}/messages``; only in ``channel``, a
    ``Channel`` or id, if given) ARE created (stored, in history, MESSAGE_CREATE sent, nonce
    remembered) and only their answer goes wrong: ``"delay"`` answers normally ``delay`` s late
    (the client may time out or be killed meanwhile); ``"error500"`` answers 500
    ``{"message": "500: Internal Server Error", "code": 0}`` (discord.py retries a 500 itself
    after 1 s with the same body, so a retry inside the nonce window gets the created message
    and ``send`` returns it); ``"malformed"`` answers 200 ``application/json`` that is not JSON
    (``send`` raises ``json.JSONDecodeError``); ``"cut"`` closes the connection unanswered
    (``send`` raises ``aiohttp.ServerDisconnectedError``; neither aiohttp nor discord.py retries
    a POST: discord.py retries only ``OSError`` errno 54/10054, ECONNRESET on macOS and Windows
    but not Linux's 104, and aiohttp re-sends only idempotent methods).
    A repeat answered from the nonce creates nothing and is not counted. ``rule.hits`` (paths),
    ``rule.message_ids``, ``rule.remaining``; the request's ``RequestRecord.fault`` names the
    kind.
Nonces
    ``enforce_nonce`` with a nonce the bot used within ``limits.nonce_window`` s of its *first*
    message (repeats do not extend it) answers 200 with that message and creates nothing, as
    Discord does ("that message will be returned and no new message will be created").
    The window is measured on ``emu.nonce_clock`` (seconds, default ``time.monotonic``): e.g.
    ``emu.nonce_clock = lambda: clock.now.timestamp()`` makes it follow a fake clock. The nonce
    comes back in the create answer and MESSAGE_CREATE only, never in history
    (``GET .../messages`` with ``before``/``after``/``around``/``limit``) or
    ``GET .../messages/{id}``: ``StoredMessage.nonce`` keeps what was sent.
Gateway
    ``await wait_for_ready(*, shard=None) -> GatewaySession``, ``await
    wait_for_resume(count=1)``, ``await drop_gateway(code=4000)``, ``async with
    gateway_outage(code=4000, refuse=False):`` (drop and hold every reconnect until the block
    ends, so events queue for RESUME replay; ``refuse=True`` answers each reconnect's handshake
    503 instead, as Discord does while its gateway is down: discord.py logs an ERROR "Attempting
    a reconnect" and backs off), ``await request_reconnect()`` (op 7), ``await
    invalidate_session(resumable=False)`` (op 9), ``await
    send_malformed_frame(text=TRUNCATED_DISPATCH)`` (one TEXT frame that is not JSON). Each
    control takes ``shard=k`` for the connected session of shard ``k`` (default: the newest).
Shards
    One token holds any number of sessions, one per IDENTIFY. ``emu.sessions`` -> the connected
    ``GatewaySession`` s (``shard`` as IDENTIFY sent it or None, ``shard_id``, ``shard_count``,
    ``intents``, ``frames``, ``ready_sent``); ``gateway.sessions`` also holds the ones waiting
    for a RESUME. ``shard_of(guild, shard_count=None)`` (default: the count the sessions use,
    else ``recommended_shards``). ``recommended_shards`` (1) is what ``GET /gateway/bot``
    recommends, with ``session_start_limit`` from ``limits`` and the starts counted on
    ``session_clock`` (seconds, default ``time.monotonic``; a test may plug a fake clock, as for
    ``nonce_clock``). Events go to every session of their guild's shard (several sessions may
    claim one shard: each gets them), events without a guild to shard 0. IDENTIFY with a shard
    outside ``0 <= id < count`` is closed 4010; more than ``limits.guilds_per_shard`` guilds on
    the session 4011; one beyond the daily budget resets the token (``reset_token()``; REST 401,
    IDENTIFY 4004 after it) and closes every session 4004; one within ``identify_window`` of
    the last in its ``shard_id % max_concurrency`` bucket gets op 9 and starts nothing.
    ``gateway.log`` records ``refused`` (4010/4011), ``token_reset`` and the op 9s (``on``:
    ``"identify"``). Every REST limit (global, routes) belongs to the token: all shards share it.
Waiting
    ``await wait_until(predicate, timeout=2, what="...")``: event-driven wait on any emulator
    change (no polling); raises ``BotCrashed`` at once if a ``watch``-ed task (the bot) ended.
    Bot-side state changes do not wake it: wait on the bot's own events for those.

Harness (``harness``)
    ``point_client_at(emu, monkeypatch)`` sets ``discord.http.Route.BASE`` and
    ``DiscordWebSocket.DEFAULT_GATEWAY``. ``async with running_bot(bot, emu, *,
    ready_timeout=10) as run`` starts ``bot.start(emu.token)`` (any ``discord.Client``), waits
    until ready, makes emulator waits fail on a dead bot task, closes the bot at the end and then
    fails the test on ERROR records from ``discord.*`` loggers; ``run.allow_error(substring)``,
    ``await run.wait_for_error(substring)``. Fixture ``discord_emulator`` (tests/conftest.py).
    Tip: override the public ``before_identify_hook`` to skip discord.py's 5 s pause before a
    re-IDENTIFY when a test invalidates the session.

What is modelled, and how, is in each module's docstring: ``validation`` (message, embed,
component, autocomplete and command limits; 50035/50006), ``limits`` (buckets, global limit,
429s, injected failures), ``interactions`` (3 s deadline, 40060, callback types, followups and
the 15 min token, defer-then-followup), ``gateway`` (sessions, shards, sequence, RESUME replay,
op 7/9, intents, session starts), ``mentions`` (pings), ``rest`` (routes, auth, permissions
50001/50013, nonce, embeds without Embed Links, history without Read Message History is an
empty list, answers spoiled by ``after_create``). Not modelled: voice, DMs, threads, reactions,
pins, modal submissions, attachment contents, role hierarchy, ``MENTION_EVERYONE`` gating of
pings, gateway send limits (120 per 60 s, close 4008), compression, large-bot sharding (shard
counts that must be a multiple of an assigned number), Discord's timeout of a session that is
not resumed, audit logs.
"""

from .emulator import BotCrashed, DiscordEmulator, RequestRecord
from .harness import RunningBot, point_client_at, running_bot
from .interactions import (
    CallbackRecord,
    CommandNotAvailable,
    InteractionHandle,
    InteractionNotAnswered,
)
from .limits import CreateFault, FailureRule, Limits
from .mentions import Pings, compute_pings
from .state import Channel, Guild, Member, Role, StoredMessage, Team, User

__all__ = [
    "BotCrashed",
    "CallbackRecord",
    "Channel",
    "CommandNotAvailable",
    "CreateFault",
    "DiscordEmulator",
    "FailureRule",
    "Guild",
    "InteractionHandle",
    "InteractionNotAnswered",
    "Limits",
    "Member",
    "Pings",
    "RequestRecord",
    "Role",
    "RunningBot",
    "StoredMessage",
    "Team",
    "User",
    "compute_pings",
    "point_client_at",
    "running_bot",
]
