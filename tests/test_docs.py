"""The docs tell the truth: every command they show exists (run with --help, or `make -n`), the README fits on a
screen, every claim about which module a notebook uses holds, and the library is layered one way."""
from __future__ import annotations

import ast
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import BIN
from course_fixtures import shell_commands, shell_lines

REPO = Path(__file__).resolve().parents[1]
# (the handout's commands are the student kit's: tests/course_tests/test_student_kit.py runs them in a built kit)
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]


def _help_argv(words: list[str]) -> list[str] | None:
    """What to run to prove that ``words`` exists: the command's --help (the subcommand's when there is one),
    ``make -n TARGET``, or None for shell built-ins and set-up lines checked elsewhere."""
    words = [w for w in words if "=" not in w or w.startswith("-")]  # drop VAR=value assignments
    head = Path(words[0]).name
    if head in ("cd", "source", "git", "conda", "pip", "docker", "export"):
        return None  # shell built-ins and set-up; environment.yml is checked by test_packaging.py
    if head == "make":
        return ["make", "-n", *words[1:2]]
    if head in ("python", "python3", "torchrun") and "-m" in words:
        k = words.index("-m")
        module, rest = words[k + 1], words[k + 2:]
        sub = [rest[0]] if rest and not rest[0].startswith("-") and module in ("sr_utils", "course", "data_tools",
                                                                              "course.mos") else []
        return [sys.executable, "-m", module, *sub, "--help"]
    if head in ("python", "python3") and words[1].endswith(".py"):
        return [sys.executable, str(REPO / words[1]), "--help"]
    if head == "tensorboard":
        return [str(BIN / head), "--help"]
    if head in ("nbgrader", "jupyter", "sr-kit", "sr-data", "dask"):
        sub = [w for w in words[1:3] if not w.startswith("-")][:1 if head != "jupyter" else 1]
        return [str(BIN / head), *sub, "--help"]
    raise AssertionError(f"the docs show a command this test does not know how to check: {' '.join(words)}")


_FOUND: dict[tuple, str] = {}
for _doc in DOCS:
    for _line in shell_lines(_doc):
        for _cmd in shell_commands(_line):
            if _help_argv(_cmd):
                _FOUND.setdefault(tuple(_help_argv(_cmd)), str(_doc.relative_to(REPO)))
CASES = sorted((doc, argv) for argv, doc in _FOUND.items())


@functools.cache
def _top_level_help(program: str) -> str:
    """``program --help`` (nbgrader, jupyter), run once per test process: ~3 s of CPU each."""
    top = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=300)
    return top.stdout + top.stderr


@pytest.mark.parametrize("doc,argv", CASES, ids=[" ".join(a[1:4]) for _, a in CASES])
def test_every_command_in_the_docs_exists(doc, argv):
    out = subprocess.run(list(argv), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{doc}: `{' '.join(argv)}` failed:\n{out.stdout[-1500:]}\n{out.stderr[-1500:]}"
    text = out.stdout + out.stderr
    if Path(argv[0]).name in ("nbgrader", "jupyter"):
        # an unknown subcommand prints the top-level help and exits 0 (`nbgrader formgrader` in 0.9): compare
        assert text != _top_level_help(argv[0]), f"{doc}: `{' '.join(argv[:2])}` is not a subcommand"
    elif argv[-1] == "--help":
        assert "usage" in text.lower()


def test_docs_show_the_main_commands():
    shown = {a for _, a in CASES}
    for must in ([sys.executable, "-m", "sr_utils", "train-srresnet", "--help"], ["make", "-n", "demo"],
                 ["make", "-n", "test"], ["make", "-n", "grade"]):
        assert tuple(must) in shown, f"{must} is not documented"


def test_readme_fits_on_a_screen_and_links_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 8192, f"README.md is {len(readme.encode())} bytes: move depth to docs/"
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#]+)\)", doc.read_text()):
            if not target.startswith("http"):
                assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def _code_of(notebook: str) -> str:
    nb = json.loads((REPO / "source" / "superres" / f"{notebook}.ipynb").read_text())
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook,module", [("03_train", "sr_utils.trainer"), ("04_test", "sr_utils.trained"),
                                             ("04_test", "sr_utils.evaluation"), ("05_super_resolution",
                                                                                  "sr_utils.trained")])
def test_docs_claims_about_notebooks_hold(notebook, module):
    """docs/training.md and the README say notebook 03 trains with sr_utils.trainer and 04/05 load with
    sr_utils.trained: the notebooks import them."""
    assert f"from {module} import" in _code_of(notebook)
    assert "run_epochs" not in _code_of("03_train") and "EasyDict" not in _code_of("03_train")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((REPO / "sr_utils").glob("*.py")), ids=lambda p: p.name)
def test_sr_utils_is_the_bottom_layer(path):
    """sr_utils never imports data_tools or course (anywhere, lazily included), and no module is over 400 lines."""
    upward = _imports(path) & {"data_tools", "course", "source"}
    assert not upward, f"sr_utils/{path.name} imports {upward}: dependencies point data_tools/course -> sr_utils"
    n = len(path.read_text().splitlines())
    assert n <= 400, f"sr_utils/{path.name} has {n} lines: split it by concept"


@pytest.mark.parametrize("path", sorted((REPO / "data_tools").rglob("*.py")),
                         ids=lambda p: p.relative_to(REPO / "data_tools").as_posix())
def test_data_tools_modules_are_readable_in_one_sitting(path):
    """No module of data_tools is over 400 lines either: one concept per module."""
    n = len(path.read_text().splitlines())
    assert n <= 400, f"{path.relative_to(REPO).as_posix()} has {n} lines: split it by concept"


@pytest.mark.parametrize("path", sorted(p for p in (REPO / "course").rglob("*.py") if "locales" not in p.parts),
                         ids=lambda p: p.relative_to(REPO / "course").as_posix())
def test_course_modules_are_readable_in_one_sitting(path):
    """No module of course (the grader, the sandbox, the MOS study, the student kit...) is over 400 lines: one
    concept per module. (The message catalogues under ``locales/`` are tables of translations, as in sr_utils.)"""
    n = len(path.read_text().splitlines())
    assert n <= 400, f"{path.relative_to(REPO).as_posix()} has {n} lines: split it by concept"


def test_importing_every_sr_utils_module_loads_nothing_above_it():
    code = ("import importlib, pkgutil, sys, sr_utils\n"
            "for m in pkgutil.iter_modules(sr_utils.__path__):\n"
            "    importlib.import_module('sr_utils.' + m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('data_tools', 'course')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO / "tests", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
