"""The class server's formgrader autogrades nothing: nbgrader's autograde there would run each student's
notebooks as the grader account, outside any sandbox, with the solutions and the gradebook in reach. Set in
place of the autograde's preprocessors when ``$SR_KIT_FORMGRADER_SERVICE`` is set and the run is not the grading
command's (nbgrader_config.py): every notebook fails before anything of it runs, with what to do instead."""
from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor


class UnsandboxedAutogradeRefused(RuntimeError):
    pass


class RefuseUnsandboxedAutograde(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        raise UnsandboxedAutogradeRefused(
            "autograde in the formgrader would run student code as the grader account, outside any sandbox: "
            "nothing was run. Grade with `python -m course.grade superres` on the server (as root: sandboxed; "
            "docs/hub.md), then grade the written answers here")
