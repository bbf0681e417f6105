"""Reading a student's files from a trusted process: beneath the submission folder, never through a link.

Every file of a submission that a trusted process reads (the hidden checks' check server, ``course.mos.collect``,
``course.class_results``, the report shown in the grading view) is read here, by one walk of directory descriptors:

1. the submission folder is opened with ``O_DIRECTORY | O_NOFOLLOW`` (it must not be a link itself);
2. each folder below it is opened *relative to its parent's descriptor* with
   ``os.open(name, O_DIRECTORY | O_NOFOLLOW | O_RDONLY, dir_fd=parent)``: a component that is a link (or that a
   running kernel has just swapped for one) fails with ``ELOOP``/``ENOTDIR``, and a folder, once open, is the same
   folder whatever happens to its name afterwards;
3. the file is opened the same way with ``O_NOFOLLOW`` and ``O_PATH`` (nothing is opened for reading yet: a FIFO
   cannot block, a device node is never opened), checked with ``fstat`` to be a regular file, then re-opened for
   reading through ``/proc/self/fd`` (the very inode just checked; where ``/proc`` is missing it is opened with
   ``O_NOFOLLOW | O_NONBLOCK`` and checked again), and read with a bound (``limit``; a file that grows past it
   while read is refused too).

A relative name with ``..``, ``.``, an empty component, a NUL or an absolute name is refused before anything is
opened. This is what Linux's ``openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`` does in one call; Python has no
``openat2`` (and older kernels none), so the walk does it one component at a time, which holds against a kernel
that keeps renaming folders and links while the trusted side reads (``tests/course_tests/test_student_files.py``).

Errors are the standard ones, so callers keep their messages: ``FileNotFoundError`` (a component is missing),
``OSError`` with ``errno.ELOOP`` (a link, or a name that is not a folder where a folder is needed: ``ENOTDIR``),
``ValueError`` (not a regular file, a refused name; ``FileTooLarge``, a ``ValueError``, past the bound). Each
carries ``at``: the relative path up to the component that failed, and ``last``: whether that was the file itself.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

__all__ = ["split_relative", "open_folder", "open_beneath", "read_beneath", "is_file_beneath", "relative_to",
           "FileTooLarge"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | _CLOEXEC
_PATH = getattr(os, "O_PATH", 0)


class FileTooLarge(ValueError):
    """A file over the bound it is read with (also one that grew past it while read)."""


def _tag(err: Exception, at: str, last: bool) -> Exception:
    err.at, err.last = at, last
    return err


def split_relative(rel) -> list[str]:
    """The components of the relative name ``rel`` (``str`` or path); ``ValueError`` for an absolute name, ``..``,
    ``.``, an empty component or a NUL."""
    text = os.fspath(rel)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    parts = text.split("/")
    if not text or text.startswith("/") or PurePosixPath(text).is_absolute() or \
            any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise _tag(ValueError(f"{text!r} is not a plain relative name beneath the submission folder"), text, True)
    return parts


def open_folder(folder) -> int:
    """A descriptor of ``folder`` (a path; it must be a folder, not a link); the caller closes it."""
    try:
        return os.open(folder, _DIR_FLAGS)
    except OSError as e:
        raise _tag(OSError(e.errno if e.errno != errno.ENOTDIR else errno.ELOOP,
                           f"cannot be opened as a plain folder ({e.strerror})", os.fspath(folder)), "", False) \
            from None


def _open_component(name: str, parent: int, at: str, last: bool, flags: int) -> int:
    try:
        return os.open(name, flags, dir_fd=parent)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise _tag(FileNotFoundError(errno.ENOENT, "is missing", at), at, last) from None
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):  # a link, or not a folder where one is needed
            raise _tag(OSError(errno.ELOOP, "is a link or not a plain folder" if not last else "is a link", at),
                       at, last) from None
        raise _tag(OSError(e.errno, e.strerror, at), at, last) from None


def _walk(folder, parts: list[str]) -> tuple[int, bool]:
    """(descriptor of the folder holding ``parts[-1]``, whether the caller must close it)."""
    own = not isinstance(folder, int)
    fd = open_folder(folder) if own else folder
    for i, name in enumerate(parts[:-1]):
        try:
            nxt = _open_component(name, fd, "/".join(parts[:i + 1]), False, _DIR_FLAGS)
        finally:
            if own:
                os.close(fd)
        fd, own = nxt, True
    return fd, own


def open_beneath(folder, rel) -> int:
    """A descriptor, open for reading, of the regular file ``rel`` beneath ``folder`` (a path, or the descriptor of
    an open folder, which is left open), reached without following any link; the caller closes it."""
    parts = split_relative(rel)
    at = "/".join(parts)
    parent, own = _walk(folder, parts)
    checked = None  # (inode, device) of the file checked through O_PATH
    try:
        if _PATH and os.path.isdir("/proc/self/fd"):
            ref = _open_component(parts[-1], parent, at, True, _PATH | os.O_NOFOLLOW | _CLOEXEC)
            try:
                st = os.fstat(ref)
                if stat.S_ISLNK(st.st_mode):  # (O_PATH | O_NOFOLLOW opens the link itself)
                    raise _tag(OSError(errno.ELOOP, "is a link", at), at, True)
                if not stat.S_ISREG(st.st_mode):
                    raise _tag(ValueError("is not a regular file"), at, True)
                checked = (st.st_ino, st.st_dev)
                fd = os.open(f"/proc/self/fd/{ref}", os.O_RDONLY | os.O_NONBLOCK | _CLOEXEC)
            finally:
                os.close(ref)
        else:
            fd = _open_component(parts[-1], parent, at, True, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
    finally:
        if own:
            os.close(parent)
    try:
        st2 = os.fstat(fd)
        if not stat.S_ISREG(st2.st_mode) or checked not in (None, (st2.st_ino, st2.st_dev)):
            raise _tag(ValueError("is not a regular file"), at, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_beneath(folder, rel, limit: int) -> bytes:
    """The bytes of the regular file ``rel`` beneath ``folder`` (see :func:`open_beneath`), at most ``limit``
    (``ValueError`` past it, also for a file that grows while read)."""
    fd = open_beneath(folder, rel)
    at = "/".join(split_relative(rel))
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise _tag(FileTooLarge(f"is {size} bytes (over the {limit} byte limit)"), at, True)
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise _tag(FileTooLarge("grew over the size limit while being read"), at, True)
    return data


def is_file_beneath(folder, rel) -> bool:
    """Whether ``rel`` beneath ``folder`` is a regular file reached without any link (nothing is read)."""
    try:
        os.close(open_beneath(folder, rel))
        return True
    except (OSError, ValueError):
        return False


def relative_to(path, folder) -> str:
    """``path`` as a name relative to ``folder`` (lexically: no link is resolved); ``ValueError`` if outside."""
    return Path(os.path.normpath(path)).relative_to(os.path.normpath(folder)).as_posix()
