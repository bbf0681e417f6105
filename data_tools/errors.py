"""The errors of the download command (``python -m data_tools download``): each one's message says what went
wrong and what to do about it, and the command prints it without a traceback."""
from __future__ import annotations

__all__ = ["DownloadError", "ConfigError", "FetchError", "IntegrityError", "LayoutError"]


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
