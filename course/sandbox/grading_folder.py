"""A submission's grading folder, the one folder sandboxed code writes: its size limit (as root a tmpfs of that
size while it runs, :class:`SizeLimitedFolder`; trimmed after each notebook, :func:`enforce_folder_size_limit`),
what is removed from it after each notebook (links, FIFOs, devices, folders nested too deep), and its owner (the
sandbox uid, as root)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from course import plain_tree

from .resources import mount_tmpfs, unmount


def chown_tree(path: str, uid: int) -> None:
    """Give ``path`` (recursively) to the sandbox uid so that student code can write its own folder."""
    os.lchown(path, uid, uid)
    for entry, _, _ in plain_tree.walk(path):  # any depth (a kernel may leave 1,500 levels), nothing followed
        os.lchown(entry, uid, uid)


#: Folders nested deeper than this in a grading folder are removed after each notebook (no notebook needs them;
#: nbgrader walks the folder with recursion once the last notebook is graded).
MAX_FOLDER_DEPTH = 32


def prune_deep_folders(folder) -> list[str]:
    """Remove what sandboxed code nested deeper than :data:`MAX_FOLDER_DEPTH` in its folder; returns it."""
    return plain_tree.prune_deeper_than(folder, MAX_FOLDER_DEPTH)


def remove_special_files(folder) -> list[str]:
    """Delete symbolic links, FIFOs, sockets and devices that sandboxed code left in its (writable) folder.

    The trusted grader writes the next notebooks into this folder after the kernel is gone: a link planted by
    the student (``02_solver.ipynb -> .../gradebook.db``) would make it overwrite a file outside the sandbox,
    and a FIFO would block it. Returns what was removed (relative paths)."""
    import stat

    removed = []
    for path, parts, st in plain_tree.walk(folder):  # (any depth: an explicit stack, nothing followed)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            os.unlink(path)
            removed.append("/".join(parts))
    return removed


def enforce_folder_size_limit(folder, limit: int, keep_notebook_bytes: int = 20 << 20) -> str | None:
    """After a notebook ran: if the regular files under ``folder`` take more than ``limit`` bytes, delete all of
    them but the notebooks (a notebook over ``keep_notebook_bytes`` goes too) and say so; else None."""
    files = plain_tree.regular_files(folder)
    total = sum(n for _, n in files)
    if total <= limit:
        return None
    for path, n in files:
        if path.suffix != ".ipynb" or n > keep_notebook_bytes:
            os.unlink(path)
    return (f"wrote {total >> 20} MB into its grading folder (at most {limit >> 20} MB): its files were removed "
            "and the notebook scores 0")


class SizeLimitedFolder:
    """``folder`` on a tmpfs of ``size`` bytes while a submission is graded (root), on disk again afterwards.

    ``__enter__`` moves an existing ``folder`` aside (into ``work``, which belongs to this folder alone), mounts the
    tmpfs on an empty ``folder`` and returns True (False, with everything left as it was, where no tmpfs can be
    mounted). ``__exit__`` copies the folders and regular files out (at most ``size`` bytes: the tmpfs holds no
    more; only the files ``keep`` names when given), unmounts, and puts the copy in place of ``folder``'s old
    entries of the same names (the others, e.g. other assignments, are kept). After a grading run that was killed
    in between, the next ``__enter__`` unmounts the leftover tmpfs and restores what was moved aside first."""

    def __init__(self, folder, work, size: int, keep=None):
        self.folder, self.work, self.size = Path(folder), Path(work), int(size)
        self.keep = keep  # which files are copied out (relative parts -> bool; all by default)
        self.mounted = False

    def __enter__(self) -> bool:
        if os.path.ismount(self.folder):  # left by a grading run that was killed
            unmount(self.folder)
        if os.path.lexists(self.work / "aside"):  # (idem) the folder as it was before that run
            plain_tree.remove_tree(self.folder)
            shutil.move(self.work / "aside", self.folder)
        plain_tree.remove_tree(self.work)
        self.work.mkdir(parents=True)
        if os.path.lexists(self.folder):
            shutil.move(self.folder, self.work / "aside")
        self.folder.mkdir(parents=True)
        self.mounted = mount_tmpfs(self.folder, self.size)
        if not self.mounted:
            self.folder.rmdir()
            if os.path.lexists(self.work / "aside"):
                shutil.move(self.work / "aside", self.folder)
            plain_tree.remove_tree(self.work)
        return self.mounted

    def __exit__(self, *exc) -> None:
        if not self.mounted:
            return
        out = self.work / "out"
        try:
            plain_tree.copy_plain_tree(self.folder, out, self.keep)
        finally:
            unmount(self.folder)
        self.folder.rmdir()
        if os.path.lexists(self.work / "aside"):
            shutil.move(self.work / "aside", self.folder)
        else:
            self.folder.mkdir()
        for entry in out.iterdir():
            target = self.folder / entry.name
            plain_tree.remove_tree(target)
            shutil.move(entry, target)
        plain_tree.remove_tree(self.work)
