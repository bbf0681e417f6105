"""The download command: DIV2K and the benchmark pack (Set5, Set14, B100, Urban100) into the data folder.

``python -m data_tools download [--only NAME[,NAME]] [--url NAME=URL] [--config FILE] [--data-dir DIR]``

The archives are listed in one small file, ``data_tools/sources.json`` (or ``--config``; read by
:mod:`data_tools.sources`). For each selected archive (:func:`ensure_archive`, this module):

1. **Already there?** When every folder the archive yields exists, nothing is downloaded or extracted.
2. **Download** (:mod:`data_tools.fetch`) into ``<data_dir>/downloads/<file>.part`` (socket timeout, User-Agent,
   stdlib ``urllib``). A cut connection keeps the ``.part``; the next attempt (a few automatic retries, or the next
   run) sends ``Range: bytes=N-`` and appends when the server answers 206, or starts again from zero when it answers
   200. An archive already in ``<data_dir>/downloads/`` (placed there by hand) is used without any network access.
3. **Verify** (:mod:`data_tools.checksums`) the size (when the config knows it) and the sha256, against the config
   or else against the hash an earlier run recorded in ``<data_dir>/downloads/checksums.json``; then every member
   while extracting (the CRC-32 of each zip member; tar has no per-member checksum, but truncated or undecodable data
   is detected). A bad archive is deleted and nothing is left extracted.
4. **Extract atomically** (:mod:`data_tools.extract`) into a temporary folder inside the data folder, then
   ``os.rename`` each yielded folder into place, and record the archive's sha256 and its folders in
   ``checksums.json``.

An archive that cannot be downloaded (offline, unknown host, HTTP error) is reported with the exact file to fetch by
hand and where to put it, and the other archives go on. Exit code: 0 when the folders of every selected archive are
present at the end, 1 when some are missing, 2 for a bad command line or config file (the errors:
:mod:`data_tools.errors`; the run's settings: :mod:`data_tools.settings`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_tools.checksums import RECORD_FILE, Record, now, verify_file
from data_tools.errors import DownloadError
from data_tools.extract import extract
from data_tools.fetch import fetch
from data_tools.settings import Settings, file_size
from data_tools.sources import DEFAULT_CONFIG, Archive, apply_url_overrides, load_config, select_archives

__all__ = ["ensure_archive", "report", "add_arguments", "run"]


# -------------------------------------------------------------------------------------------------- steps

def is_present(archive: Archive, settings: Settings) -> bool:
    """Whether every folder ``archive`` yields exists in the data folder."""
    return all(t.is_dir() for t in archive.targets(settings.data_dir))


def relative(paths: list[Path], settings: Settings) -> str:
    """Paths shown relative to the data folder, comma-separated."""
    return ", ".join(str(p.relative_to(settings.data_dir)) for p in paths)


def ensure_archive(archive: Archive, settings: Settings, record: Record) -> None:
    """Make the folders of ``archive`` present: nothing to do when they are; else use the archive found in the
    downloads folder, or download it; verify it; extract it; record its sha256 and folders.

    Raises DownloadError (FetchError, IntegrityError, LayoutError) with an actionable message."""
    targets = archive.targets(settings.data_dir)
    if is_present(archive, settings):
        marked = record.get(archive.filename).get("extracted")
        note = "" if marked else " (not extracted by this tool: delete it to have it downloaded and extracted again)"
        print(f"{archive.name}: already there ({relative(targets, settings)}){note}")
        return
    dest = settings.archive_path(archive)
    if dest.is_file():
        print(f"{archive.name}: using {dest} (found in the downloads folder, no network needed)")
        source = "found in the downloads folder"
    else:
        print(f"{archive.name}: downloading {archive.url}")
        fetch(archive, settings)
        source = archive.url
    sha = verify_file(archive, dest, settings, record)
    size = file_size(dest)
    extract(archive, dest, settings)
    record.update(archive.filename, name=archive.name, source=source, size=size, sha256=sha, verified=now(),
                  extracted=[str(t.relative_to(settings.data_dir).as_posix()) for t in targets])
    dest.with_name(dest.name + ".part").unlink(missing_ok=True)
    if settings.delete_archives:
        dest.unlink()
    print(f"{archive.name}: extracted {relative(targets, settings)} (sha256 {sha})")


def report(archives: list[Archive], failed: list[Archive], settings: Settings) -> int:
    """Print the summary and return the exit code: 0 when every archive is present, 1 otherwise."""
    if not failed:
        print(f"all {len(archives)} archive(s) present in {settings.data_dir}")
        return 0
    print(f"{len(failed)} of {len(archives)} archive(s) missing in {settings.data_dir}:", file=sys.stderr)
    for archive in failed:
        print(f"  {archive.name}: place {archive.filename} at {settings.archive_path(archive)} "
              "(or fix the error above) and run the command again", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------------- CLI

def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m data_tools download`` (``--data-dir`` is added by the dispatcher)."""
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="JSON file listing the archives (default: data_tools/sources.json)")
    parser.add_argument("--only", action="append", metavar="NAME[,NAME]",
                        help="download only these archives (repeatable; default: all)")
    parser.add_argument("--url", action="append", default=[], metavar="NAME=URL",
                        help="download archive NAME from URL instead (its configured size/sha256 are then not used)")
    parser.add_argument("--timeout", type=_positive_float, default=30.0, metavar="SECONDS",
                        help="socket timeout (default 30)")
    parser.add_argument("--retries", type=_non_negative_int, default=3,
                        help="automatic resumes after a cut connection or a timeout (default 3)")
    parser.add_argument("--retry-wait", type=float, default=5.0, metavar="SECONDS",
                        help="pause before each retry (default 5)")
    parser.add_argument("--delete-archives", action="store_true",
                        help="delete each archive once extracted (its sha256 stays in downloads/checksums.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run the download command; errors are printed (no traceback) and turned into the exit code."""
    settings = Settings(data_dir=Path(args.data_dir), timeout=args.timeout, retries=args.retries,
                        retry_wait=max(0.0, args.retry_wait), progress=not args.no_progress,
                        delete_archives=args.delete_archives)
    try:
        archives = select_archives(apply_url_overrides(load_config(args.config), args.url), args.only)
        record = Record(settings.downloads / RECORD_FILE)
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    for archive in archives:
        try:
            ensure_archive(archive, settings, record)
        except (DownloadError, OSError) as e:
            print(f"error: {archive.name}: {e}", file=sys.stderr)
            failed.append(archive)
    return report(archives, failed, settings)
