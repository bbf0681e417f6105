"""JupyterLab in Chinese, in a real browser (headless Chromium from the distribution, Selenium), started by the
commands the course documents:

* ``make lab LANGUAGE=zh-CN`` (the repository's, on a copy of the committed ``release/zh-CN/superres/``): the
  interface is Chinese (the File menu reads 文件), the user's own JupyterLab settings still apply and are not
  written; ``01_models`` opens, its setup cell runs, and its first visible test cell fails on the unsolved release
  with the message in Chinese; after a wrong first answer, the error shown is the test's own Chinese message;
* the student kit's ``make lab LANGUAGE=zh-CN`` (Chinese, in the kit's ``release/zh-CN/superres``) and ``make lab``
  (English, also with gettext's ``LANGUAGE`` set in the environment);
* a shared server (docs/instructors.md): ``overrides.json`` in the ``settings/`` folder of the application
  directory that ``jupyter lab path`` prints makes a plain ``jupyter lab`` Chinese for everyone.

Each server listens on 127.0.0.1 with a token, in temporary folders (HOME, the exchange); Chromium asks for English
(``--lang=en-US``), so Chinese comes from the setting, not the browser; every non-local host is unreachable.
Screenshots go to ``tests/artifacts/lab-zh/`` (git-ignored). Skips with the reason where Chromium or the zh-CN
release cannot be had; fails under CI.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course.paths import BIN, tool_env
from course_fixtures import (JupyterServer, find_chromium, headless_chromium, jupyter_lab_argv, save_screenshot,
                             skip_or_fail, wait_for)

REPO = Path(__file__).resolve().parents[2]
VENV = BIN.parent  # this environment (the Makefiles' VENV): its JupyterLab has the Chinese language pack
ARTIFACTS = REPO / "tests" / "artifacts" / "lab-zh"
ZH_RELEASE = REPO / "release" / "zh-CN" / "superres"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
#: A first answer to ``ConvolutionalBlock`` that forgets the padding: the visible test's first assert fails.
WRONG_ANSWER = '''%%writefile models.py
import torch
from torch import nn


class ConvolutionalBlock(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, batch_norm=False, activation=None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x):
        return self.conv(x)
'''

pytestmark = pytest.mark.skipif(not (BIN / "jupyter").exists(),
                                reason="JupyterLab is not installed (pip install -e '.[test]')")


def _require(path: Path, why: str) -> Path:
    if path.exists():
        return path
    skip_or_fail(f"{path.relative_to(REPO)} is missing: {why}")


def _env(tmp: Path, **extra) -> dict:
    """This environment's variables less any Jupyter location of the caller's, with a private HOME and exchange."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("JUPYTER_CONFIG_PATH", "JUPYTERLAB_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTER_CONFIG_DIR",
                        "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "LANGUAGE", "MAKEFLAGS", "MAKELEVEL")}
    (tmp / "home").mkdir(exist_ok=True)
    return tool_env(env, HOME=str(tmp / "home"), SR_KIT_EXCHANGE=str(tmp / "exchange"), **extra)


#: What ``make lab`` is given to serve a test: no browser, loopback, this port and token, ``window.jupyterapp``.
LAB_ARGS = ("LAB_ARGS=--no-browser --port={port} --ip=127.0.0.1 --IdentityProvider.token={token} "
            "--LabApp.expose_app_in_browser=True")


def make_lab(folder: Path, stamp: str, *variables: str) -> list[str]:
    """``make lab VARIABLES`` of the Makefile in ``folder`` with this environment as its VENV (``-o``: its install
    stamp is taken as done: the packages are this environment's)."""
    return ["make", "--no-print-directory", "-o", f"{VENV}/{stamp}", "lab", *variables, f"VENV={VENV}", LAB_ARGS]


@pytest.fixture(scope="module")
def chrome():
    b = headless_chromium(*find_chromium(), languages="en-US,en")
    yield b
    b.quit()


def _shot(b, name: str) -> Path:
    return save_screenshot(b, name, ARTIFACTS)


def _wait(b, condition, timeout: float, what: str):
    return wait_for(b, condition, timeout, what, ARTIFACTS)


def _open(b, server: JupyterServer, path: str = "") -> list[str]:
    """Open JupyterLab (at ``path``, a notebook, if given); return the labels of its menu bar once shown."""
    b.get(server.url(f"lab/tree/{path}" if path else "lab"))
    _wait(b, lambda d: d.execute_script("return !!window.jupyterapp"), 120, "JupyterLab")
    return _wait(b, lambda d: d.execute_script(
        "const labels = [...document.querySelectorAll('.lm-MenuBar-itemLabel')].map(e => e.textContent);"
        "return labels.length >= 5 ? labels : null;"), 120, "the menu bar")


