"""The rating web app (Starlette, served by uvicorn): one private link per rater, nothing for anyone else.

Security model (docs/mos.md says more):

- A rater's link is ``/r/<token>``, ``token`` from :func:`secrets.token_urlsafe` (24 bytes). Every route is under it;
  the token is compared with :func:`hmac.compare_digest` against every rater's (no early exit). A missing, forged or
  unknown link gets ``404`` with an empty body, whatever follows it.
- Images are served by opaque per-study ids, and only those in the rater's own order (or the calibration examples):
  a rater cannot fetch another rater's items or their own submission's images; no page or header names a student.
- An answer is validated (exactly the fields ``item`` in the rater's order and ``score`` an integer 1..5, an ASCII
  form body of at most 256 bytes, read no further than that) before it is stored; anything else is ``400`` with a
  one-line reason, and stores nothing. Answering again replaces the earlier score.
- Pages and refusals are in the rater's language (:mod:`course.mos.i18n`: ``?lang=``, the study's, the browser's);
  the language changes words only, never what is accepted or stored.
- Responses carry ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the token is in the URL), a
  Content-Security-Policy that allows only this origin's images and script, and ``X-Frame-Options: DENY``.
"""
from __future__ import annotations

import hmac
import random
import secrets
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from course.mos.i18n import check_language, negotiate, normalise, tr
from course.mos.pages import PAIR_SCRIPT, SCRIPT, calibration_page, done_page, pair_page, rating_page
from course.mos.pairwise import next_pair
from course.mos.store import AnswerStore
from course.mos.study import Study

__all__ = ["make_app", "serve"]

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'unsafe-inline'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
}
_MAX_FORM_BYTES = 256


def _nothing(status: int = 404) -> Response:
    return Response(b"", status_code=status, headers=_HEADERS)


