"""A PostgreSQL server for the course's gradebook, on this machine: when the grading command's workers, TAs in the
formgrader and the MOS step write at once (``course.gradebook_url`` says why SQLite is not made for that).

    python -m course.gradebook_server start [--dir DIR] [--user USER] [--group GROUP]
    python -m course.gradebook_server url   [--dir DIR]
    python -m course.gradebook_server stop  [--dir DIR]

``start`` creates, the first time, a database cluster in ``DIR/data`` (default ``course/.postgres/`` of the kit,
git-ignored) with the database ``gradebook``, starts the server and prints the line to give every kit command and
nbgrader (``export SR_KIT_GRADEBOOK_URL=...``). The server listens on a Unix socket in ``DIR/socket`` only (no
TCP port): whoever can enter that folder may connect, and nobody else can. The folder belongs to ``USER`` and to
``GROUP`` (mode 0770): give ``--group`` the course's instructors' group so that TAs reach it; students and the
grading sandboxes' users cannot. The URL holds no password.

PostgreSQL's server refuses to run as root: as root, it runs as ``--user`` (default ``postgres``, the account the
Debian/Ubuntu package creates). Its programs (``initdb``, ``pg_ctl``) come from the system's package
(``apt-get install postgresql``; ``make gradebook-tools`` does it as root); they are found on ``PATH`` or in
``/usr/lib/postgresql/<version>/bin``. For a server elsewhere, set ``SR_KIT_GRADEBOOK_URL`` to its URL instead.
"""
from __future__ import annotations

import argparse
import glob
import grp
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from course.paths import KIT_ROOT

__all__ = ["DEFAULT_DIR", "DATABASE", "ROLE", "GradebookServerError", "server_url", "start", "stop", "main"]

#: Where ``start`` keeps the cluster, its socket and its log by default (git-ignored).
DEFAULT_DIR = KIT_ROOT / "course" / ".postgres"
#: The database and the role the kit's commands use.
DATABASE = "gradebook"
ROLE = "gradebook"
#: Bytes a Unix socket's path may have (``sun_path`` less its terminating zero).
MAX_SOCKET_PATH = 107


class GradebookServerError(RuntimeError):
    """The server cannot be set up or started (the message says what to do)."""


def _program(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   key=lambda p: int(Path(p).parts[-3]), reverse=True)), None)
    if found is None:
        raise GradebookServerError(f"PostgreSQL's {name} is not installed: apt-get install postgresql (as root: "
                                   "make gradebook-tools), or point SR_KIT_GRADEBOOK_URL at a server elsewhere")
    return found


def _as_user(user: str | None) -> list[str]:
    """The prefix that runs a command as the server's user (nothing when that is who we are)."""
    if user is None or user == pwd.getpwuid(os.geteuid()).pw_name:
        if os.geteuid() == 0:
            raise GradebookServerError("PostgreSQL does not run as root: give --user (default postgres)")
        return []
    if os.geteuid() != 0:
        raise GradebookServerError(f"--user {user}: only root can run the server as another user")
    return ["runuser", "-u", user, "--"]


def server_url(folder: Path = DEFAULT_DIR) -> str:
    """The SQLAlchemy URL of the gradebook served from ``folder`` (its Unix socket; no password)."""
    return f"postgresql+psycopg2://{ROLE}@/{DATABASE}?host={quote(str(Path(folder).resolve() / 'socket'), safe='/')}"


def _run(argv: list[str], what: str) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if out.returncode:
        raise GradebookServerError(f"{what} failed ({' '.join(argv)}):\n{(out.stdout + out.stderr).strip()[-2000:]}")
    return out.stdout


