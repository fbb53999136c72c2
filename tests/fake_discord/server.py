"""A fake Discord on 127.0.0.1: the REST endpoints and the gateway websocket the bot uses.

Enough of Discord's protocol for the real discord.py client to log in, receive
READY and GUILD_CREATE, keep heartbeating, receive MESSAGE_CREATE, and send, page and
type in channels. Everything the bot sends is recorded for the tests to inspect.
Point discord.py at it with `discord.http.Route.BASE` and
`discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` (see `FakeDiscord.patch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = 900000000000000001
APP_ID = BOT_ID
_ids = itertools.count(1_900_000_000_000_000_000)  # clear of the ids the test fixtures use


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py parses a body as JSON only when Content-Type is exactly application/json."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})})


def snowflake() -> int:
    return next(_ids)


def user(id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(id), "username": name, "discriminator": "0", "global_name": name.title(), "avatar": None, "bot": bot}


@dataclass
class FakeDiscord:
    owner_id: int
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    guilds: dict[int, dict[str, Any]] = field(default_factory=dict)
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)
    history: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)  # PATCHes of sent messages: {"id", "content", "at"} in order
    deleted: list[dict[str, Any]] = field(default_factory=list)  # messages the bot sent and then deleted
    gone_channels: set[int] = field(default_factory=set)  # sending here answers 404 Unknown Channel (deleted, or the bot was removed)
    typing: list[int] = field(default_factory=list)
    heartbeats: int = 0
    rate_limit_next: int = 0  # answer this many history requests with 429 first
    send_delay: float = 0.0  # seconds before a sent message's REST response reaches the bot (others see it at once)
    history_requests: int = 0
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)  # synced application commands by name
    command_syncs: int = 0  # how many times the bot overwrote its commands (PUT)
    responses: list[dict[str, Any]] = field(default_factory=list)  # interaction callbacks and follow-ups, in order

    def __post_init__(self) -> None:
        self.users[BOT_ID] = user(BOT_ID, "persona", bot=True)
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self.identified = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._interacted_message: dict[str, str] = {}  # component interaction id → the message's id
        self.port = 0

    # --- world building -------------------------------------------------------------------

    def add_user(self, id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        self.users[id] = user(id, name, bot=bot)
        return self.users[id]

    def add_guild(self, guild_id: int, name: str, channel_ids: list[int]) -> None:
        channels = [{"id": str(c), "type": 0, "name": f"channel-{c}", "position": i, "guild_id": str(guild_id), "permission_overwrites": [],
                     "nsfw": False, "parent_id": None} for i, c in enumerate(channel_ids)]
        for channel in channels:
            self.channels[int(channel["id"])] = channel
            self.history.setdefault(int(channel["id"]), [])
        self.guilds[guild_id] = {
            "id": str(guild_id), "name": name, "owner_id": str(self.owner_id), "icon": None, "features": [], "unavailable": False,
            "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": str((1 << 41) - 1), "position": 0, "color": 0,
                       "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "channels": channels, "threads": [], "members": [], "member_count": len(self.users), "large": False,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "premium_tier": 0, "preferred_locale": "en-US", "nsfw_level": 0, "emojis": [], "stickers": [], "voice_states": [],
            "presences": [], "stage_instances": [], "guild_scheduled_events": [], "system_channel_flags": 0,
            "joined_at": datetime.now(UTC).isoformat(),
        }

    def message(self, channel_id: int, author_id: int, content: str, *, mentions: list[int] = (), everyone: bool = False,
                role_mentions: list[int] = (), reference: int | None = None) -> dict[str, Any]:
        channel = self.channels.get(channel_id, {})
        data: dict[str, Any] = {
            "id": str(snowflake()), "channel_id": str(channel_id), "author": self.users[author_id], "content": content,
            "timestamp": datetime.now(UTC).isoformat(), "edited_timestamp": None, "tts": False, "mention_everyone": everyone,
            "mentions": [self.users[m] for m in mentions], "mention_roles": [str(r) for r in role_mentions], "attachments": [],
            "embeds": [], "pinned": False, "type": 19 if reference else 0, "flags": 0,
        }
        if reference is not None:
            data["message_reference"] = {"message_id": str(reference), "channel_id": str(channel_id)}
            data["referenced_message"] = next((m for m in self.history.get(channel_id, []) if m["id"] == str(reference)), None)
        if "guild_id" in channel:
            data["guild_id"] = channel["guild_id"]
            data["member"] = {"roles": [], "joined_at": data["timestamp"], "deaf": False, "mute": False, "flags": 0}
        self.history.setdefault(channel_id, []).append(data)
        return data

    # --- gateway ----------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        payload = json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data})
        for socket in list(self._sockets):
            if not socket.closed:
                with contextlib.suppress(ConnectionResetError):  # the bot's process was killed: Discord drops the event for it too
                    await socket.send_str(payload)

    async def post(self, channel_id: int, author_id: int, content: str, **kwargs: Any) -> dict[str, Any]:
        """A user writes in a channel: stored, then MESSAGE_CREATE to the bot."""
        data = self.message(channel_id, author_id, content, **kwargs)
        await self.dispatch("MESSAGE_CREATE", data)
        return data

    async def react(self, channel_id: int, message_id: int | str, user_id: int, emoji: str) -> None:
        channel = self.channels.get(channel_id, {})
        data: dict[str, Any] = {"user_id": str(user_id), "channel_id": str(channel_id), "message_id": str(message_id),
                                "emoji": {"id": None, "name": emoji}, "type": 0, "burst": False}
        if "guild_id" in channel:
            data["guild_id"] = channel["guild_id"]
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    async def interact(self, user_id: int, channel_id: int, command: str, options: dict[str, Any] | None = None,
                       *, subcommand: str | None = None, users: dict[str, int] | None = None) -> str:
        """A user runs a slash command (`options`: text, `users`: user options by name); returns
        the interaction id (see `responses_to`)."""
        channel = self.channels.get(channel_id, {"id": str(channel_id), "type": 1})
        interaction_id = str(snowflake())
        opts = [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()]
        opts += [{"name": k, "type": 6, "value": str(v)} for k, v in (users or {}).items()]
        data: dict[str, Any] = {"id": self.commands[command]["id"], "name": command, "type": 1,
                                "options": [{"name": subcommand, "type": 1, "options": opts}] if subcommand else opts}
        if users:
            data["resolved"] = {"users": {str(v): self.users[v] for v in users.values()}}
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": str(APP_ID), "type": 2, "token": f"token-{interaction_id}", "version": 1,
            "channel_id": str(channel_id), "channel": channel, "data": data, "app_permissions": str((1 << 41) - 1),
            "locale": "en-US", "entitlements": [], "authorizing_integration_owners": {"0": "0"}, "context": 0 if "guild_id" in channel else 1,
            "attachment_size_limit": 10_000_000,
        }
        if "guild_id" in channel:
            payload["guild_id"] = channel["guild_id"]
            payload["guild_locale"] = "en-US"
            payload["member"] = {"user": self.users[user_id], "roles": [], "joined_at": datetime.now(UTC).isoformat(),
                                 "permissions": str((1 << 41) - 1), "deaf": False, "mute": False, "flags": 0}
        else:
            payload["user"] = self.users[user_id]
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction_id

    async def context_menu(self, user_id: int, channel_id: int, command: str, message: dict[str, Any]) -> str:
        """A user picks a message context menu (Apps → command) on `message`."""
        channel = self.channels[channel_id]
        interaction_id = str(snowflake())
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": str(APP_ID), "type": 2, "token": f"token-{interaction_id}", "version": 1,
            "channel_id": str(channel_id), "channel": channel, "guild_id": channel["guild_id"], "guild_locale": "en-US", "locale": "en-US",
            "app_permissions": str((1 << 41) - 1), "entitlements": [], "authorizing_integration_owners": {"0": "0"}, "context": 0,
            "attachment_size_limit": 10_000_000,
            "member": {"user": self.users[user_id], "roles": [], "joined_at": datetime.now(UTC).isoformat(),
                       "permissions": str((1 << 41) - 1), "deaf": False, "mute": False, "flags": 0},
            "data": {"id": self.commands[command]["id"], "name": command, "type": 3, "target_id": message["id"],
                     "resolved": {"messages": {message["id"]: {k: v for k, v in message.items() if k != "allowed_mentions"}}}},
        }
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction_id

    async def click(self, user_id: int, message: dict[str, Any], custom_id: str) -> str:
        """A user clicks the button `custom_id` on `message` (one the bot sent): a component interaction."""
        channel_id = int(message["channel_id"])
        assert any(c.get("custom_id") == custom_id for row in message.get("components") or [] for c in row.get("components", [])), \
            f"no button {custom_id} on that message"
        return await self._component_interaction(user_id, channel_id, 3, {"custom_id": custom_id, "component_type": 2}, message)

    async def submit_modal(self, user_id: int, message: dict[str, Any], modal: dict[str, Any], values: dict[str, str]) -> str:
        """A user fills in and submits `modal` (a modal the bot opened, from `responses`): its
        text inputs get `values` by custom id (the label's text: see `text_inputs`)."""
        def filled(component: dict[str, Any]) -> dict[str, Any]:
            if component.get("type") == 4:
                return {"type": 4, "custom_id": component["custom_id"], "value": values[component["custom_id"]]}
            nested = {k: ([filled(c) for c in v] if k == "components" else filled(v) if k == "component" else v) for k, v in component.items()
                      if k in ("type", "id", "components", "component")}
            return nested

        data = {"custom_id": modal["custom_id"], "components": [filled(c) for c in modal["components"]]}
        return await self._component_interaction(user_id, int(message["channel_id"]), 5, data, message)

    @staticmethod
    def text_inputs(modal: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A modal's text inputs by custom id (wherever Discord's layout nests them)."""
        found: dict[str, dict[str, Any]] = {}

        def walk(component: dict[str, Any]) -> None:
            if component.get("type") == 4:
                found[component["custom_id"]] = component
            for child in component.get("components", []):
                walk(child)
            if "component" in component:
                walk(component["component"])

        for component in modal["components"]:
            walk(component)
        return found

    async def _component_interaction(self, user_id: int, channel_id: int, kind: int, data: dict[str, Any], message: dict[str, Any]) -> str:
        channel = self.channels.get(channel_id, {"id": str(channel_id), "type": 1})
        interaction_id = str(snowflake())
        payload: dict[str, Any] = {
            "id": interaction_id, "application_id": str(APP_ID), "type": kind, "token": f"token-{interaction_id}", "version": 1,
            "channel_id": str(channel_id), "channel": channel, "data": data, "app_permissions": str((1 << 41) - 1), "locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": "0"}, "context": 0 if "guild_id" in channel else 1,
            "attachment_size_limit": 10_000_000, "message": {k: v for k, v in message.items() if k != "allowed_mentions"},
        }
        if "guild_id" in channel:
            payload["guild_id"] = channel["guild_id"]
            payload["member"] = {"user": self.users[user_id], "roles": [], "joined_at": datetime.now(UTC).isoformat(),
                                 "permissions": str((1 << 41) - 1), "deaf": False, "mute": False, "flags": 0}
        else:
            payload["user"] = self.users[user_id]
        self._interacted_message[interaction_id] = message["id"]
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction_id

    def modals(self) -> list[dict[str, Any]]:
        """Modals the bot opened, oldest first: {"interaction_id", "custom_id", "title", "components"}."""
        return [r["modal"] for r in self.responses if r.get("modal")]

    def responses_to(self, interaction_id: str) -> list[dict[str, Any]]:
        return [r for r in self.responses if r["interaction_id"] == interaction_id]

    async def _callback(self, request: web.Request) -> web.Response:
        interaction_id = request.match_info["interaction_id"]
        body = await request.json()
        data = body.get("data") or {}
        message = self.message(int((self.channels and next(iter(self.channels))) or 0), BOT_ID, data.get("content", "")) if body["type"] == 4 else None
        response: dict[str, Any] = {"interaction_id": interaction_id, "kind": "callback", "type": body["type"], "content": data.get("content"),
                                    "ephemeral": bool((data.get("flags") or 0) & 64)}
        if body["type"] == 9:  # MODAL
            response["modal"] = {"interaction_id": interaction_id, "custom_id": data["custom_id"], "title": data.get("title"),
                                 "components": data.get("components", [])}
        if body["type"] == 7:  # UPDATE_MESSAGE: the message the component was on
            response["updated"] = self._update_sent(self._interacted_message.get(interaction_id), data)
        self.responses.append(response)
        result: dict[str, Any] = {"interaction": {"id": interaction_id, "type": 2, "response_message_id": message["id"] if message else None,
                                                  "response_message_loading": body["type"] == 5,
                                                  "response_message_ephemeral": bool((data.get("flags") or 0) & 64)}}
        result["resource"] = {"type": body["type"], **({"message": message} if message else {})}
        return _json(result)

    async def _followup(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.json()
        message = self.message(next(iter(self.channels)), BOT_ID, body.get("content", ""))
        self.responses.append({"interaction_id": token.removeprefix("token-"), "kind": "followup", "content": body.get("content"),
                               "ephemeral": bool((body.get("flags") or 0) & 64)})
        return _json(message)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 1000}}))
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            if payload["op"] == 1:
                self.heartbeats += 1
                await socket.send_str(json.dumps({"op": 11}))
            elif payload["op"] == 2:
                await self._ready(socket)
        self._sockets.remove(socket)
        return socket

    async def _ready(self, socket: web.WebSocketResponse) -> None:
        ready = {"v": 10, "user": self.users[BOT_ID], "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
                 "session_id": "fake-session", "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                 "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [], "relationships": []}
        await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready}))
        for guild in self.guilds.values():
            await socket.send_str(json.dumps({"op": 0, "t": "GUILD_CREATE", "s": next(self._sequence), "d": guild}))
        self.identified.set()

    # --- REST ---------------------------------------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return _json(self.users[BOT_ID])

    async def _application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(APP_ID), "name": "persona", "icon": None, "description": "an AI persona", "summary": "", "bot_public": False,
            "bot_require_code_grant": False, "owner": self.users.get(self.owner_id) or user(self.owner_id, "owner"), "verify_key": "0" * 64,
            "team": None, "flags": 0, "rpc_origins": [], "terms_of_service_url": None, "privacy_policy_url": None,
        })

    async def _send(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel_id"])
        if channel_id in self.gone_channels:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        body = await request.json()
        data = self.message(channel_id, BOT_ID, body.get("content", ""))
        data["components"] = body.get("components") or []
        if body.get("message_reference"):
            data["message_reference"] = body["message_reference"]
        self.sent.append(data | {"allowed_mentions": body.get("allowed_mentions")})
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        return _json(data)

    async def _edit(self, request: web.Request) -> web.Response:
        """PATCH of a message the bot sent: the message changes, the edit is recorded."""
        body = await request.json()
        data = self._update_sent(request.match_info["message_id"], body)
        if data is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json({k: v for k, v in data.items() if k != "allowed_mentions"})

    async def _delete(self, request: web.Request) -> web.Response:
        """DELETE of a message the bot sent: gone from the channel, kept in `deleted`."""
        message_id = request.match_info["message_id"]
        for data in list(self.sent):
            if data["id"] == message_id:
                self.sent.remove(data)
                self.deleted.append(data)
                channel = self.history.get(int(data["channel_id"]), [])
                channel[:] = [m for m in channel if m["id"] != message_id]
                return web.Response(status=204)
        return _json({"message": "Unknown Message", "code": 10008}, status=404)

    def _update_sent(self, message_id: str | None, body: dict[str, Any]) -> dict[str, Any] | None:
        """A bot's message edited (PATCH, or an interaction's UPDATE_MESSAGE): recorded in `edits`."""
        for data in self.sent:
            if data["id"] == message_id:
                data["content"] = body.get("content", data["content"])
                if "components" in body:
                    data["components"] = body["components"] or []
                data["edited_timestamp"] = datetime.now(UTC).isoformat()
                self.edits.append({"id": message_id, "content": data["content"], "at": time.monotonic()})
                return data
        return None

    async def _history(self, request: web.Request) -> web.Response:
        self.history_requests += 1
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return _json({"message": "You are being rate limited.", "retry_after": 0.2, "global": False}, status=429,
                                     # without Via, discord.py takes a 429 for a Cloudflare ban
                                     headers={"Retry-After": "0.2", "X-RateLimit-Scope": "user", "Via": "1.1 google"})
        channel_id = int(request.match_info["channel_id"])
        limit = int(request.query.get("limit", "50"))
        messages = sorted(self.history.get(channel_id, []), key=lambda m: int(m["id"]), reverse=True)
        if "before" in request.query:
            messages = [m for m in messages if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            # Discord: the `limit` messages right after `after`, newest first.
            after = sorted((m for m in messages if int(m["id"]) > int(request.query["after"])), key=lambda m: int(m["id"]))[:limit]
            return _json(list(reversed(after)))
        return _json(messages[:limit])

    async def _open_dm(self, request: web.Request) -> web.Response:
        recipient = int((await request.json())["recipient_id"])
        channel_id = 700_000_000_000_000_000 + recipient % 1_000_000
        self.channels.setdefault(channel_id, {"id": str(channel_id), "type": 1, "recipients": [self.users[recipient]], "last_message_id": None})
        return _json(self.channels[channel_id])

    async def _user(self, request: web.Request) -> web.Response:
        return _json(self.users[int(request.match_info["user_id"])])

    async def _typing(self, request: web.Request) -> web.Response:
        self.typing.append(int(request.match_info["channel_id"]))
        return web.Response(status=204)

    async def _commands(self, request: web.Request) -> web.Response:
        if request.method != "PUT":
            return _json(list(self.commands.values()))
        self.command_syncs += 1
        self.commands = {}
        for command in await request.json():
            command = {"type": 1, "options": [], "description": "", "default_member_permissions": None, "nsfw": False, "version": "1", **command,
                       "id": str(snowflake()), "application_id": str(APP_ID)}
            self.commands[command["name"]] = command
        return _json(list(self.commands.values()))

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_post("/api/v10/channels/{channel_id}/messages", self._send)
        app.router.add_get("/api/v10/channels/{channel_id}/messages", self._history)
        app.router.add_patch("/api/v10/channels/{channel_id}/messages/{message_id}", self._edit)
        app.router.add_delete("/api/v10/channels/{channel_id}/messages/{message_id}", self._delete)
        app.router.add_post("/api/v10/channels/{channel_id}/typing", self._typing)
        app.router.add_post("/api/v10/users/@me/channels", self._open_dm)
        app.router.add_get("/api/v10/users/{user_id}", self._user)
        app.router.add_post("/api/v10/interactions/{interaction_id}/{token}/callback", self._callback)
        app.router.add_post("/api/v10/webhooks/{app_id}/{token}", self._followup)
        app.router.add_route("*", "/api/v10/applications/{app_id}/commands", self._commands)
        app.router.add_route("*", "/api/v10/applications/{app_id}/guilds/{guild_id}/commands", self._commands)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def patch(self) -> None:
        import discord
        import yarl

        discord.http.Route.BASE = f"http://127.0.0.1:{self.port}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")
