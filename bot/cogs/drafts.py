"""Draft mode in Discord: the owner gets each held reply as a DM with Send, Edit and Discard.

The buttons are `DynamicItem`s: their custom ids carry the draft's id, so they keep
working after a restart without any view being re-registered. Every decision goes
through persona/drafts.py's conditional updates, so a draft is sent at most once whether
it is clicked here, on the dashboard or with `persona drafts send`. The bot is the only
sender: drafts approved elsewhere wake it through PostgreSQL's NOTIFY, and a loop picks
up any it missed within `DELIVER_EVERY_S` and expires drafts past PERSONA_DRAFT_TTL
(their DMs then say so).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, ClassVar

import discord
import psycopg
from discord.ext import commands, tasks

from bot.delivery import with_heading
from bot.services import Services
from persona import drafts
from persona.errors import PersonaError
from persona.runtime.reply import Reply, ReplyRequest, split_message

log = logging.getLogger(__name__)

DELIVER_EVERY_S = 2.0
LISTEN_RETRY_S = 10.0
QUOTE_CHARS = 300
NOT_OWNER = "only the owner decides on drafts"
_NO_PINGS = discord.AllowedMentions.none()


def notice_text(draft: drafts.Draft) -> str:
    """The owner's DM: who asked, where, their message (with a link), the draft, and until
    when it waits; once decided, what became of it. Within Discord's 2,000 characters (the
    whole draft is in the Edit box)."""
    asked = draft.asker_text if len(draft.asker_text) <= QUOTE_CHARS else draft.asker_text[:QUOTE_CHARS] + "…"
    quoted = "\n".join(f"> {line}" for line in (asked or "(no text)").splitlines())
    if draft.status == "pending":
        held = "" if draft.held_because == "draft mode" else f" Held back: {draft.held_because}."
        state = f"Draft — nobody sees it until you send it.{held} Expires <t:{int(draft.expires_at.timestamp())}:R>."
    else:
        described = drafts.describe_status(draft)
        state = f"**{described[:1].upper()}{described[1:]}**"
    head = f"**{discord.utils.escape_markdown(draft.asker_name)}** in {draft.place_label} · {draft.link}\n{quoted}\n\n"
    body = draft.text
    room = 2000 - len(head) - len(state) - 2
    if len(body) > room:
        body = body[: room - 1] + "…"
    return f"{head}{body}\n\n{state}"


class DraftButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"persona:draft:(?P<action>send|edit|discard):(?P<id>[0-9]+)"):
    """One of a draft's three buttons, found again by its custom id after any restart."""

    STYLES: ClassVar[dict[str, discord.ButtonStyle]] = {
        "send": discord.ButtonStyle.success, "edit": discord.ButtonStyle.primary, "discard": discord.ButtonStyle.secondary}

    def __init__(self, action: str, draft_id: int) -> None:
        super().__init__(discord.ui.Button(label=action.capitalize(), style=self.STYLES[action], custom_id=f"persona:draft:{action}:{draft_id}"))
        self.action = action
        self.draft_id = draft_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]) -> DraftButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("Drafts")  # type: ignore[attr-defined]
        assert isinstance(cog, Drafts)
        await cog.clicked(interaction, self.action, self.draft_id)


