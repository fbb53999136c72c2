"""Topics: what the owner's history covers well, and what it covers thinly.

A persona should tell people up front what it can answer well (`persona topics`,
`/persona topics`, `/persona status`). The topics are clusters of the memories in which
the owner speaks: k-means over their stored vectors (scikit-learn), no model call per
memory, redone after each memory build that grew the owner's memories by more than a
tenth; smaller builds (the running bot's) give new memories their nearest topic.

Listing is scoped like recall: counts, dates and names come only from memories the
asker may read here (`recall.readable_filter`), so a topic that lives in a DM is never
listed in a server, and a topic's name is made of words the asker could have read. A
name is a topic's most distinctive words among the owner's own lines — class-based
TF-IDF: a word's count in the topic weighed against its count in all listed topics, so
"lol" and "ngl", said everywhere, name nothing (persona/words.py leaves chat filler out).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from persona.history import messages as history
from persona.memory.recall import readable_filter
from persona.privacy.scopes import Place, readable_scopes
from persona.words import language_of, stop_words

log = logging.getLogger(__name__)

MIN_MEMORIES = 6  # fewer owner memories than this: no topics
MAX_TOPICS = 40
MEMORIES_PER_TOPIC = 30  # about this many memories per topic (k = n / this, at least 2)
REBUILD_GROWTH = 0.1  # recluster when this share of owner memories has no topic yet
NAME_SAMPLE = 200  # memories read per topic to name it (the most recent)
NAME_WORDS = 3
THIN_SHARE = 0.25  # a topic with fewer memories than this share of the median topic is thin
THIN_MEMORIES = 3  # … or with fewer than this many


@dataclass(frozen=True)
class Topic:
    id: int
    words: list[str]
    memories: int
    messages: int
    first_at: datetime
    last_at: datetime
    thin: bool

    @property
    def name(self) -> str:
        return " · ".join(self.words) if self.words else f"topic {self.id}"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "words": self.words, "memories": self.memories, "messages": self.messages,
                "first_at": self.first_at.isoformat(), "last_at": self.last_at.isoformat(), "thin": self.thin}

    def describe(self) -> str:
        span = f"{self.first_at:%b %Y}" + ("" if f"{self.first_at:%b %Y}" == f"{self.last_at:%b %Y}" else f"–{self.last_at:%b %Y}")
        return f"{self.name} — {self.memories:,} memories, {self.messages:,} messages, {span}"


# --- building ---------------------------------------------------------------------------------------


def update(conn: psycopg.Connection, owner_id: int | None) -> int:
    """After a memory build: recluster when the owner's memories grew by more than
    REBUILD_GROWTH (or there are no topics yet), else give new memories their nearest
    topic. Returns how many memories got a topic."""
    if owner_id is None:
        return 0
    assigned, unassigned = conn.execute(
        "SELECT count(topic_id), count(*) - count(topic_id) FROM memories WHERE embedding IS NOT NULL AND %s = ANY(author_ids)",
        (owner_id,)).fetchone()
    if not unassigned:
        return 0
    if not assigned or unassigned > REBUILD_GROWTH * assigned:
        return rebuild(conn, owner_id)
    return assign_new(conn, owner_id)


def rebuild(conn: psycopg.Connection, owner_id: int) -> int:
    """Cluster the owner's memories anew (in the caller's transaction: all or nothing)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    ids, vectors = _owner_vectors(conn, owner_id, only_unassigned=False)
    clear(conn)
    if len(ids) < MIN_MEMORIES:
        return 0
    k = max(2, min(MAX_TOPICS, round(len(ids) / MEMORIES_PER_TOPIC)))
    # Full k-means is exact and fast up to tens of thousands of rows; beyond, mini-batches.
    model = (KMeans(n_clusters=k, n_init=3, random_state=0) if len(ids) <= 20_000
             else MiniBatchKMeans(n_clusters=k, n_init=3, random_state=0, batch_size=4096))
    labels = model.fit_predict(vectors)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO memory_topics (id, centroid) VALUES (%s, %s)",
                        [(i, [float(x) for x in centre]) for i, centre in enumerate(model.cluster_centers_)])
    _set_topics(conn, ids, labels)
    log.info("topics: %d clusters of %d memories", k, len(ids))
    return len(ids)


def clear(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE memories SET topic_id = NULL WHERE topic_id IS NOT NULL")
    conn.execute("DELETE FROM memory_topics")


def assign_new(conn: psycopg.Connection, owner_id: int) -> int:
    """Give the owner's memories without a topic the topic of their nearest centroid."""
    rows = conn.execute("SELECT id, centroid FROM memory_topics ORDER BY id").fetchall()
    if not rows:
        return 0
    ids, vectors = _owner_vectors(conn, owner_id, only_unassigned=True)
    if not ids:
        return 0
    centroids = np.array([r[1] for r in rows], dtype=np.float32)
    # argmin |v - c|² = argmax v·c - |c|²/2: an n × k matrix, never n × k × dimension.
    nearest = (vectors @ centroids.T - 0.5 * (centroids ** 2).sum(1)).argmax(1)
    _set_topics(conn, ids, [rows[i][0] for i in nearest])
    return len(ids)


def _owner_vectors(conn: psycopg.Connection, owner_id: int, *, only_unassigned: bool) -> tuple[list[int], np.ndarray]:
    unassigned = sql.SQL("AND topic_id IS NULL" if only_unassigned else "")
    rows = conn.execute(sql.SQL("SELECT id, embedding FROM memories WHERE embedding IS NOT NULL AND %s = ANY(author_ids) {} ORDER BY id")
                        .format(unassigned), (owner_id,)).fetchall()
    if not rows:  # a history forgotten down to nothing: no vectors, not a (0, ?) reshape
        return [], np.empty((0, 0), dtype=np.float32)
    vectors = np.array([_as_array(r[1]) for r in rows], dtype=np.float32)
    return [int(r[0]) for r in rows], vectors


def _as_array(value: Any) -> np.ndarray:
    """pgvector's `Vector` (or an array, depending on how the connection registered the type)."""
    return value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)


