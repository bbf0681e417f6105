"""Download DIV2K and the benchmark pack (Set5, Set14, B100, Urban100) into the data folder.

``python -m data_tools download [--only NAME[,NAME]] [--url NAME=URL] [--config FILE] [--data-dir DIR]``

The archives are listed in one small file, ``data_tools/sources.json`` (or ``--config``). For each selected archive:

1. **Already there?** When every folder the archive yields exists, nothing is downloaded or extracted.
2. **Download** into ``<data_dir>/downloads/<file>.part`` (socket timeout, User-Agent, stdlib ``urllib``). A cut
   connection keeps the ``.part``; the next attempt (a few automatic retries, or the next run) sends
   ``Range: bytes=N-`` and appends when the server answers 206, or starts again from zero when it answers 200.
   An archive already in ``<data_dir>/downloads/`` (placed there by hand) is used without any network access.
3. **Verify** the size (when the config knows it) and the sha256, against the config or else against the hash an
   earlier run recorded in ``<data_dir>/downloads/checksums.json``; then every member while extracting (the CRC-32
   of each zip member; tar has no per-member checksum, but truncated or undecodable data is detected). A bad
   archive is deleted and nothing is left extracted.
4. **Extract atomically** into a temporary folder inside the data folder, then ``os.rename`` each yielded folder
   into place, and record the archive's sha256 and its folders in ``checksums.json``.

An archive that cannot be downloaded (offline, unknown host, HTTP error) is reported with the exact file to fetch by
hand and where to put it, and the other archives go on. Exit code: 0 when the folders of every selected archive are
present at the end, 1 when some are missing, 2 for a bad command line or config file.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import hashlib
import http.client
import json
import os
import posixpath
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["Archive", "Settings", "Record", "DownloadError", "ConfigError", "FetchError", "IntegrityError",
           "LayoutError", "load_config", "ensure_archive", "add_arguments", "run"]

#: The config shipped with the kit.
DEFAULT_CONFIG = Path(__file__).with_name("sources.json")
#: Sub-folder of the data folder that holds the archives, the ``.part`` files and the record file.
DOWNLOADS_DIR = "downloads"
#: Record file (inside :data:`DOWNLOADS_DIR`): sha256 of each archive and the folders extracted from it.
RECORD_FILE = "checksums.json"
USER_AGENT = "sr-course-kit-data-tools/0.1 (Python urllib)"
CHUNK = 1 << 20
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# safe extraction (no links out, no absolute paths, sane permissions) where this Python has it (>= 3.11.4)
_TAR_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
# errors raised while decoding damaged archive data (OSErrors without errno, e.g. gzip.BadGzipFile, count too)
_CORRUPT_DATA = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, NotImplementedError)


# --------------------------------------------------------------------------------------------------- errors

class DownloadError(Exception):
    """An error of the download command; its message says what went wrong and what to do about it."""


class ConfigError(DownloadError):
    """The config file or a command-line option is wrong."""


class FetchError(DownloadError):
    """An archive could not be downloaded; the message says which file to fetch by hand and where to put it."""


class IntegrityError(DownloadError):
    """An archive is not the expected file (size, sha256) or is corrupt (a member fails its check)."""


class LayoutError(DownloadError):
    """An archive does not contain the folders the config says it yields."""


class TransferError(Exception):
    """One download attempt failed; ``retryable`` tells whether another attempt may succeed (internal)."""

    def __init__(self, reason: str, *, retryable: bool, status: int | None = None,
                 headers: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.headers = headers


class CorruptArchive(Exception):
    """Damaged archive data found while extracting; ``where`` names the member (internal)."""

    def __init__(self, where: str, detail: str) -> None:
        super().__init__(f"{where}: {detail}")
        self.where = where
        self.detail = detail


# ------------------------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class Archive:
    """One archive of the config: where to get it, what it must be, and what it yields."""

    name: str
    url: str
    filename: str
    size: int | None
    sha256: str | None
    extract_to: str
    yields: tuple[str, ...]
    origin: str = dataclasses.field(default="the config", compare=False)  # where url/size/sha256 come from

    def targets(self, data_dir: Path) -> list[Path]:
        """The folders this archive provides inside ``data_dir``."""
        return [data_dir / self.extract_to / y for y in self.yields]


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


_ARCHIVE_KEYS = {"name", "url", "filename", "size", "sha256", "extract_to", "yields", "comment"}


def load_config(path: Path) -> list[Archive]:
    """Read the archives listed in the JSON config file ``path`` (see ``data_tools/sources.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    entries = data.get("archives") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"config file {path} must be a JSON object with a non-empty list \"archives\"")
    archives = [parse_archive(entry, f"{path}: archives[{i}]", origin=f"the config {path}")
                for i, entry in enumerate(entries)]
    for key in ("name", "filename"):
        values = [getattr(a, key) for a in archives]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise ConfigError(f"config file {path}: archive {key}s must be unique, repeated: {', '.join(duplicates)}")
    return archives


