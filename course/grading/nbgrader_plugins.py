"""nbgrader preprocessors of the course kit (loaded by nbgrader_config.py)."""
from nbgrader.preprocessors import NbGraderPreprocessor


class StripCellTags(NbGraderPreprocessor):
    """Remove every cell tag before autograding.

    A student who tags the test cells of an unsolved notebook ``skip-execution`` (or ``raises-exception``) would
    otherwise have them skipped (or their errors ignored) and get full marks (reproduced with nbgrader 0.9.6).
    """

    def preprocess_cell(self, cell, resources, index):
        if "tags" in cell.metadata:
            del cell.metadata["tags"]
        return cell, resources


# ---------------------------------------------------------------------------------------------------------
# Used by the sandboxed grading command (python -m course.grade), see nbgrader_config.py
# ---------------------------------------------------------------------------------------------------------
import atexit  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from nbformat.v4 import new_output  # noqa: E402
from traitlets import Integer  # noqa: E402

from nbgrader.preprocessors import Execute  # noqa: E402

HIDDEN_CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']""")


class LimitedOutputExecute(Execute):
    """nbgrader's Execute with a budget on everything the kernel sends back.

    Every iopub message that can add to the notebook (stream, display data, execute results, errors, display
    *updates*, comm/widget messages), counted with its data, metadata and transient parts, uses the budget of
    its cell (``max_output_bytes``) and of the notebook (``max_notebook_output_bytes``). Past either, messages
    are dropped and the cell gets one note. Widget state is not stored. A submission printing gigabytes (or
    updating one display forever) cannot grow the grader's memory, the autograded notebook or the feedback."""

    max_output_bytes = Integer(1 << 20, help="output kept per cell, in bytes (all kinds)").tag(config=True)
    max_notebook_output_bytes = Integer(8 << 20, help="output kept per notebook, in bytes").tag(config=True)
    store_widget_state = False

    def process_message(self, msg, cell, cell_index):
        kind = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        if kind in ("status", "execute_input", "execute_reply"):
            return super().process_message(msg, cell, cell_index)
        try:
            size = len(json.dumps(msg.get("content", {}), default=str))
        except (TypeError, ValueError):
            size = self.max_notebook_output_bytes + 1
        used = self._budget = getattr(self, "_budget", {})
        cell_before, total_before = used.get(cell_index, 0), used.get("total", 0)
        used[cell_index], used["total"] = cell_before + size, total_before + size
        if cell_before + size <= self.max_output_bytes and total_before + size <= self.max_notebook_output_bytes:
            return super().process_message(msg, cell, cell_index)
        content = msg.get("content", {})
        grading = kind == "error" or kind == "execute_result" or (kind == "stream" and content.get("name") == "stderr")
        if grading and used.get(("kept", cell_index), 0) < 3:
            # what decides a cell's score (an error, stderr, a result) is never dropped: kept, shortened
            used[("kept", cell_index)] = used.get(("kept", cell_index), 0) + 1
            short = {"error": {"ename": str(content.get("ename", ""))[:100], "evalue": str(content.get("evalue", ""))
                               [:1000], "traceback": []},
                     "stream": {"name": "stderr", "text": str(content.get("text", ""))[:1000]},
                     "execute_result": {"execution_count": content.get("execution_count"), "metadata": {},
                                        "data": {"text/plain": str(content.get("data", {}).get("text/plain", ""))
                                                 [:1000]}}}[kind]
            return super().process_message({**msg, "content": short}, cell, cell_index)
        if not used.get(("noted", cell_index)):
            used[("noted", cell_index)] = True
            cell.outputs.append(new_output("stream", name="stdout", text=f"\n[output truncated by the grader: at "
                                           f"most {self.max_output_bytes} bytes per cell and "
                                           f"{self.max_notebook_output_bytes} per notebook]\n"))
        return None


_SESSIONS = {}  # submission folder -> its student-side process, kept for the submission's next notebooks


def _session(folder: Path, launch):
    """The student-side session of ``folder`` (nbgrader makes a new preprocessor for each notebook, so it is kept
    here); another submission's is closed first. All are closed when this nbgrader process ends."""
    from student_client import Session

    if folder not in _SESSIONS:
        _close_sessions()
        _SESSIONS[folder] = Session(folder, launch)
    return _SESSIONS[folder]


def _graded_checks(nb) -> dict[int, list[str]]:
    """{cell index: hidden checks its source calls} for the autograded test cells."""
    found = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            names = HIDDEN_CHECK_CALL.findall(cell.source)
            if names:
                found[i] = names
    return found


def _grading_path() -> None:
    import sys

    # the kit's course/ package (the grading command says where; a course copy may not have it), and this folder
    sys.path.insert(0, os.environ.get("SR_KIT_CODE_ROOT") or str(Path(__file__).resolve().parents[2]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))


