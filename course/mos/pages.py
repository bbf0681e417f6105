"""The rating app's pages: server-rendered HTML (every value escaped) and one small script for keys 1-5 and the zoom.

No page names a student or a version: a page shows an opaque item id, the rater's own progress and the image.
Every word a rater reads is in their language (``language``: ``en`` or ``zh-CN``, :mod:`course.mos.i18n`); a
translation is trusted markup, every value put into it is escaped.
The script is served under the rater's link like everything else (``Content-Security-Policy: script-src 'self'``:
no inline script runs).
"""
from __future__ import annotations

from html import escape

from course.mos.i18n import check_language, tr, tr_html

__all__ = ["calibration_page", "rating_page", "pair_page", "done_page", "SCRIPT", "PAIR_SCRIPT", "SCALE",
           "scale_words"]

_STYLE = """
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif;
        margin: 0.5rem 1rem; background: #222; color: #eee; }
a { color: #9cf; }
.top { display: flex; gap: 1rem; align-items: center; }
progress { flex: 1; height: 1rem; }
.stage { display: flex; gap: 1rem; align-items: flex-start; margin-top: 0.5rem; }
#photo { max-width: 62vw; max-height: 78vh; cursor: crosshair; image-rendering: auto; }
#zoom { width: 30vw; height: 30vw; max-height: 60vh; border: 1px solid #888; background-repeat: no-repeat;
        image-rendering: pixelated; }
form.scores { margin-top: 0.6rem; display: flex; gap: 0.5rem; }
form.scores button { font-size: 1.1rem; padding: 0.4rem 0.9rem; }
.pairs { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.8rem; max-width: 900px; }
.pairs figure { margin: 0; } .pairs img { width: 100%; image-rendering: auto; }
.hint { color: #aaa; font-size: 0.9rem; }
.duel { display: grid; grid-template-columns: 1fr 1fr; gap: 0.6rem; margin-top: 0.5rem; }
.duel img { width: 100%; max-height: 74vh; object-fit: contain; }
"""


def scale_words(language: str = "en") -> dict[int, str]:
    """The opinion scale (the SRGAN paper's) in ``language``: score -> the words shown to raters."""
    return {1: tr("bad", language=language), 2: tr("poor", language=language), 3: tr("fair", language=language),
            4: tr("good", language=language), 5: tr("excellent", language=language)}


#: The opinion scale in English: score -> words shown to raters (:func:`scale_words` for another language).
SCALE = scale_words("en")


def _keep(lang: str | None) -> str:
    """The query that keeps a rater's ``?lang=`` choice in a form's action ("" without one)."""
    return f"?lang={escape(check_language(lang))}" if lang else ""


def _page(title: str, body: str, language: str, script_url: str | None = None) -> str:
    script = f'<script src="{escape(script_url)}" defer></script>' if script_url else ""
    return (f"<!doctype html><html lang=\"{escape(check_language(language))}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{escape(title)}</title><style>{_STYLE}</style>{script}</head>"
            f"<body>{body}</body></html>")


def calibration_page(base: str, pairs: list[tuple[str, str]], pairwise: bool = False, language: str = "en",
                     keep: str | None = None) -> str:
    """The calibration page: each (NN id, HR id) pair shown side by side with its score; one button to start.
    ``base`` is the rater's link (``/r/<token>``); ``pairwise``: the instructions of the pairwise mode;
    ``keep``: the rater's ``?lang=`` choice, kept in the form."""
    lang = language
    words = scale_words(lang)
    figures = []
    for nn, hr in pairs:
        for cid, score in ((nn, 1), (hr, 5)):
            alt = tr("example scored {score}", language=lang, score=score)
            caption = tr_html("score <b>{score}</b> ({word})", language=lang, score=score, word=words[score])
            figures.append(f'<figure><img src="{escape(base)}/calibration/{escape(cid)}" alt="{escape(alt)}">'
                           f"<figcaption>{caption}</figcaption></figure>")
    task = (tr_html("You will see two super-resolved versions of the same photo side by side and pick the better one "
                    "with the keys <kbd>←</kbd> / <kbd>→</kbd> (or the buttons).", language=lang) if pairwise else
            tr_html("You will see super-resolved photos one at a time and score each from 1 (bad) to 5 (excellent) "
                    "with the keys <kbd>1</kbd>–<kbd>5</kbd> (or the buttons).", language=lang))
    body = (
        f"<h1>{tr_html('Before you start: the scale', language=lang)}</h1>"
        f"<p>{task}</p><p>" + tr_html("Judge the image as a photo: sharpness, artefacts, naturalness. Below, examples of the "
                                "two ends of the scale (training photos, not the ones you will rate): on the left what "
                                "a <b>1</b> looks like, on the right what a <b>5</b> looks like.", language=lang)
        + f'</p><div class="pairs">{"".join(figures)}</div>'
        f'<form method="post" action="{escape(base)}/calibrated{_keep(keep)}"><p>'
        '<button id="start" type="submit" autofocus>'
        f"{tr_html('I have looked at the examples: start rating', language=lang)}</button></p></form>")
    return _page(tr("Calibration", language=lang), body, lang)


