"""The messages of ``data_tools`` in the student's language: :mod:`sr_utils.i18n`'s mechanism (the process's
``SR_KIT_LANGUAGE``), with ``data_tools``' own catalogue, ``data_tools/locales/<language>.py``."""
from __future__ import annotations

from sr_utils.i18n import Catalogue

__all__ = ["tr"]

_DATA_TOOLS = Catalogue("data_tools")


def tr(message: str, /, *, language: str | None = None, **params) -> str:
    """A message of ``data_tools`` in the student's language (see :class:`sr_utils.i18n.Catalogue`)."""
    return _DATA_TOOLS.tr(message, language=language, **params)
