"""The answers of a study, in SQLite: written as they are given, one answer per rater and item.

WAL journal and ``synchronous=FULL``: an answer acknowledged to the browser is on disk, so a crash or a restart of the
server loses nothing already answered. Answering an item again replaces the earlier score (one row per rater and item).
Each call opens its own connection, so the web app's worker threads never share one.
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["AnswerStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    rater TEXT NOT NULL,
    item TEXT NOT NULL,
    score INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    answered_at REAL NOT NULL,
    PRIMARY KEY (rater, item)
);
CREATE TABLE IF NOT EXISTS calibrated (
    rater TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""


class AnswerStore:
    """``answers(rater, item, score, answered_at)`` and ``calibrated(rater, at)`` in ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit: each statement is durable
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def answer(self, rater: str, item: str, score: int) -> None:
        """Store (or replace) ``rater``'s score of ``item``; the caller has validated both."""
        with self._connect() as db:
            db.execute("INSERT INTO answers (rater, item, score, answered_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (rater, item) DO UPDATE SET score = excluded.score, "
                       "answered_at = excluded.answered_at", (rater, item, int(score), time.time()))

    def answered(self, rater: str) -> set[str]:
        with self._connect() as db:
            return {r[0] for r in db.execute("SELECT item FROM answers WHERE rater = ?", (rater,))}

    def mark_calibrated(self, rater: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO calibrated (rater, at) VALUES (?, ?)", (rater, time.time()))

    def is_calibrated(self, rater: str) -> bool:
        with self._connect() as db:
            return db.execute("SELECT 1 FROM calibrated WHERE rater = ?", (rater,)).fetchone() is not None

    def all_answers(self) -> list[tuple[str, str, int]]:
        """Every ``(rater, item, score)``, in answer order."""
        with self._connect() as db:
            return [tuple(r) for r in db.execute("SELECT rater, item, score FROM answers ORDER BY answered_at")]
