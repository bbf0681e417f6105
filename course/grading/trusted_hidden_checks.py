"""The nbgrader preprocessors that decide the hidden checks under the sandboxed grading command
(``nbgrader_config.py`` names them as ``course.grading.trusted_hidden_checks.*``): :class:`PrewarmHiddenChecks`
before a notebook runs, :class:`TrustedHiddenChecks` after it (the decisions :mod:`.trusted_scores` applies).

What they write into a notebook for the student to read (a failed hidden check's reason, the folder's size limit)
is in the notebook's language (``metadata.sr_kit.language``), through the course's catalogue
(``student_client.grader_tr``, ``course/locales``); the grader's log stays English.
"""
import json
import os
import re
import time
from pathlib import Path

from traitlets import Integer

from nbgrader.preprocessors import NbGraderPreprocessor
from sr_utils.i18n import notebook_language

from .check_server_client import SERVERS, check_server_for
from .contract import (CELLS_DIR, DECIDE, DISAGREE_FAILED, EARLY, KERNEL_DISAGREES_RECORD, OVER_DISK_RECORD,
                       SANDBOX_ENV, VERDICTS_ENV)
from .limited_output_execute import KERNEL_REPLY
from .student_client import grader_tr
from .trusted_scores import (HIDDEN_CHECK_CALL, TRUSTED, grade_id, graded_test_cells, kernel_failure, result_shown,
                             settle_outputs)


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


class PrewarmHiddenChecks(NbGraderPreprocessor):
    """Before a notebook with hidden checks runs, ask the submission's check server (``CheckServer``) for what it
    can do already: decide the checks that read only the notebooks' sources (nbgrader has written this notebook
    into the grading folder) and prepare the others from what earlier notebooks left, while the kernel runs. The
    verdicts are collected, and the cells marked, by :class:`TrustedHiddenChecks` after the notebook ran.

    Before the first notebook whose checks train (``checks.OPTIMIZER_CHECKS``), the submission's zygote builds a
    first optimizer (``course.sandbox.kernel_provisioner.KernelZygote.warm``): that notebook's kernel, the later
    ones and the student side forked for those checks find it done."""

    def preprocess(self, nb, resources):
        if not os.environ.get(SANDBOX_ENV):
            return nb, resources
        names = sorted({n for ns in _graded_checks(nb).values() for n in ns})
        if names:
            folder = Path(resources["metadata"]["path"]).resolve()
            from course.sandbox.kernel_provisioner import zygote_of

            zygote = zygote_of(str(folder))
            if zygote is not None:
                from .checks import OPTIMIZER_CHECKS  # (imported already: the run's fork server preloads the checks)

                if OPTIMIZER_CHECKS.intersection(names):  # (its kernel trains, and so does the checks' student side)
                    zygote.warm()
            check_server_for(folder, TrustedHiddenChecks(config=self.config).check_timeout).send(EARLY, names,
                                                                                        notebook_language(nb))
        return nb, resources


