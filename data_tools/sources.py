"""The archives to download: the config file (``data_tools/sources.json``, or ``--config``) read into
:class:`Archive` entries (where to get each archive, its size and sha256, the folders it yields), and the command
line's ``--url NAME=URL`` and ``--only NAME[,NAME]`` applied to them."""
from __future__ import annotations

import dataclasses
import json
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from data_tools.errors import ConfigError

__all__ = ["DEFAULT_CONFIG", "Archive", "load_config", "parse_archive", "apply_url_overrides", "select_archives"]

#: The config shipped with the kit.
DEFAULT_CONFIG = Path(__file__).with_name("sources.json")


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
