"""The class server on this machine (as root):

    python -m course.hub setup --roster ROSTER.csv --instructor NAME [--instructor NAME ...] [--state DIR]
    python -m course.hub start [--state DIR]      # JupyterHub in the foreground (Ctrl-C stops it)
    python -m course.hub stop [--state DIR] [--hub-only]   # --hub-only: a restart, the servers go on

``setup`` makes the instructors' group and a Unix account per student of the roster, per instructor or TA and for
the grader (new accounts get a random password, written to ``DIR/passwords.csv``, 0600), a copy of the course
owned by the grader and readable by the group only (``DIR/course``), the exchange (``DIR/exchange``, 1777), the
assignment generated and released there, the roster imported into the gradebook, and the settings
(``DIR/settings.json``). ``start`` runs JupyterHub with the proxy ``make hub`` installed; docs/hub.md tells the rest.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from course.grading.contract import EXCHANGE_ENV, GRADEBOOK_URL_ENV, HUB_SETTINGS_ENV
from course.hub import accounts
from course.hub.mounts import with_readable_python
from course.hub.settings import DEFAULT_STATE, SETTINGS_FILE, HubSettings
from course.paths import BIN, KIT_ROOT, PACKAGE, tool

HERE = Path(__file__).resolve().parent
ASSIGNMENT = "superres"


class HubError(RuntimeError):
    """What stops a hub command, said with what to do."""


def _as(user: str, argv: list[str], cwd: Path, env: dict) -> None:
    """``argv`` run as ``user`` in ``cwd`` with ``env``, its output shown only when it fails."""
    inner = ["runuser", "-u", user, "--", "env", "-C", str(cwd), *[f"{k}={v}" for k, v in env.items()],
             *map(str, argv)]
    out = subprocess.run(with_readable_python(inner), capture_output=True, text=True)
    if out.returncode != 0:
        raise HubError(f"{' '.join(map(str, argv[:3]))} as {user} failed:\n{(out.stdout + out.stderr)[-3000:]}")


def _own(top: Path, user: str, group: str) -> None:
    """``top`` and everything below: ``user``'s, readable by ``group`` only (folders 2750, files 0640)."""
    for dirpath, dirs, files in os.walk(top):
        for name in [".", *files]:
            path = os.path.join(dirpath, name)
            shutil.chown(path, user, group)
            os.chmod(path, 0o2750 if name == "." else 0o640)


def _readable(top: Path) -> None:
    """``top`` and everything below: readable by every account, writable by its owner only (0755, 0644)."""
    for dirpath, dirs, files in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in files:
            if not os.path.islink(path := os.path.join(dirpath, name)):
                os.chmod(path, 0o644)


