"""Run one hidden check on one submission, in an isolated process.

    python -I course/grading/run_check.py CHECK --submission FOLDER      (a one-time token on stdin)

Called by ``sr_utils.notebook.hidden_check`` from the test cells, and by the tests directly. The token is read
from stdin before any student code is imported and kept only in a local variable; the checks module is loaded
under a random name and removed from ``sys.modules``, so code under test cannot find and patch it by name. The
verdict line ``<token> PASS`` or ``<token> FAIL <reason>`` goes to a private copy of stdout. Warnings are silenced.
Exit code 0 only with a PASS verdict.

Residual risk, stated plainly: the student's code runs in this process, and a determined attacker can inspect the
interpreter (frames, the garbage collector) to forge a verdict. The sandboxed grading command is the answer to
hostile submissions; these checks are built against realistic mistakes and the exploits of nbgrader-notes.md.
"""
import sys


def main(token: str) -> None:
    import argparse
    import importlib.util
    import os
    import uuid
    import warnings
    from pathlib import Path

    verdict_out = os.fdopen(os.dup(1), "w")
    name = f"_sr_checks_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "checks.py")
    checks = importlib.util.module_from_spec(spec)
    sys.modules[name] = checks  # needed while it is imported (dataclasses, pickling), removed right after
    spec.loader.exec_module(checks)
    del sys.modules[name]
    registry, failed_type, one_line, submission = checks.CHECKS, checks.CheckFailed, checks.one_line, checks.Submission

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("check", choices=sorted(registry))
    ap.add_argument("--submission", type=Path, required=True, help="folder holding the submitted notebooks")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    try:
        registry[args.check](submission(args.submission.resolve()))
        verdict = "PASS"
    except failed_type as e:
        verdict = "FAIL " + one_line(str(e))
    except BaseException as e:  # student code raised (or called exit): no points, say what happened
        verdict = "FAIL " + one_line(f"your code raised {type(e).__name__}: {e}")
    verdict_out.write(f"{token} {verdict}\n")
    verdict_out.flush()
    os._exit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main(sys.stdin.readline().strip() or "-")
