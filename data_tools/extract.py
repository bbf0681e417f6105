"""Extracting a downloaded archive (zip or tar, compressed or not) into the data folder: every member read in full
and checked, nothing outside the extraction folder, and the yielded folders moved into place only once the whole
archive extracted well (atomically, through a temporary folder inside the data folder)."""
from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from data_tools.errors import IntegrityError, LayoutError
from data_tools.settings import Settings, file_size, progress_bar
from data_tools.sources import Archive

__all__ = ["CorruptArchive", "archive_format", "unpack", "extract"]

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# safe extraction (no links out, no absolute paths, sane permissions) where this Python has it (>= 3.11.4)
_TAR_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
# errors raised while decoding damaged archive data (OSErrors without errno, e.g. gzip.BadGzipFile, count too)
_CORRUPT_DATA = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError)


class CorruptArchive(Exception):
    """Damaged archive data found while extracting; ``where`` names the member (internal)."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail


def is_corrupt_data_error(error: BaseException) -> bool:
    """Whether an exception raised while reading an archive means damaged data (not e.g. a full disk)."""
    return isinstance(error, _CORRUPT_DATA) or (isinstance(error, OSError) and error.errno is None)


def archive_format(path: Path) -> str:
    """``"zip"`` or ``"tar"``, from the file name, else from the content."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise CorruptArchive("the file", "is neither a zip nor a tar archive")


def unpack_zip(path: Path, dest: Path, progress: bool) -> None:
    """Extract every member of a zip file into ``dest``, reading each in full so that its CRC-32 is checked."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CorruptArchive("the file", f"is not a readable zip archive ({e}); it may be incomplete") from None
    with zf:
        members = zf.infolist()
        with progress_bar(sum(m.file_size for m in members), f"extract {path.name}", progress) as bar:
            for member in members:
                try:
                    zf.extract(member, dest)  # zipfile drops absolute paths and '..' from member names
                except Exception as e:
                    if is_corrupt_data_error(e):
                        raise CorruptArchive(f"member {member.filename!r}", str(e) or type(e).__name__) from None
                    raise
                bar.update(member.file_size)


def unpack_tar(path: Path, dest: Path, progress: bool) -> None:
    """Extract the regular files and folders of a (compressed) tar file into ``dest``, reading each in full.

    Links and special files are skipped (with a note); a path leading outside ``dest`` is refused."""
    root = dest.resolve()
    skipped = 0
    with open(path, "rb") as raw:
        try:
            tf = tarfile.open(fileobj=raw, mode="r:*")
        except tarfile.TarError as e:
            raise CorruptArchive("the file", f"is not a readable tar archive ({e}); it may be incomplete") from None
        with tf, progress_bar(file_size(path), f"extract {path.name}", progress) as bar:
            where, done = "the first member", 0
            try:
                for member in tf:
                    where = f"member {member.name!r}"
                    if not (root / member.name).resolve().is_relative_to(root):
                        raise CorruptArchive(where, "points outside the extraction folder (unsafe archive)")
                    if member.isfile() or member.isdir():
                        tf.extract(member, dest, **_TAR_FILTER)
                    else:
                        skipped += 1
                    bar.update(raw.tell() - done)
                    done = raw.tell()
                    where = f"the member after {member.name!r}"
            except CorruptArchive:
                raise
            except Exception as e:
                if is_corrupt_data_error(e):
                    raise CorruptArchive(where, str(e) or type(e).__name__) from None
                raise
    if skipped:
        print(f"{path.name}: skipped {skipped} link(s) or special file(s); only files and folders are extracted",
              file=sys.stderr)


def unpack(path: Path, dest: Path, progress: bool) -> None:
    """Extract a zip or tar archive into ``dest`` (raises CorruptArchive naming the damaged member)."""
    if archive_format(path) == "zip":
        unpack_zip(path, dest, progress)
    else:
        unpack_tar(path, dest, progress)


def top_level_entries(folder: Path) -> str:
    """Comma-separated names of the entries of ``folder`` (for error messages)."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    return ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") or "nothing"


def extract(archive: Archive, path: Path, settings: Settings) -> list[Path]:
    """Extract ``path`` into a temporary folder inside the data folder, then ``os.rename`` each yielded folder
    into place (an existing one is kept). Returns the yielded folders.

    A damaged member deletes the archive and raises IntegrityError; a missing yielded folder raises LayoutError.
    Either way the temporary folder is removed and nothing is left in the data folder."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f".extract-{archive.name}-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{archive.name}-", dir=data_dir))
    try:
        try:
            unpack(path, tmp, settings.progress)
        except CorruptArchive as e:
            path.unlink()
            raise IntegrityError(f"{archive.filename} is corrupt: {e.where} {e.detail}. The archive ({path}) was "
                                 "deleted and nothing was extracted; run the command again to download it again "
                                 "(or place a good copy there)") from None
        absent = [y for y in archive.yields if not (tmp / y).is_dir()]
        if absent:
            raise LayoutError(f"{archive.filename} has no folder {', '.join(absent)} (its top level holds: "
                              f"{top_level_entries(tmp)}); fix \"yields\" of {archive.name} in the config. The "
                              f"archive is kept at {path}")
        for rel, target in zip(archive.yields, archive.targets(data_dir)):
            if target.exists():
                print(f"{archive.name}: {target} exists already, kept as it is", file=sys.stderr)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp / rel, target)
        return archive.targets(data_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
