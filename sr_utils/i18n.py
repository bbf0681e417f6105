"""The language of the messages a student reads: English (``en``) or simplified Chinese (``zh-CN``).

Every message a student may meet is written in English in the code, wrapped in :func:`tr`::

    raise FileNotFoundError(tr("{path} is missing: run notebook 03_train first", path=path))

and translated by a message catalogue: a Python module ``<package>/locales/<language>.py`` (``zh_CN.py``) whose
``MESSAGES`` dict maps each English template to its translation, placeholders unchanged. The language is the
process's ``SR_KIT_LANGUAGE`` environment variable (``en`` when unset or unknown). Each release's notebooks set it
in their first cell through :func:`use_language`, so a kernel, and every process it starts, speaks the language of
the release a student took; the grader's own words follow the graded notebook's tag (:func:`notebook_language`).

A plain dict rather than gettext: there is no ``.mo`` file to compile and nothing to install, and the tests read
every ``tr("...")`` call of the kit and fail on one without its translation
(``tests/sr_utils_tests/test_i18n_messages.py``).
"""
from __future__ import annotations

import importlib
import os
import string

__all__ = ["LANGUAGES", "LANGUAGE_ENV", "use_language", "current_language", "check_language", "Catalogue",
           "tr", "notebook_language", "placeholders"]

LANGUAGES = ("en", "zh-CN")  # the languages the kit is written in; "en" is the source language
LANGUAGE_ENV = "SR_KIT_LANGUAGE"  # the environment variable that holds the language of a process


def check_language(language: str) -> str:
    """``language`` if the kit speaks it, else ``ValueError`` naming the languages it does speak."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: the kit speaks {', '.join(LANGUAGES)}")
    return language


def use_language(language: str) -> None:
    """Make this process (and the processes it starts) speak ``language`` (``"en"`` or ``"zh-CN"``)."""
    os.environ[LANGUAGE_ENV] = check_language(language)


def current_language() -> str:
    """The language of this process: ``SR_KIT_LANGUAGE`` when it names a language of the kit, else ``"en"``."""
    value = os.environ.get(LANGUAGE_ENV, "en")
    return value if value in LANGUAGES else "en"


def notebook_language(nb) -> str:
    """The language of a notebook (a dict or ``NotebookNode``): ``metadata.sr_kit.language`` when it names a
    language of the kit, else ``"en"``. Written by the release; a student who edits it changes only the words."""
    meta = nb.get("metadata", {}) if hasattr(nb, "get") else {}
    kit = meta.get("sr_kit", {}) if hasattr(meta, "get") else {}
    value = kit.get("language") if hasattr(kit, "get") else None
    return value if value in LANGUAGES else "en"


def placeholders(template: str) -> set[str]:
    """The names of the ``{placeholders}`` of a ``str.format`` template (``{n:.2f}`` gives ``n``)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template)
            if name is not None}


class Catalogue:
    """The translations of one package's messages, read from ``<package>.locales.<language>`` when first needed.

    A missing translation falls back to the English text: a student never sees a ``KeyError`` for a message
    (the tests make sure there is none)."""

    def __init__(self, package: str):
        self.package = package
        self._loaded: dict[str, dict[str, str]] = {}

    def messages(self, language: str) -> dict[str, str]:
        """``{English template: translation}`` for ``language`` (empty for English)."""
        if language == "en":
            return {}
        if language not in self._loaded:
            module = importlib.import_module(f"{self.package}.locales.{check_language(language).replace('-', '_')}")
            self._loaded[language] = dict(module.MESSAGES)
        return self._loaded[language]

    def tr(self, message: str, /, *, language: str | None = None, **params) -> str:
        """``message`` (an English ``str.format`` template) in ``language`` (the process's by default), with
        ``params`` filled in. Without params the template is returned as it is (braces need no escaping)."""
        text = self.messages(language or current_language()).get(message, message)
        return text.format(**params) if params else text


_SR_UTILS = Catalogue("sr_utils")


def tr(message: str, /, *, language: str | None = None, **params) -> str:
    """A message of ``sr_utils`` in the student's language (see :class:`Catalogue`)."""
    return _SR_UTILS.tr(message, language=language, **params)