class PrewarmHiddenChecks(NbGraderPreprocessor):
    """Before a notebook with hidden checks runs in the sandbox, start the submission's student-side process (a
    separate, sandboxed process: it imports torch while the kernel works, then waits; it reads the student's
    notebooks only when the checks ask, after the notebook ran). Nothing is checked or decided here.

    (Running the checks themselves in a thread of this process while the kernel ran was tried: it made the
    notebook's own output handling, in this process, slow enough under load for nbgrader's 4 s IOPub timeout to
    fail a whole submission. A separate trusted process could do it.)"""

    def preprocess(self, nb, resources):
        spec_text = os.environ.get("SR_KIT_SANDBOX")
        if not spec_text or not _graded_checks(nb):
            return nb, resources
        _grading_path()
        from course.sandbox import SandboxSpec, student_launcher

        spec = SandboxSpec.from_json(spec_text)
        if spec.enabled:
            folder = Path(resources["metadata"]["path"]).resolve()
            timeout = TrustedHiddenChecks(config=self.config).check_timeout
            _session(folder, student_launcher(spec, folder)).start(timeout)
        return nb, resources


@atexit.register
def _close_sessions() -> None:
    while _SESSIONS:
        _SESSIONS.popitem()[1].close()


class TrustedHiddenChecks(NbGraderPreprocessor):
    """Decide the hidden checks of this notebook's test cells here, after the notebook ran, and mark the cells.

    The test cells call ``hidden_check("name")``; under the grading sandbox that call only prints, and this
    preprocessor, in the trusted nbgrader process, runs the named checks (``checks.py``) against a student-side
    process sandboxed on the submission folder (read-only; one process serves every notebook of the submission,
    see ``student_client.Session``). This process never imports student code. A failed check adds an error output
    to its cell, so nbgrader scores the cell 0 whatever the kernel did. The verdicts are also written to
    ``course/.grading/verdicts/<student>/<notebook>.json``."""

    check_timeout = Integer(180, help="seconds per hidden check").tag(config=True)

    def preprocess(self, nb, resources):
        _grading_path()
        from course.sandbox import SandboxSpec, enforce_folder_bound, remove_special_files, student_launcher

        import checks

        spec = SandboxSpec.from_env()
        folder = Path(resources["metadata"]["path"]).resolve()
        removed = remove_special_files(folder)  # before nbgrader writes anything there again
        if removed:
            self.log.warning("removed links/special files left by the submission: %s", ", ".join(removed))
        over = enforce_folder_bound(folder, spec.limits.folder_bytes) if spec is not None else None
        if over:  # the disk bound of a submission: this notebook scores 0, the grader lists it for attention
            record = Path(os.environ["SR_KIT_VERDICTS_DIR"]) / resources["nbgrader"]["student"]
            record.mkdir(parents=True, exist_ok=True)
            (record / "over-disk-bound.txt").write_text(f"{resources['nbgrader']['notebook']}: {over}")
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
                    cell.outputs.append(new_output("error", ename="DiskBoundExceeded", evalue=over,
                                                   traceback=[f"DiskBoundExceeded: {over}"]))
            return nb, resources
        wanted = {i: names for i, names in _graded_checks(nb).items()
                  if not any(o.get("output_type") == "error" for o in nb.cells[i].get("outputs", []))}
        names = sorted({n for ns in wanted.values() for n in ns})
        verdicts = {}
        if names:
            launch = student_launcher(spec, folder) if spec is not None and spec.enabled else None
            t0 = time.perf_counter()
            verdicts = checks.run_checks(checks.CHECKS, names, folder, launch, timeout=self.check_timeout,
                                         session=_session(folder, launch))
            self.log.info("hidden checks %s: %.1f s", ", ".join(names), time.perf_counter() - t0)
        for i, ns in wanted.items():
            failed = [(n, verdicts[n][1]) for n in ns if not verdicts.get(n, (False, ""))[0]]
            if failed:
                name, reason = failed[0]
                text = f"hidden check {name!r} failed: {reason or 'no verdict'}"
                nb.cells[i].outputs.append(new_output("error", ename="HiddenCheckFailed", evalue=text,
                                                      traceback=[f"HiddenCheckFailed: {text}"]))
        record = Path(os.environ["SR_KIT_VERDICTS_DIR"]) / resources["nbgrader"]["student"]
        record.mkdir(parents=True, exist_ok=True)
        (record / f"{resources['nbgrader']['notebook']}.json").write_text(json.dumps(
            {n: {"passed": ok, "reason": why} for n, (ok, why) in verdicts.items()}, indent=1))
        return nb, resources


# ---------------------------------------------------------------------------------------------------------
# Nothing a student wrote runs in a browser (formgrader, feedback)
# ---------------------------------------------------------------------------------------------------------
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

    def preprocess(self, nb, resources):
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

    @staticmethod
    def _clean_output(out) -> None:
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
            data["text/plain"] = "[output removed by the grader: only text and images are kept]"

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
            cell.outputs[i] = new_output("stream", name="stdout",
                                         text="[output removed by the grader: the notebook was too large]\n")
            total -= n
