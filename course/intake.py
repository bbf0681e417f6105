"""Intake: what a submission may hold before nbgrader touches it, and how it is copied in.

nbgrader copies submissions as the grader (root) and follows links; a hand-filled folder, an unpacked tar or an
exchange can hold links to ``/etc/shadow``, ``source/``, the gradebook or another student's notebook. Here a
submission is inspected with ``lstat`` only (nothing is ever followed): links, FIFOs, sockets, devices, files over
``max_file_bytes`` or folders over ``max_total_bytes`` are *problems*, and a student with a problem is not graded
but listed for manual attention with the reason. Copies are made from regular files opened with ``O_NOFOLLOW``.

LMS downloads are unpacked here too, member by member: an absolute or ``..`` name, a link, a nested archive, a
member too large, a duplicate or a name whose student id is unsafe is reported and skipped for that student alone;
the rest of the class is collected.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MAX_FILE_BYTES = 10 << 20      # one file of a submission (an autograded notebook is at most 20 MB)
MAX_TOTAL_BYTES = 200 << 20    # a whole submission folder
MAX_FILES = 2000


def safe_student_id(name: str) -> bool:
    return bool(STUDENT_ID.match(name)) and ".." not in name


def inspect(folder: Path, max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES) -> list[str]:
    """Problems of ``folder`` (relative path: reason), found without following anything."""
    problems, total, count = [], 0, 0
    try:
        top = os.lstat(folder)
    except OSError as e:
        return [f"{folder.name}: cannot be read ({e.strerror})"]
    if not stat.S_ISDIR(top.st_mode):
        return [f"{folder.name}: is a {_kind(top.st_mode)}, not a folder"]
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            st = os.lstat(path)
            count += 1
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{rel}: a {_kind(st.st_mode)} (only plain files are graded)")
            elif st.st_size > max_file_bytes:
                problems.append(f"{rel}: {st.st_size >> 20} MB, more than {max_file_bytes >> 20} MB")
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
        dirnames[:] = [d for d in dirnames if stat.S_ISDIR(os.lstat(os.path.join(dirpath, d)).st_mode)]
    if total > max_total_bytes:
        problems.append(f"the submission holds {total >> 20} MB, more than {max_total_bytes >> 20} MB")
    if count > MAX_FILES:
        problems.append(f"the submission holds {count} files, more than {MAX_FILES}")
    return problems


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


def copy_file(src: Path, dest: Path, limit: int = MAX_FILE_BYTES) -> None:
    """Copy a regular file without following a link (``O_NOFOLLOW``), at most ``limit`` bytes."""
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{src} is not a plain file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{src} is larger than {limit >> 20} MB")
    dest.write_bytes(data)


def collect_folders(src: Path, submitted: Path, assignment: str) -> tuple[list[str], dict[str, str]]:
    """Copy ``src/<student>/[<assignment>/]*.ipynb`` to ``submitted/<student>/<assignment>/``.

    Returns (students collected, {student or entry: why it needs manual attention})."""
    students, attention = [], {}
    for entry in sorted(Path(src).iterdir()):
        name = entry.name
        st = os.lstat(entry)
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISLNK(st.st_mode):
                attention[name] = "a symbolic link instead of a folder: not collected"
            continue
        if not safe_student_id(name):
            attention[name[:100]] = "not a usable student id (letters, digits, _.@-): not collected"
            continue
        inner = entry / assignment if stat.S_ISDIR(os.lstat(entry / assignment).st_mode
                                                   if os.path.lexists(entry / assignment) else 0) else entry
        problems = inspect(entry)
        if problems:
            attention[name] = "refused at intake: " + "; ".join(problems[:5])
            continue
        notebooks = sorted(p for p in inner.glob("*.ipynb"))
        if not notebooks:
            print(f"  skipped {entry}: no notebook in it")
            continue
        dest = submitted / name / assignment
        if os.path.lexists(dest):
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for nb in notebooks:
            copy_file(nb, dest / nb.name)
        students.append(name)
    return students, attention


def collect_zip(zip_path: Path, submitted: Path, assignment: str, regexp: str,
                max_member_bytes: int = MAX_FILE_BYTES) -> tuple[list[str], dict[str, str]]:
    """Unpack an LMS download: members whose path matches ``regexp`` (named groups ``student_id`` and
    ``file_id``) go to ``submitted/<student_id>/<assignment>/<file_id>``. Every unsafe member is reported (for
    its student when the name says which) and skipped; nothing else of the class is affected."""
    pattern = re.compile(regexp)
    attention: dict[str, list[str]] = {}
    chosen: dict[tuple[str, str], zipfile.ZipInfo] = {}
    duplicates: set[tuple[str, str]] = set()
    unmatched = 0

    def report(who: str, why: str) -> None:
        attention.setdefault(who, []).append(why)

    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            name = info.filename
            shown = name[:120]
            if info.is_dir():
                continue
            m = pattern.match("/" + name) or pattern.match(name)
            hint = re.match(r"([A-Za-z0-9.@-]+)_", PurePosixPath(name).name)  # whom to tell, for unmatched names
            who = m.group("student_id") if m else (hint.group(1) if hint else None)
            who = who if who and safe_student_id(who) else None
            parts = PurePosixPath(name.replace("\\", "/")).parts
            mode = info.external_attr >> 16
            if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                report(who or "(unknown student)", f"{shown}: an absolute or '..' path, skipped")
            elif stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # (zips made on Windows carry no file type)
                report(who or "(unknown student)", f"{shown}: a link or special file, skipped")
            elif name.lower().endswith((".zip", ".tar", ".gz", ".tgz", ".7z", ".rar")):
                report(who or "(unknown student)", f"{shown}: a nested archive, not unpacked")
            elif m is None:
                unmatched += 1
                if who is not None:
                    report(who, f"{shown}: its name does not match --lms-regexp, skipped")
            elif who is None:
                report("(unknown student)", f"{shown}: the student id is not usable (letters, digits, _.@-)")
            elif info.file_size > max_member_bytes:
                report(who, f"{shown}: {info.file_size >> 20} MB, more than {max_member_bytes >> 20} MB")
            else:
                file_id = PurePosixPath(m.group("file_id")).name
                key = (who, file_id)
                if key in chosen or key in duplicates:
                    duplicates.add(key)
                    chosen.pop(key, None)
                    report(who, f"{file_id}: more than one file in the download, none taken")
                else:
                    chosen[key] = info
        students = set()
        for (who, file_id), info in sorted(chosen.items()):
            dest = submitted / who / assignment
            dest.mkdir(parents=True, exist_ok=True)
            with z.open(info) as f:
                data = f.read(max_member_bytes + 1)
            if len(data) > max_member_bytes:
                report(who, f"{file_id}: larger than {max_member_bytes >> 20} MB once unpacked, skipped")
                continue
            target = dest / file_id
            if os.path.lexists(target) and not target.is_file():
                os.unlink(target)
            target.write_bytes(data)
            students.add(who)
    if unmatched:
        print(f"  {unmatched} files of the download do not match --lms-regexp: not collected")
    return sorted(students), {who: "; ".join(whys) for who, whys in attention.items()}
