"""Where a course's gradebook is: one function that every kit command and ``nbgrader_config.py`` ask.

By default the gradebook is nbgrader's SQLite file in the course root (:data:`course.grading.contract.GRADEBOOK`),
right for one instructor on one machine. When several people write at once -- the grading command's workers, TAs
grading in the formgrader side by side, the MOS study's ``--to-gradebook`` step -- SQLite serialises them at best
("not thread safe", nbgrader's FAQ) and its writers fail with "database is locked" at worst; nbgrader supports
PostgreSQL for that. ``$SR_KIT_GRADEBOOK_URL`` (:data:`course.grading.contract.GRADEBOOK_URL_ENV`) then names the
server's database as an SQLAlchemy URL, e.g. the one ``python -m course.gradebook_server start`` prints
(``postgresql+psycopg2:///gradebook?host=/srv/course/.postgres``: a Unix socket whose folder's permissions decide
who may connect, so the URL holds no password).

The URL is the instructor's: it is never given to a sandbox (the sandbox's environment is built from nothing,
``course.sandbox.isolation.base_env``), and logs show it through :func:`shown_url`, without a password.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from course.grading.contract import GRADEBOOK, GRADEBOOK_URL_ENV

__all__ = ["gradebook_url", "is_sqlite", "sqlite_path", "shown_url"]

SQLITE = "sqlite:///"


def gradebook_url(course_root: Path | str, env: dict | None = None) -> str:
    """The SQLAlchemy URL of ``course_root``'s gradebook: ``$SR_KIT_GRADEBOOK_URL`` when set (in ``env``, default
    this process's environment), else ``sqlite:///<course_root>/course/gradebook.db``."""
    url = (os.environ if env is None else env).get(GRADEBOOK_URL_ENV, "").strip()
    if url:
        if "://" not in url:
            raise ValueError(f"${GRADEBOOK_URL_ENV}={shown_url(url)!r} is not a database URL: give one like "
                             "postgresql+psycopg2:///gradebook?host=/path/to/socket-folder "
                             "(python -m course.gradebook_server start prints it), or unset it for the SQLite file")
        return url
    return SQLITE + str(Path(course_root) / GRADEBOOK)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> Path | None:
    """The file of an ``sqlite:///`` URL, ``None`` for a server's URL."""
    return Path(url[len(SQLITE):]) if url.startswith(SQLITE) else None


def shown_url(url: str) -> str:
    """``url`` as logs may show it: a password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