def _open_to_others(path: Path) -> bool:
    """Whether an account of neither ``path``'s owner nor its group can list ``path``."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents]) and bool(os.stat(path).st_mode & 0o004)


def check_checkout(homes: Path, group: str, log=print) -> None:
    """Refuse what would let a student's server see the kit's solutions; say what an open checkout means."""
    if not (KIT_ROOT / "pyproject.toml").is_file() or not (KIT_ROOT / "source").is_dir():
        raise HubError(f"the course package at {PACKAGE} is not in the kit's checkout (installed without -e?): the "
                       "students' servers cover the checkout, and an installed copy of the package, its hidden "
                       "checks and reference solution included, would stay readable; install the kit with "
                       "`pip install -e .` from its checkout")
    if homes.resolve().is_relative_to(KIT_ROOT):
        raise HubError(f"--homes {homes} is inside the kit's checkout {KIT_ROOT}, which the students' servers "
                       "do not see: choose a folder outside it (/home)")
    if _open_to_others(KIT_ROOT / "source"):
        log(f"warning: the kit's checkout {KIT_ROOT} is readable by every account. The students' servers do not "
            f"see it, but a student who logs in another way (ssh) could read source/: "
            f"`chgrp -R {group} {KIT_ROOT} && chmod -R o-rwx {KIT_ROOT}` closes it to all but the instructors")


def setup(roster: Path, instructors: list[str], state: Path, homes: Path, language: str, port: int,
          group: str = "sr-instructors", grader: str = "grader-superres", log=print) -> HubSettings:
    from course.demo import copy_course
    from course.roster import read_roster
    from course.student_kit import build_student_kit

    if os.geteuid() != 0:
        raise HubError("setup makes Unix accounts: run it as root")
    students = [s.id for s in read_roster(roster)]
    bad = [p for p in map(accounts.unix_name_problem, [*students, *instructors, grader, group]) if p]
    if bad:
        raise HubError(f"roster {roster} or --instructor: nothing was created:\n  " + "\n  ".join(bad))
    clash = sorted(set(students) & set(instructors))
    if clash:
        raise HubError(f"{', '.join(clash)} both in the roster and an instructor: nothing was created")
    check_checkout(homes, group, log)
    if port == 0:
        from course.hub.config import free_port_block

        port = free_port_block()
    s = HubSettings(state=state.resolve(), students=students, instructors=instructors, homes=homes.resolve(),
                    language=language, port=port, group=group, grader=grader,
                    gradebook_url=os.environ.get(GRADEBOOK_URL_ENV))
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o711)
    homes.mkdir(parents=True, exist_ok=True)
    if accounts.ensure_group(s.group):
        log(f"created group {s.group}")
    passwords = {}
    accounts.ensure_account(s.grader, s.homes, (s.group,), login=False)
    for name in instructors:
        passwords[name] = accounts.ensure_account(name, s.homes, (s.group,))
    for name in students:
        passwords[name] = accounts.ensure_account(name, s.homes)
    new = {n: p for n, p in passwords.items() if p}
    if new:
        path = state / "passwords.csv"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.writelines(f"{n},{p}\n" for n, p in new.items())
        log(f"created {len(new)} accounts; their passwords are in {path} (0600)")
    build_student_kit(s.student_kit.parent, log=lambda m: None)
    shutil.copytree(HERE / "student_config", s.server_config, dirs_exist_ok=True)
    for top in (s.student_kit.parent, s.server_config):
        _readable(top)
    log(f"the students' servers run from the student kit {s.student_kit}")
    if not (s.course / "nbgrader_config.py").is_file():
        copy_course(s.course)
    s.exchange.mkdir(exist_ok=True)
    os.chmod(s.exchange, 0o1777)
    _own(s.course, s.grader, s.group)
    env = {"HOME": str(accounts.home_of(s.grader)), "PATH": f"{BIN}:/usr/bin:/bin", EXCHANGE_ENV: str(s.exchange)}
    if s.gradebook_url:
        env[GRADEBOOK_URL_ENV] = s.gradebook_url
    nbgrader = str(tool("nbgrader"))
    _as(s.grader, [nbgrader, "generate_assignment", ASSIGNMENT, "--force"], s.course, env)
    _as(s.grader, [nbgrader, "release_assignment", ASSIGNMENT, "--force"], s.course, env)
    roster_copy = s.course / "roster.csv"
    shutil.copyfile(roster, roster_copy)
    shutil.chown(roster_copy, s.grader, s.group)
    _as(s.grader, [sys.executable, "-m", "course.roster", str(roster_copy), "--course-dir", str(s.course)],
        s.course, env)
    s.save()
    log(f"the class server is set up in {state}: {len(students)} students, {len(instructors)} instructors/TAs; "
        f"`python -m course.hub start --state {state}` starts it")
    return s


def start_command(state: Path) -> tuple[list[str], dict]:
    """The command that runs the hub of ``state`` in the foreground, and its environment."""
    if os.geteuid() != 0:
        raise HubError("the hub starts every user's server as that user: run it as root")
    settings_file = state.resolve() / SETTINGS_FILE
    s = HubSettings.load(settings_file)
    if not Path(s.proxy).is_file():
        raise HubError(f"the hub's proxy {s.proxy} is missing: `make hub` installs it (npm install "
                       "configurable-http-proxy)")
    if not tool("jupyterhub").exists():
        raise HubError(f"JupyterHub is not installed next to {sys.executable}: pip install -e '.[hub]'")
    argv = with_readable_python([str(tool("jupyterhub")), "-f", str(HERE / "jupyterhub_config.py")])
    env = {**os.environ, HUB_SETTINGS_ENV: str(settings_file), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return argv, env


def _end(pid_file: Path, timeout: float) -> bool:
    """SIGTERM to the process of ``pid_file``, SIGKILL after ``timeout`` s; True if there was one."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    _end_all([pid], timeout)
    return True


