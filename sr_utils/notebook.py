"""Helpers the assignment notebooks call: modules written by ``%%writefile`` cells, where the project is, hidden checks.

Students write ``models.py`` (notebook 01) and ``solver.py`` (notebook 02) through ``%%writefile`` cells.
A module on disk can be stale (an old run, a cell edited but not re-run, a file copied from elsewhere), so
every notebook that imports one first regenerates it from the cells of its notebook:
:func:`export_modules` reads the saved ``.ipynb`` and replays its ``%%writefile [-a] <file>`` cells in order,
exactly as IPython would. :func:`load_module` then imports the file fresh (never a cached old version).

The same cells are the one source of a module everywhere else: :func:`writefile_module` gives a module's text and
:func:`build_module` builds it in memory, without a file (the instructor's reference solution, ``course.reference``;
the grader's student side, which rebuilds a submission's modules from its notebooks).
"""
from __future__ import annotations

import importlib.util
import json
import linecache
import os
import re
import subprocess
import sys
import types
import uuid
from pathlib import Path

from .i18n import tr

__all__ = ["MODULE_NOTEBOOKS", "MissingWritefile", "export_modules", "writefile_sources", "writefile_module",
           "module_from_source", "build_module", "load_module", "hidden_check", "check_command", "in_autograder",
           "output_path", "GRADING_SCRATCH", "HIDDEN_CHECKS_ENV", "AFTER_NOTEBOOK", "CHECK_COMMAND_ENV", "CHECK_PASS",
           "CHECK_FAIL", "find_project_root"]

#: The assignment's modules and the notebook whose ``%%writefile`` cells write each (the later notebooks, the
#: reference solution and the grader rebuild them from these cells).
MODULE_NOTEBOOKS = {"models.py": "01_models.ipynb", "solver.py": "02_solver.ipynb"}

_WRITEFILE = re.compile(r"^%%writefile(\s+-a|\s+--append)?\s+(\S+)\s*$")


class MissingWritefile(ValueError):
    """A notebook has no plain ``%%writefile <module>`` cell (none, or only ``-a`` appends): the module it should
    write cannot be built. The message says to put the line back."""


def writefile_sources(notebook) -> dict[str, str]:
    """``{file name: source}`` of every module written by the ``%%writefile`` cells of ``notebook`` (a path
    or a notebook dict), replaying ``-a`` appends in cell order. Other cells are ignored."""
    return _writefile_sources(notebook)[0]


