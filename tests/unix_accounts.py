"""Throw-away Unix accounts for the tests of a shared machine (the exchange between users, a closed course, the
sandbox as an ordinary user): the ``student_account`` fixture (root only; skips with the reason elsewhere, fails
under CI), and commands run as such an account."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from course.paths import tool_env
from course_fixtures import skip_or_fail


@pytest.fixture
def student_account():
    """(name, home, base): a Unix account made for the test, its home under ``base`` (a folder of /tmp others
    can enter), removed after."""
    if os.geteuid() != 0:
        skip_or_fail("the exchange test creates a throw-away Unix account: it needs root")
    if not shutil.which("useradd") or not shutil.which("runuser"):
        skip_or_fail("useradd/runuser are not available to create a throw-away Unix account")
    base = Path(tempfile.mkdtemp(prefix="sr-exchange-", dir="/tmp"))
    base.chmod(0o755)
    name = f"srkit{os.getpid() % 100000}"
    home = base / "home"
    out = subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/usr/sbin/nologin", "-U", name],
                         capture_output=True, text=True)
    if out.returncode != 0:
        shutil.rmtree(base)
        skip_or_fail(f"useradd failed: {out.stderr.strip()}")
    home.mkdir()
    shutil.chown(home, name, name)
    try:
        yield name, home, base
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def as_user(user: str, env: dict, argv: list) -> list:
    """``argv`` run as ``user`` with exactly ``env``. Where the kit's Python sits under a folder other users cannot
    enter (pyenv under /root here; a shared machine installs it where students can run it), the command runs in
    a private mount namespace where only that folder is replaced by a readable tmpfs holding the Python install:
    nothing changes outside the command."""
    from course.hub.mounts import with_readable_python

    inner = ["runuser", "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *map(str, argv)]
    return with_readable_python(inner)


def run(argv, cwd, user: str | None = None, env: dict | None = None) -> str:
    if user:
        argv = as_user(user, env or {}, argv)
    out = subprocess.run(argv, cwd=cwd, env=None if user else (env or tool_env()), capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"{' '.join(map(str, argv))}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout + out.stderr