def _set_topics(conn: psycopg.Connection, ids: Sequence[int], labels: Sequence[Any]) -> None:
    conn.execute("UPDATE memories m SET topic_id = t.topic FROM unnest(%s::bigint[], %s::int[]) AS t(id, topic) WHERE m.id = t.id",
                 (list(ids), [int(x) for x in labels]))


# --- listing ----------------------------------------------------------------------------------------

_COUNTS = sql.SQL("""
SELECT topic_id, count(*), coalesce(sum(cardinality(message_ids)), 0), min(started_at), max(ended_at)
FROM memories
WHERE topic_id IS NOT NULL AND %(owner)s = ANY(author_ids) {filters}
GROUP BY topic_id
""")
_SAMPLE = sql.SQL("""
SELECT topic_id, message_ids FROM (
    SELECT topic_id, message_ids, row_number() OVER (PARTITION BY topic_id ORDER BY ended_at DESC, id) AS n
    FROM memories
    WHERE topic_id IS NOT NULL AND %(owner)s = ANY(author_ids) {filters}
) recent
WHERE n <= %(sample)s
""")


def topics_for(conn: psycopg.Connection, *, asker_id: int | None, place: Place, owner_id: int | None) -> list[Topic]:
    """The topics `asker_id` may see at `place`, largest first, named from what they may read."""
    if owner_id is None:
        return []
    scopes = readable_scopes(asker_id, place, owner_id)  # None: all
    if scopes is not None and not scopes:
        return []
    filters = readable_filter(scopes)
    params = {"owner": owner_id, "scopes": scopes, "sample": NAME_SAMPLE}
    counts = {int(r[0]): r[1:] for r in conn.execute(_COUNTS.format(filters=filters), params).fetchall()}
    if not counts:
        return []
    members: dict[int, list[int]] = {}
    for topic_id, message_ids in conn.execute(_SAMPLE.format(filters=filters), params).fetchall():
        members.setdefault(int(topic_id), []).extend(message_ids)
    said = {i: content for i, author, content in history.exchanges(conn, [i for ids in members.values() for i in ids]) if author == owner_id}
    texts = {topic: " ".join(said.get(i, "") for i in ids) for topic, ids in members.items()}
    names = distinctive_words(texts, NAME_WORDS)
    median = statistics.median(int(c[0]) for c in counts.values())
    topics = [Topic(topic, names.get(topic, []), int(n), int(m), first, last,
                    thin=int(n) < max(THIN_MEMORIES, THIN_SHARE * median))
              for topic, (n, m, first, last) in counts.items()]
    return sorted(topics, key=lambda t: (-t.memories, t.id))


def distinctive_words(texts: dict[int, str], n: int) -> dict[int, list[str]]:
    """Each class's `n` most distinctive words by class-based TF-IDF (a word's count in
    the class × log(1 + average words per class / the word's count in all classes)).
    Written here rather than taken from a topic-modelling package: it is four lines over
    scikit-learn's counts, and those packages bring models this needs none of."""
    from sklearn.feature_extraction.text import CountVectorizer

    keys = [k for k, text in texts.items() if text.strip()]
    if not keys:
        return {}
    written_in = frozenset(language for language in (language_of(texts[k][:2000]) for k in keys) if language)  # each topic's language
    vectorizer = CountVectorizer(stop_words=sorted(stop_words(written_in)), token_pattern=r"(?u)\b[^\W\d_]{3,}\b",  # noqa: S106 - a regex
                                 lowercase=True)
    try:
        counts = vectorizer.fit_transform([texts[k] for k in keys]).toarray().astype(float)
    except ValueError:  # nothing but stop words
        return {}
    vocabulary = vectorizer.get_feature_names_out()
    average = counts.sum() / len(keys)
    weights = counts * np.log1p(average / np.maximum(counts.sum(0), 1))
    named: dict[int, list[str]] = {}
    for row, key in enumerate(keys):
        order = [i for i in np.argsort(-weights[row], kind="stable") if counts[row, i] > 0]
        named[key] = [str(vocabulary[i]) for i in order[:n]]
    return named


def describe(topics: Sequence[Topic], *, limit: int = 8) -> str:
    """A few lines for `/persona status` and the CLI: what is covered well, what thinly."""
    if not topics:
        return "topics: none yet (run `persona memory build` once the owner's history is imported)"
    strong = [t for t in topics if not t.thin][:limit]
    thin = [t for t in topics if t.thin][:limit]
    lines = ["knows well: " + ("; ".join(t.name for t in strong) if strong else "nothing yet")]
    if thin:
        lines.append("thin (few memories): " + "; ".join(t.name for t in thin))
    return "\n".join(lines)


def topic_count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM memory_topics").fetchone()[0])
