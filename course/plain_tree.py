"""Walking, copying and removing a folder that student code wrote, at any depth and without following anything.

A kernel under grading can leave any tree in its folder: links to the grader's files, FIFOs, thousands of files, or
folders nested thousands of levels deep. ``os.walk``, ``shutil.copytree`` and ``shutil.rmtree`` recurse once per
level in Python 3.11 and raise ``RecursionError`` on such a tree; every function here walks with an explicit
stack, looks with ``lstat`` only, and opens files with ``O_NOFOLLOW``.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["walk", "regular_files", "remove_tree", "copy_plain_tree", "keep_only", "prune_deeper_than"]


def walk(top) -> Iterator[tuple[Path, tuple[str, ...], os.stat_result]]:
    """Every entry below ``top`` as ``(path, relative parts, lstat)``, folders before their contents; links are
    listed, never followed; an entry that vanishes or cannot be read is skipped."""
    stack = [(Path(top), ())]
    while stack:
        folder, parts = stack.pop()
        try:
            names = sorted(os.listdir(folder), reverse=True)
        except OSError:
            continue
        for name in names:
            path = folder / name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            yield path, parts + (name,), st
            if stat.S_ISDIR(st.st_mode):
                stack.append((path, parts + (name,)))


def regular_files(top) -> list[tuple[Path, int]]:
    """``(path, size)`` of every regular file below ``top``."""
    return [(path, st.st_size) for path, _, st in walk(top) if stat.S_ISREG(st.st_mode)]


def remove_tree(top) -> None:
    """Remove ``top`` and everything below it (a link or file at ``top`` is unlinked, nothing followed)."""
    top = Path(top)
    try:
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            os.unlink(top)
            return
    except FileNotFoundError:
        return
    folders = [top]
    for path, _, st in walk(top):
        if stat.S_ISDIR(st.st_mode):
            folders.append(path)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
    for folder in reversed(folders):  # (deepest last listed, first removed)
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass


def copy_plain_tree(src, dest, keep: Callable[[tuple[str, ...]], bool] | None = None) -> int:
    """Copy the regular files below ``src`` (for which ``keep(relative parts)`` holds, all by default) to ``dest``
    with their folders; links, FIFOs, sockets and devices are left behind. Returns the bytes copied."""
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    for path, parts, st in walk(src):
        if stat.S_ISDIR(st.st_mode):
            if keep is None:
                (dest.joinpath(*parts)).mkdir(exist_ok=True)
            continue
        if not stat.S_ISREG(st.st_mode) or (keep is not None and not keep(parts)):
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
                copied += out.tell()
    return copied


def keep_only(top, keep: Callable[[tuple[str, ...], os.stat_result], bool]) -> int:
    """Remove every entry directly below ``top`` for which ``keep(parts, lstat)`` does not hold (a folder with all
    it holds); returns the bytes of the regular files removed."""
    removed = 0
    try:
        names = os.listdir(top)
    except OSError:
        return 0
    for name in names:
        path = Path(top) / name
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if keep((name,), st):
            continue
        if stat.S_ISDIR(st.st_mode):
            removed += sum(size for _, size in regular_files(path))
        elif stat.S_ISREG(st.st_mode):
            removed += st.st_size
        remove_tree(path)
    return removed


def prune_deeper_than(top, depth: int) -> list[str]:
    """Remove every folder ``depth`` levels below ``top`` (and all it holds), so that no folder below ``top`` is
    nested deeper: tools that walk it later with recursion (nbgrader's own ``os.walk``) cannot fail on it.
    Returns the relative paths removed."""
    removed, stack = [], [(Path(top), 0)]
    while stack:
        folder, level = stack.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = folder / name
            try:
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    continue
            except OSError:
                continue
            if level + 1 >= depth:
                remove_tree(path)
                removed.append(path.relative_to(top).as_posix())
            else:
                stack.append((path, level + 1))
    return removed