def _refused(reason: str, language: str, status: int = 400) -> Response:
    """A refusal with its (translated) reason, for a request under a valid link (an unknown link still gets
    nothing). Plain text: nothing in it is markup."""
    return Response(tr("refused: {reason}", language=language, reason=reason) + "\n", status_code=status,
                    media_type="text/plain", headers={**_HEADERS, "Vary": "Accept-Language"})


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes (never read whole into memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return body


def _parse_choice(body: bytes, language: str = "en") -> tuple[str, str] | str:
    """``(pair id, "left" | "right")`` of a pairwise form body ``pair=<id>&choice=<side>``, or why it is refused
    (in ``language``)."""
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=2, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return tr("expected exactly the form fields pair and choice", language=language)
    if set(form) != {"pair", "choice"} or len(form["pair"]) != 1 or len(form["choice"]) != 1:
        return tr("expected exactly one pair and one choice", language=language)
    if form["choice"][0] not in ("left", "right"):
        return tr("the choice must be left or right", language=language)
    return form["pair"][0], form["choice"][0]


def _parse_answer(body: bytes, allowed: set[str], language: str = "en") -> tuple[str, int] | str:
    """``(item, score)`` of a form body ``item=<id>&score=<1..5>``, or the reason it is refused (in ``language``)."""
    try:
        text = body.decode("ascii")
        form = parse_qs(text, strict_parsing=True, max_num_fields=2, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return tr("expected exactly the form fields item and score", language=language)
    if set(form) != {"item", "score"} or len(form["item"]) != 1 or len(form["score"]) != 1:
        return tr("expected exactly one item and one score", language=language)
    item, score = form["item"][0], form["score"][0]
    if item not in allowed:
        return tr("this item is not in your set", language=language)
    if score not in ("1", "2", "3", "4", "5"):
        return tr("the score must be one of 1, 2, 3, 4, 5", language=language)
    return item, int(score)


def make_app(study: Study, language: str | None = None) -> Starlette:
    """The app for ``study``: answers go to ``study.db_path``. Pages speak ``language`` (default: the study's,
    else the browser's), unless a request says ``?lang=`` (:func:`course.mos.i18n.negotiate`)."""
    configured = check_language(language) if language else study.meta.get("language")
    store = AnswerStore(study.db_path)
    tokens = [(t.encode(), r) for r, t in study.tokens.items()]
    orders = {r: list(o) for r, o in study.meta["orders"].items()}
    order_sets = {r: set(o) for r, o in orders.items()}
    calibration = [c["id"] for c in study.meta["calibration"]]
    pairs = list(zip(calibration[0::2], calibration[1::2]))
    pairwise = study.meta.get("mode") == "pairwise"
    total_pairs = study.meta.get("pairs_per_rater", 0)

    def rater_of(request: Request) -> str | None:
        given = request.path_params.get("token", "").encode()
        found = None
        for token, rater in tokens:
            if hmac.compare_digest(given, token):
                found = rater
        return found

    def base(request: Request) -> str:
        return "/r/" + request.path_params["token"]

    def chosen(request: Request) -> str | None:
        """The rater's own ``?lang=`` choice (a language of the kit), kept in their forms and redirects."""
        return normalise(request.query_params.get("lang"))

    def language_of(request: Request) -> str:
        return negotiate(chosen(request), configured, request.headers.get("accept-language"))

    def back(request: Request) -> Response:
        """After a POST: to the rater's page, in the language they chose."""
        keep = chosen(request)
        return RedirectResponse(base(request) + (f"?lang={keep}" if keep else ""), status_code=303,
                                headers=_HEADERS)

    def html(text: str) -> HTMLResponse:
        return HTMLResponse(text, headers={**_HEADERS, "Vary": "Accept-Language"})

    def page(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        lang, keep = language_of(request), chosen(request)
        if pairs and not store.is_calibrated(rater):
            return html(calibration_page(base(request), pairs, pairwise, lang, keep))
        if pairwise:
            return html(pair_view(request, rater, lang, keep))
        answered = store.answered(rater)
        order = orders[rater]
        left = [i for i in order if i not in answered]
        if not left:
            return html(done_page(len(order), language=lang))
        return html(rating_page(base(request), left[0], len(order) - len(left), len(order), lang, keep))

    def pair_view(request: Request, rater: str, lang: str, keep: str | None) -> str:
        pending = store.pending_pair(rater)
        done = sum(1 for c in store.all_comparisons() if c[0] == rater)
        if pending is None:
            nxt = next_pair(study.meta, rater, store.all_comparisons(), random.Random(secrets.randbits(64)))
            if nxt is None:
                return done_page(done, "pairs", lang)
            pending = store.set_pending(rater, secrets.token_hex(8), *nxt)
        return pair_page(base(request), *pending, done, total_pairs, lang, keep)

    def calibrated(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        store.mark_calibrated(rater)
        return back(request)

    async def answer(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        lang = language_of(request)
        if pairs and not await run_in_threadpool(store.is_calibrated, rater):
            return _refused(tr("the calibration page comes first", language=lang), lang)
        body = await _bounded_body(request, _MAX_FORM_BYTES)
        if body is None:
            return _refused(tr("the body is over {limit} bytes", language=lang, limit=_MAX_FORM_BYTES), lang)
        if pairwise:
            parsed = _parse_choice(body, lang)
            if isinstance(parsed, str):
                return _refused(parsed, lang)
            if not await run_in_threadpool(store.answer_pair, rater, *parsed):
                return _refused(tr("this pair is not the one you were shown (answered already?)", language=lang),
                                lang)
            return back(request)
        parsed = _parse_answer(body, order_sets[rater], lang)
        if isinstance(parsed, str):
            return _refused(parsed, lang)
        await run_in_threadpool(store.answer, rater, *parsed)
        return back(request)

    def image(request: Request) -> Response:
        rater = rater_of(request)
        item = request.path_params["item"]
        if rater is None or item not in order_sets[rater]:
            return _nothing()
        if pairwise and item not in (store.pending_pair(rater) or ())[1:]:
            return _nothing()  # only the pair on screen
        return FileResponse(study.folder / "images" / f"{item}.png", media_type="image/png", headers=_HEADERS)

    def calibration_image(request: Request) -> Response:
        rater = rater_of(request)
        cid = request.path_params["item"]
        if rater is None or cid not in calibration:
            return _nothing()
        return FileResponse(study.folder / "calibration" / f"{cid}.png", media_type="image/png", headers=_HEADERS)

    def script(request: Request) -> Response:
        if rater_of(request) is None:
            return _nothing()
        return Response(SCRIPT, media_type="text/javascript", headers=_HEADERS)

    def pair_script(request: Request) -> Response:
        if rater_of(request) is None:
            return _nothing()
        return Response(PAIR_SCRIPT, media_type="text/javascript", headers=_HEADERS)

    async def not_found(request: Request, exc) -> Response:
        return _nothing(404 if getattr(exc, "status_code", 404) == 404 else exc.status_code)

    routes = [
        Route("/r/{token}", page, methods=["GET"]),
        Route("/r/{token}/calibrated", calibrated, methods=["POST"]),
        Route("/r/{token}/answer", answer, methods=["POST"]),
        Route("/r/{token}/img/{item}", image, methods=["GET"]),
        Route("/r/{token}/calibration/{item}", calibration_image, methods=["GET"]),
        Route("/r/{token}/app.js", script, methods=["GET"]),
        Route("/r/{token}/pair.js", pair_script, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def serve(study: Study, host: str = "127.0.0.1", port: int = 8765, log=print, language: str | None = None) -> None:
    """Print every rater's link and serve ``study`` until interrupted (pages in ``language``, default the
    study's, else each browser's)."""
    import uvicorn

    from course.mos.study import write_links

    shown = host if host not in ("0.0.0.0", "::") else "<this machine's address>"
    links = write_links(study, f"http://{shown}:{port}")
    speaks = language or study.meta.get("language") or "each rater's browser's language"
    log(f"rating {study.meta['split']}: {len(study.meta['items'])} items, {len(study.tokens)} raters; "
        f"private links in {links} (send each rater only their own); pages in {speaks} (a link with "
        "?lang=en|zh-CN overrides it)")
    for rater, token in study.tokens.items():
        log(f"  {rater}: http://{shown}:{port}/r/{token}")
    uvicorn.run(make_app(study, language), host=host, port=port, log_level="warning", server_header=False,
                date_header=False)