def parse_archive(entry: Any, where: str, origin: str = "the config") -> Archive:
    """Check one ``archives[]`` entry of the config and turn it into an :class:`Archive`."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object, got {type(entry).__name__}")
    unknown = set(entry) - _ARCHIVE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_ARCHIVE_KEYS))}")
    for key in ("name", "url", "yields"):
        if key not in entry:
            raise ConfigError(f"{where}: missing key {key!r}")
    name, url = entry["name"], entry["url"]
    if not isinstance(name, str) or not name or "," in name or "=" in name or "/" in name:
        raise ConfigError(f"{where}: name must be a non-empty string without ',', '=' or '/', got {name!r}")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"{where}: url must be an http(s) URL, got {url!r}")
    filename = entry.get("filename") or filename_from_url(url)
    if not filename or "/" in filename or filename in (".", ".."):
        raise ConfigError(f"{where}: cannot take a file name from url {url!r}; add a \"filename\"")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise ConfigError(f"{where}: size must be a positive number of bytes or null, got {size!r}")
    sha256 = entry.get("sha256")
    if sha256 is not None:
        if not isinstance(sha256, str) or len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256):
            raise ConfigError(f"{where}: sha256 must be 64 hexadecimal digits or null, got {sha256!r}")
        sha256 = sha256.lower()
    extract_to = entry.get("extract_to", ".")
    yields = entry["yields"]
    if not isinstance(yields, list) or not yields:
        raise ConfigError(f"{where}: yields must be a non-empty list of folders")
    for rel in [extract_to, *yields]:
        check_relative_path(rel, where)
    return Archive(name=name, url=url, filename=filename, size=size, sha256=sha256, extract_to=extract_to,
                   yields=tuple(yields), origin=origin)


def check_relative_path(value: Any, where: str) -> None:
    """Refuse a config path that is not a plain relative path (absolute, ``..``, backslashes)."""
    if not isinstance(value, str) or not value or "\\" in value:
        raise ConfigError(f"{where}: expected a relative folder path, got {value!r}")
    p = PurePosixPath(value)
    if p.is_absolute() or ".." in p.parts:
        raise ConfigError(f"{where}: folder {value!r} must stay inside the data folder (relative, no '..')")


def filename_from_url(url: str) -> str:
    """The last segment of the URL's path (``''`` when there is none)."""
    return posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))


def apply_url_overrides(archives: list[Archive], overrides: list[str]) -> list[Archive]:
    """Apply ``--url NAME=URL`` options. The config's size and sha256 describe the original file, so they are
    dropped for an overridden URL (the sha256 of what is downloaded is still recorded)."""
    by_name = {a.name: a for a in archives}
    for item in overrides:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--url expects NAME=URL, got {item!r}")
        if name not in by_name:
            raise ConfigError(f"--url {item}: no archive named {name!r}; the names are: {', '.join(by_name)}")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"--url {item}: {url!r} is not an http(s) URL")
        old = by_name[name]
        by_name[name] = dataclasses.replace(old, url=url, filename=filename_from_url(url) or old.filename,
                                            size=None, sha256=None, origin="--url")
    return [by_name[a.name] for a in archives]


