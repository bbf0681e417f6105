"""Checksums of the archives: the record file ``<data_dir>/downloads/checksums.json`` (the sha256 of each archive
and the folders extracted from it), and the check of a complete archive's size and sha256 against the config or,
failing that, against the record."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from data_tools.errors import ConfigError, IntegrityError
from data_tools.settings import CHUNK, Settings, file_size, progress_bar
from data_tools.sources import Archive

__all__ = ["RECORD_FILE", "Record", "sha256_of", "now", "expected_sha256", "verify_file"]

#: Record file (inside :data:`data_tools.settings.DOWNLOADS_DIR`): sha256 of each archive and the folders
#: extracted from it.
RECORD_FILE = "checksums.json"


class Record:
    """The record file ``<data_dir>/downloads/checksums.json``: per archive file, the sha256 of what was
    downloaded (or placed by hand), and the folders extracted from it (the "done" marker).

    Copy it to another machine's ``downloads/`` folder to have that machine's downloads checked against it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        """Read the record (empty when the file does not exist yet)."""
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            files = data["files"]
            if not isinstance(files, dict):
                raise TypeError("'files' is not an object")
            return files
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"the record file {self.path} is damaged ({e}); fix it or delete it (the sha256 "
                              "it held are then taken again from the next downloads)") from None

    def get(self, filename: str) -> dict[str, Any]:
        """The entry of one archive file (empty when it has none)."""
        return self.files.get(filename, {})

    def update(self, filename: str, **fields: Any) -> None:
        """Merge ``fields`` into the entry of ``filename`` and write the record atomically."""
        self.files[filename] = {**self.get(filename), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        body = {"comment": "written by `python -m data_tools download`: sha256 of each archive and the folders "
                           "extracted from it", "files": self.files}
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def sha256_of(path: Path, progress: bool = False) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f, progress_bar(file_size(path), f"sha256 {path.name}", progress) as bar:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def now() -> str:
    """Current UTC time, ISO 8601, for the record file."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def expected_sha256(archive: Archive, record: Record) -> tuple[str | None, str]:
    """The sha256 the file must have and where that comes from: the config first, else the record file."""
    if archive.sha256:
        return archive.sha256, (f"from {archive.origin}; if the file legitimately changed, update or null the "
                                "sha256 there")
    recorded = record.get(archive.filename).get("sha256")
    if recorded:
        return recorded, (f"recorded in {record.path} by an earlier download; if the file legitimately changed, "
                          f"delete the entry of {archive.filename} there")
    return None, ""


def verify_file(archive: Archive, path: Path, settings: Settings, record: Record) -> str:
    """Check the size and sha256 of a complete archive file and return its sha256.

    On a mismatch the file is deleted and IntegrityError names the file, the expected and the actual value."""
    size = file_size(path)
    if archive.size is not None and size != archive.size:
        path.unlink()
        raise IntegrityError(f"{path} has {size} bytes but should have {archive.size} (from {archive.origin}): "
                             "it is incomplete or a different file. It was deleted and nothing was extracted; run "
                             "the command again to download it again (or place a good copy there)")
    actual = sha256_of(path, settings.progress)
    expected, source = expected_sha256(archive, record)
    if expected and actual != expected:
        path.unlink()
        raise IntegrityError(f"sha256 mismatch for {path}: expected {expected} ({source}), got {actual}. The file "
                             "was deleted and nothing was extracted; run the command again to download it again "
                             "(or place a good copy there)")
    return actual
