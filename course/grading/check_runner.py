"""Runs hidden checks inside the grading sandbox (course/sandbox.py ``run_checks``).

Never imported from disk by the sandbox: the grader sends this file's source, ``checks.py`` and the reference
``models.py`` on stdin, so a submission cannot read them back from the file system. ``main(bundle)`` runs each
check of ``bundle["checks"]`` in turn and writes ``<token> START <check>`` and ``<token> VERDICT <check> PASS``
or ``... FAIL <reason>`` lines to a private duplicate of stdout; the student code's own stdout and stderr go to
/dev/null.
"""


def main(bundle: dict) -> None:
    import os
    import sys
    import types
    import uuid
    import warnings
    from pathlib import Path

    token = bundle.pop("token")
    out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")

    try:  # before any student code runs: a failure here is the grader's, reported as ERROR
        name = f"_sr_checks_{uuid.uuid4().hex}"
        checks = types.ModuleType(name)
        checks.__file__ = "<hidden checks>"
        sys.modules[name] = checks  # dataclasses need it while the module body runs
        exec(compile(bundle.pop("checks_py"), "<hidden checks>", "exec"), checks.__dict__)
        del sys.modules[name]
        checks.set_reference_source(bundle.pop("reference_models_py"))  # no source text left to find in memory
        registry, failed_type, one_line = checks.CHECKS, checks.CheckFailed, checks.one_line
        sub = checks.Submission(Path(bundle["submission"]))
    except BaseException as e:
        out.write(f"{token} ERROR {type(e).__name__}: {' '.join(str(e).split())[:300]}\n")
        out.flush()
        os._exit(3)
    for check in bundle["checks"]:
        out.write(f"{token} START {check}\n")
        out.flush()
        try:
            if check not in registry:
                raise failed_type(f"unknown hidden check {check!r}")
            registry[check](sub)
            verdict = "PASS"
        except failed_type as e:
            verdict = "FAIL " + one_line(str(e))
        except BaseException as e:  # student code raised or called exit: no points, say what happened
            verdict = "FAIL " + one_line(f"your code raised {type(e).__name__}: {e}")
        out.write(f"{token} VERDICT {check} {verdict}\n")
        out.flush()
    os._exit(0)
