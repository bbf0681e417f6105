"""Intake: what a submission may hold before nbgrader touches it, and how it is copied in.

nbgrader copies submissions as the grader (root) and follows links; a hand-filled folder, an unpacked tar or an
exchange can hold links to ``/etc/shadow``, ``source/``, the gradebook or another student's notebook. Here a
submission is inspected with ``lstat`` only (nothing is ever followed): links, FIFOs, sockets, devices, files over
``max_file_bytes`` or folders over ``max_total_bytes`` are *problems*, and a student with a problem is not graded
but listed for manual attention with the reason. Copies are made from regular files opened with ``O_NOFOLLOW``.

Only a hand-in travels (course/jupyter/handin.py declares it once: notebooks, ``report.md``/``report.pdf``,
``results/``, ``submission/`` pictures, the curves), with its relative paths; what never travels
(``checkpoints/``, ``data/``, hidden files...) is left out and said once in the log, not as a problem.

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

from course.jupyter import handin
from course.student_id import safe_student_id
MAX_FILE_BYTES = 10 << 20      # one file of a submission (an autograded notebook is at most 20 MB)
MAX_TOTAL_BYTES = 200 << 20    # a whole submission folder
MAX_FILES = 2000
MAX_DEPTH = 32                 # folders nested deeper are refused, never walked


#: Modes of what intake writes (and of a submission accepted for grading): the instructors' alone, never other
#: accounts' (students on a shared machine); a folder's set-group-id bit is kept (docs/grading.md)
PRIVATE_DIR_MODE, PRIVATE_FILE_MODE = 0o750, 0o640


def make_private(folder) -> None:
    """``folder`` and everything below it: folders :data:`PRIVATE_DIR_MODE`, regular files
    :data:`PRIVATE_FILE_MODE` (nothing followed; what cannot be changed, e.g. not ours, is left as it is)."""
    from course import plain_tree

    try:
        entries = [(Path(folder), os.lstat(folder))]
    except OSError:
        return
    if stat.S_ISDIR(entries[0][1].st_mode):  # (a link is never followed, not even at the top)
        entries += [(path, st) for path, _, st in plain_tree.walk(folder)]
    for path, st in entries:
        if stat.S_ISDIR(st.st_mode):
            mode = PRIVATE_DIR_MODE | (st.st_mode & stat.S_ISGID)
        elif stat.S_ISREG(st.st_mode):
            mode = PRIVATE_FILE_MODE
        else:
            continue
        if stat.S_IMODE(st.st_mode) != mode:
            try:
                os.chmod(path, mode)
            except OSError:
                pass


def inspect(folder: Path, max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES,
            handin_only: bool = False) -> list[str]:
    """Problems of ``folder`` (relative path: reason), found without following anything. ``handin_only``: only
    what travels in a hand-in is looked at (``handin.scan``: a checkpoint or a linked ``data/`` is no problem)."""
    if handin_only:
        return handin.scan(folder, max_file_bytes, min(max_total_bytes, handin.MAX_TOTAL_BYTES)).problems
    problems, total, count = [], 0, 0
    try:
        top = os.lstat(folder)
    except OSError as e:
        return [f"{folder.name}: cannot be read ({e.strerror})"]
    if not stat.S_ISDIR(top.st_mode):
        return [f"{folder.name}: is a {handin._kind(top.st_mode)}, not a folder"]
    stack = [(Path(folder), 0)]  # an explicit stack: any depth or width costs bounded time and no recursion
    while stack:
        here, depth = stack.pop()
        if depth >= MAX_DEPTH:
            problems.append(f"{handin.shown(os.path.relpath(here, folder))}: folders nested deeper than "
                            f"{MAX_DEPTH} levels")
            continue
        try:
            names = sorted(os.listdir(here))
        except OSError as e:
            problems.append(f"{handin.shown(os.path.relpath(here, folder))}: cannot be read ({e.strerror})")
            continue
        for name in names:
            count += 1
            if count > MAX_FILES:
                problems.append(f"the submission holds more than {MAX_FILES} files and folders")
                return problems
            rel = handin.shown(os.path.relpath(here / name, folder))
            try:
                st = os.lstat(here / name)
            except OSError as e:
                problems.append(f"{rel}: cannot be read ({e.strerror})")
                continue
            if handin.has_control_characters(name):
                problems.append(f"{rel}: a name with a control character")
            elif stat.S_ISDIR(st.st_mode):
                stack.append((here / name, depth + 1))
            elif not stat.S_ISREG(st.st_mode):
                problems.append(f"{rel}: a {handin._kind(st.st_mode)} (only plain files are graded)")
            elif st.st_size > max_file_bytes:
                problems.append(f"{rel}: {st.st_size >> 20} MB, more than {max_file_bytes >> 20} MB")
            else:
                total += st.st_size
    if total > max_total_bytes:
        problems.append(f"the submission holds {total >> 20} MB, more than {max_total_bytes >> 20} MB")
    return problems


def collect_folders(src: Path, submitted: Path, assignment: str) -> tuple[list[str], dict[str, str]]:
    """Copy the hand-in of ``src/<student>/[<assignment>/]`` to ``submitted/<student>/<assignment>/``, keeping
    relative paths (``submission/set5/baby.png``); what never travels is left out.

    Returns (students collected, {student or entry: why it needs manual attention})."""
    students, attention, left_out = [], {}, {}
    for entry in sorted(Path(src).iterdir()):
        name = entry.name
        st = os.lstat(entry)
        if not stat.S_ISDIR(st.st_mode):
            if stat.S_ISLNK(st.st_mode):
                attention[name] = "a symbolic link instead of a folder: not collected"
            continue
        if not safe_student_id(name):
            attention[handin.shown(name)[:100]] = "not a usable student id (letters, digits, _.@-): not collected"
            continue
        inner = entry / assignment
        if os.path.lexists(inner) and not stat.S_ISDIR(os.lstat(inner).st_mode):
            attention[name] = f"refused at intake: {assignment}: a {handin._kind(os.lstat(inner).st_mode)}"
            continue
        inner = inner if os.path.lexists(inner) else entry
        try:
            seen = handin.scan(inner)
        except Exception as e:  # (one submission never stops the class: it is refused with the reason)
            why = f"{type(e).__name__}: {handin.shown(str(e))[:200]}"
            attention[name] = f"refused at intake: could not be read ({why})"
            continue
        if seen.problems:
            attention[name] = "refused at intake: " + "; ".join(seen.problems[:5])
            continue
        if not any(rel.endswith(".ipynb") for rel in seen.files):
            print(f"  skipped {entry}: no notebook in it")
            continue
        dest = submitted / name / assignment
        if os.path.lexists(dest):
            shutil.rmtree(dest) if stat.S_ISDIR(os.lstat(dest).st_mode) else os.unlink(dest)
        handin.copy_handin(inner, dest, seen)
        make_private(submitted / name)
        for what in seen.left_out:
            left_out[what] = left_out.get(what, 0) + 1
        students.append(name)
    _say_left_out(left_out)
    return students, attention


def _say_left_out(left_out: dict[str, int]) -> None:
    if left_out:
        print("  not part of a hand-in, left out: " + ", ".join(f"{what} ({n} submission{'s' * (n > 1)})"
                                                                for what, n in sorted(left_out.items())))


def collect_zip(zip_path: Path, submitted: Path, assignment: str, regexp: str,
                max_member_bytes: int = MAX_FILE_BYTES) -> tuple[list[str], dict[str, str]]:
    """Unpack an LMS download: members whose path matches ``regexp`` (named groups ``student_id`` and
    ``file_id``) go to ``submitted/<student_id>/<assignment>/<file_id>``, where ``file_id`` is the member's path
    inside the hand-in (``01_models.ipynb``, ``submission/set5/baby.png``; a leading ``<assignment>/`` is dropped).
    Every unsafe member is reported (for its student when the name says which) and skipped; a member that is no
    part of a hand-in (a checkpoint...) is left out, said once in the log; nothing else of the class is affected."""
    pattern = re.compile(regexp)
    attention: dict[str, list[str]] = {}
    chosen: dict[tuple[str, str], zipfile.ZipInfo] = {}
    duplicates: set[tuple[str, str]] = set()
    unmatched = 0
    left_out: dict[str, set[str]] = {}

    def report(who: str, why: str) -> None:
        attention.setdefault(who, []).append(why)

    with zipfile.ZipFile(zip_path) as z:
        for info in z.infolist():
            name = info.filename
            shown = handin.shown(name)[:120]
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
                continue
            if handin.has_control_characters(name):
                report(who or "(unknown student)", f"{shown}: a name with a control character, skipped")
                continue
            file_parts = PurePosixPath(m.group("file_id").replace("\\", "/")).parts if m else ()
            if file_parts[:1] == (assignment,):
                file_parts = file_parts[1:]
            rel = "/".join(file_parts)
            if m is not None and who is not None and rel and not handin.travels(rel):
                left_out.setdefault(file_parts[0] + ("/" if len(file_parts) > 1 else ""), set()).add(who)
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
            elif not rel:
                report(who, f"{shown}: no file name in it, skipped")
            else:
                key = (who, rel)
                if key in chosen or key in duplicates:
                    duplicates.add(key)
                    chosen.pop(key, None)
                    report(who, f"{rel}: more than one file in the download, none taken")
                else:
                    chosen[key] = info
        totals: dict[str, int] = {}
        for (who, _), info in chosen.items():
            totals[who] = totals.get(who, 0) + info.file_size
        for who, total in sorted(totals.items()):
            count = sum(1 for w, _ in chosen if w == who)
            if total > handin.MAX_TOTAL_BYTES or count > handin.MAX_FILES:
                report(who, f"the hand-in holds {total >> 20} MB in {count} files, more than "
                            f"{handin.MAX_TOTAL_BYTES >> 20} MB or {handin.MAX_FILES} files: not collected")
                chosen = {k: v for k, v in chosen.items() if k[0] != who}
        students = set()
        for (who, rel), info in sorted(chosen.items()):
            with z.open(info) as f:
                data = f.read(max_member_bytes + 1)
            if len(data) > max_member_bytes:
                report(who, f"{rel}: larger than {max_member_bytes >> 20} MB once unpacked, skipped")
                continue
            dest = submitted / who / assignment
            if os.path.lexists(dest) and not stat.S_ISDIR(os.lstat(dest).st_mode):
                os.unlink(dest)
            dest.mkdir(parents=True, exist_ok=True)
            handin.write_below(dest, rel, data)
            students.add(who)
        for who in students:
            make_private(submitted / who)
    if unmatched:
        print(f"  {unmatched} files of the download do not match --lms-regexp: not collected")
    _say_left_out({what: len(whom) for what, whom in left_out.items()})
    return sorted(students), {who: "; ".join(whys) for who, whys in attention.items()}
