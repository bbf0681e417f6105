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
CREATE TABLE IF NOT EXISTS pending (
    rater TEXT PRIMARY KEY,
    pair TEXT NOT NULL,
    left_item TEXT NOT NULL,
    right_item TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS comparisons (
    rater TEXT NOT NULL,
    left_item TEXT NOT NULL,
    right_item TEXT NOT NULL,
    winner TEXT NOT NULL CHECK (winner = left_item OR winner = right_item),
    answered_at REAL NOT NULL,
    PRIMARY KEY (rater, left_item, right_item)
);
"""


class AnswerStore:
    """``answers(rater, item, score, answered_at)``, ``calibrated(rater, at)`` and, for the pairwise mode,
    ``pending(rater, pair, left_item, right_item)`` and ``comparisons(rater, left_item, right_item, winner)``."""

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

    # --- pairwise mode: the pair shown to a rater is stored before it is shown, so a reload or a restart shows the
    # same pair; answering it records the comparison and clears it, in one transaction.
    def pending_pair(self, rater: str) -> tuple[str, str, str] | None:
        """``(pair id, left item, right item)`` shown to ``rater`` and not yet answered."""
        with self._connect() as db:
            row = db.execute("SELECT pair, left_item, right_item FROM pending WHERE rater = ?", (rater,)).fetchone()
            return tuple(row) if row else None

    def set_pending(self, rater: str, pair: str, left: str, right: str) -> tuple[str, str, str]:
        """Store the pair to show unless one is already pending (two tabs at once); returns the pending pair."""
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO pending (rater, pair, left_item, right_item) VALUES (?, ?, ?, ?)",
                       (rater, pair, left, right))
            return tuple(db.execute("SELECT pair, left_item, right_item FROM pending WHERE rater = ?",
                                    (rater,)).fetchone())

    def answer_pair(self, rater: str, pair: str, winner_side: str) -> bool:
        """Record the pending ``pair`` with the ``"left"`` or ``"right"`` item as winner; False (nothing stored) when
        ``pair`` is not the rater's pending pair."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT left_item, right_item FROM pending WHERE rater = ? AND pair = ?",
                             (rater, pair)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return False
            left, right = row
            db.execute("INSERT OR REPLACE INTO comparisons (rater, left_item, right_item, winner, answered_at) "
                       "VALUES (?, ?, ?, ?, ?)", (rater, left, right, left if winner_side == "left" else right,
                                                  time.time()))
            db.execute("DELETE FROM pending WHERE rater = ?", (rater,))
            db.execute("COMMIT")
            return True

    def all_comparisons(self) -> list[tuple[str, str, str, str]]:
        """Every ``(rater, left item, right item, winner item)``, in answer order."""
        with self._connect() as db:
            return [tuple(r) for r in db.execute(
                "SELECT rater, left_item, right_item, winner FROM comparisons ORDER BY answered_at")]
