"""Fetching one archive over HTTP(S) with the standard library: into ``<file>.part`` with a progress bar, resuming
a cut connection with ``Range: bytes=N-`` (a few automatic retries), and, when it cannot be downloaded, a message
saying which file to fetch by hand and where to put it."""
from __future__ import annotations

import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from data_tools.errors import FetchError, IntegrityError
from data_tools.settings import CHUNK, Settings, file_size, progress_bar
from data_tools.sources import Archive

__all__ = ["USER_AGENT", "TransferError", "parse_content_range", "download_once", "fetch"]

USER_AGENT = "sr-course-kit-data-tools/0.1 (Python urllib)"


class TransferError(Exception):
    """One download attempt failed; ``retryable`` tells whether another attempt may succeed (internal)."""

    def __init__(self, reason: str, *, retryable: bool, status: int | None = None,
                 headers: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.headers = headers


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
