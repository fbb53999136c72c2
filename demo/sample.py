"""A fictional owner's Discord history, generated deterministically from a seed.

June (juniper.moss) writes in lowercase, says "ngl", "lowkey" and "fr", signs off
with ✨ or 🥲, climbs at Crux Hall, bakes sourdough with a starter called gerald,
has a grey tabby called miso, fixes bikes at Spoke & Sprocket and is moving to
Lisbon. Her friends write ordinary sentences. A few facts are stated once, deep in
the history, so that recall has something to find; a few messages carry personal
data (an e-mail address, a phone number, a card, an IBAN, a bot token, an IP) so that
scrubbing has something to remove.

Two files come out, in the formats persona imports:
- `package.zip`: June's Discord data package in the current layout (Account/,
  Messages/c<id>/ with messages.json): only her own messages, from two DMs, a group
  DM and the three server channels;
- `dce/`: DiscordChatExporter JSON exports of the server's three channels, with
  everyone's messages, mentions and replies (June's server messages are in both,
  under the same ids, as in real life).
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from demo.voices import VOICES, Voice

DISCORD_EPOCH_MS = 1_420_070_400_000


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    display: str


OWNER = Person(412345678901234567, "juniper.moss", "June")
THEO = Person(298765432109876543, "theo.r", "Theo")
PRIYA = Person(301234567890123456, "priya_s", "Priya")
MARCUS = Person(287654321098765432, "marcusb", "Marcus")
LENA = Person(309876543210987654, "lena.k", "Lena")
KAI = Person(315432109876543210, "kai_", "Kai")
FRIENDS = [THEO, PRIYA, MARCUS, LENA, KAI]

GUILD = (917240000000000001, "Crux Collective")


@dataclass(frozen=True)
class ChannelSpec:
    id: int
    name: str
    kind: str  # guild_text | dm | group_dm
    topics: tuple[str, ...]
    members: tuple[Person, ...]


GENERAL = ChannelSpec(917240000000000011, "general", "guild_text", ("chat", "cat", "work", "lisbon"), (THEO, PRIYA, MARCUS, LENA, KAI))
SEND_IT = ChannelSpec(917240000000000012, "send-it", "guild_text", ("climbing",), (MARCUS, LENA, KAI, THEO))
KITCHEN = ChannelSpec(917240000000000013, "kitchen", "guild_text", ("baking", "food"), (PRIYA, LENA, THEO))
DM_THEO = ChannelSpec(1090000000000000101, "", "dm", ("chat", "work", "climbing", "cat"), (THEO,))
DM_PRIYA = ChannelSpec(1090000000000000102, "", "dm", ("baking", "lisbon", "food", "chat"), (PRIYA,))
GROUP = ChannelSpec(1090000000000000103, "lisbon crew", "group_dm", ("lisbon", "chat"), (THEO, PRIYA))
SERVER_CHANNELS = (GENERAL, SEND_IT, KITCHEN)
CHANNELS = (*SERVER_CHANNELS, DM_THEO, DM_PRIYA, GROUP)

# What friends ask, by topic: ordinary sentences.
ASKS: dict[str, list[str]] = {
    "climbing": ["Are you climbing this weekend?", "How's your project going?", "Did you see they reset the slab wall?",
                 "Anyone up for the gym tonight?", "How are your fingers after yesterday?", "Want to try the new circuit on Thursday?",
                 "Did you send the overhang problem yet?", "Should I buy new climbing shoes?"],
    "baking": ["Did you bake this weekend?", "How do you get such an open crumb?", "My loaf came out flat again, any tips?",
               "What flour do you use?", "Can I get some of your starter?", "Are you bringing bread to the potluck?"],
    "cat": ["How is your cat doing?", "Is the cat still stealing your socks?", "Send a cat picture please.", "Did the vet visit go okay?"],
    "work": ["How's work at the shop?", "Can you look at my bike's brakes?", "Busy day at work?", "Do you like the new job?",
             "My chain keeps slipping, what should I do?"],
    "lisbon": ["How's the Portuguese going?", "Have you found a flat yet?", "When do you fly out?", "Are you nervous about the move?",
               "What will you miss most about here?"],
    "food": ["What are you cooking tonight?", "Want to get dinner on Friday?", "Have you tried the new ramen place?",
             "Are you coming to the potluck?"],
    "chat": ["How was your weekend?", "What are you up to tonight?", "Did you watch the match?", "Are you free on Saturday?",
             "How are you doing?", "Any plans for the long weekend?", "Did you get my message earlier?"],
}

# June's side, by topic: lowercase fragments combined with openers and sign-offs.
CORES: dict[str, list[str]] = {
    "climbing": ["fingers are so wrecked from the crimps", "the pink v4 in the cave is lowkey going", "fell off the top move like six times",
                 "slab is my nemesis fr", "crux hall reset the whole cave and it's so good", "thursday works, i'll bring chalk",
                 "my shoes are dead, toe is poking through", "heel hooks are carrying me rn", "i need a rest day but i won't take one",
                 "the new circuit is spicy, bring tape", "did three laps on the warmup wall and i'm done", "that overhang is pure vibes"],
    "baking": ["gerald is bubbling like crazy today", "high hydration is the secret, like 78%", "use a hot dutch oven, it changes everything",
               "i do half bread flour half whole wheat", "you can have some of gerald, bring a jar", "the crumb came out so open i cried",
               "overproofed it again, flat as a pancake", "baking two loaves for the potluck", "folding every 30 min is the trick",
               "rye is next on my list"],
    "cat": ["miso is asleep on my laptop again", "she stole a sock and hid it under the couch", "vet said she's healthy just dramatic",
            "miso screamed at a pigeon for 20 minutes", "she knocked a mug off the table while staring at me",
            "miso wants dinner at 5am every single day"],
    "work": ["shop was packed, three flat tyres before noon", "bring it by the shop, i'll look at the brakes", "your chain is probably stretched",
             "trued like eight wheels today", "i love the job, my hands are always greasy", "we got a vintage steel frame in today",
             "slow day, reorganised the whole parts wall"],
    "lisbon": ["my portuguese is still at the ordering coffee level", "duolingo streak is holding strong", "flat hunting is chaos",
               "nervous but mostly excited", "i'll miss the gym and you guys the most", "pastel de nata every day is the plan",
               "packing is lowkey impossible"],
    "food": ["making a massive pot of dal", "friday works, ramen?", "the new ramen place is so good, get the spicy one",
             "bringing bread obviously", "i'm living on toast this week", "tacos tonight, come over"],
    "chat": ["weekend was so chill, slept a lot", "nothing much, just vibing", "didn't watch it, was at the gym", "saturday works for me",
             "doing good, tired but good", "might go to the coast", "sorry was at work, saw it now"],
}
OPENERS = ["ngl", "lowkey", "ok so", "omg", "wait", "honestly", "ok but", "ya", "", "", "", ""]
SIGN_OFFS = ["✨", "fr", "🥲", "hehe", "tbh", "!!", "lol", "fr fr", "", ""]
CLOSERS = ["hehe ya", "ok ok ✨", "fr", "lmk!!", "omg yes", "ngl same", "ok bye 🥲", "ya for sure", "bet ✨", "love that", "hehe ok",
           "ya ya", "sounds good ✨", "lol ok", "ngl yes"]
FOLLOW_UPS = ["Haha nice.", "That sounds great!", "Oh no, really?", "Let me know how it goes.", "Same here honestly.", "Wait, tell me more.",
              "Okay, see you then.", "Classic.", "Good to know, thanks!", "I'll bring snacks.", "That's amazing.", "Fair enough."]

# Facts June states once (memory has to find them later), and where.
FACTS: list[tuple[ChannelSpec, Person, str, str]] = [
    (DM_THEO, THEO, "Wait, how old is your cat now?", "my cat miso turned four last week!! grey tabby, absolute menace ✨"),
    (GENERAL, PRIYA, "Where are you working now?", "ok so i started at spoke & sprocket, the bike repair shop on alder street, i love it fr"),
    (KITCHEN, LENA, "How old is your starter?", "gerald turned three this month, he's older than most of my plants lol"),
    (GROUP, PRIYA, "So is it official?", "it's official, i'm moving to lisbon in march!! found a tiny flat in alfama 🥲"),
    (DM_PRIYA, PRIYA, "Do you want the cashew pesto pasta?", "can't sorry, i'm allergic to cashews 🥲 any other pesto is fine"),
    (SEND_IT, MARCUS, "Did you finally send it?", "finally sent the pink v5 in the cave at crux hall, took me three weeks ngl"),
]

# Personal data planted in the history: (kind, value, channel, author, line). Each value
# must be gone after import (tests/test_demo.py checks every table and file).
PLANTED: list[tuple[str, str, ChannelSpec, Person, str]] = [
    ("email", "priya.sharma.94@example.org", GENERAL, PRIYA, "New email for the trip doc: priya.sharma.94@example.org"),
    ("phone", "+1 (555) 010-4477", DM_THEO, OWNER, "if the shop door is locked call me at +1 (555) 010-4477"),
    ("iban", "DE89 3704 0044 0532 0130 00", GROUP, OWNER, "send your share of the deposit to DE89 3704 0044 0532 0130 00 pls"),
    ("card", "4111 1111 1111 1111", GENERAL, MARCUS, "lol I almost pasted my card number 4111 1111 1111 1111 in here"),
    ("secret", "MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.abcdefghijklmnopqrstuvwxyz0123456789", GENERAL, KAI,
     "oops that was my bot token MTA5OTk5OTk5OTk5OTk5OTk5OQ.GhOsTs.abcdefghijklmnopqrstuvwxyz0123456789 ignore it"),
    ("ip", "203.0.113.77", GENERAL, LENA, "The minecraft server is back at 203.0.113.77 if anyone wants in"),
]

# What the demo asks both models, with the words its answer should recall.
PROMPTS: list[tuple[str, str]] = [
    ("what's your cat's name?", "miso"),
    ("which bike shop do you work at?", "sprocket"),
    ("where are you moving to?", "lisbon"),
    ("are you allergic to anything?", "cashews"),
    ("how old is your sourdough starter?", "gerald"),
]
UNANSWERABLE = ["what car do you drive?", "what's your brother's name?", "where did you go to school?", "what's your favourite book?",
                "what's your shoe size?", "when is your birthday?", "what's your mum's name?", "what instrument do you play?",
                "what's your favourite colour?", "where did you study?"]
ENGLISH = Voice("en", ASKS, CORES, OPENERS, SIGN_OFFS, CLOSERS, FOLLOW_UPS, [], PROMPTS, UNANSWERABLE, [])
CHANNEL_KEYS = {"general": GENERAL, "send_it": SEND_IT, "kitchen": KITCHEN, "dm_theo": DM_THEO, "dm_priya": DM_PRIYA, "group": GROUP}
PEOPLE_KEYS = {"owner": OWNER, "theo": THEO, "priya": PRIYA, "marcus": MARCUS, "lena": LENA, "kai": KAI}
LANGUAGES = ("en", *VOICES)


@dataclass
class Line:
    id: int
    channel: ChannelSpec
    author: Person
    at: datetime
    text: str
    mentions: list[Person] = field(default_factory=list)
    reply_to: int | None = None


@dataclass
class History:
    lines: list[Line]
    planted: int = 0  # personal data planted in it
    facts: int = 0  # facts stated once

    @property
    def owner_lines(self) -> list[Line]:
        return [line for line in self.lines if line.author == OWNER]

    @property
    def exported_lines(self) -> list[Line]:
        """What the two files hold: the server channels whole, and June's side of her DMs
        (her friends' DM messages exist in no export, as in real life)."""
        return [line for line in self.lines if line.channel.kind == "guild_text" or line.author == OWNER]

    def count(self) -> dict[str, int]:
        server = sum(1 for line in self.lines if line.channel.kind == "guild_text")
        return {"messages": len(self.exported_lines), "owner_messages": len(self.owner_lines), "server_messages": server,
                "channels": len(CHANNELS), "planted_pii": self.planted or len(PLANTED), "facts": self.facts or len(FACTS)}


def voice_of(language: str = "en") -> Voice:
    """June's words in `language` (en, or demo/voices.py's de, es and pt)."""
    if language == "en":
        return ENGLISH
    if language not in VOICES:
        raise ValueError(f"the demo's history is written in {', '.join(['en', *VOICES])}, not {language!r}")
    return VOICES[language]


def facts_of(voice: Voice) -> list[tuple[ChannelSpec, Person, str, str]]:
    return FACTS if voice is ENGLISH else [(CHANNEL_KEYS[c], PEOPLE_KEYS[p], ask, answer) for c, p, ask, answer in voice.facts]


def planted_of(voice: Voice) -> list[tuple[str, str, ChannelSpec, Person, str]]:
    """The demo's planted personal data, and the language's own national formats."""
    return PLANTED + [(kind, value, CHANNEL_KEYS[c], PEOPLE_KEYS[a], line) for kind, value, c, a, line in voice.planted]


def generate(seed: int = 7, sessions: int = 300, facts: list[tuple[ChannelSpec, Person, str, str]] | None = None,
             language: str = "en") -> History:
    """The whole history, oldest first; the same seed gives the same history. `facts`
    replaces the planted facts (bench/memory_use.py's second history, bench/honesty.py's);
    `language`: June and her friends write in it (en, de, es, pt)."""
    voice = voice_of(language)
    rng = random.Random(seed)
    when = datetime(2025, 3, 1, 17, 0, tzinfo=UTC)
    plans: list[tuple[str, Any]] = [("session", None)] * sessions
    # Facts and planted data sit at fixed fractions of the timeline, never at the very
    # end (the latest 5% of each channel is held out from training).
    facts = facts_of(voice) if facts is None else facts
    planted_data = planted_of(voice)
    spacing = min(0.12, 0.75 / max(1, len(facts)))  # the demo's six at 0.15, 0.27, …; more facts closer together
    for i, fact in enumerate(facts):
        plans.insert(int(len(plans) * (0.15 + spacing * i)), ("fact", fact))
    for i, planted in enumerate(planted_data):
        plans.insert(int(len(plans) * (0.1 + (0.13 if len(planted_data) <= len(PLANTED) else 0.75 / len(planted_data)) * i)), ("pii", planted))
    lines: list[Line] = []
    sequence = 0
    for kind, payload in plans:
        when += timedelta(hours=rng.randint(10, 60), minutes=rng.randint(0, 59))
        if kind == "session":
            channel = rng.choices(CHANNELS, weights=[5, 3, 2, 3, 3, 1])[0]
            turns = _session(rng, channel, voice)
        elif kind == "fact":
            channel, friend, ask, answer = payload
            turns = [(friend, ask), (OWNER, answer), (friend, rng.choice(voice.follow_ups)), (OWNER, rng.choice(voice.closers))]
        else:
            _, _, channel, author, text = payload
            other = channel.members[0]
            turns = [(author, text), (OWNER if author != OWNER else other, "ok noted ✨" if author != OWNER else "Got it, thanks.")]
        at = when
        previous: Line | None = None
        for author, text in turns:
            at += timedelta(minutes=rng.randint(0, 4), seconds=rng.randint(5, 59))
            sequence += 1
            line = Line(_snowflake(at, sequence), channel, author, at, text)
            if channel.kind == "guild_text" and author != OWNER and previous is None and rng.random() < 0.3:
                line.text = f"<@{OWNER.id}> {text}"
                line.mentions = [OWNER]
            if channel.kind == "guild_text" and previous is not None and rng.random() < 0.2:
                line.reply_to = previous.id
            lines.append(line)
            previous = line
    return History(lines, planted=len(planted_data), facts=len(facts))


def _session(rng: random.Random, channel: ChannelSpec, voice: Voice) -> list[tuple[Person, str]]:
    topic = rng.choice(channel.topics)
    friend = rng.choice(channel.members)
    turns: list[tuple[Person, str]] = [(friend, rng.choice(voice.asks[topic])), (OWNER, owner_line(rng, topic, voice))]
    if rng.random() < 0.4:
        turns.append((OWNER, owner_line(rng, rng.choice(channel.topics), voice)))
    turns.append((friend, rng.choice(voice.follow_ups)))
    if rng.random() < 0.8:
        turns.append((OWNER, rng.choice(voice.closers)))
    if channel.kind != "dm" and rng.random() < 0.3:
        other = rng.choice([p for p in channel.members if p != friend] or [friend])
        turns.insert(1, (other, rng.choice(voice.follow_ups)))
    return turns


def owner_line(rng: random.Random, topic: str, voice: Voice | None = None) -> str:
    """One message in June's voice: lowercase, no full stop, slang and a sign-off."""
    voice = voice or ENGLISH
    parts = [rng.choice(voice.openers), rng.choice(voice.cores[topic]), rng.choice(voice.sign_offs)]
    text = " ".join(p for p in parts if p)
    if rng.random() < 0.15:
        text = text.replace("so ", "sooo ", 1)
    return text.lower()


def _snowflake(at: datetime, sequence: int) -> int:
    return ((int(at.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22) | (sequence & 0x3FFFFF)


# --- writing the two exports -----------------------------------------------------------------------


def write(folder: Path, history: History) -> tuple[Path, Path]:
    """Write `package.zip` and `dce/` under `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_package(folder / "package.zip", history), write_dce(folder / "dce", history)


def write_package(path: Path, history: History) -> Path:
    """June's data package, current layout: only her messages, every channel."""
    files: dict[str, Any] = {
        "Account/user.json": {"id": str(OWNER.id), "username": OWNER.name, "global_name": OWNER.display, "discriminator": "0"},
        "Messages/index.json": {str(c.id): _index_label(c) for c in CHANNELS},
    }
    for channel in CHANNELS:
        meta: dict[str, Any] = {"id": str(channel.id), "type": {"guild_text": "GUILD_TEXT", "dm": "DM", "group_dm": "GROUP_DM"}[channel.kind]}
        if channel.kind == "guild_text":
            meta |= {"name": channel.name, "guild": {"id": str(GUILD[0]), "name": GUILD[1]}}
        else:
            meta["recipients"] = [str(OWNER.id), *(str(p.id) for p in channel.members)]
            if channel.name:
                meta["name"] = channel.name
        rows = [{"ID": line.id, "Timestamp": line.at.strftime("%Y-%m-%d %H:%M:%S"), "Contents": line.text, "Attachments": ""}
                for line in history.owner_lines if line.channel == channel]
        files[f"Messages/c{channel.id}/channel.json"] = meta
        files[f"Messages/c{channel.id}/messages.json"] = rows
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, json.dumps(data, ensure_ascii=False))
    return path


def _index_label(channel: ChannelSpec) -> str:
    if channel.kind == "guild_text":
        return f"{channel.name} in {GUILD[1]}"
    if channel.kind == "dm":
        return f"Direct Message with {channel.members[0].name}"
    return channel.name


def write_dce(folder: Path, history: History) -> Path:
    """DiscordChatExporter JSON of the server's channels: everyone's messages."""
    folder.mkdir(parents=True, exist_ok=True)
    for channel in SERVER_CHANNELS:
        messages = [_dce_message(line) for line in history.lines if line.channel == channel]
        export = {
            "guild": {"id": str(GUILD[0]), "name": GUILD[1], "iconUrl": "https://cdn.discordapp.com/embed/avatars/2.png"},
            "channel": {"id": str(channel.id), "type": "GuildTextChat", "categoryId": "917240000000000002", "category": "Text Channels",
                        "name": channel.name, "topic": None},
            "dateRange": {"after": None, "before": None},
            "exportedAt": "2026-11-01T12:00:00.000+00:00",
            "messages": messages,
            "messageCount": len(messages),
        }
        (folder / f"{GUILD[1]} - Text Channels - {channel.name} [{channel.id}].json").write_text(
            json.dumps(export, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def _dce_person(person: Person) -> dict[str, Any]:
    return {"id": str(person.id), "name": person.name, "discriminator": "0000", "nickname": person.display, "color": None,
            "isBot": False, "roles": [], "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png"}


def _dce_message(line: Line) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(line.id), "type": "Reply" if line.reply_to else "Default", "timestamp": line.at.isoformat(timespec="milliseconds"),
        "timestampEdited": None, "callEndedTimestamp": None, "isPinned": False, "content": line.text, "author": _dce_person(line.author),
        "attachments": [], "embeds": [], "stickers": [], "reactions": [], "mentions": [_dce_person(p) for p in line.mentions],
    }
    if line.reply_to:
        data["reference"] = {"messageId": str(line.reply_to), "channelId": str(line.channel.id), "guildId": str(GUILD[0])}
    return data


def iter_texts(history: History) -> Iterator[str]:
    """Every message text (a tiny test tokenizer is trained on these)."""
    return (line.text for line in history.lines)