class TrustedHiddenChecks(NbGraderPreprocessor):
    """After the notebook ran, get the verdicts of its test cells' hidden checks, decide every graded test cell and
    mark it: the points come from this trusted process only.

    The test cells call ``hidden_check("name")``; under the grading sandbox that call only prints, and the
    submission's check server (:mod:`.check_server`, a trusted process like this one) decides the named checks
    (:mod:`.checks`) against a student-side process sandboxed on the submission folder (read-only; one process
    serves every notebook of the submission, see ``student_client.Session``). Neither trusted process imports
    student code.

    A graded test cell passes only if its kernel run shows no failure (no error output, nothing on stderr, an
    ``ok`` reply: the kernel can hide a failure there, not make a pass) *and* every hidden check it
    calls passed here. Its outputs are then rewritten (:func:`settle_outputs`) so that nbgrader's
    ``determine_grade`` sees exactly one decisive thing: a failed cell starts with one error output (the kernel's
    own error, or ``HiddenCheckFailed`` with the reason); no cell keeps an ``execute_result`` (shown as a plain
    display instead), so nothing the kernel printed, displayed or sent can be read as a score.
    :class:`TrustedScores` applies the same decisions again right before ``SaveAutoGrades``.

    Cells whose kernel run failed are not checked again (their early verdicts, the checks of 01/02 decided while
    the kernel ran, are recorded when there are any); the kernel's error is their reason. The verdicts are written to
    ``course/.grading/verdicts/<student>/<notebook>.json``, each cell's decision to ``cells/<notebook>.json`` there,
    and a submission whose kernel disagrees with the decisions (a cell its kernel ran without failure that the
    trusted side failed; a result or a bare number shown by a graded cell) gets ``kernel-disagrees.txt``: the grader
    lists it for attention. What the cell says is in the notebook's language, and so are the reasons in the verdicts
    file (the server puts them into words for the language it is asked for)."""

    check_timeout = Integer(180, help="seconds per hidden check").tag(config=True)

    def preprocess(self, nb, resources):
        from course.sandbox import SandboxSpec, enforce_folder_size_limit, prune_deep_folders, remove_special_files

        spec = SandboxSpec.from_env()
        lang = notebook_language(nb)
        folder = Path(resources["metadata"]["path"]).resolve()
        record = Path(os.environ[VERDICTS_ENV]) / resources["nbgrader"]["student"]
        notebook = resources["nbgrader"]["notebook"]
        graded = graded_test_cells(nb)
        replies = {i: c.metadata.pop(KERNEL_REPLY, None) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
        ran = any(r is not None for r in replies.values())  # (LimitedOutputExecute recorded the replies)
        kernel = {i: kernel_failure(nb.cells[i], replies.get(i), ran) for i in graded}
        decided = resources.setdefault(TRUSTED, {})
        removed = remove_special_files(folder)  # before nbgrader writes anything there again
        if removed:
            self.log.warning("removed links/special files left by the submission: %s", ", ".join(removed))
        pruned = prune_deep_folders(folder)  # nbgrader walks the folder with recursion at the end
        if pruned:
            self.log.warning("removed folders nested too deep by the submission: %s", ", ".join(pruned)[:500])
        over = enforce_folder_size_limit(folder, spec.limits.folder_bytes) if spec is not None else None
        if over:  # the disk bound of a submission: this notebook scores 0, the grader lists it for attention
            record.mkdir(parents=True, exist_ok=True)
            (record / OVER_DISK_RECORD).write_text(f"{notebook}: {over}")
            said = folder_size_limit_message(over, lang)
            for i in graded:
                decided[grade_id(nb.cells[i])] = {"passed": False, "ename": "DiskBoundExceeded", "evalue": said}
                settle_outputs(nb.cells[i], decided[grade_id(nb.cells[i])])
            return nb, resources
        wanted = {i: names for i, names in graded.items() if names and kernel[i] is None}
        names = sorted({n for ns in wanted.values() for n in ns})
        verdicts = {}
        if names:
            t0 = time.perf_counter()
            server = check_server_for(folder, self.check_timeout)
            server.send(DECIDE, names, lang)
            verdicts = server.answer()
            self.log.info("hidden checks %s: waited %.1f s", ", ".join(names), time.perf_counter() - t0)
        elif folder in SERVERS and SERVERS[folder].unanswered:  # only the early answer (every cell errored)
            verdicts = SERVERS[folder].answer()
        cells, disagree = {}, []
        for i, ns in graded.items():
            cell, gid = nb.cells[i], grade_id(nb.cells[i])
            failed = [(n, verdicts.get(n, (False, ""))[1]) for n in ns
                      if (n in verdicts or i in wanted) and not verdicts.get(n, (False, ""))[0]]
            checked = [grader_tr("hidden check {name!r} failed: {reason}", language=lang, name=n,
                                 reason=why or grader_tr("no verdict", language=lang)) for n, why in failed]
            if kernel[i] is not None:
                decision = {"passed": False, "ename": kernel[i][0], "evalue": kernel[i][1]}
            elif checked:
                decision = {"passed": False, "ename": "HiddenCheckFailed", "evalue": checked[0]}
            else:
                decision = {"passed": True}
            shown = result_shown(cell)
            flags = [DISAGREE_FAILED] * (kernel[i] is None and not decision["passed"]) + [shown] * bool(shown)
            disagree += [f"{notebook}/{gid} {flag}" for flag in flags]
            if flags:
                self.log.warning("the kernel's outputs of %s/%s disagree with the trusted side: %s", notebook, gid,
                                 ", ".join(flags))
            decided[gid] = decision
            settle_outputs(cell, decision)
            cells[gid] = {**decision, "kernel": "ok" if kernel[i] is None else f"{kernel[i][0]}: {kernel[i][1]}",
                          "checks": {n: {"passed": verdicts[n][0], "reason": verdicts[n][1]} for n in ns
                                     if n in verdicts}}
        record.mkdir(parents=True, exist_ok=True)
        (record / f"{notebook}.json").write_text(json.dumps(
            {n: {"passed": ok, "reason": why} for n, (ok, why) in verdicts.items()}, indent=1))
        (record / CELLS_DIR).mkdir(exist_ok=True)
        (record / CELLS_DIR / f"{notebook}.json").write_text(json.dumps(cells, indent=1, ensure_ascii=False))
        if disagree:
            with open(record / KERNEL_DISAGREES_RECORD, "a") as f:
                f.write("".join(line[:300] + "\n" for line in disagree))
        return nb, resources


# what course.sandbox.enforce_folder_size_limit says (English, for the grader's log and summary), read back for the cell
FOLDER_LIMIT_REPORT = re.compile(r"^wrote (?P<total>\d+) MB into its grading folder \(at most (?P<limit>\d+) MB\)")


def folder_size_limit_message(over: str, lang: str) -> str:
    """What a test cell says when its notebook wrote past the disk bound, in ``lang`` (``over`` as it is if it
    does not read as ``enforce_folder_size_limit``'s words)."""
    m = FOLDER_LIMIT_REPORT.match(over)
    if m is None:
        return over
    return grader_tr("wrote {total} MB into its grading folder (at most {limit} MB): its files were removed and the "
                     "notebook scores 0", language=lang, total=int(m["total"]), limit=int(m["limit"]))