def start(folder: Path = DEFAULT_DIR, user: str | None = None, group: str | None = None, log=print) -> str:
    """Create (once) and start the server of ``folder``; returns its URL. ``user``: who runs it (as root, default
    ``postgres``); ``group``: who may connect besides that user (default: the user's own group)."""
    folder = Path(folder).resolve()
    if user is None and os.geteuid() == 0:
        user = "postgres"
    prefix = _as_user(user)
    try:
        account = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
        gid = grp.getgrnam(group).gr_gid if group else account.pw_gid
    except KeyError as e:
        raise GradebookServerError(f"no such user or group: {e.args[0]}") from None
    data, socket_dir, logfile = folder / "data", folder / "socket", folder / "server.log"
    socket_path = socket_dir / ".s.PGSQL.5432"
    if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
        raise GradebookServerError(f"the server's socket {socket_path} would be {len(os.fsencode(socket_path))} "
                                   f"bytes long, more than a Unix socket's path may be ({MAX_SOCKET_PATH}): give "
                                   "--dir a shorter folder")
    folder.mkdir(parents=True, exist_ok=True)
    socket_dir.mkdir(exist_ok=True)
    for path, mode in ((folder, 0o750), (socket_dir, 0o770)):
        os.chmod(path, mode)
        if os.geteuid() == 0:
            os.chown(path, account.pw_uid, gid)
    if not (data / "PG_VERSION").is_file():
        if data.exists() and any(data.iterdir()):
            raise GradebookServerError(f"{data} holds files but no database cluster: move it away, or give --dir")
        log(f"creating the gradebook's database cluster in {data}")
        _run([*prefix, _program("initdb"), "-D", str(data), "-U", ROLE, "-E", "UTF8", "--auth-local=trust",
              "--auth-host=reject", "--no-instructions"], "initdb")
    # (pg_ctl hands these to a shell) the socket itself open to all: its folder, 0770 of the user and the group, is
    # the gate (a socket 0770 would be the server user's group's, which the instructors are not in)
    options = (f"-c listen_addresses='' -c unix_socket_directories={shlex.quote(str(socket_dir))} "
               "-c unix_socket_permissions=0777")
    status = subprocess.run([*prefix, _program("pg_ctl"), "-D", str(data), "status"], capture_output=True)
    if status.returncode != 0:
        _run([*prefix, _program("pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60", "-o", options,
              "start"], f"starting PostgreSQL (its log: {logfile})")
    exists = _run([*prefix, _program("psql"), "-h", str(socket_dir), "-U", ROLE, "-d", "postgres", "-Atc",
                   f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], "psql")
    if exists.strip() != "1":
        _run([*prefix, _program("createdb"), "-h", str(socket_dir), "-U", ROLE, DATABASE], "createdb")
    return server_url(folder)


def stop(folder: Path = DEFAULT_DIR, user: str | None = None) -> bool:
    """Stop the server of ``folder`` (fast: open transactions are rolled back); ``False`` when it was not running."""
    data = Path(folder).resolve() / "data"
    if user is None and os.geteuid() == 0:
        user = data.owner() if data.exists() else "postgres"
    prefix = _as_user(user)
    if subprocess.run([*prefix, _program("pg_ctl"), "-D", str(data), "status"], capture_output=True).returncode:
        return False
    _run([*prefix, _program("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], "stopping PostgreSQL")
    return True


def main(argv: list[str] | None = None) -> int:
    from course.grading.contract import GRADEBOOK_URL_ENV

    p = argparse.ArgumentParser(prog="python -m course.gradebook_server", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["start", "url", "stop"])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"the server's folder (default {DEFAULT_DIR})")
    p.add_argument("--user", help="who runs the server (as root; default postgres)")
    p.add_argument("--group", help="the group that may connect (default: the server user's group)")
    args = p.parse_args(argv)
    try:
        if args.command == "start":
            url = start(args.dir, args.user, args.group)
            print(f"the gradebook's server is running; give every course command its URL:\n"
                  f"export {GRADEBOOK_URL_ENV}='{url}'")
        elif args.command == "url":
            print(server_url(args.dir))
        else:
            print("stopped" if stop(args.dir, args.user) else f"no server was running in {args.dir}")
    except GradebookServerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
