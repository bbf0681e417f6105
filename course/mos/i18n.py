"""The language of what a rater or a student reads from the MOS study: English (``en``) or simplified Chinese
(``zh-CN``).

Every such sentence is written in English in the code, wrapped in :func:`tr` (plain text) or :func:`tr_html` (a
template that may hold markup such as ``<kbd>``: its parameters are HTML-escaped), and translated by
``course/mos/locales/zh_CN.py`` (``{English template: 中文}``, the kit's :class:`sr_utils.i18n.Catalogue`).
``tests/course_tests/mos/test_mos_i18n.py`` reads every such call and fails, naming file:line, on one without its translation.

The rating app speaks, for each request, the first of (:func:`negotiate`):

1. ``?lang=en`` or ``?lang=zh-CN`` in the URL (kept in the page's forms and redirects, so it lasts a session);
2. the study's language (``python -m course.mos collect ... --language zh-CN``, stored in ``study.json``; ``serve
   --language`` for one run);
3. the browser's ``Accept-Language`` (the first acceptable ``zh*`` or ``en*`` by quality; ``zh*`` is ``zh-CN``);
4. English.
"""
from __future__ import annotations

import re
from html import escape

from sr_utils.i18n import LANGUAGES, Catalogue, check_language

__all__ = ["LANGUAGES", "CATALOGUE", "tr", "tr_html", "normalise", "from_accept_language", "negotiate",
           "check_language"]

CATALOGUE = Catalogue("course.mos")
_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")  # the shape of a BCP 47 language tag
_MAX_ACCEPT = 512  # characters of an Accept-Language header read (browsers send far fewer)


def tr(message: str, /, *, language: str, **params) -> str:
    """``message`` (an English ``str.format`` template) in ``language``, with ``params`` filled in: plain text."""
    return CATALOGUE.tr(message, language=check_language(language), **params)


def tr_html(message: str, /, *, language: str, **params) -> str:
    """``message`` (a trusted template that may hold markup) in ``language``, with ``params`` HTML-escaped."""
    return CATALOGUE.tr(message, language=check_language(language),
                        **{k: escape(str(v)) for k, v in params.items()})


def normalise(tag: str | None) -> str | None:
    """The kit's language for a language tag (``zh``, ``zh-TW``, ``zh_CN`` → ``zh-CN``; ``en-GB`` → ``en``), or
    None when the kit does not speak it (or ``tag`` is not a plausible tag at all)."""
    tag = (tag or "").strip().replace("_", "-")
    if len(tag) > 35 or not _TAG.fullmatch(tag):
        return None
    return {"zh": "zh-CN", "en": "en"}.get(tag.split("-", 1)[0].lower())


def from_accept_language(header: str | None) -> str | None:
    """The kit's language a browser prefers most (RFC 9110 ``Accept-Language``: quality values, ``q=0`` refuses;
    ``*`` and unknown languages are skipped), or None. Malformed entries are skipped, never an error."""
    ranked = []
    for position, entry in enumerate((header or "")[:_MAX_ACCEPT].split(",")):
        tag, _, params = entry.partition(";")
        quality = 1.0
        params = params.strip().replace(" ", "")
        if params:
            if not params.startswith("q="):
                continue
            try:
                quality = float(params[2:])
            except ValueError:
                continue
            if not 0 < quality <= 1:
                continue
        language = normalise(tag)
        if language is not None:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def negotiate(query: str | None, study: str | None, accept_language: str | None) -> str:
    """The language of one response: the URL's ``?lang=``, else the study's, else the browser's, else English."""
    return normalise(query) or normalise(study) or from_accept_language(accept_language) or "en"
