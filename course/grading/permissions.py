"""Who may read the course folder: the instructors alone. The grading run's private umask and the modes of what
nbgrader writes, the course state closed to other accounts, and on a shared machine the course folder given to the
instructors' group (``--shared-setup``) and checked (``--check-permissions``). docs/grading.md, "The course folder
on a shared machine"."""
from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

from course import plain_tree
from course.grading.contract import (AUTOGRADED_DIR, DATA_DIR_ENV, EXCHANGE_DIR, EXCHANGE_ENV, FEEDBACK_DIR,
                                     GRADEBOOK, GRADES_DIR, STATE_DIR, SUBMITTED_DIR)
from course.grading.errors import GradingError

# What the grading command creates is the instructors' alone: folders 0750, files 0640 (the group is the course
# folder's, through its set-group-id folders: --shared-setup). Other accounts -- students on a shared machine --
# get nothing (docs/grading.md, "The course folder on a shared machine")
PRIVATE_UMASK = 0o027
# nbgrader sets the modes of what it writes itself (autograded notebooks 0444, feedback 0644): these instead
AUTOGRADED_MODE, FEEDBACK_MODE = 0o440, 0o640


@contextlib.contextmanager
def private_umask(mask: int = PRIVATE_UMASK):
    """Files and folders created meanwhile (by this process and all it starts: nbgrader, the check servers,
    feedback) get no permission for other accounts (:data:`PRIVATE_UMASK`, added to the current umask)."""
    old, old_bytecode = os.umask(0), sys.dont_write_bytecode
    os.umask(old | mask)
    sys.dont_write_bytecode = True  # (no private bytecode in the public trees: see trusted_processes.trusted_env)
    try:
        yield
    finally:
        os.umask(old)
        sys.dont_write_bytecode = old_bytecode


#: The course state a grading run writes (relative to the course root)
STATE_ENTRIES = (SUBMITTED_DIR, AUTOGRADED_DIR, FEEDBACK_DIR, GRADES_DIR, STATE_DIR, GRADEBOOK)


def close_state(course_root: Path) -> None:
    """The course state's own folders (and the gradebook) closed to other accounts and to the group's writes,
    whoever made them (``nbgrader collect``, an earlier run under another umask): what is created in them later
    is private already (:func:`private_umask`, intake)."""
    for name in STATE_ENTRIES:
        path = Path(course_root) / name
        try:
            st = os.lstat(path)
            if (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and st.st_mode & 0o027:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o027)
        except OSError:
            pass


# nbgrader's exchange modes for other accounts, beside the course folder's: the root writable by all (nbgrader wants
# 0777; the sticky bit, which nbgrader leaves alone, keeps a student from renaming the course's folder away), the
# course's folder and outbound/ readable, inbound/ writable but not listable, feedback/ enterable only
EXCHANGE_OTHERS = {"": 0o7, "course": 0o5, "outbound": 0o5, "inbound": 0o3, "feedback": 0o1}


def public_trees(course_root: Path) -> list[Path]:
    """Folders below ``course_root`` that the sandbox uid reads through bind mounts (the kit's code, the data,
    the Python installation): they keep their modes; the closed course folder keeps other accounts out of them."""
    import data_tools
    import sr_utils

    from course.sandbox import python_dirs

    root = Path(course_root).resolve()
    found = [Path(m.__file__).resolve().parent for m in (sr_utils, data_tools)]
    found += [Path(os.environ.get(DATA_DIR_ENV) or root / "data").resolve(), *map(Path, python_dirs())]
    return sorted({p for p in found if p != root and p.is_relative_to(root)})


def _course_entries(course_root: Path, skip: set):
    """Every entry below ``course_root`` as ``(path, lstat)``, without following links or entering ``skip``."""
    stack = [Path(course_root)]
    while stack:
        folder = stack.pop()
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = folder / name
            if path in skip:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)


def _exchange_of(course_root: Path) -> Path:
    return Path(os.environ.get(EXCHANGE_ENV) or course_root / EXCHANGE_DIR)


