"""Settings of one download run (:class:`Settings`): the data folder and its ``downloads/`` folder, where each
archive is kept, how patient to be with the network, whether to show progress and keep archives; with the two
small helpers every step uses for files and their progress (:func:`file_size`, :func:`progress_bar`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_tools.sources import Archive

__all__ = ["DOWNLOADS_DIR", "CHUNK", "Settings", "file_size", "progress_bar"]

#: Sub-folder of the data folder that holds the archives, the ``.part`` files and the record file.
DOWNLOADS_DIR = "downloads"
#: Bytes read or written at a time (downloads, sha256).
CHUNK = 1 << 20


@dataclass(frozen=True)
class Settings:
    """How to download: the data folder, network patience, and what to show and keep."""

    data_dir: Path
    timeout: float = 30.0
    retries: int = 3
    retry_wait: float = 5.0
    progress: bool = True
    delete_archives: bool = False

    @property
    def downloads(self) -> Path:
        """Folder of the archives, their ``.part`` files and the record file."""
        return self.data_dir / DOWNLOADS_DIR

    def archive_path(self, archive: Archive) -> Path:
        """Where ``archive`` is (or is to be) stored, as an absolute path for messages."""
        return (self.downloads / archive.filename).absolute()


def progress_bar(total: int | None, desc: str, enabled: bool, initial: int = 0) -> Any:
    """A tqdm byte counter (``unit_scale``); a silent one when ``enabled`` is false."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                disable=not enabled, dynamic_ncols=True)


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
