"""Nothing a student wrote runs in a browser (formgrader, feedback): :class:`SanitizeNotebook`
(``nbgrader_config.py`` names it as ``course.grading.sanitize_notebook.SanitizeNotebook``) and its HTML and markdown
sanitisers.

The notes it leaves in place of removed outputs are in the notebook's language (``metadata.sr_kit.language``),
through the course's catalogue (``student_client.grader_tr``, ``course/locales``).
"""
import json
import re

from nbformat.v4 import new_output
from traitlets import Integer

from nbgrader.preprocessors import NbGraderPreprocessor
from sr_utils.i18n import notebook_language

from .student_client import grader_tr

SAFE_MIME = {"text/plain", "text/html", "text/markdown", "image/png", "image/jpeg", "image/gif"}
# MathJax commands that make links, classes, styles or load code: shown as text instead
MATHJAX_ACTIVE = re.compile(r"\\(href|url|class|cssId|style|unicode|require|data|html)\b")


def clean_html(text: str) -> str:
    """An allow-list HTML sanitiser (nh3/ammonia): no script, style, event handler, ``javascript:`` URL, SVG or
    form survives; MathJax's active commands are neutralised."""
    import nh3

    return MATHJAX_ACTIVE.sub(r"\\text{\1}", nh3.clean(text, link_rel="noopener noreferrer nofollow"))


def clean_markdown(text: str) -> str:
    """A markdown answer as nbconvert would render it, then sanitised, kept as one line of HTML (so that rendering
    it again as markdown cannot make new links from the escaped text)."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    html = clean_html(markdown2html_mistune(text))
    return '<div class="sanitised-answer">' + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


class SanitizeNotebook(NbGraderPreprocessor):
    """Make a submitted notebook safe to render: markdown sources and HTML/markdown outputs are sanitised (an
    allow-list, ``nh3``), any other output kind than text, PNG/JPEG/GIF images (no JavaScript, SVG, LaTeX, widget
    views...) is dropped, output and cell metadata other than nbgrader's and non-image attachments are removed.
    Runs after execution in autograde (so the stored notebook the formgrader renders carries no live script) and
    again before feedback. Then the notebook is bounded (``max_notebook_bytes``): the largest outputs are
    replaced by a note until it fits."""

    max_notebook_bytes = Integer(20 << 20, help="largest autograded notebook, in bytes").tag(config=True)
    _language = "en"  # of the notebook being sanitised: the notes left in place of removed outputs

    def preprocess(self, nb, resources):
        self._language = notebook_language(nb)
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:
            cell.metadata = type(cell.metadata)({k: v for k, v in cell.metadata.items() if k == "nbgrader"})
            if "attachments" in cell:
                cell.attachments = type(cell.attachments)({
                    name: {m: v for m, v in bundle.items() if m in ("image/png", "image/jpeg", "image/gif")}
                    for name, bundle in cell.attachments.items() if isinstance(bundle, dict)})
            if cell.cell_type == "markdown":
                cell.source = clean_markdown(cell.source)
            elif cell.cell_type == "raw":
                cell.source = clean_html(cell.source)
                cell.metadata.pop("format", None)
            for out in cell.get("outputs", []):
                self._clean_output(out)
        self._bound(nb)
        return nb, resources

    def _clean_output(self, out) -> None:
        if "metadata" in out:
            out.metadata = type(out.metadata)()
        data = out.get("data")
        if data is None:
            return
        for mime in list(data):
            value = data[mime]
            value = "".join(value) if isinstance(value, list) else value
            if mime not in SAFE_MIME or not isinstance(value, str):
                del data[mime]
            elif mime == "text/html":
                data[mime] = clean_html(value)
            elif mime == "text/markdown":
                data[mime] = clean_markdown(value)
        if not data:
            data["text/plain"] = grader_tr("[output removed by the grader: only text and images are kept]",
                                           language=self._language)

    def _bound(self, nb) -> None:
        def size(obj):
            return len(json.dumps(obj, default=str))

        total = size(nb)
        if total <= self.max_notebook_bytes:
            return
        outputs = sorted(((size(o), c, i) for c in nb.cells for i, o in enumerate(c.get("outputs", []))),
                         key=lambda t: -t[0])
        for n, cell, i in outputs:
            if total <= self.max_notebook_bytes:
                break
            out = cell.outputs[i]
            if out.get("output_type") == "error" or out.get("name") == "stderr":
                continue  # the reason a test cell lost its points stays
            note = grader_tr("[output removed by the grader: the notebook was too large]", language=self._language)
            cell.outputs[i] = new_output("stream", name="stdout", text=note + "\n")
            total -= n