def _run_cell(b, index: int) -> dict:
    """Run cell ``index`` of the current notebook as a student does (select it, Run), wait for the kernel; return
    its outputs (the model's) and the text its output area shows."""
    before = b.execute_script("return window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]]"
                              ".model.executionCount", index)
    assert b.execute_async_script(
        "const done = arguments[arguments.length - 1], app = window.jupyterapp, w = app.shell.currentWidget;"
        "w.content.activeCellIndex = arguments[0]; w.content.deselectAll();"
        "app.commands.execute('notebook:run-cell').then(() => done('ok'), e => done(String(e)));", index) == "ok"
    _wait(b, lambda d: d.execute_script(
        "const w = window.jupyterapp.shell.currentWidget, c = w.content.widgets[arguments[0]];"
        "return c.model.executionCount !== null && c.model.executionCount !== arguments[1]"
        " && w.sessionContext.session.kernel.status === 'idle';", index, before), 300, f"cell {index} to run")
    return b.execute_script(
        "const c = window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]];"
        "c.node.scrollIntoView({block: 'center'});"
        "return {outputs: c.model.outputs.toJSON(), shown: c.outputArea.node.innerText};", index)


def _cell_index(b, predicate_js: str) -> int:
    """The index of the first cell of the current notebook for which ``predicate_js`` (a function of the cell's
    id and its nbgrader metadata) is true."""
    index = b.execute_script(
        f"const p = {predicate_js};"
        "return window.jupyterapp.shell.currentWidget.content.widgets.findIndex("
        "c => p(c.model.id, c.model.getMetadata('nbgrader') || {}));")
    assert index >= 0, predicate_js
    return index


def _test_messages(source: str) -> list[str]:
    """The first lines of the string constants in the ``assert`` messages of a test cell's source (an f-string's
    literal parts included)."""
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.startswith(("%", "!"))))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.msg is not None:
            for const in ast.walk(node.msg):
                if isinstance(const, ast.Constant) and isinstance(const.value, str) and const.value.strip():
                    found.append(const.value.strip().splitlines()[0].strip())
    return found


def _load_module_error(tmp: Path) -> str:
    """What ``load_module("models")`` says in Chinese where models.py is missing (sr_utils' message catalogue)."""
    from sr_utils.i18n import LANGUAGE_ENV
    from sr_utils.notebook import load_module

    empty, here, before = tmp / "empty", os.getcwd(), os.environ.get(LANGUAGE_ENV)
    empty.mkdir()
    os.chdir(empty)
    os.environ[LANGUAGE_ENV] = "zh-CN"
    try:
        load_module("models")
    except FileNotFoundError as e:
        return str(e)
    finally:
        os.chdir(here)
        if before is None:
            os.environ.pop(LANGUAGE_ENV, None)
        else:
            os.environ[LANGUAGE_ENV] = before
    raise AssertionError("load_module found a models.py in an empty folder")


