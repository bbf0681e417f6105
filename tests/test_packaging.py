"""The repository's packaging: pyproject.toml and environment.yml name the same packages; CI runs `make test`."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# conda names of packages whose pip name differs
PIP_TO_CONDA = {"torch": "pytorch"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_packages_as_pyproject():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in meta["dependencies"]}
    for extra in meta["optional-dependencies"].values():
        # (an extra that takes in another one names the kit itself: `sr-course-kit[instructor]`)
        pip_names |= {_name(r) for r in extra} - {_name(meta["name"])}
    conda = set()
    text = (REPO / "environment.yml").read_text()
    for line in text.split("\ndependencies:", 1)[1].splitlines():
        m = re.match(r"^\s{2}- ([A-Za-z0-9_.-]+)", line)
        if m and m.group(1) not in ("python", "pip"):
            conda.add(m.group(1).lower())
    assert {PIP_TO_CONDA.get(n, n) for n in pip_names} == conda


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call `make test`"
    assert "make test" in readme and "make demo" in readme


def test_no_generated_module_is_tracked():
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    leaks = [f for f in tracked if re.match(r"(source|release)/.*/(models|solver)\.py$", f)]
    assert not leaks, f"modules written by %%writefile cells must not be committed: {leaks}"


def test_the_fast_lane_leaves_out_only_integration_modules_that_exist():
    """``make test-fast`` deselects the modules tests/conftest.py names: each exists (a renamed module would
    silently join the fast lane), and the fast lane keeps most test modules."""
    from conftest import INTEGRATION_MODULES

    paths = sorted((REPO / "tests").rglob("test_*.py"))
    modules = {p.stem for p in paths}
    assert len(modules) == len(paths), "test modules share a name: pytest imports them by name (no __init__.py)"
    assert set(INTEGRATION_MODULES) <= modules, sorted(set(INTEGRATION_MODULES) - modules)
    assert len(modules - set(INTEGRATION_MODULES)) > len(INTEGRATION_MODULES)
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r'^test-fast:.*\n\t.*-m "not integration"', makefile, re.M)


def test_the_parallel_run_keeps_the_class_batch_on_one_process_and_the_cpu_share_tests_alone():
    """``make test`` runs the suite on several processes, then the tests marked ``alone`` by themselves: each name
    tests/conftest.py lists exists, in one of the modules it lists for them (a renamed or moved CPU-share test would
    silently run beside the others, or not at all; a renamed class batch module would grade the class on two
    processes), and its scheduler puts the class batch's modules in one work unit, handed out first, then the
    integration modules, then the unit test modules."""
    import ast

    import conftest

    tests = {node.name for path in (REPO / "tests").rglob("test_*.py") if path.stem in conftest.ALONE_MODULES
             for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    assert conftest.ALONE <= tests, ("not defined in a module of ALONE_MODULES (the only ones `-m alone` collects)",
                                     sorted(conftest.ALONE - tests))
    modules = {p.stem for p in (REPO / "tests").rglob("test_*.py")}
    assert conftest.CLASS_BATCH_MODULES <= modules, sorted(conftest.CLASS_BATCH_MODULES - modules)
    for path in (REPO / "tests").rglob("test_*.py"):  # every module whose tests read the batch is one of them
        if re.search(r"def \w+\([^)]*\bclass_batch\b", path.read_text()):
            assert path.stem in conftest.CLASS_BATCH_MODULES, path
    assert conftest.work_unit_of("tests/course_tests/test_assignment.py::test_x") == "class_batch"
    assert conftest.work_unit_of("tests/course_tests/grading/test_grading_sandbox.py::test_y[a::b]") == "class_batch"
    assert conftest.work_unit_of("tests/test_docs.py::test_z[a]") == "tests/test_docs.py"
    units = ["tests/sr_utils_tests/test_imresize.py", "tests/course_tests/test_demo.py", "class_batch"]
    assert sorted(units, key=conftest.work_unit_rank) == units[::-1]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r'^test:.*\n\t.*pytest -n \$\(TEST_WORKERS\) -m "not alone".*\n\t.*pytest -m alone', makefile,
                     re.M)


def test_the_set_up_upgrades_pip_and_leaves_jsonschema_without_its_slow_iri_parsers():
    """Both Makefiles upgrade a new venv's pip (>= 24 resolves the kit's packages in a third of the CPU) and remove
    rfc3987-syntax after installing (its import builds ~35 parsers, ~1 s of CPU in every process that imports
    nbformat): in the environment `make` set up, pip is >= 24, importing nbformat and jsonschema does not import
    rfc3987-syntax, and a notebook still validates against nbformat's schema."""
    import subprocess
    import sys

    from course_fixtures import skip_or_fail

    for makefile in (REPO / "Makefile", REPO / "course" / "student_kit_files" / "Makefile"):
        assert "uninstall -y rfc3987-syntax" in makefile.read_text(), makefile
        assert 'install -U "pip>=24"' in makefile.read_text(), makefile
    if Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        skip_or_fail(f"this Python ({sys.prefix}) is not the environment `make` sets up ({REPO / '.venv'})")
    from importlib.metadata import version

    assert int(version("pip").split(".")[0]) >= 24, "the set-up upgrades the pip a new venv has (Makefile)"
    code = ("import sys, nbformat, jsonschema\n"
            f"nbformat.validate(nbformat.read({str(REPO / 'release' / 'superres' / '01_models.ipynb')!r}, 4))\n"
            "print('rfc3987_syntax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["False"], out.stderr[-2000:]
