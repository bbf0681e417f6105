"""The hidden checks of ``course/grading`` judged from outside, exactly as the grader runs them.

Each check runs in its own ``python -I -m course.grading.run_check CHECK --submission FOLDER`` process (the
trusted side, which never imports student code; it starts the student-side process) with a fresh token on stdin; a
verdict is a PASS only when the last stdout line starting with the token is ``<token> PASS <check>`` and the exit
code is 0. Submission folders are built in ``tmp_path`` from the instructor's notebooks:

1. mutants (``submissions/mutants.toml``) — one realistic student mistake applied to the reference solution
   (``old`` must occur exactly once, so a mutant can never silently be a no-op); each must FAIL its check for the
   expected reason, on one line that shows no solution code;
2. variants — three correct implementations written differently (``variants/``), each PASSes all 8;
3. the reference notebooks PASS all 8;
4. exploits — deleted ``%%writefile`` lines, stale modules on disk, patched ``torch.allclose``, fake verdicts and
   early exits cannot turn a wrong submission into a PASS.

Independent check processes run two at a time (session fixtures); the student sides of the checks run here are
forked from one that has imported torch (``student_forkserver.py``): about a minute on 2 idle cores.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_fixtures import cell_source, solution_lines
from student_forkserver import student_forkserver
from sr_utils.notebook import writefile_sources

REPO = Path(__file__).resolve().parents[3]
RUN_CHECK = REPO / "course" / "grading" / "run_check.py"
SOURCE = REPO / "source" / "superres"
VARIANTS = Path(__file__).resolve().parent / "variants"
SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
MODELS_NB, SOLVER_NB = "01_models.ipynb", "02_solver.ipynb"
MODEL_CHECKS = ("conv_block", "subpixel_block", "residual_block", "srresnet", "generator", "discriminator")
SOLVER_CHECKS = ("srresnet_epoch", "srgan_epoch")
ALL_CHECKS = MODEL_CHECKS + SOLVER_CHECKS
WORKERS = 2

pytestmark = pytest.mark.skipif(not RUN_CHECK.is_file(), reason="course/grading (instructor-only) is absent")
if RUN_CHECK.is_file():
    from course.grading import checks as trusted_checks  # the trusted side (course/grading/checks/)
    from course.grading.contract import CHECK_SERVER_ENV, SANDBOX_ENV, check_command


# ---------------------------------------------------------------------------------------------------------
# Running a check the way the grader does
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Verdict:
    check: str
    returncode: int
    line: str | None  # the verdict after the token ("PASS" / "FAIL <reason>"), None when no verdict was printed
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and self.line == "PASS"

    @property
    def reason(self) -> str | None:
        return self.line[5:] if self.line and self.line.startswith("FAIL ") else None

    def __str__(self) -> str:
        tail = self.stderr.strip().splitlines()[-3:]
        return f"{self.check}: rc={self.returncode} verdict={self.line!r} stderr tail={tail}"


def run_check_command(check: str, folder: Path) -> Verdict:
    """The check through its command (``hidden_check`` in a kernel under plain nbgrader autograde runs it)."""
    token = uuid.uuid4().hex
    out = subprocess.run([*check_command(), check, "--submission", str(folder)],
                         input=token + "\n", capture_output=True, text=True, timeout=300, cwd=folder)
    lines = [line.split(" ", 3)[1:] for line in out.stdout.splitlines() if line.startswith(f"{token} ")]
    mine = [parts for parts in lines if len(parts) >= 2 and parts[1] == check]
    line = None
    if mine:
        line = "PASS" if mine[-1][0] == "PASS" and len(mine[-1]) == 2 else "FAIL " + " ".join(mine[-1][2:])
    return Verdict(check, out.returncode, line, out.stdout, out.stderr)


def run_checks_here(checks: list[str], folder: Path) -> dict[str, Verdict]:
    """The trusted side in this process (it never imports student code): one student-side process per folder,
    forked from one that has imported torch already (``student_forkserver``: the same code on the same pipes)."""
    verdicts = trusted_checks.run_checks(trusted_checks.CHECKS, checks, folder, timeout=300,
                                         launch=student_forkserver().launch)
    return {c: Verdict(c, 0 if ok else 1, "PASS" if ok else f"FAIL {why}", "", "") for c, (ok, why) in verdicts.items()}


def run_many(jobs):
    """``jobs``: {key: (check, folder)} or {key: (check, folder, "command")} -> {key: Verdict}; the checks of
    one folder share a student-side process; two folders at a time."""
    by_folder, commands = {}, {}
    for key, job in jobs.items():
        if len(job) == 3:
            commands[key] = job[:2]
        else:
            by_folder.setdefault(job[1], []).append((key, job[0]))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {folder: pool.submit(run_checks_here, [c for _, c in items], folder)
                   for folder, items in by_folder.items()}
        futures.update({key: pool.submit(run_check_command, *job) for key, job in commands.items()})
        out = {key: futures[key].result() for key in commands}
        for folder, items in by_folder.items():
            verdicts = futures[folder].result()
            out.update({key: verdicts[check] for key, check in items})
        return out


# ---------------------------------------------------------------------------------------------------------
# Building submissions
# ---------------------------------------------------------------------------------------------------------
_NB_TEXT = {name: (SOURCE / name).read_text(encoding="utf-8") for name in (MODELS_NB, SOLVER_NB)}


def source_notebook(name: str) -> dict:
    return json.loads(_NB_TEXT[name])


def apply_mutant(nb: dict, old: str, new: str) -> dict:
    """Replace ``old`` by ``new`` in the code cells of ``nb``; ``old`` must occur exactly once in all of them."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    hits = sum(cell_source(c).count(old) for c in code)
    assert hits == 1, f"mutant text occurs {hits} times in the notebook (must be exactly once): {old!r}"
    for c in code:
        if old in cell_source(c):
            c["source"] = cell_source(c).replace(old, new).splitlines(keepends=True)
    return nb