def select_archives(archives: list[Archive], only: list[str] | None) -> list[Archive]:
    """The archives named by ``--only`` (comma-separated, repeatable), in config order; all when not given."""
    if not only:
        return archives
    wanted = {n.strip() for item in only for n in item.split(",") if n.strip()}
    unknown = wanted - {a.name for a in archives}
    if unknown:
        raise ConfigError(f"--only: unknown archive(s) {', '.join(sorted(unknown))}; "
                          f"the names are: {', '.join(a.name for a in archives)}")
    return [a for a in archives if a.name in wanted]


# ------------------------------------------------------------------------------------------------ record

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


# ------------------------------------------------------------------------------------------------ helpers

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


# ---------------------------------------------------------------------------------------------- download

def describe_network_error(error: BaseException, timeout: float) -> str:
    """A short human reason for a failed connection."""
    if isinstance(error, socket.gaierror):
        return f"host not found: {error.strerror or error}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(error) or type(error).__name__


def open_url(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    """Send ``GET url`` (with ``Range: bytes=offset-`` when ``offset`` > 0) and return the open response.

    Raises TransferError: retryable for timeouts, dropped connections and HTTP 5xx/408/429; not retryable for an
    unknown host, a refused connection or another HTTP error."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise TransferError(f"HTTP {e.code} {e.reason}", retryable=e.code >= 500 or e.code in (408, 429),
                            status=e.code, headers=e.headers) from None
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, BaseException) else OSError(str(e.reason))
        raise TransferError(describe_network_error(reason, timeout),
                            retryable=isinstance(reason, (TimeoutError, ConnectionResetError))) from None
    except (http.client.HTTPException, OSError) as e:
        raise TransferError(describe_network_error(e, timeout), retryable=True) from None


def parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` of a ``Content-Range: bytes a-b/N`` header (None where absent or ``*``)."""
    if not value or not value.strip().lower().startswith("bytes"):
        return None, None
    spec = value.strip()[5:].strip()
    span, _, total = spec.partition("/")
    first = span.split("-", 1)[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


def read_chunk(response: http.client.HTTPResponse, timeout: float) -> bytes:
    """Next chunk of the body; a dropped or timed-out connection becomes a retryable TransferError."""
    try:
        return response.read(CHUNK)
    except (http.client.HTTPException, OSError) as e:
        raise TransferError(f"the connection broke: {describe_network_error(e, timeout)}", retryable=True) from None


def resume_point(response: http.client.HTTPResponse, part: Path, offset: int, label: str) -> tuple[int, int | None]:
    """Where the body of ``response`` starts in the file and the file's total size (None when unknown).

    206 to a Range request: from ``offset`` on. 200: from zero (the ``.part`` is to be rewritten). Raises
    TransferError for another status, a range that does not start at ``offset``, or a web page."""
    length_header = response.headers.get("Content-Length", "")
    length = int(length_header) if length_header.isdigit() else None
    if offset and response.status == 206:
        first, total = parse_content_range(response.headers.get("Content-Range"))
        if first != offset:
            part.unlink()
            raise TransferError(f"the server resumed at byte {first} instead of {offset}; starting again",
                                retryable=True)
    elif response.status == 200:
        if offset:
            print(f"{label}: the server does not resume downloads (HTTP 200 to a Range request); "
                  "starting again from zero", file=sys.stderr)
        offset, total = 0, None
    else:
        raise TransferError(f"unexpected HTTP status {response.status}", retryable=False)
    if response.headers.get_content_type() == "text/html":
        raise TransferError("the server sent a web page instead of the archive (the link may need a browser, "
                            "a login or a confirmation)", retryable=False)
    if total is None and length is not None:
        total = offset + length
    return offset, total


def write_body(response: http.client.HTTPResponse, part: Path, offset: int, total: int | None,
               settings: Settings, label: str) -> int:
    """Write the body to ``part`` (appended after ``offset`` bytes, or from scratch when ``offset`` is 0) with a
    progress bar; returns the size of ``part`` afterwards. A broken connection raises a retryable TransferError
    (the bytes written stay)."""
    received = 0
    with open(part, "ab" if offset else "wb") as out, \
            progress_bar(total, label, settings.progress, initial=offset) as bar:
        while chunk := read_chunk(response, settings.timeout):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return offset + received


def download_once(url: str, part: Path, settings: Settings, expected_size: int | None, label: str) -> None:
    """One attempt at completing ``part``: resume from its current size, append what arrives.

    Raises TransferError when the attempt fails (the bytes received so far stay in ``part``), IntegrityError when
    the server's file does not have the expected size (``part`` is deleted)."""
    offset = file_size(part)
    if expected_size is not None and offset >= expected_size:
        if offset == expected_size:
            return
        part.unlink()
        offset = 0
    try:
        response = open_url(url, offset, settings.timeout)
    except TransferError as e:
        if e.status == 416 and offset:  # nothing left to send from ``offset``: complete, or a different file
            _, total = parse_content_range(e.headers.get("Content-Range") if e.headers else None)
            if total == offset:
                return
            part.unlink()
            raise TransferError("the server cannot resume this file (HTTP 416); starting again from zero",
                                retryable=True) from None
        raise
    with response:
        offset, total = resume_point(response, part, offset, label)
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise IntegrityError(f"{url} serves {total} bytes, but {label} should have {expected_size}: the file "
                                 "there is not the one the config describes. Nothing was kept. Fix the url or the "
                                 "size in the config (or pass --url NAME=URL for another copy)")
        size = write_body(response, part, offset, total, settings, label)
    expected_total = total if total is not None else expected_size
    if expected_total is not None and size < expected_total:
        raise TransferError(f"the connection closed after {size} of {expected_total} bytes", retryable=True)


def manual_download_message(archive: Archive, settings: Settings, reason: str) -> str:
    """What to tell the user when ``archive`` cannot be downloaded: which file to fetch and where to put it."""
    dest = settings.archive_path(archive)
    message = (f"could not download {archive.filename} from {archive.url} ({reason}). Download it by hand and "
               f"place it at {dest}, then run the command again")
    kept = file_size(dest.with_name(dest.name + ".part"))
    if kept:
        message += (f" (or just run the command again: the {kept} bytes received so far are kept in "
                    f"{dest.name}.part and the download resumes from there)")
    return message


def fetch(archive: Archive, settings: Settings) -> Path:
    """Download ``archive`` into the downloads folder through ``<file>.part`` and return the complete file.

    Retryable failures are retried ``settings.retries`` times (resuming the ``.part``); then, or for a permanent
    failure, FetchError says which file to fetch by hand and where to place it."""
    dest = settings.archive_path(archive)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempts = settings.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            download_once(archive.url, part, settings, archive.size, archive.filename)
            break
        except TransferError as e:
            if not e.retryable or attempt == attempts:
                raise FetchError(manual_download_message(archive, settings, e.reason)) from None
            kept = file_size(part)
            print(f"{archive.filename}: {e.reason}; retrying in {settings.retry_wait:g} s (attempt {attempt + 1} "
                  f"of {attempts}{f', resuming at byte {kept}' if kept else ''})", file=sys.stderr)
            time.sleep(settings.retry_wait)
    os.replace(part, dest)
    return dest


# ------------------------------------------------------------------------------------------------ verify

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


# ----------------------------------------------------------------------------------------------- extract

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
