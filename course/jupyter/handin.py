"""What a hand-in of the kit's assignment holds, declared once for every way it travels.

A hand-in is the assignment folder as the student leaves it, reduced to what the course grades or rates:

* the notebooks with their outputs (``*.ipynb``),
* the written report, ``report.md`` (or ``report.pdf``) next to the notebooks,
* ``results/**`` tables and figures (``results/test_table.csv`` from notebook 04),
* ``submission/**/*.png`` (the Set5 pictures of notebook 05, or ``submission/samples/``),
* the training curves ``checkpoints/<stage>/curves.png`` (notebook 03).

Nothing else travels: not ``checkpoints/`` (hundreds of MB of ``.pth``), ``data/``, ``.grading-run/``, the
generated ``models.py``/``solver.py``, ``.ipynb_checkpoints`` or any hidden file. Every file is bounded
(``MAX_FILE_BYTES``), so is the whole hand-in (``MAX_TOTAL_BYTES``, ``MAX_FILES``).

Used by the students' ``nbgrader submit`` (``HandinSubmit``, set in ``nbgrader_config.py`` next to this file), the
instructor's ``nbgrader collect`` (``HandinCollect``, set in the repository's ``nbgrader_config.py``), plain folders
and LMS zips (``course/intake.py``), the grading summary (``course/grading/reports.py``) and the report cell of the
grading view (``course/grading/report_cell.py``). It lives next to the students' Jupyter configuration and needs
only the standard library (nbgrader is imported when the exchange classes are first used), so that a student kit
ships the two files together and the configuration loads this one by its path.

Nothing is ever followed: folders are walked with ``lstat``, files are read with ``O_NOFOLLOW``; a link or a
special file where a hand-in file belongs is a *problem*, one elsewhere (``data -> /datasets``) is left out.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

#: The environment variable that moves nbgrader's exchange, where hand-ins travel, out of ``course/exchange`` (a
#: shared machine's ``/srv/nbgrader/exchange``): read by both nbgrader configurations and the grading command.
EXCHANGE_ENV = "SR_KIT_EXCHANGE"
#: Relative paths (``/``-separated; ``**`` is any number of folders) of the files that travel.
TRAVELS = ("*.ipynb", "report.md", "report.pdf", "results/**/*.csv", "results/**/*.png", "submission/**/*.png",
           "checkpoints/*/curves.png")
#: What never travels (documentation, and the names nbgrader's copies leave out); hidden names never travel either.
NEVER_TRAVELS = ("checkpoints", "data", ".grading-run", "models.py", "solver.py", ".ipynb_checkpoints",
                 "__pycache__")
#: The written report, in the order looked for.
REPORT_FILES = ("report.md", "report.pdf")
#: Files nbgrader's submit writes into the exchange copy (collect keeps them: the submission time).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")
MAX_FILE_BYTES = 10 << 20    # one file (a notebook with its outputs, a picture, the report)
MAX_TOTAL_BYTES = 100 << 20  # the whole hand-in
MAX_FILES = 500
#: Deepest path of a hand-in (``submission/set5/baby.png`` is 3): deeper folders are a problem, never walked.
MAX_DEPTH = 12
#: Files and folders looked at, at most, in the folders that can hold a hand-in (the rest is never walked).
MAX_ENTRIES = 10 * MAX_FILES

#: ``CourseDirectory.ignore`` of the instructor's nbgrader: generate_assignment, release and autograde copy
#: notebooks only (the hand-in's other files stay in course/submitted/, never in release/ or course/autograded/,
#: so the formgrader cannot serve them).
NBGRADER_IGNORE = list(dict.fromkeys([".ipynb_checkpoints", "*.pyc", "__pycache__", ".*", "feedback", *NEVER_TRAVELS,
                                      *sorted({p.split("/")[0] for p in TRAVELS if not p.endswith(".ipynb")})]))


class HandinError(ValueError):
    """A hand-in that cannot travel (the message says which file and why)."""


def _parts(rel) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(str(rel).replace(os.sep, "/")).parts if p not in ("", "."))


def _match(pattern: tuple[str, ...], parts: tuple[str, ...], prefix: bool = False) -> bool:
    """``parts`` matches ``pattern`` (``prefix``: some path *below* the folder ``parts`` can match it)."""
    def m(i: int, j: int) -> bool:
        if j == len(parts):
            return i < len(pattern) if prefix else all(p == "**" for p in pattern[i:])
        if i == len(pattern):
            return False
        if pattern[i] == "**":
            return m(i + 1, j) or m(i, j + 1)
        return fnmatchcase(parts[j], pattern[i]) and m(i + 1, j + 1)
    return m(0, 0)


_PATTERNS = [tuple(p.split("/")) for p in TRAVELS]


def has_control_characters(name: str) -> bool:
    """A name with a control character (a newline, a tab, ESC...): no hand-in file is named so, and such a name
    would break every line-based record it reaches (logs, CSV files, the grading summary)."""
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in name)


def shown(name: str) -> str:
    """``name`` for a log line or a record: control characters written as ``\\xNN``, at most 200 characters."""
    text = "".join(f"\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch for ch in name)
    return text if len(text) <= 200 else text[:197] + "..."


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__pycache__" for p in parts)


def travels(rel) -> bool:
    """Whether the file at ``rel`` (relative to the assignment folder) is part of a hand-in."""
    parts = _parts(rel)
    return (0 < len(parts) <= MAX_DEPTH and ".." not in parts and not _hidden(parts)
            and not any(has_control_characters(p) for p in parts) and any(_match(p, parts) for p in _PATTERNS))


def may_hold(rel) -> bool:
    """Whether the folder at ``rel`` can hold files of a hand-in (else it is not even walked)."""
    parts = _parts(rel)
    return (len(parts) < MAX_DEPTH and ".." not in parts and not _hidden(parts)
            and any(_match(p, parts, prefix=True) for p in _PATTERNS))


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "symbolic link"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISDIR, "folder")):
        if test(mode):
            return name
    return "special file"


@dataclass
class Scan:
    """A folder seen as a hand-in: the files that travel (relative path -> size), the problems (a link, a special
    file or an oversized file where a hand-in file belongs; too much in all) and the top-level names left out."""

    files: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    left_out: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.files.values())


def scan(folder, max_file_bytes: int = MAX_FILE_BYTES, max_total_bytes: int = MAX_TOTAL_BYTES,
         max_files: int = MAX_FILES, extra: tuple[str, ...] = ()) -> Scan:
    """``folder`` walked with ``lstat`` only; folders that cannot hold a hand-in file are not entered.
    ``extra``: top-level file names that travel too (``EXCHANGE_FILES`` for an exchange copy)."""
    out = Scan()
    folder = Path(folder)

    def left(parts, is_dir):
        out.left_out.add(parts[0] + ("/" if is_dir or len(parts) > 1 else ""))

    def walk(top: Path) -> None:
        """Depth first, with an explicit stack: any depth or width of tree costs bounded time and no recursion."""
        stack, visited = [(top, ())], 0
        while stack:
            path, parts = stack.pop()
            if len(parts) >= MAX_DEPTH:
                out.problems.append(f"{shown('/'.join(parts))}: folders nested deeper than {MAX_DEPTH} levels")
                continue
            try:
                names = sorted(os.listdir(path), reverse=True)
            except OSError as e:
                out.problems.append(f"{shown('/'.join(parts)) or '.'}: cannot be read ({e.strerror})")
                continue
            for name in names:
                visited += 1
                if visited > MAX_ENTRIES:
                    out.problems.append(f"more than {MAX_ENTRIES} files and folders where a hand-in belongs: "
                                        "not looked at further")
                    return
                sub = parts + (name,)
                rel = "/".join(sub)
                try:
                    st = os.lstat(path / name)
                except OSError as e:
                    out.problems.append(f"{shown(rel)}: cannot be read ({e.strerror})")
                    continue
                if has_control_characters(name):
                    out.problems.append(f"{shown(rel)}: a name with a control character (rename it)")
                    continue
                wanted = travels(rel) or (len(sub) == 1 and name in extra)
                if stat.S_ISDIR(st.st_mode):
                    if may_hold(rel) or len(sub) >= MAX_DEPTH:  # (too deep below a hand-in folder: a problem)
                        stack.append((path / name, sub))
                    else:
                        left(sub, True)
                elif not stat.S_ISREG(st.st_mode):
                    # (a linked checkpoints/ folder, on scratch storage, is left out: only its curves would travel)
                    if wanted or (may_hold(rel) and sub[0] != "checkpoints"):
                        out.problems.append(f"{shown(rel)}: a {_kind(st.st_mode)} (only plain files are handed in)")
                    else:
                        left(sub, False)
                elif not wanted:
                    left(sub, False)
                elif st.st_size > max_file_bytes:
                    out.problems.append(f"{shown(rel)}: {st.st_size / (1 << 20):.0f} MB, more than "
                                        f"{max_file_bytes >> 20} MB")
                else:
                    out.files[rel] = st.st_size

    try:
        top = os.lstat(folder)
    except OSError as e:
        out.problems.append(f"{folder.name}: cannot be read ({e.strerror})")
        return out
    if not stat.S_ISDIR(top.st_mode):
        out.problems.append(f"{folder.name}: is a {_kind(top.st_mode)}, not a folder")
        return out
    walk(folder)
    if out.total > max_total_bytes:
        out.problems.append(f"the hand-in holds {out.total >> 20} MB, more than {max_total_bytes >> 20} MB")
    if len(out.files) > max_files:
        out.problems.append(f"the hand-in holds {len(out.files)} files, more than {max_files}")
    return out


def read_plain(path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, opened without following a link, at most ``limit`` (else ``HandinError``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise HandinError(f"{path} is not a plain file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise HandinError(f"{path} is larger than {limit >> 20} MB")
    return data


def write_below(root, rel: str, data: bytes) -> Path:
    """Write ``data`` at ``root/rel``: every folder on the way is a real folder (a link or file there is
    replaced), the file itself is created anew (``O_NOFOLLOW``)."""
    parts = _parts(rel)
    if not parts or ".." in parts:
        raise HandinError(f"{rel!r} is not a path inside the hand-in")
    here = Path(root)
    for name in parts[:-1]:
        here = here / name
        if os.path.lexists(here) and not stat.S_ISDIR(os.lstat(here).st_mode):
            os.unlink(here)
        here.mkdir(exist_ok=True)
    target = here / parts[-1]
    if os.path.lexists(target):
        if stat.S_ISDIR(os.lstat(target).st_mode):
            import shutil
            shutil.rmtree(target)
        else:
            os.unlink(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return target


def copy_handin(src, dest, seen: Scan | None = None, extra: tuple[str, ...] = ()) -> Scan:
    """Copy the hand-in files of ``src`` (``seen``: its scan, made here if not given) to ``dest``, keeping their
    relative paths. Problems are the caller's to act on first; the files with problems are not copied."""
    seen = seen or scan(src, extra=extra)
    Path(dest).mkdir(parents=True, exist_ok=True)
    for rel in seen.files:
        write_below(dest, rel, read_plain(Path(src) / rel))
    return seen