@pytest.mark.slow
def test_make_lab_zh_cn_runs_the_chinese_release_in_a_chinese_jupyterlab(chrome, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    release = _require(ZH_RELEASE / "01_models.ipynb", "the zh-CN release is generated by `make release` "
                       "(python -m course.release) and committed").parent
    work = tmp_path / "zh-CN" / "superres"
    shutil.copytree(release, work, ignore=shutil.ignore_patterns("models.py", "solver.py", ".*"))
    nb = json.loads((work / "01_models.ipynb").read_text(encoding="utf-8"))
    assert nb["metadata"].get("sr_kit", {}).get("language") == "zh-CN"
    # the user's own settings: a theme of theirs still applies, and nothing is written into them
    user = tmp_path / "home" / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    (user / "apputils-extension").mkdir(parents=True)
    (user / "apputils-extension" / "themes.jupyterlab-settings").write_text('{"theme": "JupyterLab Dark"}')
    env = _env(tmp_path)
    server = JupyterServer(make_lab(REPO, ".installed-instructor", "LANGUAGE=zh-CN", f"NOTEBOOKS={work}"), REPO,
                           env, tmp_path / "make-lab-zh.log")
    try:
        plugin = server.get("lab/api/settings/@jupyterlab/translation-extension:plugin")
        assert plugin["schema"]["properties"]["locale"]["default"] == "zh_CN" and plugin["settings"] == {}, plugin
        menus = _open(chrome, server, "01_models.ipynb")
        assert "文件" in menus and "File" not in menus, menus
        _wait(chrome, lambda d: d.execute_script("return document.body.dataset.jpThemeName") == "JupyterLab Dark",
              60, "the user's own theme")
        _wait(chrome, lambda d: d.execute_script(
            "const w = window.jupyterapp.shell.currentWidget;"
            "return w && w.context && w.context.path === '01_models.ipynb' && w.sessionContext.session"
            " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle';"), 120,
              "the kernel")
        # the File menu, open, in Chinese
        next(e for e in chrome.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == "文件").click()
        items = _wait(chrome, lambda d: d.execute_script(
            "const m = document.querySelector('.lm-Menu');"
            "return m ? [...m.querySelectorAll('.lm-Menu-itemLabel')].map(e => e.textContent) : null;"), 30,
                      "the File menu")
        assert any(CJK.search(i) for i in items), items
        _shot(chrome, "lab-zh-file-menu")
        ActionChains(chrome).send_keys(Keys.ESCAPE).perform()
        _wait(chrome, lambda d: not d.find_elements(By.CSS_SELECTOR, ".lm-Menu"), 30, "the File menu to close")
        setup = _cell_index(chrome, "(id, m) => m.grade_id === 'setup'")
        ran = _run_cell(chrome, setup)
        assert not [o for o in ran["outputs"] if o["output_type"] == "error"], ran
        # the first visible test, on the unsolved release (models.py not written yet): it fails, in Chinese
        test = _cell_index(chrome, "(id, m) => m.grade === true && !m.solution")
        test_source = "".join(nb["cells"][test]["source"])
        failed = _run_cell(chrome, test)
        errors = [o for o in failed["outputs"] if o["output_type"] == "error"]
        assert errors and errors[0]["ename"] == "FileNotFoundError", failed
        said = _load_module_error(tmp_path)
        assert CJK.search(said) and said in failed["shown"], (said, failed["shown"])
        # a wrong first answer (no padding): the error shown is the test's own message, in Chinese
        answer = _cell_index(chrome, "(id, m) => m.solution === true && m.grade_id.endsWith('_code')")
        assert answer < test
        chrome.execute_script("window.jupyterapp.shell.currentWidget.content.widgets[arguments[0]]"
                              ".model.sharedModel.setSource(arguments[1])", answer, WRONG_ANSWER)
        assert not [o for o in _run_cell(chrome, answer)["outputs"] if o["output_type"] == "error"]
        failed = _run_cell(chrome, test)
        errors = [o for o in failed["outputs"] if o["output_type"] == "error"]
        assert errors and errors[0]["ename"] == "AssertionError", failed
        chinese = [m for m in _test_messages(test_source) if CJK.search(m)]
        assert chinese, f"the zh-CN test cell has no Chinese message: {test_source[:400]}"
        assert chinese[0] in failed["shown"] and CJK.search(failed["shown"]), (chinese[0], failed["shown"])
        _shot(chrome, "lab-zh-test-fails-in-chinese")
        # no language was written into the user's settings (the locale is a default of the session)
        assert not (user / "translation-extension").exists()
    finally:
        server.stop()


@pytest.mark.slow
def test_the_student_kits_make_lab_in_chinese_and_in_english(chrome, tmp_path):
    from course.student_kit import build_student_kit

    _require(ZH_RELEASE / "01_models.ipynb", "the student kit ships the committed zh-CN release")
    kit = build_student_kit(tmp_path / "out", log=lambda *a: None)["folder"]
    for variables, language, env in ((["LANGUAGE=zh-CN"], "zh-CN", {}), ([], "en", {"LANGUAGE": "en_US:en"})):
        server = JupyterServer(make_lab(kit, ".installed", *variables), kit, _env(tmp_path, **env),
                               tmp_path / f"kit-lab-{language}.log")
        try:
            notebooks = {c["name"]: c for c in server.get("api/contents")["content"]}
            assert "01_models.ipynb" in notebooks, notebooks
            opened = server.get("api/contents/01_models.ipynb")["content"]
            assert opened["metadata"].get("sr_kit", {}).get("language", "en") == language
            menus = _open(chrome, server)
            _shot(chrome, f"kit-lab-{language}")
            if language == "zh-CN":
                assert "文件" in menus and "File" not in menus, menus
            else:
                assert "File" in menus and "文件" not in menus, menus
        finally:
            server.stop()


@pytest.mark.slow
def test_a_shared_server_in_chinese_with_overrides_json(chrome, tmp_path):
    """docs/instructors.md: ``overrides.json`` in ``<application directory>/settings/``, the folder that
    ``jupyter lab path`` prints ({sys.prefix}/share/jupyter/lab), makes every JupyterLab of that installation
    Chinese. Here the application directory is a private one (JUPYTERLAB_DIR, linking this installation's build)."""
    out = subprocess.run([str(BIN / "jupyter"), "lab", "path"], capture_output=True, text=True, check=True,
                         env=_env(tmp_path))
    installed = Path(re.search(r"Application directory:\s*(\S+)", out.stdout).group(1))
    assert installed == Path(sys.prefix) / "share" / "jupyter" / "lab", out.stdout
    app = tmp_path / "app"
    env = _env(tmp_path, JUPYTERLAB_DIR=str(app))
    out = subprocess.run([str(BIN / "jupyter"), "lab", "path"], capture_output=True, text=True, check=True, env=env)
    assert Path(re.search(r"Application directory:\s*(\S+)", out.stdout).group(1)) == app, out.stdout
    (app / "settings").mkdir(parents=True)
    for part in ("static", "schemas", "themes"):
        (app / part).symlink_to(installed / part)
    (app / "settings" / "overrides.json").write_text(
        json.dumps({"@jupyterlab/translation-extension:plugin": {"locale": "zh_CN"}}))
    root = tmp_path / "server"
    root.mkdir()
    server = JupyterServer(jupyter_lab_argv(root), root, env, tmp_path / "shared-lab.log")
    try:
        menus = _open(chrome, server)
        _shot(chrome, "shared-server-zh")
        assert "文件" in menus and "File" not in menus, menus
    finally:
        server.stop()
