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
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from nbformat.v4 import new_output  # noqa: E402
from traitlets import Integer  # noqa: E402

from nbgrader.preprocessors import Execute  # noqa: E402

HIDDEN_CHECK_CALL = re.compile(r"""hidden_check\(\s*["'](\w+)["']""")


class LimitedOutputExecute(Execute):
    """nbgrader's Execute, but a cell's text output stops being recorded past ``max_output_bytes``.

    A submission printing gigabytes would otherwise be held in the grader's memory and written into the
    autograded notebook and the feedback. The cell keeps its first bytes and a note."""

    max_output_bytes = Integer(1 << 20, help="text output kept per cell, in bytes").tag(config=True)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self._output_bytes = getattr(self, "_output_bytes", {})
        before = used.get(cell_index, 0)
        used[cell_index] = before + size
        if before + size <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if before <= self.max_output_bytes:
            outs.append(new_output("stream", name="stdout",
                                   text=f"\n[output truncated by the grader after {self.max_output_bytes} bytes]\n"))
        return None


class TrustedHiddenChecks(NbGraderPreprocessor):
    """Run the hidden checks of this notebook's test cells outside the kernel, after it ran, and mark the cells.

    The test cells call ``hidden_check("name")``; under the grading sandbox that call only prints (the kernel
    cannot see the checks), and this preprocessor, in the trusted nbgrader process, runs the named checks in a
    fresh sandbox on the folder the notebook left behind. A failed check adds an error output to its cell, so
    nbgrader scores the cell 0 whatever the kernel did (patched asserts or a patched ``hidden_check``). The
    verdicts are also written to ``course/.grading/verdicts/<student>/<notebook>.json`` for the breakdown."""

    check_timeout = Integer(180, help="seconds per hidden check").tag(config=True)

    def preprocess(self, nb, resources):
        import sys

        course_root = Path(os.environ["SR_KIT_COURSE_ROOT"])
        # the kit's course/ package (the grading command says where; a course copy may not have it)
        sys.path.insert(0, os.environ.get("SR_KIT_CODE_ROOT") or str(Path(__file__).resolve().parents[2]))
        from course.sandbox import SandboxSpec, check_bundle, remove_special_files, run_checks

        spec = SandboxSpec.from_env()
        folder = Path(resources["metadata"]["path"]).resolve()
        removed = remove_special_files(folder)  # before nbgrader writes anything there again
        if removed:
            self.log.warning("removed links/special files left by the submission: %s", ", ".join(removed))
        wanted = {}
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
                continue
            names = HIDDEN_CHECK_CALL.findall(cell.source)
            already_failed = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            if names and not already_failed:
                wanted[i] = names
        checks = sorted({n for names in wanted.values() for n in names})
        verdicts = {}
        if checks:
            bundle = check_bundle(Path(__file__).resolve().parent,
                                  course_root / "source" / resources["nbgrader"]["assignment"])
            verdicts = run_checks(spec, bundle, folder, checks, timeout=self.check_timeout)
        for i, names in wanted.items():
            failed = [(n, verdicts[n][1]) for n in names if not verdicts.get(n, (False, ""))[0]]
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