def rating_page(base: str, item_id: str, done: int, total: int, language: str = "en", keep: str | None = None) -> str:
    """One image to rate: ``done`` of ``total`` answered so far."""
    lang = language
    words = scale_words(lang)
    buttons = "".join(f'<button type="submit" name="score" value="{k}" title="{escape(words[k])}">'
                      f"{k} {escape(words[k])}</button>" for k in words)
    src = f"{base}/img/{item_id}"
    body = (
        f'<div class="top"><span id="count">{tr_html("Image {n} of {total}", language=lang, n=done + 1, total=total)}'
        f'</span><progress id="progress" value="{done}" max="{total}">{done}/{total}</progress></div>'
        '<div class="stage">'
        f'<img id="photo" src="{escape(src)}" alt="{escape(tr("image to rate", language=lang))}">'
        f'<div><div id="zoom" data-src="{escape(src)}" '
        f'title="{escape(tr("zoom: move the mouse over the photo", language=lang))}"></div>'
        '<p class="hint">' + tr_html("Move the mouse over the photo to zoom on a crop (<kbd>z</kbd>: 2x / 4x). "
                                     "Score with <kbd>1</kbd>–<kbd>5</kbd>.", language=lang) + '</p></div></div>'
        f'<form class="scores" id="scores" method="post" action="{escape(base)}/answer{_keep(keep)}">'
        f'<input type="hidden" name="item" value="{escape(item_id)}">'
        f'<input type="hidden" name="score" id="score" value="" disabled>{buttons}</form>')
    return _page(tr("Rate image {n} of {total}", language=lang, n=done + 1, total=total), body, lang,
                 f"{base}/app.js")


def pair_page(base: str, pair: str, left: str, right: str, done: int, total: int, language: str = "en",
              keep: str | None = None) -> str:
    """Two versions of one image side by side: pick the better with the keys ← / → (or the buttons)."""
    lang = language
    sides = (("left", left, tr("left image", language=lang), tr_html("← this one is better", language=lang)),
             ("right", right, tr("right image", language=lang), tr_html("this one is better →", language=lang)))
    imgs = "".join(f'<figure><img id="{side}" src="{escape(base)}/img/{escape(item)}" alt="{escape(alt)}">'
                   f'<figcaption><button type="submit" name="choice" value="{side}">{label}'
                   "</button></figcaption></figure>"
                   for side, item, alt, label in sides)
    body = (
        f'<div class="top"><span id="count">{tr_html("Pair {n} of {total}", language=lang, n=done + 1, total=total)}'
        f'</span><progress id="progress" value="{done}" max="{total}">{done}/{total}</progress></div>'
        '<p class="hint">' + tr_html("Which photo looks better (sharper, fewer artefacts, more natural)? Press "
                                     "<kbd>←</kbd> for the left one, <kbd>→</kbd> for the right one.", language=lang)
        + f'</p><form class="duel" id="duel" method="post" action="{escape(base)}/answer{_keep(keep)}">'
        f'<input type="hidden" name="pair" value="{escape(pair)}">'
        f'<input type="hidden" name="choice" id="choice" value="" disabled>{imgs}</form>')
    return _page(tr("Compare pair {n} of {total}", language=lang, n=done + 1, total=total), body, lang,
                 f"{base}/pair.js")


def done_page(total: int, what: str = "images", language: str = "en") -> str:
    """The last page: every image rated (``what="images"``) or every pair compared (``"pairs"``)."""
    lang = language
    said = (tr_html("You have compared all {total} pairs. Your answers are saved; you can close this page.",
                    language=lang, total=total) if what == "pairs" else
            tr_html("You have rated all {total} images. Your answers are saved; you can close this page.",
                    language=lang, total=total))
    body = f'<h1 id="done">{tr_html("Thank you", language=lang)}</h1><p>{said}</p>'
    return _page(tr("Done", language=lang), body, lang)


#: Keys 1-5 answer; the zoom panel follows the mouse over the photo; z toggles the zoom factor.
SCRIPT = r"""
(function () {
  var form = document.getElementById('scores');
  var hidden = document.getElementById('score');
  var photo = document.getElementById('photo');
  var zoom = document.getElementById('zoom');
  var factor = 2, sent = false, fx = 0.5, fy = 0.5;
  function draw() {
    if (!photo.naturalWidth) return;
    var w = photo.naturalWidth * factor, h = photo.naturalHeight * factor;
    var zw = zoom.clientWidth, zh = zoom.clientHeight;
    zoom.style.backgroundImage = 'url("' + zoom.dataset.src + '")';
    zoom.style.backgroundSize = w + 'px ' + h + 'px';
    var x = Math.max(0, Math.min(w - zw, fx * w - zw / 2)), y = Math.max(0, Math.min(h - zh, fy * h - zh / 2));
    zoom.style.backgroundPosition = (-x) + 'px ' + (-y) + 'px';
  }
  photo.addEventListener('load', draw);
  if (photo.complete) draw();
  photo.addEventListener('mousemove', function (e) {
    var r = photo.getBoundingClientRect();
    fx = (e.clientX - r.left) / r.width; fy = (e.clientY - r.top) / r.height; draw();
  });
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    if (e.key === 'z') { factor = factor === 2 ? 4 : 2; draw(); return; }
    if (/^[1-5]$/.test(e.key) && !sent) {
      sent = true; hidden.disabled = false; hidden.value = e.key;
      e.preventDefault(); form.submit();
    }
  });
})();
"""

#: Keys ← and → pick the left or right image (once).
PAIR_SCRIPT = r"""
(function () {
  var form = document.getElementById('duel');
  var hidden = document.getElementById('choice');
  var sent = false;
  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey || sent) return;
    var side = e.key === 'ArrowLeft' ? 'left' : e.key === 'ArrowRight' ? 'right' : null;
    if (!side) return;
    sent = true; hidden.disabled = false; hidden.value = side;
    e.preventDefault(); form.submit();
  });
})();
"""