def draft_view(draft_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in ("send", "edit", "discard"):
        view.add_item(DraftButton(action, draft_id))
    return view


class EditDraft(discord.ui.Modal, title="Edit and send"):
    def __init__(self, cog: Drafts, draft: drafts.Draft) -> None:
        super().__init__(timeout=None)
        self.cog = cog
        self.draft_id = draft.id
        self.text: discord.ui.TextInput[EditDraft] = discord.ui.TextInput(
            label="What to send", style=discord.TextStyle.paragraph, default=draft.text[: drafts.MAX_TEXT], max_length=drafts.MAX_TEXT)
        self.add_item(self.text)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.decide(interaction, self.draft_id, "send", self.text.value)


class Drafts(commands.Cog):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self._sending = asyncio.Lock()  # one delivery round at a time in this process

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(DraftButton)
        self.deliver_and_expire.change_interval(seconds=DELIVER_EVERY_S)
        self.deliver_and_expire.start()
        self._listener = asyncio.create_task(self._listen())

    async def cog_unload(self) -> None:
        self.deliver_and_expire.cancel()
        self._listener.cancel()
        self.bot.remove_dynamic_items(DraftButton)

    async def _listen(self) -> None:
        """Post a draft the moment it is approved on the dashboard or the CLI (PostgreSQL's
        LISTEN/NOTIFY on a connection of its own); while that connection is down, the loop
        below delivers within DELIVER_EVERY_S all the same."""
        await self.bot.wait_until_ready()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.services.store.database.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {drafts.APPROVED}")
                    async for _ in conn.notifies():
                        await self.deliver(None)
            except psycopg.Error as exc:
                log.info("not listening for approved drafts (%s); retrying in %.0f s, the loop delivers meanwhile", exc, LISTEN_RETRY_S)
                await asyncio.sleep(LISTEN_RETRY_S)

    # --- holding a reply ---------------------------------------------------------------

    async def hold(self, message: discord.Message, request: ReplyRequest, reply: Reply, reason: str = "draft mode") -> drafts.Draft:
        """Store the reply as a draft (held for `reason`) and show it to the owner in a DM."""
        logged = self.services.engine.as_logged(request, reply, None, message.guild.id if message.guild else None)
        draft = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.create(
            conn, logged, asker_name=message.author.display_name, asker_text=message.clean_content, place_label=request.place_label,
            ttl=self.services.draft_ttl, held_because=reason))
        try:
            owner = self.bot.get_user(self.services.owner_id) or await self.bot.fetch_user(self.services.owner_id)
            notice = await owner.send(notice_text(draft), view=draft_view(draft.id), allowed_mentions=_NO_PINGS)
        except discord.HTTPException as exc:  # DMs closed to the bot: the draft waits on the dashboard and the CLI
            log.warning("draft %s could not be shown to the owner in Discord (%s): see `persona drafts list` or the dashboard", draft.id, exc)
            return draft
        await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.attach_notice(conn, draft.id, notice.channel.id, notice.id))
        log.info("draft %s held for the owner (message %s in %s)", draft.id, message.id, request.place_label)
        return draft

    # --- the owner's decisions ------------------------------------------------------------

    async def clicked(self, interaction: discord.Interaction, action: str, draft_id: int) -> None:
        if interaction.user.id != self.services.owner_id:
            await interaction.response.send_message(NOT_OWNER, ephemeral=True)
            return
        if action == "edit":
            draft = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.get(conn, draft_id))
            if draft is None or draft.status != "pending":
                await self._answer_refusal(interaction, drafts.Decision(False, draft))
                return
            await interaction.response.send_modal(EditDraft(self, draft))
            return
        await self.decide(interaction, draft_id, action, None)

    async def decide(self, interaction: discord.Interaction, draft_id: int, action: str, text: str | None) -> None:
        """Send (as drafted, or as edited) or discard, answered by updating the DM in place."""
        if interaction.user.id != self.services.owner_id:
            await interaction.response.send_message(NOT_OWNER, ephemeral=True)
            return
        if action == "send":
            try:
                decision = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.approve(conn, draft_id, via="discord", text=text))
            except PersonaError as exc:  # an empty edit: say so, the draft stays as it was
                await interaction.response.send_message(exc.message, ephemeral=True)
                return
        else:
            decision = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.discard(conn, draft_id, via="discord"))
        if not decision.changed or decision.draft is None:
            await self._answer_refusal(interaction, decision)
            return
        await interaction.response.defer()  # the DM is edited once the reply is out (within Discord's 3 seconds to answer)
        if action == "send":
            await self.deliver(draft_id)
        else:
            await self._update_notice(decision.draft)

    async def _answer_refusal(self, interaction: discord.Interaction, decision: drafts.Decision) -> None:
        """Already decided (elsewhere, or by an earlier click), expired or forgotten: the DM
        is brought up to date and the owner told why nothing happened."""
        if decision.draft is not None and interaction.message is not None:
            await interaction.response.edit_message(content=notice_text(decision.draft), view=None)
            await interaction.followup.send(decision.refusal(), ephemeral=True)
        else:
            await interaction.response.send_message(decision.refusal(), ephemeral=True)

    # --- sending -------------------------------------------------------------------------

    @tasks.loop(seconds=DELIVER_EVERY_S)
    async def deliver_and_expire(self) -> None:
        try:
            for draft in await asyncio.to_thread(self.services.in_transaction, drafts.expire_due):
                await self._update_notice(draft)
            await self.deliver(None)
        except Exception:
            log.exception("delivering approved drafts failed; trying again in %.0f s", DELIVER_EVERY_S)

    @deliver_and_expire.before_loop
    async def _after_ready(self) -> None:
        await self.bot.wait_until_ready()

    async def deliver(self, draft_id: int | None) -> None:
        """Post approved drafts (one, or every one approved anywhere), each claimed first."""
        async with self._sending:
            claimed = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.claim_approved(conn, draft_id))
            for draft in claimed:
                await self._post(draft)

    async def _post(self, draft: drafts.Draft) -> None:
        heading = await asyncio.to_thread(self.services.claim_disclosure, draft.asker_id, draft.channel_id)
        channel = self.bot.get_partial_messageable(draft.channel_id, guild_id=draft.guild_id)
        reference = discord.MessageReference(message_id=draft.trigger_message_id, channel_id=draft.channel_id, fail_if_not_exists=False)
        chunks = split_message(with_heading(heading, draft.text))
        sent: list[discord.Message] = []
        try:
            sent.append(await channel.send(chunks[0], reference=reference, mention_author=False, allowed_mentions=_NO_PINGS))
            for chunk in chunks[1:]:
                sent.append(await channel.send(chunk, allowed_mentions=_NO_PINGS))
        except discord.HTTPException as exc:
            log.warning("draft %s could not be sent: %s", draft.id, exc)
            if not sent:  # nothing went out: the disclosure is said by the next reply, the owner sees why in the DM
                if heading:
                    await asyncio.to_thread(self.services.give_back_disclosure, draft.asker_id, draft.channel_id)
                reason = f"Discord refused: {exc.text or exc}"
                await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.mark_failed(conn, draft.id, reason))
                await self._refresh_notice(draft.id)
                return
        ids = [m.id for m in sent]
        await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.mark_sent(conn, draft.id, ids))
        log.info("draft %s sent%s", draft.id, " (edited)" if draft.edited else "")
        await self._refresh_notice(draft.id)

    async def _refresh_notice(self, draft_id: int) -> None:
        draft = await asyncio.to_thread(self.services.in_transaction, lambda conn: drafts.get(conn, draft_id))
        if draft is not None:
            await self._update_notice(draft)

    async def _update_notice(self, draft: drafts.Draft) -> None:
        """The owner's DM shows the outcome and loses its buttons."""
        if draft.notice_channel_id is None or draft.notice_message_id is None:
            return
        message = self.bot.get_partial_messageable(draft.notice_channel_id).get_partial_message(draft.notice_message_id)
        try:
            await message.edit(content=notice_text(draft), view=None)
        except discord.HTTPException as exc:  # the owner deleted the DM: the draft's state is in the database all the same
            log.info("the DM of draft %s could not be updated: %s", draft.id, exc)



async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Drafts(bot, bot.services))  # type: ignore[attr-defined]