def single_cell_notebook(filename: str, source: str, magic: bool = True) -> dict:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells.append(nbformat.v4.new_code_cell((f"%%writefile {filename}\n" if magic else "") + source))
    nbformat.validate(nb)
    return nb


def make_submission(folder: Path, models_nb: dict | None = None, solver_nb: dict | None = None,
                    files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in ((MODELS_NB, models_nb), (SOLVER_NB, solver_nb)):
        text = _NB_TEXT[name] if nb is None else json.dumps(nb, indent=1)  # None: the source notebook verbatim
        (folder / name).write_text(text, encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder.resolve()


REFERENCE_MODULES = {**writefile_sources(SOURCE / MODELS_NB), **writefile_sources(SOURCE / SOLVER_NB)}


#: Every non-trivial line of the reference solution that the instructions do not already spell out.
SOLUTION_LINES = solution_lines([SOURCE / MODELS_NB, SOURCE / SOLVER_NB])
SKELETON_LINES = {line.strip() for name in (MODELS_NB, SOLVER_NB) for c in source_notebook(name)["cells"]
                  if c["cell_type"] == "code" for line in cell_source(c).splitlines()} - SOLUTION_LINES


def assert_clean_reason(v: Verdict) -> None:
    """A failure reason is one non-empty line, no traceback, no line of the reference solution."""
    assert v.reason, f"no failure reason: {v}"
    assert "\n" not in v.reason and len(v.reason) <= 300
    assert "Traceback" not in v.reason and "BEGIN SOLUTION" not in v.reason and 'File "' not in v.reason
    leaked = [line for line in SOLUTION_LINES if line in v.reason]
    assert not leaked, f"the failure reason shows solution code {leaked}: {v.reason}"


# ---------------------------------------------------------------------------------------------------------
# 1. Mutants (submissions/mutants.toml): the reference with one mistake, the check it must fail and why
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    name: str
    notebook: str
    old: str
    new: str
    check: str
    expect: str  # a piece of the failure reason: the mutant fails for the intended reason, not by accident


MUTANTS = [Mutant(**{**m, "notebook": m["notebook"] + ".ipynb"})
           for m in tomllib.loads((SUBMISSIONS / "mutants.toml").read_text(encoding="utf-8"))["mutant"]]

assert len({m.name for m in MUTANTS}) == len(MUTANTS)


def _mutated_notebooks(m: Mutant) -> tuple[dict, dict]:
    nbs = {MODELS_NB: source_notebook(MODELS_NB), SOLVER_NB: source_notebook(SOLVER_NB)}
    apply_mutant(nbs[m.notebook], m.old, m.new)
    return nbs[MODELS_NB], nbs[SOLVER_NB]


@pytest.fixture(scope="session")
def mutant_verdicts(tmp_path_factory):
    jobs, errors = {}, {}
    for m in MUTANTS:
        try:
            models_nb, solver_nb = _mutated_notebooks(m)
        except AssertionError as e:
            errors[m.name] = e
            continue
        jobs[m.name] = (m.check, make_submission(tmp_path_factory.mktemp("mutant"), models_nb, solver_nb))
    return {**run_many(jobs), **errors}


@pytest.mark.parametrize("m", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_fails_its_check(m: Mutant, mutant_verdicts):
    # the mutant is a real, importable change of the module (not a no-op, not a syntax error)
    models_nb, solver_nb = _mutated_notebooks(m)
    module = "models.py" if m.notebook == MODELS_NB else "solver.py"
    mutated = writefile_sources(models_nb if m.notebook == MODELS_NB else solver_nb)[module]
    assert mutated != REFERENCE_MODULES[module]
    compile(mutated, module, "exec")

    v = mutant_verdicts[m.name]
    if isinstance(v, Exception):
        raise v
    assert not v.passed, f"mutant {m.name} was NOT caught by {m.check}: {v}"
    assert v.line is not None and v.returncode == 1, str(v)
    assert_clean_reason(v)
    assert m.expect in v.reason, f"{m.name} failed, but not for the intended reason: {v.reason}"


def test_mutant_catalogue_covers_every_check():
    assert len(MUTANTS) >= 20
    assert {m.check for m in MUTANTS} == set(ALL_CHECKS)


# ---------------------------------------------------------------------------------------------------------
# 2 + 3. Correct implementations: the reference notebooks and three differently written variants
# ---------------------------------------------------------------------------------------------------------
VARIANT_NAMES = ("a", "b", "c")


def _variant_sources(name: str) -> tuple[str, str]:
    return ((VARIANTS / f"{name}_models.py").read_text(encoding="utf-8"),
            (VARIANTS / f"{name}_solver.py").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def correct_verdicts(tmp_path_factory):
    folders = {"reference": make_submission(tmp_path_factory.mktemp("reference"))}
    for name in VARIANT_NAMES:
        models_src, solver_src = _variant_sources(name)
        folders[name] = make_submission(tmp_path_factory.mktemp(f"variant_{name}"),
                                        single_cell_notebook("models.py", models_src),
                                        single_cell_notebook("solver.py", solver_src))
    return run_many({(who, check): (check, folder) for who, folder in folders.items() for check in ALL_CHECKS})


@pytest.mark.parametrize("check", ALL_CHECKS)
def test_reference_passes(check, correct_verdicts):
    v = correct_verdicts[("reference", check)]
    assert v.passed, str(v)


@pytest.mark.parametrize("variant", VARIANT_NAMES)
@pytest.mark.parametrize("check", ALL_CHECKS)
def test_variant_passes(variant, check, correct_verdicts):
    v = correct_verdicts[(variant, check)]
    assert v.passed, f"correct variant {variant} rejected: {v}"


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_variants_are_not_copies_of_the_reference(variant):
    """The variants share no solution line of some length with the reference and with each other."""
    def body_lines(name):  # lines of code the student writes (not the given signatures, imports, docstrings)
        text = "".join(_variant_sources(name))
        return {line.strip() for line in text.splitlines() if len(line.strip()) >= 30
                and line.strip() not in SKELETON_LINES and not line.strip().startswith(('"""', "def ", "class "))}

    own = body_lines(variant)
    shared = own & SOLUTION_LINES
    assert len(shared) <= 3, f"variant {variant} copies reference lines: {sorted(shared)}"
    for other in VARIANT_NAMES:
        if other != variant:
            common = own & body_lines(other)
            assert len(common) <= 3, f"variants {variant} and {other} share {sorted(common)}"


# ---------------------------------------------------------------------------------------------------------
# 4. Exploits
# ---------------------------------------------------------------------------------------------------------
MUTANT = {m.name: m for m in MUTANTS}
FIRST_LINE = {"models.py": "%%writefile models.py\n", "solver.py": "%%writefile solver.py\n"}


def _drop_first_writefile_line(nb: dict, module: str) -> dict:
    apply_mutant(nb, FIRST_LINE[module], "")
    return nb


def _models_with_prelude(prelude: str, mutant: str | None = None) -> dict:
    """The reference models notebook (optionally with a mutant) with ``prelude`` run at the import of models.py."""
    nb = source_notebook(MODELS_NB)
    if mutant is not None:
        apply_mutant(nb, MUTANT[mutant].old, MUTANT[mutant].new)
    anchor = "from torch import nn\n\n\nclass ConvolutionalBlock"
    return apply_mutant(nb, anchor, "from torch import nn\n" + prelude + anchor[len("from torch import nn\n"):])


def _reference_module_files() -> dict[str, str]:
    return {"models.py": REFERENCE_MODULES["models.py"], "solver.py": REFERENCE_MODULES["solver.py"]}


@pytest.fixture(scope="session")
def exploit_verdicts(tmp_path_factory):
    mk = lambda *a, **k: make_submission(tmp_path_factory.mktemp("exploit"), *a, **k)  # noqa: E731
    variant_models, variant_solver = _variant_sources("a")
    jobs = {
        # 1. the first `%%writefile` line deleted; a correct module lies in the folder (must be ignored)
        "deleted_line_models": ("srresnet", mk(_drop_first_writefile_line(source_notebook(MODELS_NB), "models.py"),
                                              files=_reference_module_files())),
        "deleted_line_solver": ("srresnet_epoch", mk(solver_nb=_drop_first_writefile_line(
            source_notebook(SOLVER_NB), "solver.py"), files=_reference_module_files())),
        "deleted_line_only_cell_models": ("conv_block", mk(
            single_cell_notebook("models.py", variant_models, magic=False), files=_reference_module_files())),
        "deleted_line_only_cell_solver": ("srgan_epoch", mk(
            solver_nb=single_cell_notebook("solver.py", variant_solver, magic=False), files=_reference_module_files())),
        # 2. stale correct modules on disk next to wrong notebooks
        "stale_models": ("srresnet", mk(_mutated_notebooks(MUTANT["srresnet_no_long_skip"])[0],
                                        files=_reference_module_files())),
        "stale_solver": ("srresnet_epoch", mk(solver_nb=_mutated_notebooks(MUTANT["srresnet_epoch_no_zero_grad"])[1],
                                              files=_reference_module_files())),
        # 3. torch.allclose / torch.equal patched to always agree, at import
        "patched_allclose_no_long_skip": ("srresnet", mk(_models_with_prelude(
            "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
            "torch.Tensor.allclose = lambda *a, **k: True\ntorch.Tensor.equal = lambda *a, **k: True\n",
            "srresnet_no_long_skip"))),
        "patched_allclose_generator": ("generator", mk(_models_with_prelude(
            "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n",
            "generator_ignores_state_dict"))),
        # 4. fake verdicts and early exits at import
        "prints_fake_pass": ("srresnet", mk(_models_with_prelude(
            "import os as _os, sys as _sys\nprint('PASS')\nprint('- PASS')\n_sys.stdout.write('PASS\\n')\n"
            "_sys.__stdout__.write('- PASS\\n')\n_os.write(1, b'PASS\\n- PASS\\n')\n", "srresnet_no_long_skip")),
            "command"),
        "sys_exit_0": ("srresnet", mk(_models_with_prelude("import sys as _sys\n_sys.exit(0)\n",
                                                           "srresnet_no_long_skip"))),
        "os_exit_0": ("srresnet", mk(_models_with_prelude("import os as _os\nprint('PASS', flush=True)\n_os._exit(0)\n",
                                                          "srresnet_no_long_skip"))),
        "os_exit_0_in_solver": ("srresnet_epoch", mk(solver_nb=apply_mutant(
            source_notebook(SOLVER_NB), "    model.train()\n", "    model.train()\n    import os\n    os._exit(0)\n"))),
        # reaching into the check process: the token and the checks module are out of reach by name
        "reads_token_from_main": ("srresnet", mk(_models_with_prelude(
            "import os as _os, sys as _sys\n"
            "_os.write(1, (_sys.modules['__main__'].TOKEN + ' PASS\\n').encode())\n_os._exit(0)\n",
            "srresnet_no_long_skip")), "command"),
        "patches_checks_module": ("srresnet", mk(_models_with_prelude(
            "import sys as _sys\n_checks = _sys.modules.get('checks')\n"
            "if _checks is not None:\n    _checks.expect = lambda *a, **k: None\n", "srresnet_no_long_skip"))),
        # student text in a message: truncated and escaped
        "long_exception": ("conv_block", mk(_models_with_prelude(
            "raise RuntimeError('\\x1b[31m<script>' + 'A' * 5000 + '\\n' + 'B' * 100)\n"))),
    }
    return run_many(jobs)


def test_student_text_in_a_message_is_truncated_and_escaped(exploit_verdicts):
    v = exploit_verdicts["long_exception"]
    assert _failed(v) and "raised RuntimeError:" in v.reason, str(v)
    assert "\x1b" not in v.reason and "\n" not in v.reason and v.reason.count("A") <= 200 and "BBB" not in v.reason
    assert "\\x1b" in v.reason  # shown escaped


def test_checks_leave_no_temporary_folder(tmp_path_factory):
    import tempfile

    def ours():
        return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith(("sr_check_", "sr_ref_"))}

    before = ours()
    folder = make_submission(tmp_path_factory.mktemp("tmpcheck"))
    assert run_checks_here(["conv_block", "srresnet_epoch"], folder)["conv_block"].passed
    assert ours() == before


def _failed(v: Verdict) -> bool:
    """What the grader concludes: anything but (exit code 0 and a `<token> PASS` verdict) is a failure."""
    return not v.passed


@pytest.mark.parametrize("case", ["deleted_line_models", "deleted_line_solver"])
def test_deleted_first_writefile_line_fails_and_ignores_module_on_disk(case, exploit_verdicts):
    v = exploit_verdicts[case]
    assert _failed(v) and v.reason, str(v)
    assert_clean_reason(v)


@pytest.mark.parametrize("case", ["deleted_line_models", "deleted_line_solver"])
def test_deleted_first_writefile_line_says_put_it_back(case, exploit_verdicts):
    assert "%%writefile" in (exploit_verdicts[case].reason or ""), str(exploit_verdicts[case])


@pytest.mark.parametrize("case", ["deleted_line_only_cell_models", "deleted_line_only_cell_solver"])
def test_no_writefile_cell_says_put_the_line_back(case, exploit_verdicts):
    v = exploit_verdicts[case]
    assert _failed(v), str(v)
    assert "put the `%%writefile` lines back" in v.reason, v.reason


@pytest.mark.parametrize("case, mutant", [("stale_models", "srresnet_no_long_skip"),
                                          ("stale_solver", "srresnet_epoch_no_zero_grad")])
def test_stale_module_on_disk_does_not_rescue(case, mutant, exploit_verdicts):
    v = exploit_verdicts[case]
    assert _failed(v), str(v)
    assert MUTANT[mutant].expect in v.reason, v.reason


@pytest.mark.parametrize("case, mutant", [("patched_allclose_no_long_skip", "srresnet_no_long_skip"),
                                          ("patched_allclose_generator", "generator_ignores_state_dict")])
def test_patched_allclose_does_not_pass(case, mutant, exploit_verdicts):
    v = exploit_verdicts[case]
    assert _failed(v), str(v)
    assert MUTANT[mutant].expect in v.reason, v.reason


def test_printed_fake_pass_lines_are_ignored(exploit_verdicts):
    v = exploit_verdicts["prints_fake_pass"]
    assert _failed(v) and v.returncode == 1, str(v)
    assert MUTANT["srresnet_no_long_skip"].expect in v.reason, v.reason


def test_sys_exit_at_import_fails(exploit_verdicts):
    v = exploit_verdicts["sys_exit_0"]
    assert _failed(v) and v.returncode == 1, str(v)
    assert "SystemExit" in v.reason, v.reason


@pytest.mark.parametrize("case", ["os_exit_0", "os_exit_0_in_solver"])
def test_os_exit_ends_the_student_process_hence_failure(case, exploit_verdicts):
    v = exploit_verdicts[case]
    assert _failed(v) and v.returncode == 1, str(v)
    assert "ended the checking process" in v.reason, v.reason


def test_token_cannot_be_read_by_student_code(exploit_verdicts):
    assert _failed(exploit_verdicts["reads_token_from_main"]), str(exploit_verdicts["reads_token_from_main"])


def test_checks_module_cannot_be_patched(exploit_verdicts):
    assert _failed(exploit_verdicts["patches_checks_module"]), str(exploit_verdicts["patches_checks_module"])


def test_harness_needs_token_and_exit_code():
    """Sanity of the harness itself: no token line, or a PASS with a non-zero exit code, is no PASS."""
    assert not Verdict("x", 0, None, "PASS\n- PASS\n", "").passed
    assert not Verdict("x", 1, "PASS", "", "").passed
    assert Verdict("x", 0, "PASS", "", "").passed


# ---------------------------------------------------------------------------------------------------------
# The check server: the sandboxed grader's trusted side, one process per submission
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def trusted_numba_cache() -> str:
    """imresize's kernels as every grading run on this machine has them (``run_loop.NUMBA_CACHE``): compiled once
    (~6 s of CPU) by whichever comes first, the suite's grading runs or this module's check servers."""
    from course.grading.run_loop import NUMBA_CACHE
    from course.sandbox import prepare_numba_cache

    cache = prepare_numba_cache(NUMBA_CACHE)
    assert cache, "imresize's kernels could not be compiled"
    return cache


def _trusted_env(numba_cache: str) -> dict:
    """The grading command's environment of trusted processes for the kit's own course, with numba's cache in
    ``numba_cache``."""
    from course.grading.trusted_processes import trusted_env

    return {**trusted_env(REPO), "NUMBA_CACHE_DIR": numba_cache}


def _check_server_client(folder: Path, handed: dict | None, monkeypatch):
    from course.grading.check_server_client import CheckServer

    monkeypatch.delenv(SANDBOX_ENV, raising=False)  # the student side unsandboxed here (bwrap: test_grading_sandbox)
    if handed is None:
        monkeypatch.delenv(CHECK_SERVER_ENV, raising=False)
    else:
        monkeypatch.setenv(CHECK_SERVER_ENV, json.dumps(handed))
    return CheckServer.for_folder(folder, check_timeout=120)


@pytest.mark.parametrize("started_by", ["the grading command", "the grading command, forked", "nbgrader itself"])
def test_the_check_server_decides_source_checks_early_and_the_rest_when_asked(started_by, tmp_path, monkeypatch,
                                                                             trusted_numba_cache):
    """What nbgrader's preprocessors ask of a submission's check server: before a notebook runs, its checks that
    read only sources (decided at once); after it ran, their verdicts; a check of notebook 04 is never decided
    early: it reads what the notebook writes (here a table with the wrong columns, written after the early ask).
    Forked from the run's fork server, it serves the same way."""
    import os

    from course.grading.contract import FORKED_MARK
    from course.grading.trusted_forkserver import CHECK_SERVER
    from course.grading.trusted_forkserver_client import TrustedForkServer
    from course.grading.trusted_processes import start_check_server, stop_process_group
    from course.grading.contract import DECIDE, EARLY
    from course.grading.contract import CHECKS_NICENESS_ENV
    from course.sandbox import CHECKS_NICENESS

    folder = make_submission(tmp_path / "sub", solver_nb=_mutated_notebooks(MUTANT["srresnet_epoch_no_zero_grad"])[1])
    server, handed, forks = None, None, None
    env = {**_trusted_env(trusted_numba_cache), CHECKS_NICENESS_ENV: str(CHECKS_NICENESS)}  # (what the grading command sets, 1 worker)
    forked = started_by.endswith("forked")
    if started_by != "nbgrader itself":
        log = open(tmp_path / "server.log", "wb")
        if forked:
            forks = TrustedForkServer(env, tmp_path / "forkserver.log", (8 << 30, 7200))
            requests_read, requests_write = os.pipe()
            answers_read, answers_write = os.pipe()
            server = forks.spawn(CHECK_SERVER, [str(folder)], env, tmp_path, (6 << 30, 600),
                                 {0: requests_read, 1: answers_write, 2: log.fileno()})
            for fd in (requests_read, answers_write):
                os.close(fd)
            handed = {"folder": str(folder), "fds": [requests_write, answers_read]}
        else:
            server, handed = start_check_server(folder, env, log)
            os.close(handed.pop("kernels"))  # (unsandboxed here: no zygote, and so no kernels' socket to hand on)
    client = _check_server_client(folder, handed, monkeypatch)
    if server is not None:
        for fd in handed["fds"]:  # the handed ends: the client wraps these very descriptors
            assert fd in (client.fd_requests, client.fd_answers)
    client.send(EARLY, ["conv_block", "srresnet_epoch", "test_table"])
    client.send(DECIDE, ["conv_block", "srresnet_epoch"])
    verdicts = client.answer()  # both answers, possibly read in one chunk
    assert verdicts["conv_block"] == (True, "")
    assert not verdicts["srresnet_epoch"][0] and "zero_grad" in verdicts["srresnet_epoch"][1]
    if server is not None:  # the checks yield to the kernels (the client runs the student side unsandboxed here)
        assert os.getpriority(os.PRIO_PROCESS, server.pid) == max(os.getpriority(os.PRIO_PROCESS, 0),
                                                                  CHECKS_NICENESS)
    table = folder / ".grading-run" / "results" / "test_table.csv"  # what notebook 04 writes while grading
    table.parent.mkdir(parents=True)
    table.write_text("a,b\n1,2\n")
    client.send(DECIDE, ["test_table"])
    (passed, reason), = client.answer().values()
    assert not passed and "unexpected columns" in reason, reason
    client.close()
    if server is not None:
        stop_process_group(server, wait=30)
        assert server.returncode == 0, (tmp_path / "server.log").read_text()[-2000:]
        assert (f"{FORKED_MARK} check-server:" in (tmp_path / "server.log").read_text()) == forked
        if forks is not None:
            forks.close()
    else:
        assert client.proc.returncode is not None


def test_the_fork_server_imports_everything_but_starts_no_thread(trusted_numba_cache):
    """What the fork server loads before it forks must survive a fork: no thread may run in it (numba's OpenMP
    threads, started by loading imresize's compiled kernels, make a forked child that resizes die with "fork()
    called from a process already using GNU OpenMP"). After its imports it has the threads that the BLAS libraries
    of numpy, torch and scipy start as they load (they re-make themselves in a forked child; numba's compiler, set
    up in the server, loads scipy's) and no other, and a child forked from it resizes an image."""
    code = ("import os\nimport numpy, torch, scipy.linalg\nbefore = len(os.listdir('/proc/self/task'))\n"
            "from course.grading.trusted_forkserver import preload\npreload()\n"
            "threads = len(os.listdir('/proc/self/task')) - before\npid = os.fork()\nif pid == 0:\n"
            "    import numpy as np\n    from sr_utils.imresize import imresize\n"
            "    os._exit(0 if imresize(np.ones((16, 16, 3), np.float32), 4).shape == (64, 64, 3) else 3)\n"
            "print(threads, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
                         env=_trusted_env(trusted_numba_cache), cwd=REPO)
    assert out.stdout.split() == ["0", "0"], out.stdout + out.stderr[-2000:]


def test_a_check_server_whose_nbgrader_ended_without_reading_ends_quietly(tmp_path, trusted_numba_cache):
    """nbgrader asks early for a notebook's checks and, if the notebook's test cells failed, never reads the
    answer: it ends, and the server's answer meets a closed pipe. The server then ends as when its requests end
    (exit code 0, no traceback in the submission's log)."""
    import os

    from course.grading.trusted_processes import start_check_server, stop_process_group

    folder = make_submission(tmp_path / "sub")
    with open(tmp_path / "server.log", "wb") as log:
        server, handed = start_check_server(folder, _trusted_env(trusted_numba_cache), log)
    requests, answers = handed["fds"]
    os.close(handed["kernels"])  # (its zygote's kernels: none here, nbgrader is not there)
    os.write(requests, b'{"op": "early", "names": ["conv_block", "srresnet_epoch"], "timeout": 120}\n')
    os.close(answers)
    os.close(requests)
    stop_process_group(server, wait=120)
    text = (tmp_path / "server.log").read_text()
    assert server.returncode == 0 and "Traceback" not in text, text[-2000:]


def test_trusted_processes_are_forked_from_the_runs_fork_server(tmp_path, trusted_numba_cache):
    """A grading run's fork server (imports done once) forks a submission's nbgrader process and check server:
    nbgrader runs with the arguments and writes to the submission's log, and the server ends when nbgrader does
    (it held the requests). Each child leads its own session, with the job's rlimits, folder, environment and
    descriptors, and is waited for and killed like a process of its own. Once the server has ended, a job is
    refused (the grader then starts the processes anew) and a child still running is still seen to end."""
    import os
    import re
    import signal
    import subprocess
    import time

    import nbgrader

    from course.grading.contract import CHECKS_NICENESS_ENV, FORKED_MARK
    from course.grading.trusted_forkserver import CHECK_SERVER
    from course.grading.trusted_forkserver_client import TrustedForkServer

    env, folder = _trusted_env(trusted_numba_cache), tmp_path / "autograded" / "s" / "superres"
    forks = TrustedForkServer(env, tmp_path / "forkserver.log", (8 << 30, 7200))
    try:
        with open(tmp_path / "s.log", "wb") as log:
            server, proc = forks.submission(["--version"], folder, env, log, (7 << 30, 900))
        assert proc.wait(timeout=120) == 0
        assert server.wait(timeout=120) == 0
        text = (tmp_path / "s.log").read_text()
        assert f"{FORKED_MARK} nbgrader:" in text and f"{FORKED_MARK} check-server:" in text, text
        assert nbgrader.__version__ in text, text  # nbgrader --version ran in the forked process
        assert folder.parent.is_dir()

        requests_read, requests_write = os.pipe()
        with open(tmp_path / "s2.log", "wb") as log:
            job_env = {**env, CHECKS_NICENESS_ENV: "7"}  # (the server takes this niceness: its env is the job's)
            waiting = forks.spawn(CHECK_SERVER, [str(folder)], job_env, tmp_path, (5 << 30, 700),
                                  {0: requests_read, 1: log.fileno(), 2: log.fileno()})
        os.close(requests_read)
        assert os.getsid(waiting.pid) == waiting.pid and os.getppid() != waiting.pid
        limits = Path(f"/proc/{waiting.pid}/limits").read_text()
        assert re.search(r"Max cpu time\s+700\s+700", limits) and re.search(rf"Max data size\s+{5 << 30}\s", limits)
        assert os.readlink(f"/proc/{waiting.pid}/cwd") == str(tmp_path)
        deadline = time.monotonic() + 60
        while os.getpriority(os.PRIO_PROCESS, waiting.pid) != max(7, os.getpriority(os.PRIO_PROCESS, 0)):
            assert time.monotonic() < deadline, "the forked check server did not read its job's environment"
            time.sleep(0.1)
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=0.5)  # it serves until its requests end
        os.killpg(waiting.pid, signal.SIGKILL)
        assert waiting.wait(timeout=30) == -signal.SIGKILL
        os.close(requests_write)
        with pytest.raises(OSError, match="cannot raise"):
            forks.spawn(CHECK_SERVER, [str(folder)], env, tmp_path, (5 << 30, 7201), {})

        requests_read, requests_write = os.pipe()
        with open(tmp_path / "s3.log", "wb") as log:
            orphan = forks.spawn(CHECK_SERVER, [str(folder)], env, tmp_path, (5 << 30, 700),
                                 {0: requests_read, 1: log.fileno(), 2: log.fileno()})
        os.close(requests_read)
        os.killpg(forks.proc.pid, signal.SIGKILL)
        forks.proc.wait()
        with pytest.raises(OSError, match="fork server has ended"), open(tmp_path / "s4.log", "wb") as log:
            forks.submission(["--version"], folder, env, log, (7 << 30, 900))
        os.close(requests_write)  # the orphan's requests end: it ends, and that is seen
        assert orphan.wait(timeout=60) is not None
    finally:
        forks.close()