def _running(pid: int) -> bool:
    """``pid`` exists and has not ended (a process that ended but that its parent has not waited for yet is a
    zombie: it has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def servers_of(names: list[str]) -> list[int]:
    """The pids of the Jupyter servers (``jupyterhub-singleuser``) running as the accounts ``names``."""
    import pwd

    uids = set()
    for name in names:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid in uids and \
                    b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def users_servers(s: HubSettings) -> list[int]:
    """The pids of the Jupyter servers of the hub's users and of its formgrader service."""
    return servers_of([*s.students, *s.instructors, s.grader])


def _end_all(pids: list[int], timeout: float) -> None:
    """SIGTERM to each of ``pids``, SIGKILL to those still running after ``timeout`` s."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in filter(_running, pids):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def stop(state: Path, hub_only: bool = False, timeout: float = 30.0) -> bool:
    """Stop the hub of ``state`` (its pid file), then, unless ``hub_only``, its proxy and every user's server
    (the hub leaves them running, so that a restarted hub finds them); True if a hub was running.

    The formgrader is the hub's own managed service: the hub ends it as it stops, and every hub starts its own. A
    hub that could not end it within ``timeout`` s (and was killed then) would leave it holding the service's port
    with the OAuth secret of a hub that is gone: the next hub's formgrader could not start, and the instructors
    would get errors from the old one. So it is ended here too, also with ``hub_only``."""
    was = _end(state / "jupyterhub.pid", timeout)
    try:
        s = HubSettings.load(state / SETTINGS_FILE)
    except FileNotFoundError:
        return was
    _end_all(servers_of([s.grader]), timeout)
    if not hub_only:
        _end(state / "proxy.pid", timeout)
        _end_all(users_servers(s), timeout)
        remove_cgroups(s)
    return was


def remove_cgroups(s: HubSettings, wait: float = 10.0) -> None:
    """The users' cgroups (``sr-hub-<user>``, made by the spawner) once their servers are gone: a hub that was
    restarted no longer knows them, and a stopped one leaves them. What is still inside one (a kernel its server
    left behind, a process still exiting) is killed first: a cgroup with a task in it cannot be removed."""
    from course.sandbox import Cgroup

    for name in [*s.students, *s.instructors]:
        dirs = [top / f"sr-hub-{name}" for top in (*Cgroup.V1, Cgroup.V1_CPU, Cgroup.V2)
                if (top / f"sr-hub-{name}" / "cgroup.procs").is_file()]
        for d in dirs:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
        Cgroup(dirs).remove(wait)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course.hub", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    su, st, sp = (sub.add_parser(n) for n in ("setup", "start", "stop"))
    for p in (su, st, sp):
        p.add_argument("--state", type=Path, default=DEFAULT_STATE, help="the hub's state folder")
    sp.add_argument("--hub-only", action="store_true", help="stop the hub alone: the proxy and the users' servers "
                    "go on, and a hub started again takes them over (a restart)")
    sp.add_argument("--timeout", type=float, default=30.0, help="seconds the hub, and then each server, may take "
                    "to end before it is killed (default 30)")
    su.add_argument("--roster", type=Path, required=True, help="the class roster (id,first_name,last_name,email)")
    su.add_argument("--instructor", action="append", default=[], help="an instructor's or TA's account "
                    "(repeatable): the group that reaches the formgrader")
    su.add_argument("--homes", type=Path, default=Path("/home"), help="where the accounts' homes are made")
    su.add_argument("--language", choices=("zh-CN", "en"), default="zh-CN", help="JupyterLab's language")
    su.add_argument("--port", type=int, default=8000, help="the hub's port (the next three are its own; 0: a "
                    "free block)")
    su.add_argument("--group", default="sr-instructors", help="the instructors' Unix group")
    su.add_argument("--grader", default="grader-superres", help="the account the formgrader runs as")
    args = ap.parse_args(argv)
    try:
        if args.command == "setup":
            if not args.instructor:
                ap.error("at least one --instructor: someone must reach the formgrader")
            setup(args.roster, args.instructor, args.state, args.homes, args.language, args.port, args.group,
                  args.grader)
            return 0
        if args.command == "stop":
            print("stopped" if stop(args.state, args.hub_only, args.timeout) else f"no hub running from {args.state}")
            return 0
        command, env = start_command(args.state)
    except (HubError, accounts.AccountError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    os.chdir(args.state)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