def _writefile_sources(notebook) -> tuple[dict[str, str], set[str]]:
    """(modules, names created by a plain ``%%writefile`` rather than only appended to with ``-a``)."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if not isinstance(notebook, dict) else notebook
    modules: dict[str, str] = {}
    created: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        first, _, body = src.partition("\n")
        m = _WRITEFILE.match(first.strip())
        if not m:
            continue
        name = m.group(2)
        if not body.endswith("\n"):
            body += "\n"
        modules[name] = (modules.get(name, "") + body) if m.group(1) else body
        if not m.group(1):
            created.add(name)
    return modules, created


def _module_texts(notebook, wanted: list[str] | None) -> dict[str, str]:
    """``{module: text}`` of the modules ``wanted`` (default: every one) that ``notebook``'s ``%%writefile`` cells
    write; the errors of :func:`writefile_module`."""
    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(tr("{path} not found: it writes the module(s) this notebook imports; keep the "
                                   "assignment's notebooks together in one folder", path=path))
    modules, created = _writefile_sources(path)
    wanted = wanted if wanted is not None else list(modules)
    missing = [m for m in wanted if m not in created]
    if missing:
        raise MissingWritefile(tr("{notebook} has no `%%writefile {module}` cell: put the `%%writefile` lines back at "
                                  "the top of the cells that write it", notebook=path.name, module=missing[0]))
    return {m: modules[m] for m in wanted}


def writefile_module(notebook, module: str) -> str:
    """The text of ``module`` (a file name, e.g. ``"models.py"``) as the ``%%writefile`` cells of ``notebook`` (a
    path) write it. Raises ``FileNotFoundError`` naming the notebook when it is missing, :class:`MissingWritefile`
    when no plain ``%%writefile <module>`` cell starts the module (e.g. the line was deleted)."""
    return _module_texts(notebook, [module])[module]


def module_from_source(text: str, module_name: str, filename: str) -> types.ModuleType:
    """Execute ``text`` as a fresh module registered as ``sys.modules[module_name]`` (removed again if executing it
    raises); tracebacks show ``filename`` and its lines (registered with :mod:`linecache`), no file is written."""
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    try:
        exec(compile(text, filename, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def build_module(notebook, module: str, module_name: str | None = None, filename: str | None = None) \
        -> types.ModuleType:
    """``module`` (e.g. ``"models.py"``) built in memory from the ``%%writefile`` cells of ``notebook``
    (:func:`writefile_module`, its errors), registered as ``sys.modules[module_name]`` (default: the module's
    stem); tracebacks name ``filename`` (default: ``<notebook>:<module>``)."""
    return module_from_source(writefile_module(notebook, module), module_name or Path(module).stem,
                              filename or f"{notebook}:{module}")


def export_modules(notebook, dest_dir=".", only: list[str] | None = None, quiet: bool = False) -> list[Path]:
    """Regenerate the modules written by ``notebook``'s ``%%writefile`` cells into ``dest_dir``.

    Raises ``FileNotFoundError`` naming the notebook when it is missing, and :class:`MissingWritefile` (a
    ``ValueError``) when a module in ``only`` is written by no cell (e.g. a ``%%writefile`` line was deleted).
    """
    path = Path(notebook)
    modules = _module_texts(path, only)
    written = []
    for name, text in modules.items():
        target = Path(dest_dir) / name
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    if not quiet:
        print(tr("regenerated {modules} from {notebook}", modules=", ".join(p.name for p in written),
                 notebook=path.name))
    return written


def load_module(name: str, folder=".", module_name: str | None = None):
    """Import ``<folder>/<name>.py`` afresh (a new module object each call; ``sys.modules[name]`` updated so
    that pickling and ``import name`` elsewhere see the same code)."""
    path = Path(folder) / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(tr("{path} not found: run the `%%writefile {name}.py` cells first", path=path,
                                   name=name))
    spec = importlib.util.spec_from_file_location(module_name or name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name or name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------------------
# Where things are
# ---------------------------------------------------------------------------------------------------------
def in_autograder() -> bool:
    """True while nbgrader executes the notebook (``NBGRADER_EXECUTION`` is ``autograde`` or ``validate``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


#: Where the notebooks write while nbgrader runs them (``nbgrader validate`` or ``autograde``): a hidden folder
#: beside them. nbgrader's grading configuration is tiny (seconds of training), so its checkpoints, tables and
#: pictures must never replace what the student trained and produced in ``checkpoints/``, ``results/`` and
#: ``submission/``. The hidden checks read the same folder. nbgrader never copies it (``.*`` is ignored).
GRADING_SCRATCH = ".grading-run"


def output_path(relative) -> Path:
    """Where a notebook writes ``relative`` (a path like ``"checkpoints/srresnet"``, relative to the notebook's
    folder): ``relative`` itself, or ``.grading-run/<relative>`` while nbgrader runs the notebook, so that
    validating or grading never overwrites your trained models, tables and pictures."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(tr("output_path({relative!r}): give a path inside the notebook's folder, "
                            "e.g. 'checkpoints/srresnet'", relative=str(relative)))
    return Path(GRADING_SCRATCH) / rel if in_autograder() else rel


def find_project_root(start=None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the current one) holding ``nbgrader_config.py``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    return None


# ---------------------------------------------------------------------------------------------------------
# Hidden checks: decided outside the kernel, by the instructor's grader, which says how through these variables
# (this package is shipped to students and knows nothing of the grader)
# ---------------------------------------------------------------------------------------------------------
#: How a kernel's :func:`hidden_check` is decided: :data:`AFTER_NOTEBOOK` under the sandboxed grading command (the
#: grader decides every check once the notebook has run; the kernel cannot see the checks), else by running
#: the command of :data:`CHECK_COMMAND_ENV`.
HIDDEN_CHECKS_ENV = "SR_KIT_HIDDEN_CHECKS"
AFTER_NOTEBOOK = "after-notebook"
#: The command that decides hidden checks, a JSON list of strings (the grader's nbgrader configuration sets it);
#: :func:`hidden_check` adds the check's name and ``--submission FOLDER``, and sends a one-time token on stdin.
CHECK_COMMAND_ENV = "SR_KIT_CHECK_COMMAND"
#: The command's verdict lines: ``<token> PASS <check>`` or ``<token> FAIL <check> <reason>``.
CHECK_PASS, CHECK_FAIL = "PASS", "FAIL"


def check_command() -> list[str] | None:
    """The command deciding hidden checks (``$SR_KIT_CHECK_COMMAND``), or None where there is none (a student's
    machine, a notebook run outside the instructor's nbgrader)."""
    try:
        command = json.loads(os.environ.get(CHECK_COMMAND_ENV) or "null")
    except ValueError:
        return None
    ok = isinstance(command, list) and command and all(isinstance(word, str) for word in command)
    return command if ok else None


def hidden_check(check: str, timeout: float = 120.0) -> None:
    """Run the instructor's hidden check ``check`` on the notebooks in the current folder, in a separate
    ``python -I`` process (:func:`check_command`: nothing done in this kernel can change its verdict). Raises
    ``AssertionError`` with the check's one-line explanation when it fails.

    Under the sandboxed grading command (``$SR_KIT_HIDDEN_CHECKS`` = ``after-notebook``) the kernel cannot see
    the checks: the grader decides them itself, outside the kernel, and marks this cell once the notebook has
    finished."""
    if os.environ.get(HIDDEN_CHECKS_ENV) == AFTER_NOTEBOOK:
        print(tr("hidden check {check!r}: decided by the grader, outside this kernel", check=check))
        return
    command = check_command()
    if command is None:
        raise AssertionError(tr("hidden checks are only available to the instructor's grader"))
    cmd = [*command, check, "--submission", str(Path.cwd())]
    token = uuid.uuid4().hex  # sent on stdin, so code under test cannot print a verdict of its own
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        out = subprocess.run(cmd, input=token + "\n", capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(tr("hidden check {check!r} took longer than {timeout:.0f} s (an endless loop?)",
                                check=check, timeout=timeout)) from None
    verdict = [line for line in out.stdout.splitlines() if line.startswith(f"{token} ")]
    if out.returncode == 0 and verdict and verdict[-1] == f"{token} {CHECK_PASS} {check}":
        return
    reason = verdict[-1].split(" ", 3)[-1] if verdict else (out.stderr.strip().splitlines() or [tr("no verdict")])[-1]
    raise AssertionError(tr("hidden check {check!r} failed: {reason}", check=check, reason=reason))
