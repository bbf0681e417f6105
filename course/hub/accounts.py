"""The class server's Unix accounts: the instructors' group, an account per student of the roster and per
instructor or TA, and the grader account the formgrader runs as (root only; ``useradd``, ``groupadd``,
``chpasswd``). An account that exists is kept as it is (its password too); what is created is said."""
from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import subprocess
from pathlib import Path

#: What ``useradd`` takes as a name everywhere (Debian's default rule, and at most 32 characters).
UNIX_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class AccountError(RuntimeError):
    """An account or group that could not be made; the message names it and what the system said."""


def unix_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Unix account (None if it can)."""
    if UNIX_NAME.match(name):
        return None
    return (f"{name!r} cannot be a Unix account name (lower-case letters, digits, '_' and '-', starting with a "
            "letter or '_', at most 32 characters)")


def exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _run(argv: list[str], what: str, input: str | None = None) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, input=input)
    if out.returncode != 0:
        raise AccountError(f"{what}: {' '.join(argv[:1])} said: {out.stderr.strip() or out.stdout.strip()}")


def ensure_group(name: str) -> bool:
    """The group ``name`` (created if missing); True if it was created."""
    try:
        grp.getgrnam(name)
        return False
    except KeyError:
        _run(["groupadd", name], f"creating group {name}")
        return True


def ensure_account(name: str, homes: Path, groups: tuple[str, ...] = (), login: bool = True) -> str | None:
    """The account ``name`` with a home in ``homes`` (0700) and in ``groups``; created with a random password
    if missing, which is returned (None: it existed, its password unchanged). ``login`` False: no password, no
    shell (the grader account)."""
    problem = unix_name_problem(name)
    if problem:
        raise AccountError(problem)
    password = None
    if not exists(name):
        home = Path(homes) / name
        _run(["useradd", "-m", "-d", str(home), "-s", "/bin/bash" if login else "/usr/sbin/nologin", "-U", name],
             f"creating account {name}")
        os.chmod(home, 0o700)
        if login:
            password = secrets.token_urlsafe(9)
            _run(["chpasswd"], f"setting the password of {name}", input=f"{name}:{password}\n")
    for group in groups:
        if name not in grp.getgrnam(group).gr_mem:
            _run(["usermod", "-a", "-G", group, name], f"adding {name} to {group}")
    return password


def home_of(name: str) -> Path:
    return Path(pwd.getpwnam(name).pw_dir)


def remove_account(name: str) -> None:
    """Remove ``name`` and its home (tests' throw-away accounts)."""
    if exists(name):
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)
