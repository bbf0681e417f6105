"""The rating web app (Starlette, served by uvicorn): one private link per rater, nothing for anyone else.

Security model (docs/mos.md says more):

- A rater's link is ``/r/<token>``, ``token`` from :func:`secrets.token_urlsafe` (24 bytes). Every route is under it;
  the token is compared with :func:`hmac.compare_digest` against every rater's (no early exit). A missing, forged or
  unknown link gets ``404`` with an empty body, whatever follows it.
- Images are served by opaque per-study ids, and only those in the rater's own order (or the calibration examples):
  a rater cannot fetch another rater's items or their own submission's images; no page or header names a student.
- An answer is validated (``item`` in the rater's order, ``score`` an integer 1..5, a small form body) before it is
  stored; anything else is ``400``. Answering again replaces the earlier score.
- Responses carry ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` (the token is in the URL), a
  Content-Security-Policy that allows only this origin's images and script, and ``X-Frame-Options: DENY``.
"""
from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from course.mos.pages import SCRIPT, calibration_page, done_page, rating_page
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


def make_app(study: Study) -> Starlette:
    """The app for ``study``: answers go to ``study.db_path``."""
    store = AnswerStore(study.db_path)
    tokens = [(t.encode(), r) for r, t in study.tokens.items()]
    orders = {r: list(o) for r, o in study.meta["orders"].items()}
    order_sets = {r: set(o) for r, o in orders.items()}
    calibration = [c["id"] for c in study.meta["calibration"]]
    pairs = list(zip(calibration[0::2], calibration[1::2]))

    def rater_of(request: Request) -> str | None:
        given = request.path_params.get("token", "").encode()
        found = None
        for token, rater in tokens:
            if hmac.compare_digest(given, token):
                found = rater
        return found

    def base(request: Request) -> str:
        return "/r/" + request.path_params["token"]

    def html(text: str) -> HTMLResponse:
        return HTMLResponse(text, headers=_HEADERS)

    def page(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        if pairs and not store.is_calibrated(rater):
            return html(calibration_page(base(request), pairs))
        answered = store.answered(rater)
        order = orders[rater]
        left = [i for i in order if i not in answered]
        if not left:
            return html(done_page(len(order)))
        return html(rating_page(base(request), left[0], len(order) - len(left), len(order)))

    def calibrated(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        store.mark_calibrated(rater)
        return RedirectResponse(base(request), status_code=303, headers=_HEADERS)

    async def answer(request: Request) -> Response:
        rater = rater_of(request)
        if rater is None:
            return _nothing()
        if pairs and not await run_in_threadpool(store.is_calibrated, rater):
            return _nothing(400)  # the calibration page comes first
        body = await request.body()
        if len(body) > _MAX_FORM_BYTES:
            return _nothing(400)
        form = parse_qs(body.decode("ascii", "replace"), strict_parsing=False, max_num_fields=4)
        item, score = form.get("item", [""]), form.get("score", [""])
        if len(item) != 1 or len(score) != 1 or item[0] not in order_sets[rater] \
                or score[0] not in ("1", "2", "3", "4", "5"):
            return _nothing(400)
        await run_in_threadpool(store.answer, rater, item[0], int(score[0]))
        return RedirectResponse(base(request), status_code=303, headers=_HEADERS)

    def image(request: Request) -> Response:
        rater = rater_of(request)
        item = request.path_params["item"]
        if rater is None or item not in order_sets[rater]:
            return _nothing()
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

    async def not_found(request: Request, exc) -> Response:
        return _nothing(404 if getattr(exc, "status_code", 404) == 404 else exc.status_code)

    routes = [
        Route("/r/{token}", page, methods=["GET"]),
        Route("/r/{token}/calibrated", calibrated, methods=["POST"]),
        Route("/r/{token}/answer", answer, methods=["POST"]),
        Route("/r/{token}/img/{item}", image, methods=["GET"]),
        Route("/r/{token}/calibration/{item}", calibration_image, methods=["GET"]),
        Route("/r/{token}/app.js", script, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def serve(study: Study, host: str = "127.0.0.1", port: int = 8765, log=print) -> None:
    """Print every rater's link and serve ``study`` until interrupted."""
    import uvicorn

    from course.mos.study import write_links

    shown = host if host not in ("0.0.0.0", "::") else "<this machine's address>"
    links = write_links(study, f"http://{shown}:{port}")
    log(f"rating {study.meta['split']}: {len(study.meta['items'])} items, {len(study.tokens)} raters; "
        f"private links in {links} (send each rater only their own)")
    for rater, token in study.tokens.items():
        log(f"  {rater}: http://{shown}:{port}/r/{token}")
    uvicorn.run(make_app(study), host=host, port=port, log_level="warning", server_header=False,
                date_header=False)