def describe_left_out(left_out) -> str:
    """One line for the log: what was not handed in because it never travels."""
    return ", ".join(sorted(left_out))


def report_status(folder) -> dict:
    """The written report in a hand-in folder: ``{"file": "report.md"|"report.pdf"|"", "bytes": size,
    "also": other report file or ""}`` (links and special files do not count)."""
    found = []
    for name in REPORT_FILES:
        try:
            st = os.lstat(Path(folder) / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((name, st.st_size))
    if not found:
        return {"file": "", "bytes": 0, "also": ""}
    return {"file": found[0][0], "bytes": found[0][1], "also": found[1][0] if len(found) > 1 else ""}


# ---------------------------------------------------------------------------------------------------------
# nbgrader's exchange: the students' submit and the instructor's collect copy a hand-in, nothing else
# ---------------------------------------------------------------------------------------------------------
def _exchange_classes() -> dict:
    from nbgrader.exchange.default.collect import ExchangeCollect
    from nbgrader.exchange.default.submit import ExchangeSubmit

    class HandinSubmit(ExchangeSubmit):
        """``nbgrader submit`` (and the Assignments panel's Submit) copies the hand-in only. A hand-in file that
        is too large, or a link where one belongs, stops the submission with a message saying which file (rather
        than an incomplete hand-in); what never travels is left out with one line in the log."""

        def do_copy(self, src, dest, log=None):
            seen = scan(src)
            if seen.problems:
                self.fail("Not submitted: " + "; ".join(seen.problems[:5]) + ". Reduce or replace these files "
                          "(a notebook's outputs: clear the largest ones) and submit again.")
            copy_handin(src, dest, seen)
            if getattr(self, "_told", False):  # (called twice: the exchange, then the student's own cache)
                return
            self._told = True
            if seen.left_out:
                self.log.info("Not part of the hand-in (left out): %s", describe_left_out(seen.left_out))
            if not report_status(src)["file"]:
                self.log.warning("No report.md or report.pdf in %s: the written report is part of the hand-in "
                                 "(report_template.md has its structure)", src)

    class HandinCollect(ExchangeCollect):
        """``nbgrader collect`` (and the formgrader's Collect) copies a submission's hand-in and its submission
        time, never following a link; anything else in the exchange copy is left out, a link or an oversized
        file with a warning."""

        def do_copy(self, src, dest, log=None):
            seen = scan(src, extra=EXCHANGE_FILES)
            for problem in seen.problems:
                self.log.warning("%s: not collected: %s", os.path.basename(src), problem)
            copy_handin(src, dest, seen)
            if seen.left_out:
                self.log.info("%s: not part of the hand-in (left out): %s", os.path.basename(src),
                              describe_left_out(seen.left_out))

    return {"HandinSubmit": HandinSubmit, "HandinCollect": HandinCollect}


_CLASSES: dict = {}


def __getattr__(name: str):
    if name in ("HandinSubmit", "HandinCollect"):
        if not _CLASSES:
            _CLASSES.update(_exchange_classes())
        return _CLASSES[name]
    raise AttributeError(name)

