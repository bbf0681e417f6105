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
        pip_names |= {_name(r) for r in extra}
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