def shared_setup(course_root: Path, group: str, exchange: Path | None = None, log=print) -> None:
    """Apply the shared-machine modes (docs/grading.md): the course folder and everything in it belong to
    ``group``, folders 2750 (set-group-id: what is created later gets the group too), files 0640 (0750 if
    executable); the public trees (:func:`public_trees`) keep their modes. ``exchange``: nbgrader's exchange goes
    there, outside the closed course folder (made 1777), and ``course/exchange`` becomes a link to it."""
    import grp

    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise GradingError(f"no group {group!r} on this machine: create it (groupadd {group}) and add the "
                           "instructors to it (usermod -aG)") from None
    root = Path(course_root).resolve()
    link = root / EXCHANGE_DIR
    if exchange is not None:
        exchange = Path(exchange).absolute()
        if exchange.is_relative_to(root):
            raise GradingError(f"--exchange {exchange} is inside the course folder, which students cannot enter: "
                               "give it a place of its own (nbgrader's default is /srv/nbgrader/exchange)")
        if os.path.isdir(link) and not os.path.islink(link):
            if os.listdir(link):
                raise GradingError(f"{link} already holds an exchange: move what it holds into {exchange} (mv "
                                   "keeps the students' ownership), then run this again")
            os.rmdir(link)
        missing = [p for p in [exchange, *exchange.parents] if not p.exists()]
        for folder in reversed(missing):  # students must reach it: its new parents 0755
            folder.mkdir()
            os.chmod(folder, 0o755)
        os.chmod(exchange, 0o1777)
        if os.path.islink(link) and os.readlink(link) != str(exchange):
            os.unlink(link)
        if not os.path.islink(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(exchange, link)
        log(f"exchange: {exchange} (1777; nbgrader makes outbound/ 0755, inbound/ 2733), linked from {link}")
    public = set(public_trees(root))
    skip = public | {link}
    changed = 0
    for path, st in [(root, os.lstat(root)), *_course_entries(root, skip)]:
        if stat.S_ISLNK(st.st_mode):
            continue
        if stat.S_ISDIR(st.st_mode):
            mode = 0o2750
        elif stat.S_ISREG(st.st_mode):
            mode = 0o750 if st.st_mode & 0o100 else 0o640
        else:
            continue
        if st.st_gid != gid:
            os.chown(path, -1, gid)
        if stat.S_IMODE(st.st_mode) != mode or st.st_gid != gid:
            os.chmod(path, mode)  # (after chown, which clears the set-group-id bit)
            changed += 1
    log(f"{root}: {changed} entries made the instructors' ({group}): folders 2750, files 0640 (0750 executables)"
        + "".join(f"\n  kept readable by the sandbox (students cannot enter {root}): {p}" for p in sorted(public)))
    if exchange is None and os.path.isdir(link) and not os.path.islink(link):
        log(f"note: the exchange is {link}, inside the closed course folder: students cannot reach it (mode (a), "
            "LMS folders, needs none); for nbgrader's exchange add --exchange /srv/nbgrader/exchange")


def check_permissions(course_root: Path) -> list[str]:
    """What other accounts could read, write or enter in the course folder (nothing, after :func:`shared_setup`
    and grading runs), entries not of the course folder's group, public trees the sandbox cannot read, and an
    exchange whose modes are not nbgrader's. Returns the problems, one line each ([] when none)."""
    root = Path(course_root).resolve()
    top = os.stat(root)
    problems = []
    if top.st_mode & 0o007:
        problems.append(f"{root}: mode {stat.S_IMODE(top.st_mode):04o}: other accounts can enter the course "
                        "folder (python -m course.grade --shared-setup GROUP)")
    link = root / EXCHANGE_DIR
    public = set(public_trees(root))
    for path, st in _course_entries(root, public | {link}):
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_mode & 0o007:
            problems.append(f"{path}: mode {stat.S_IMODE(st.st_mode):04o}: other accounts have access")
        elif st.st_gid != top.st_gid:
            problems.append(f"{path}: group {st.st_gid}, not the course folder's ({top.st_gid})")
    for tree in public:
        if tree.exists() and (os.stat(tree).st_mode & 0o005) != 0o005:
            problems.append(f"{tree}: the sandbox uid cannot read it (chmod -R a+rX {tree})")
    exchange = _exchange_of(root)
    if exchange.is_dir():
        real = exchange.resolve()
        if real.is_relative_to(root) and top.st_mode & 0o007 == 0:
            pass  # (inside a closed course folder: no student reaches it, nothing to expose)
        else:
            problems += _exchange_problems(real)
    return problems


def _exchange_problems(exchange: Path) -> list[str]:
    problems = []
    mode = stat.S_IMODE(os.stat(exchange).st_mode)
    if mode & 0o777 != 0o777 or not mode & stat.S_ISVTX:
        problems.append(f"{exchange}: mode {mode:04o}, not 1777 (nbgrader's 0777 and the sticky bit)")
    for course in (p for p in exchange.iterdir() if p.is_dir() and not p.is_symlink()):
        for name, path in (("course", course), *((n, course / n) for n in ("outbound", "inbound", "feedback"))):
            if path.is_dir() and stat.S_IMODE(os.stat(path).st_mode) & 0o007 != EXCHANGE_OTHERS[name]:
                problems.append(f"{path}: others have {stat.S_IMODE(os.stat(path).st_mode) & 0o007:o}, nbgrader "
                                f"gives them {EXCHANGE_OTHERS[name]:o}")
        outbound = course / "outbound"
        if outbound.is_dir():
            for path, _, st in plain_tree.walk(outbound):
                if st.st_mode & 0o002:
                    problems.append(f"{path}: writable by other accounts")
    return problems
