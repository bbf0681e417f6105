"""The sandboxed grading command against a class with hostile and broken submissions (issue: grading a class).

One batch, graded by ``python -m course.grade`` with 2 workers in a private course copy: two copies of the
reference solution, a partly solved submission, and 20 attacks, each built on the unsolved student release (so
that any point it gets is a point it stole). Afterwards: every attack scored 0, nothing outside its own folder
changed, nothing secret shows up anywhere it could have been printed, no connection reached the test's server,
no sandboxed process is left, the other students' grades equal those they get when graded alone, the per-test
breakdown agrees with the gradebook, and the feedback shows no hidden test.
"""
from __future__ import annotations

import copy
import hashlib
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from course.paths import BIN, tool, tool_env

REPO = Path(__file__).resolve().parents[1]
NBGRADER = tool("nbgrader")

pytestmark = pytest.mark.skipif(not NBGRADER.exists(), reason="nbgrader is not installed (pip install -e '.[test]')")


def require_bwrap() -> None:
    """Skip without bubblewrap -- except under CI, where `make test` installs it and its absence is a failure."""
    if shutil.which("bwrap"):
        return
    msg = "bubblewrap (bwrap) is not installed (`make test` installs it with apt-get when run as root)"
    if os.environ.get("CI"):
        pytest.fail("CI is set but " + msg)
    pytest.skip(msg)


def _sandboxed(code: str, limits=None, cgroup=None, deny_memfd=False, numba_cache="",
               niceness=0) -> subprocess.CompletedProcess:
    """Run ``code`` with the sandbox the grader gives student code (as root: uid 61000 + 60)."""
    import sr_utils
    from course.sandbox import FIRST_SANDBOX_UID, Limits, SandboxSpec, base_env, bwrap_command, in_cgroups

    spec = SandboxSpec(uid=FIRST_SANDBOX_UID + 60 if os.geteuid() == 0 else None, limits=limits or Limits(),
                       code_dirs=[str(Path(sr_utils.__file__).parent)], cgroup_procs=cgroup.procs if cgroup else [],
                       deny_memfd=deny_memfd, numba_cache=numba_cache, niceness=niceness)
    argv = in_cgroups(spec, bwrap_command(spec, [sys.executable, "-c", code], cwd="/tmp", env=base_env(spec)))
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_the_sandbox_sees_and_reaches_only_what_it_should(tmp_path):
    require_bwrap()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    server = Server()
    code = f"""
import os, socket
import sr_utils.metrics  # the kit's public code is there
print("uid", os.getuid())
print("secret", os.path.exists({str(secret)!r}), os.path.exists({str(REPO / "source")!r}),
      os.path.exists({str(REPO / "course")!r}), os.path.exists("/root/.bashrc"))
for path in ("/written", {str(REPO / "sr_utils" / "x.py")!r}):
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as e:
        print("refused", type(e).__name__)
open("/tmp/ok", "w").write("x")
s = socket.socket(); s.settimeout(3)
print("connect", s.connect_ex(("127.0.0.1", {server.port})))
"""
    out = _sandboxed(code)
    assert out.returncode == 0, out.stderr
    lines = dict(ln.split(" ", 1) for ln in out.stdout.splitlines())
    assert lines["secret"] == "False False False False"
    assert "wrote" not in out.stdout and out.stdout.count("refused") == 2
    assert lines["connect"] != "0" and server.accepted == []
    if os.geteuid() == 0:
        assert lines["uid"] == str(61060), "as root, student code runs as an unprivileged uid"
    assert not (REPO / "sr_utils" / "x.py").exists() and not Path("/written").exists()


def test_sandboxes_load_the_graders_compiled_imresize_instead_of_compiling(tmp_path):
    """The kit's code is read-only in a sandbox, where numba can neither write nor read its cache: without the
    grader's compiled kernels every kernel compiles imresize (~2.5 s per notebook); with them, nothing compiles,
    and what a sandbox writes to its copy reaches neither the grader's folder nor the next sandbox."""
    require_bwrap()
    from course.sandbox import prepare_numba_cache

    cache = prepare_numba_cache(tmp_path / "numba")
    assert cache, "the trusted process could not compile the kernels"
    before = _snapshot(Path(cache))
    code = ("import numpy as np\nfrom sr_utils.imresize import imresize, _get_kernels\n"
            "imresize(np.zeros((32, 32, 3), np.uint8), 1 / 4)\n"
            "imresize(np.zeros((8, 8, 3), np.float32), 4)\n"
            "print(*(sum(getattr(k.stats, s).values()) for k in _get_kernels() for s in ('cache_hits', 'cache_misses')))\n"
            "open('/tmp/.numba/planted', 'w').write('x')")
    hits_rows, misses_rows, hits_cols, misses_cols = map(int, _sandboxed(code, numba_cache=cache).stdout.split())
    assert misses_rows == misses_cols == 0 and hits_rows >= 2 and hits_cols >= 2
    _, misses_rows, _, misses_cols = map(int, _sandboxed(code).stdout.split())
    assert misses_rows >= 2 and misses_cols >= 2, "without the grader's cache the sandbox compiles (the test's control)"
    assert _snapshot(Path(cache)) == before and not (Path(cache) / "planted").exists()


def test_the_checks_student_side_yields_to_the_kernels():
    """The student side of the hidden checks runs at CHECKS_NICENESS, its session's scheduling group too (bwrap
    makes a session of its own, and with autogroups a thread's niceness only counts inside its session); a
    kernel's sandbox keeps the grader's priority."""
    require_bwrap()
    from course.sandbox import CHECKS_NICENESS

    code = "import os\nprint(os.getpriority(os.PRIO_PROCESS, 0), open('/proc/self/autogroup').read().split()[-1])"
    autogroups = Path("/proc/sys/kernel/sched_autogroup_enabled")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    nice, group = _sandboxed(code, niceness=CHECKS_NICENESS).stdout.split()
    assert int(nice) == max(own, CHECKS_NICENESS)
    if autogroups.is_file() and autogroups.read_text().strip() == "1" and os.geteuid() == 0:
        assert int(group) == CHECKS_NICENESS
    nice, group = _sandboxed(code).stdout.split()
    assert int(nice) == own and int(group) == 0


def test_a_cgroup_bounds_the_whole_sandbox_memory_tmpfs_included(tmp_path):
    """rlimits bound each process; the worker's cgroup also counts the sandbox's tmpfs pages (root only)."""
    require_bwrap()
    from course.sandbox import Cgroup, Limits

    cgroup = Cgroup.create(f"sr-kit-test-{os.getpid()}", 256 << 20, 64)
    if cgroup is None:
        pytest.skip("no writable cgroup memory/pids controllers here (not root, or a read-only cgroupfs)")
    try:
        limits = Limits(memory_bytes=256 << 20, tmp_bytes=1 << 30)
        out = _sandboxed("f = open('/tmp/fill', 'wb')\nfor _ in range(40):\n    f.write(b'x' * (10 << 20))\n"
                         "f.flush()\nprint('wrote 400 MB')", limits, cgroup)
        assert "wrote 400 MB" not in out.stdout, "400 MB of tmpfs should not fit in a 256 MB cgroup"
        small = _sandboxed("open('/tmp/fill', 'wb').write(b'x' * (50 << 20))\nprint('ok')", limits, cgroup)
        assert small.stdout.strip() == "ok", small.stderr
    finally:
        cgroup.remove()


def test_refuses_without_a_sandbox_unless_unsafe(tmp_path):
    (tmp_path / "course" / "submitted").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    env = {**os.environ, "PATH": str(BIN)}  # no /usr/bin: no bwrap
    cmd = [sys.executable, "-m", "course.grade", "superres", "--course-dir", str(tmp_path)]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "refusing to grade" in out.stderr and "bubblewrap" in out.stderr and "--unsafe" in out.stderr
    assert "Docker" in out.stderr
    out = subprocess.run(cmd + ["--unsafe"], cwd=REPO, env=env, capture_output=True, text=True)
    assert "refusing" not in out.stderr and "no submission" in out.stderr, out.stderr
    assert "WARNING: --unsafe" in out.stdout

CORRECT = ["ref_a", "ref_b"]
ZH_STUDENT = "ref_b"  # took the zh-CN release
# students whose folders hold links or FIFOs (``_src``: in the --from folder, else filled by hand in submitted/)
INTAKE_ATTACKS = {
    "linked": {"01_models.ipynb": "/etc/shadow", "02_solver.ipynb": "{course}/source/superres/02_solver.ipynb",
               "03_train.ipynb": "{course}/course/gradebook.db",
               "04_test.ipynb": "{course}/course/submitted/ref_a/superres/04_test.ipynb",
               "checks.py": "{course}/course/translations/zh-CN/superres/01_models.md"},
    "fifo": {"01_models.ipynb": "fifo"},
    "linked_src": {"01_models.ipynb": "/etc/shadow"},
}
HOST_TMP_MARK = Path("/tmp") / f"sr_kit_pwned_{os.getpid()}"


def _nb(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def _code(source: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def _write_submission(folder: Path, notebooks: dict[str, dict]) -> None:
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        (folder / name).write_text(json.dumps(nb, indent=1))


class Server:
    """A TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            self.accepted.append(addr)
            conn.close()


def _attacks(course: Path, port: int) -> dict[str, dict]:
    """name -> where the attack goes: {"cell": code run in the kernel of 01_models} and/or {"module": code put at
    the top of models.py (it runs in the hidden checks too)} and/or {"edit": a function changing notebooks}."""
    secrets = [course / "source" / "superres" / "01_models.ipynb",
               course / "course" / "translations" / "zh-CN" / "superres" / "01_models.md",
               course / "course" / "gradebook.db", course / "course" / "submitted" / "ref_a" / "superres" /
               "01_models.ipynb", course / "course" / "autograded" / "ref_a" / "superres" / "models.py",
               REPO / "source" / "superres" / "01_models.ipynb", REPO / "course" / "grading" / "checks" / "solver_checks.py"]
    read = (f"import os\nfor _p in {[str(p) for p in secrets]!r}:\n"
            "    try:\n        print('LEAK', _p, open(_p, errors='replace').read())\n"
            "    except Exception as _e:\n        print('denied', _p, type(_e).__name__)\n")
    # (the Python installation is public, and nbgrader's own test files in it hold notebooks and a gradebook)
    hunt = ("import os, sys\nfor _root, _dirs, _files in os.walk('/'):\n"
            "    _dirs[:] = [d for d in _dirs if os.path.join(_root, d) not in ('/proc', '/sys', '/usr', '/dev',"
            " sys.prefix, sys.base_prefix)]\n"
            "    for _f in _files:\n"
            "        if _f in ('checks.py', 'gradebook.db', 'student_client.py') or _f.endswith('.ipynb'):\n"
            "            try:\n                _t = open(os.path.join(_root, _f), errors='replace').read()\n"
            "            except Exception:\n                continue\n"
            "            if 'BEGIN ' + 'SOLUTION' in _t or 'Check' + 'Failed' in _t or 'SQL' + 'ite' in _t:\n"
            "                print('LEAK', os.path.join(_root, _f), _t)\n")
    # (markers are built by concatenation so that the attack's own source, shown in its notebook, holds none)
    write = (f"for _p in [{str(course / 'course' / 'gradebook.db')!r}, {str(course / 'pwned.txt')!r},\n"
             f"           {str(course / 'source' / 'superres' / 'pwned.txt')!r},\n"
             f"           {str(REPO / 'sr_utils' / 'pwned.py')!r},\n"
             f"           {str(course / 'course' / 'submitted' / 'ref_a' / 'superres' / '01_models.ipynb')!r}]:\n"
             "    try:\n        open(_p, 'a').write('PWN' + 'ED')\n        print('WRO' + 'TE', _p)\n"
             "    except Exception as _e:\n        print('denied', _p, type(_e).__name__)\n"
             f"open({str(HOST_TMP_MARK)!r}, 'w').write('x')  # its private /tmp: allowed, must not reach the host's\n")
    return {
        "infinite_loop": {"cell": "while True:\n    pass\n"},
        "sigint_immune": {"cell": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"},
        "memory_bomb": {"cell": "_hog = []\nwhile True:\n    _hog.append(bytearray(256 << 20))\n"},
        "fork_bomb": {"cell": "import os, time\nfor _ in range(100000):\n    try:\n        os.fork()\n"
                              "    except OSError:\n        time.sleep(0.1)\n"},
        "output_flood": {"cell": "_line = 'x' * 1_000_000\nfor _ in range(4000):\n    print(_line)\n"},
        "stderr_spam": {"cell": "import sys\nfor _ in range(20000):\n    sys.stderr.write('E' * 500 + '\\n')\n",
                        "module": "import sys\nsys.stderr.write('E' * 100000)\n"},
        "disk_bomb": {"cell": "with open('big.bin', 'wb') as _f:\n    for _ in range(64):\n"
                              "        _f.write(b'\\0' * (32 << 20))\n"},
        # many 100 MB files, from a solved 01_models (whose points it must lose): the folder's bound holds during the
        # run (as root: ENOSPC from its tmpfs), the files go, the notebook scores 0, the grader lists it
        "disk_flood": {"solved_models": True, "cell": DISK_FLOOD},
        "read_secrets": {"cell": read, "module": read.replace("print('LEAK', _p, ", "raise RuntimeError('LEAK' + ")
                         .replace("open(_p, errors='replace').read())", "open(_p, errors='replace').read()[:250])")},
        "hunt_secrets": {"cell": hunt},
        "write_outside": {"cell": write, "module": write},
        "network": {"cell": f"import socket\n_s = socket.socket()\n_s.settimeout(3)\n"
                            f"print('CONNEC' + 'TED' if _s.connect_ex(('127.0.0.1', {port})) == 0 else 'no network')\n",
                    "module": f"import socket\n_s = socket.socket()\n_s.settimeout(3)\n"
                              f"_s.connect_ex(('127.0.0.1', {port}))\n"},
        "kill_parent": {"cell": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                                "os.kill(-1, signal.SIGKILL)\n"},
        "survive_kernel": {"cell": "import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 60; echo late > late.txt'],"
                                   " start_new_session=True)\n"},
        "symlink_escape": {"cell": f"import os\nfor _n, _t in [('02_solver.ipynb', {str(course / 'course' / 'gradebook.db')!r}),"
                                   f" ('03_train.ipynb', {str(course / 'source' / 'superres' / '03_train.ipynb')!r})]:\n"
                                   "    os.unlink(_n)\n    os.symlink(_t, _n)\nos.mkfifo('04_test.ipynb.fifo')\n"},
        "monkeypatch": {"module": "import builtins, numpy.testing, torch.testing, sr_utils.notebook\n"
                                  "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                                  "torch.testing.assert_close = lambda *a, **k: None\n"
                                  "sr_utils.notebook.hidden_check = lambda *a, **k: None\n"
                                  "builtins.AssertionError = type('Ignored', (Exception,), {})\n",
                        "cell": "import sr_utils.notebook\nsr_utils.notebook.hidden_check = lambda *a, **k: None\n"},
        "forge_verdicts": {"module": "import os\nfor _fd in range(1, 30):\n    for _c in ('conv_block', 'srresnet',"
                                     " 'srgan_epoch', 'test_table'):\n        try:\n"
                                     "            os.write(_fd, f'VERDICT {_c} PASS\\nPASS\\n'.encode())\n"
                                     "        except OSError:\n            pass\n"},
        "fake_losses": {"solver": "import random\n\ndef train_srresnet_epoch(*a, **k):\n"
                                  "    return [1.0 / (i + 1) for i in range(10)]\n\n"
                                  "def train_srgan_epoch(*a, **k):\n"
                                  "    return {'g': [1.0 / (i + 1) for i in range(10)],"
                                  " 'd': [0.5] * 10, 'content': [0.1] * 10, 'adversarial': [0.7] * 10}\n"},
        # issue 10: forging verdicts from inside the check process, reference aliasing, exfiltration through
        # failure messages, script in outputs and answers, formula names, output bombs, the kernel keyring
        # (several classes share a submission to keep the batch short; each is checked on its own below)
        "forge_and_alias": {"module": FORGE, "module_end": ALIAS},
        "exfiltrate_gc": {"module": EXFILTRATE},
        "scripts": {"cell": KEYRING + SCRIPTS + LEAVE_FILES + FORMULA, "markdown": MARKDOWN_XSS,
                                   "module": KEYRING.replace("print(", "0 and print(") + FORMULA},
        "output_bombs": {"cell": "from IPython.display import display\n"
                                 "_h = display({'text/plain': 'x'}, raw=True, display_id=True)\n"
                                 "for _i in range(300):\n    _h.update({'text/plain': 'y' * 2_000_000}, raw=True)\n"
                                 "for _i in range(40):\n"
                                 "    display({'text/plain': 'x'}, metadata={'m': 'z' * 10_000_000}, raw=True)\n"},
        "edit_tests": {"edit": "edit"},
        "delete_tests": {"edit": "delete"},
        "skip_tags": {"edit": "tags"},
        # second round, item 1: points come only from the trusted side. Each runs in every notebook's kernel (a
        # cell of its own, first), and must leave no output of the kernel deciding a score
        **{name: {"everywhere": code} for name, code in TRUSTED_POINTS_ATTACKS.items()},
    }


# (a) an execute_result before the test's error, from every cell: every expression statement shown, and an input
# transformer putting "all good" and 1 before each cell's lines (nbgrader scores from the first execute_result)
RESULT_FIRST = ("_ip = get_ipython()\n_ip.ast_node_interactivity = 'all'\n"
                "_ip.input_transformers_post.append(lambda _lines: ['\"all good\"\\n', '1\\n'] + list(_lines))\n"
                "_ip.events.register('pre_run_cell', lambda *_a: _ip.displayhook('all good'))\n")
# (b) numbers shown and printed (display_data, stream) before each cell runs
NUMBERS_SHOWN = ("from IPython.display import display as _display\n"
                 "def _numbers(*_a):\n    _display(36)\n    _display({'text/plain': '2'}, raw=True)\n    print(36)\n"
                 "get_ipython().events.register('pre_run_cell', _numbers)\n")
# (c) the kernel reports no error at all: every exception swallowed, no traceback sent, the reply made 'ok'
ERRORS_SWALLOWED = ("_ip = get_ipython()\n_ip.set_custom_exc((BaseException,), lambda *_a, **_k: None)\n"
                    "_ip._showtraceback = lambda *_a, **_k: None\n"
                    "def _clean(_result=None):\n    if _result is not None:\n"
                    "        _result.error_in_exec = None\n        _result.error_before_exec = None\n"
                    "_ip.events.register('post_run_cell', _clean)\n")
# (d) an execute_result sent through the kernel's own iopub socket, as the kernel would, before each cell runs
IOPUB_FORGED = ("_k = get_ipython().kernel\n"
                "def _forge(*_a):\n"
                "    for _text in (\"'all good'\", '36'):\n"
                "        _k.session.send(_k.iopub_socket, 'execute_result', {'execution_count': 1, 'metadata': {},"
                " 'data': {'text/plain': _text}}, parent=_k.get_parent('shell'), ident=_k._topic('execute_result'))\n"
                "get_ipython().events.register('pre_run_cell', _forge)\n")
TRUSTED_POINTS_ATTACKS = {"result_first": RESULT_FIRST, "numbers_shown": NUMBERS_SHOWN,
                          "errors_swallowed": ERRORS_SWALLOWED + RESULT_FIRST, "iopub_forged": IOPUB_FORGED}


DISK_FLOOD = ("_n = 0\ntry:\n    for _i in range(12):\n        with open(f'flood{_i}.bin', 'wb') as _f:\n"
              "            _f.write(b'\\0' * (100 << 20))\n        _n += 1\n"
              "except OSError as _e:\n    print('FLOOD stopped:', _e)\nprint('FLOOD wrote', _n, 'files')\n")
# the batch's bound on what a submission keeps in its folder (the reference keeps ~6 MB)
FOLDER_BYTES = 300 << 20
# what a notebook leaves in its folder while graded: a page the formgrader would serve from the instructor's origin,
# a folder 1,500 levels deep (recursive walks fail on it), 50 MB in .grading-run/ (within the bound)
LEAVE_FILES = ("import os as _os\n_p = 'deep'\nfor _i in range(1500):\n    _os.mkdir(_p)\n    _p += '/d'\n"
               "open(_p + '.png', 'wb').write(b'x')\n"
               "open('page.html', 'w').write('<script>window.XSS_' + 'PAGE = 1</script>')\n"
               "_os.makedirs('.grading-run/checkpoints', exist_ok=True)\n"
               "open('.grading-run/checkpoints/left.bin', 'wb').write(b'\\0' * (50 << 20))\n"
               "print('LEFT', 'FILES')\n")
# (markers are built by concatenation so that no attack's source holds them: only a live copy would)
FORGE = ("import gc as _gc, os as _os, sys as _sys\n_f = _sys._getframe()\n_tokens = set()\nwhile _f is not None:\n"
         "    _tokens |= {v for v in _f.f_locals.values() if isinstance(v, str) and len(v) == 32}\n    _f = _f.f_back\n"
         "for _o in _gc.get_objects():\n"
         "    if isinstance(_o, dict) and 'token' in _o and isinstance(_o['token'], str):\n"
         "        _tokens.add(_o['token'])\n"
         "for _fd in range(1, 40):\n    for _t in _tokens | {''}:\n        for _c in ('conv_block', 'srresnet', "
         "'generator', 'discriminator', 'srresnet_epoch', 'srgan_epoch', 'test_table', 'set5_submission'):\n"
         "            try:\n                _os.write(_fd, f'{_t} PASS {_c}\\n{_t} VERDICT {_c} PASS\\n'.encode())\n"
         "            except OSError:\n                pass\n")
ALIAS = ("\nimport sys as _sys\nfor _m in list(_sys.modules.values()):\n"
         "    if 'reference' in getattr(_m, '__name__', '') and hasattr(_m, 'SRResNet'):\n"
         "        for _n in ('ConvolutionalBlock', 'SubPixelConvolutionalBlock', 'ResidualBlock', 'SRResNet', "
         "'Generator', 'Discriminator'):\n            globals()[_n] = getattr(_m, _n)\n")
EXFILTRATE = ("import gc as _gc, marshal as _marshal\n"
              "_found = [_o for _o in _gc.get_objects() if type(_o).__name__ == 'code'"
              " and ('oracle' in _o.co_name or 'check' in _o.co_name.lower())]\n"
              "raise RuntimeError('EXFIL' + _marshal.dumps(_found[:50]).hex()"
              " + repr(_gc.get_objects()[:2000])[:20000])\n")
SCRIPTS = ("from IPython.display import display, HTML, Javascript\n"
           "display(HTML('<script>window.X' + 'SS_SCRIPT = 1</script><img src=x onerror=\"X' + 'SS_ONERROR()\">'"
           " + '<a href=\"javascript:X' + 'SS_HREF()\">a</a>'))\n"
           "display(Javascript('window.X' + 'SS_JSOUT = 1'))\n"
           "display({'image/svg+xml': '<svg onload=\"X' + 'SS_SVG()\"></svg>', 'text/plain': 'svg'}, raw=True)\n"
           "display({'text/html': '<b>ok</b>', 'application/vnd.evil+html': '<script>X' + 'SS_MIME</script>'},"
           " raw=True)\n")
# a markdown answer: the literal payload is in the submitted notebook; what matters is what gets rendered
MARKDOWN_XSS = ("My answer <script>window.XSS_MD_SCRIPT = 1</script> <img src=x onerror=\"XSS_MD_ONERROR()\"> "
                "[click](javascript:XSS_MD_LINK()) <svg onload=\"XSS_MD_SVG()\"></svg>\n\n"
                "$\\href{javascript:XSS_MD_MATH()}{x}$\n\n[ref]: javascript:XSS_MD_REF()\n")
LIVE_MARKERS = ["XSS_SCRIPT", "XSS_ONERROR", "XSS_HREF", "XSS_JSOUT", "XSS_SVG", "XSS_MIME", "XSS_MD_SCRIPT",
                "XSS_MD_ONERROR", "XSS_MD_LINK", "XSS_MD_SVG", "XSS_MD_MATH", "XSS_MD_REF"]
FORMULA = "raise type('=HYPERLINK(\"http://evil.example/\", \"x\")', (Exception,), {})('=1+2')\n"
KEYRING = ("import ctypes as _ct\n_libc = _ct.CDLL(None, use_errno=True)\n"
           "_r = _libc.add_key(b'user', b'sr_kit_shared', b'from another student', 13, _ct.c_int(-4)) "
           "if hasattr(_libc, 'add_key') else _libc.syscall(248, b'user', b'sr_kit_shared', b'x', 1, _ct.c_long(-4))\n"
           "print('KEYRING ' + ('ADD' + 'ED' if _r >= 0 else 'denied'), _ct.get_errno())\n")


def _build_hostile(release: dict[str, dict], attack: dict) -> dict[str, dict]:
    nbs = copy.deepcopy(release)
    models = nbs["01_models.ipynb"]
    if "module_end" in attack:
        last = [c for c in models["cells"] if _src(c).startswith("%%writefile -a models.py")][-1]
        last["source"] = _src(last) + attack["module_end"]
    if "markdown" in attack:
        for cell in nbs["03_train.ipynb"]["cells"]:
            if cell["cell_type"] == "markdown" and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
                cell["source"] = attack["markdown"]
    if "cell" in attack:
        models["cells"].insert(1, _code(attack["cell"]))
    if "everywhere" in attack:  # every notebook's kernel
        for nb in nbs.values():
            nb["cells"].insert(1, _code(attack["everywhere"]))
    if "module" in attack:
        for cell in models["cells"]:
            if _src(cell).startswith("%%writefile models.py"):
                first, _, rest = _src(cell).partition("\n")
                cell["source"] = first + "\n" + attack["module"] + rest
                break
    if "solver" in attack:
        for cell in nbs["02_solver.ipynb"]["cells"]:
            if _src(cell).startswith("%%writefile solver.py"):
                cell["source"] = "%%writefile solver.py\n" + attack["solver"]
            elif _src(cell).startswith("%%writefile -a solver.py"):
                cell["source"] = "%%writefile -a solver.py\n# train_srgan_epoch is above\n"
    for nb in nbs.values():
        kept = []
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            is_test = meta.get("grade") and not meta.get("solution")
            if is_test and attack.get("edit") == "delete":
                continue
            if is_test and attack.get("edit") == "edit":
                cell["source"] = "print('all tests passed')\n"
            if is_test and attack.get("edit") == "tags":
                cell["metadata"]["tags"] = ["skip-execution", "raises-exception"]
            kept.append(cell)
        nb["cells"] = kept
    return nbs


def _snapshot(*folders: Path, skip: tuple = ()) -> dict[str, str]:
    digest = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            rel = str(p)
            if any(rel.startswith(str(s)) for s in skip) or "__pycache__" in rel:
                continue
            if p.is_file() and not p.is_symlink():
                digest[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                digest[rel] = "link" if p.is_symlink() else "dir"
    return digest


def _scores(course: Path, student: str) -> dict[tuple, float]:
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        sub = gb.find_submission("superres", student)
        return {(nb.name, g.name): g.score for nb in sub.notebooks for g in nb.grades}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade the whole class once; returns the facts the tests look at."""
    require_bwrap()
    from course.grade import grade
    from course.sandbox import Limits

    from course.demo import copy_course

    root = tmp_path_factory.mktemp("class")
    course = copy_course(root / "course_root")
    data = root / "data"
    os.environ["SR_DATA_DIR"] = str(data)  # read by the grading command and inherited by nbgrader
    from data_tools.samples import ensure_sample_data

    ensure_sample_data(data)
    for p in [root, data, *data.rglob("*")]:  # pytest's folders are 0700: the sandbox user must read the data
        p.chmod(0o755 if p.is_dir() else 0o644)

    release = {p.name: _nb(p) for p in sorted((REPO / "release" / "superres").glob("*.ipynb"))}
    reference = {p.name: _nb(p) for p in sorted((REPO / "source" / "superres").glob("*.ipynb"))}
    subs = root / "submissions"
    # the class holds both languages: ref_b took the zh-CN release (the reference, translated)
    from course.notebook_translation import catalogue_path, read_catalogue, translate_notebook

    reference_zh = {name: translate_notebook(nb, read_catalogue(catalogue_path(REPO, "zh-CN", "superres",
                                                                               Path(name).stem)), "zh-CN")
                    for name, nb in reference.items()}
    for name in CORRECT:
        _write_submission(subs / name, reference_zh if name == ZH_STUDENT else reference)
    partial = copy.deepcopy(release)
    partial["01_models.ipynb"] = reference["01_models.ipynb"]
    _write_submission(subs / "partial", partial)
    server = Server()
    attacks = _attacks(course, server.port)
    for name, attack in attacks.items():
        base = {**release, "01_models.ipynb": reference["01_models.ipynb"]} if attack.get("solved_models") else release
        _write_submission(subs / name, _build_hostile(base, attack))

    # links and special files in hand-filled folders (course/submitted) and in --from folders: refused at intake
    hand = course / "course" / "submitted"
    for student, targets in INTAKE_ATTACKS.items():
        folder = (subs if student.endswith("_src") else hand) / student / ("" if student.endswith("_src") else
                                                                          "superres")
        folder.mkdir(parents=True)
        for name, target in targets.items():
            if target == "fifo":
                os.mkfifo(folder / name)
            else:
                os.symlink(target.replace("{course}", str(course)), folder / name)
        for name in set(release) - set(targets):
            (folder / name).write_text(json.dumps(release[name]))

    # nbgrader needs the assignment in the gradebook before the snapshot (generate_assignment writes release/)
    env = tool_env()
    subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    os.environ["PATH"] = env["PATH"]
    protected = (course / "course" / "autograded", course / "course" / "feedback", course / "course" / "grades",
                 course / "course" / ".grading", course / "course" / "gradebook.db", course / "course" / "submitted")
    before = _snapshot(course, data, REPO / "sr_utils", REPO / "course", REPO / "source", skip=protected)
    limits = Limits(cpu_seconds=120, memory_bytes=3 << 30, threads=1, folder_bytes=FOLDER_BYTES)
    t0 = time.perf_counter()
    result = grade("superres", course, src=subs, workers=2, cell_timeout=60, submission_timeout=420,
                   limits=limits, progress=False, log=lambda *a: None)
    seconds = time.perf_counter() - t0
    after = _snapshot(course, data, REPO / "sr_utils", REPO / "course", REPO / "source", skip=protected)
    batch_scores = {s: _scores(course, s) for s in [*CORRECT, "partial"]}
    leftover = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    shutil.copytree(course / "course" / "grades", root / "grades_of_the_batch")  # the regrades below rewrite it
    # the same students without the attackers around them (one run for both: what matters is the neighbours)
    grade("superres", course, students=[CORRECT[0], "partial"], workers=2, cell_timeout=60, submission_timeout=420,
          limits=limits, progress=False, log=lambda *a: None, feedback=False)
    alone = {student: _scores(course, student) for student in [CORRECT[0], "partial"]}
    yield {"course": course, "attacks": attacks, "result": result, "before": before, "after": after,
           "server": server, "batch_scores": batch_scores, "alone": alone, "seconds": seconds,
           "leftover": leftover, "reference": reference, "release": release}
    server.sock.close()
    os.environ.pop("SR_DATA_DIR", None)


def _total(course: Path, student: str) -> float:
    return sum(v or 0 for v in _scores(course, student).values())


def test_the_suite_is_large_enough(batch):
    assert len(batch["attacks"]) >= 15


def test_correct_submissions_get_full_marks_and_partial_gets_part(batch):
    course = batch["course"]
    rows = [r for r in _read_breakdown(course) if r["auto_graded"] == "True"]
    full = sum(float(r["max_score"]) for r in rows if r["student"] == "ref_a")
    for name in CORRECT:
        assert _total(course, name) == full == 36, f"{name}: {_total(course, name)} / {full}"
    assert 0 < _total(course, "partial") < full


@pytest.mark.parametrize("attack", sorted(_attacks(Path("/x"), 1)))
def test_each_attack_gains_no_points(batch, attack):
    assert _total(batch["course"], attack) == 0, _read_reasons(batch["course"], attack)


def test_no_output_of_the_kernel_scores_and_kernels_that_disagree_are_listed(batch):
    """Second round, item 1: results shown before a test's error, numbers displayed, errors swallowed by the kernel,
    execute_results forged through its iopub socket, in every notebook: no point, each test cell decided by the
    trusted side (starting with its error, no execute_result left), each such submission listed for attention; the
    reference is not."""
    course, summary = batch["course"], batch["result"]["summary_text"]
    for name in TRUSTED_POINTS_ATTACKS:
        assert _total(course, name) == 0, _read_reasons(course, name)
        assert f"  {name}: its kernel's outputs disagree with the trusted decisions" in summary, name
        for nb in (course / "course" / "autograded" / name / "superres").glob("*.ipynb"):
            for cell in _nb(nb)["cells"]:
                meta = cell.get("metadata", {}).get("nbgrader", {})
                if cell["cell_type"] == "code" and meta.get("grade") and not meta.get("solution"):
                    kinds = [o["output_type"] for o in cell["outputs"]]
                    assert kinds[:1] == ["error"] and "execute_result" not in kinds, (name, nb.name, kinds)
        decided = json.loads((course / "course" / ".grading" / "verdicts" / name / "cells" / "01_models.json")
                             .read_text())
        assert decided and all(not d["passed"] and d["evalue"] is not None for d in decided.values()), decided
    for name in [*CORRECT, "partial"]:
        assert f"  {name}: its kernel's outputs disagree" not in summary


def test_the_batch_completed_and_flags_what_needs_attention(batch):
    results = {r["student"]: r for r in batch["result"]["results"]}
    assert set(results) == {*CORRECT, "partial", *batch["attacks"], *INTAKE_ATTACKS}
    for name in INTAKE_ATTACKS:
        assert results[name]["status"].startswith("refused at intake"), results[name]
    for name in [*CORRECT, "partial"]:
        assert results[name]["status"] == "ok", results[name]
    summary = batch["result"]["summary_text"]
    assert "Test cells most often failed" in summary and "Hidden checks most often failed" in summary
    # each worker's next submission ran in processes started ahead (the first two, and the two graded again
    # alone, started their own), none of which had died
    logs = {p.stem: p.read_text(errors="replace")
            for p in (batch["course"] / "course" / ".grading" / "logs").glob("*.log")}
    ahead = [s for s, text in logs.items() if "[ahead.py] nbgrader started ahead" in text]
    assert len(ahead) >= len(logs) - 4, sorted(set(logs) - set(ahead))
    assert not [s for s, text in logs.items() if "processes started ahead had ended" in text]
    for r in results.values():
        if r["status"] != "ok":
            assert r["student"] in summary


def test_only_nbgrader_talks_to_the_check_servers(batch):
    """Each submission's check server (trusted: it decides the hidden checks) reads requests from that submission's
    nbgrader process alone. forge_verdicts writes fake lines into every descriptor its code holds, in its kernels
    and in its student side: had one reached a server, the server would have stopped on a request that is not JSON,
    with a traceback in the log. (Its student side's lines break that process's own answers: a failed check.)"""
    logs = {p.stem: p.read_text(errors="replace")
            for p in (batch["course"] / "course" / ".grading" / "logs").glob("*.log")}
    assert "forge_verdicts" in logs
    assert [s for s, text in logs.items() if 'check_server.py", line' in text] == []


def test_nothing_outside_the_submission_folders_changed(batch):
    before, after = batch["before"], batch["after"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"files changed by the batch: {changed[:10]}"
    assert not HOST_TMP_MARK.exists(), "an attack wrote into the grader's /tmp"
    for name in ["late.txt"]:
        assert not (batch["course"] / "course" / "autograded" / "survive_kernel" / "superres" / name).exists(), \
            "a process started by a kernel outlived it"


def test_the_gradebook_holds_only_this_class_and_the_assignment_is_intact(batch):
    from nbgrader.api import Gradebook

    course = batch["course"]
    with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
        students = {s.id for s in gb.students}
        cells = sorted((nb.name, c.name, c.max_score) for nb in gb.find_assignment("superres").notebooks
                       for c in nb.grade_cells)
    assert students == {*CORRECT, "partial", *batch["attacks"]}
    assert len(cells) == 13 and sum(c[2] for c in cells) == 50


def test_no_secret_was_read(batch):
    course = batch["course"]
    reference_lines = {ln.strip() for nb in batch["reference"].values() for c in nb["cells"]
                       for ln in _src(c).splitlines()}
    release_lines = {ln.strip() for nb in batch["release"].values() for c in nb["cells"]
                     for ln in _src(c).splitlines()}
    release_text = "\n".join(_src(c) for nb in batch["release"].values() for c in nb["cells"])
    solution_only = [ln for ln in reference_lines - release_lines
                     if len(ln) > 30 and "hidden_check" not in ln and ln not in release_text]
    checks_only = ["def _oracle_srgan_epoch", "class CheckFailed", "SQLite format 3", "PWNED", "CONNECTED", "WROTE"]
    assert len(solution_only) > 20
    texts = {}
    # (an attack built on the solved 01_models holds that solution itself: only the check markers count there)
    solved = {name for name, attack in batch["attacks"].items() if attack.get("solved_models")}
    for name in batch["attacks"]:
        markers = checks_only if name in solved else solution_only + checks_only
        for folder in (course / "course" / "autograded" / name, course / "course" / "feedback" / name):
            for p in folder.rglob("*"):
                if p.is_file() and p.suffix in (".ipynb", ".html", ".txt", ".py"):
                    texts[str(p)] = (p.read_text(errors="replace"), markers)
        for p in (course / "course" / ".grading" / "verdicts" / name).glob("*.json"):
            texts[str(p)] = (p.read_text(), markers)
    texts["breakdown"] = ((course.parent / "grades_of_the_batch" / "breakdown.csv").read_text(),
                          solution_only + checks_only)
    assert any("denied" in t for t, _ in texts.values()), "the read attacks did not run"
    for where, (text, markers) in texts.items():
        for marker in markers:
            assert marker not in text, f"{marker!r} leaked into {where}"


def test_no_connection_reached_the_server(batch):
    assert batch["server"].accepted == []
    out = (batch["course"] / "course" / "autograded" / "network" / "superres" / "01_models.ipynb").read_text()
    assert "no network" in out, "the network attack did not run"


def test_no_sandboxed_process_is_left(batch):
    from course.sandbox import FIRST_SANDBOX_UID

    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    left = [ln for ln in batch["leftover"].splitlines() if FIRST_SANDBOX_UID <= int(ln.split()[0]) < FIRST_SANDBOX_UID + 64]
    assert not left, left


def test_special_files_were_removed_and_nothing_followed(batch):
    folder = batch["course"] / "course" / "autograded" / "symlink_escape" / "superres"
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    assert not (folder / "04_test.ipynb.fifo").exists()


def test_others_grades_equal_grades_alone(batch):
    for student, alone in batch["alone"].items():
        assert batch["batch_scores"][student] == alone, student


def _read_breakdown(course: Path) -> list[dict]:
    import csv

    with open(course.parent / "grades_of_the_batch" / "breakdown.csv", newline="") as f:
        return list(csv.DictReader(f))


def _read_reasons(course: Path, student: str) -> str:
    return "; ".join(f"{r['cell']}={r['score']}" for r in _read_breakdown(course) if r["student"] == student)


def test_breakdown_agrees_with_gradebook_and_grades_csv(batch):
    import csv

    course = batch["course"]
    rows = _read_breakdown(course)
    per_student = {}
    for r in rows:
        if r["cell"]:
            per_student.setdefault(r["student"], {})[(r["notebook"], r["cell"])] = float(r["score"] or 0)
    assert set(per_student) == {*CORRECT, "partial", *batch["attacks"]}
    for student, scores in per_student.items():
        if student in batch["alone"]:
            continue  # regraded alone after the breakdown was written
        assert scores == {k: v or 0 for k, v in _scores(course, student).items()}, student
    with open(course.parent / "grades_of_the_batch" / "grades.csv", newline="") as f:
        totals = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    for student, scores in per_student.items():
        if student not in batch["alone"]:
            assert totals[student] == pytest.approx(sum(scores.values())), student
    lost = [r for r in rows if r["student"] == "partial" and r["auto_graded"] == "True"
            and float(r["score"]) < float(r["max_score"])]
    assert lost and all(r["reason"] for r in lost), "every lost test says why"


def test_feedback_shows_no_hidden_test(batch):
    course = batch["course"]
    pages = list((course / "course" / "feedback").rglob("*.html"))
    assert len(pages) >= 5 * 2
    hidden = {ln.strip() for nb in batch["reference"].values() for c in nb["cells"] if "BEGIN HIDDEN" in _src(c)
              for ln in _src(c).split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines()
              if ln.strip()}
    assert hidden
    for page in pages:
        text = page.read_text()
        for line in hidden:
            assert html.escape(line) not in text and line not in text, f"{line!r} in {page}"


def test_one_run_grades_both_languages_and_gives_each_student_feedback_in_their_own(batch):
    """ref_a (English) and ref_b (zh-CN) were graded in the same run with the same points, grade by grade; ref_b's
    feedback pages are in Chinese, ref_a's in English."""
    course = batch["course"]
    assert _scores(course, ZH_STUDENT) == _scores(course, "ref_a")
    for student, chinese in (("ref_a", False), (ZH_STUDENT, True)):
        pages = sorted((course / "course" / "feedback" / student / "superres").glob("*.html"))
        assert len(pages) == 5, (student, pages)
        for page in pages:
            text = page.read_text(encoding="utf-8")
            han = len(re.findall(r"[\u4e00-\u9fff]", text))
            assert (han > 100) == chinese, f"{page}: {han} Chinese characters"


def test_graded_folders_and_feedback_keep_only_notebooks_and_pages(batch):
    """What a notebook wrote while graded (a page of HTML, a folder 1,500 levels deep, 50 MB in .grading-run/) is
    gone once its submission is graded: the formgrader serves course/autograded/ from the instructor's origin and
    the feedback is made from it. The grader survived the deep folder and graded the others."""
    course = batch["course"]
    assert any("LEFT FILES" in text for text in _texts_of(course, "scripts").values()), "the attack did not run"
    graded = [r["student"] for r in batch["result"]["results"]
              if (course / "course" / "autograded" / r["student"] / "superres").is_dir()]
    assert "scripts" in graded and len(graded) > 10, graded
    for student in graded:
        folder = course / "course" / "autograded" / student / "superres"
        odd = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.parent != folder or p.suffix != ".ipynb" or p.is_symlink() or not p.is_file()]
        assert not odd, (student, odd[:5])
        feedback = course / "course" / "feedback" / student
        if feedback.exists():
            odd = [p.relative_to(feedback).as_posix() for p in feedback.rglob("*")
                   if not p.is_dir() and p.suffix != ".html"]
            assert not odd, (student, odd[:5])


def test_an_lms_download_is_collected_member_by_member(tmp_path):
    import zipfile

    from course.grading.collection import DEFAULT_LMS_REGEXP, collect_lms_zip

    from course.demo import copy_course

    course = copy_course(tmp_path / "course_root")
    env = tool_env()
    subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    release = sorted((REPO / "release" / "superres").glob("*.ipynb"))
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as z:  # Canvas-style names: <student>_<ids>_<file>
        for student, ids in (("alice", "1203_4501"), ("bob.smith", "77_1")):
            for nb in release:
                z.write(nb, f"{student}_{ids}_{nb.name}")
    collect_lms_zip(tmp_path / "download.zip", course, "superres", DEFAULT_LMS_REGEXP)
    for student in ("alice", "bob.smith"):
        got = sorted(p.name for p in (course / "course" / "submitted" / student / "superres").glob("*.ipynb"))
        assert got == [nb.name for nb in release], (student, got)
        assert (course / "course" / "submitted" / student / "superres" / "02_solver.ipynb").read_bytes() == \
            (REPO / "release" / "superres" / "02_solver.ipynb").read_bytes()


# ---------------------------------------------------------------------------------------------------------
# Issue 10: verdicts cannot be forged, nothing leaks back, nothing of the host is exposed
# ---------------------------------------------------------------------------------------------------------
def test_refused_submissions_were_never_touched_by_nbgrader(batch):
    course = batch["course"]
    for name in INTAKE_ATTACKS:
        assert not (course / "course" / "autograded" / name).exists(), name
        assert not (course / "course" / "feedback" / name).exists(), name
    assert "linked" in batch["result"]["summary_text"] and "symbolic link" in batch["result"]["summary_text"]


def _texts_of(course: Path, student: str) -> dict[str, str]:
    texts = {}
    for folder in (course / "course" / "autograded" / student, course / "course" / "feedback" / student):
        for p in folder.rglob("*"):
            if p.is_file() and p.suffix in (".ipynb", ".html"):
                texts[str(p)] = p.read_text(errors="replace")
    return texts


def _live_script(page: str) -> set[str]:
    """What a browser would run or load as code from ``page``: script bodies, event handlers, javascript: URLs,
    SVG/iframe/object/embed elements."""
    from html.parser import HTMLParser

    found = set()

    class Finder(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            self.in_script = tag == "script"
            if tag in ("svg", "iframe", "object", "embed"):
                found.add(f"<{tag}>")
            for name, value in attrs:
                if name.startswith("on"):
                    found.add(f"{name}={value}")
                if value and value.strip().lower().startswith("javascript:"):
                    found.add(f"{name}={value}")

        def handle_endtag(self, tag):
            self.in_script = False

        def handle_data(self, data):
            if self.in_script and data.strip():
                found.add("script:" + data.strip()[:200])

    Finder().feed(page)
    return found


def _formgrader_page(notebook: Path) -> str:
    """The page the formgrader serves for an autograded notebook (its exporter and template)."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    c = Config()
    c.HTMLExporter.template_name = "formgrade"
    c.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {"assignment_id": "superres", "notebook_id": notebook.stem, "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "/", "student": "s", "last_name": "", "first_name": "",
                 "notebook_path": "/x"}
    html_text, _ = HTMLExporter(config=c).from_filename(str(notebook), resources=resources)
    return html_text


def test_no_student_script_runs_in_the_formgrader_or_the_feedback(batch):
    course = batch["course"]
    texts = _texts_of(course, "scripts")
    assert texts, "the script attack was not graded"
    for name in ("01_models", "03_train"):
        hostile = course / "course" / "autograded" / "scripts" / "superres" / f"{name}.ipynb"
        clean = course / "course" / "autograded" / "ref_a" / "superres" / f"{name}.ipynb"
        texts[f"formgrader {name}"] = page = _formgrader_page(hostile)
        extra = _live_script(page) - _live_script(_formgrader_page(clean))
        assert not extra, f"live script in the formgrader page of {name}: {sorted(extra)[:5]}"
    for page in (p for p in (course / "course" / "feedback" / "scripts").rglob("*.html")):
        base = course / "course" / "feedback" / "ref_a" / page.relative_to(course / "course" / "feedback" /
                                                                        "scripts")
        extra = _live_script(page.read_text()) - _live_script(base.read_text())
        assert not extra, f"live script in the feedback {page.name}: {sorted(extra)[:5]}"
    for where, text in texts.items():
        for marker in LIVE_MARKERS:
            if marker != "XSS_MD_MATH":
                assert marker not in text, f"{marker} survived in {where}"
        assert "\\href{javascript" not in text and "\\href{" not in text, where


def test_exported_csv_cells_hold_no_formula(batch):
    import csv

    grades = batch["course"].parent / "grades_of_the_batch"
    seen_formula_student = False
    for name in ("breakdown.csv", "grades.csv"):
        with open(grades / name, newline="") as f:
            for row in csv.reader(f):
                for cell in row:
                    seen_formula_student |= "HYPERLINK" in cell
                    assert not cell[:1] in ("=", "+", "@", "\t", "\r") and not (
                        cell.startswith("-") and not cell.lstrip("-").replace(".", "", 1).isdigit()), (name, cell)
    assert seen_formula_student, "the formula attack's reason did not reach breakdown.csv"


def test_output_bombs_are_bounded(batch):
    course = batch["course"]
    for student in ("output_bombs", "output_flood"):
        nb = course / "course" / "autograded" / student / "superres" / "01_models.ipynb"
        assert nb.is_file(), student
        assert nb.stat().st_size < 20 << 20, f"{student}: {nb.stat().st_size >> 20} MB"
    assert "truncated by the grader" in (course / "course" / "autograded" / "output_bombs" / "superres" /
                                         "01_models.ipynb").read_text()
    for nb in (course / "course" / "autograded").rglob("*.ipynb"):
        assert nb.stat().st_size <= 20 << 20, nb


def test_the_kernel_keyring_is_denied(batch):
    out = (batch["course"] / "course" / "autograded" / "scripts" / "superres" /
           "01_models.ipynb").read_text()
    assert "KEYRING denied" in out and "KEYRING " + "ADDED" not in out


def test_check_messages_are_short_and_composed_by_the_grader(batch):
    course = batch["course"]
    for student in ("exfiltrate_gc", "forge_and_alias", "scripts"):
        for f in (course / "course" / ".grading" / "verdicts" / student).glob("*.json"):
            for name, v in json.loads(f.read_text()).items():
                assert not v["passed"], (student, name)
                assert len(v["reason"]) <= 400, (student, name, len(v["reason"]))
                assert "HYPERLINK" not in v["reason"] or "raised an exception" in v["reason"], v["reason"]
        for text in _texts_of(course, student).values():  # a check's message: at most 200 characters of EXFIL...
            for reason in re.findall(r"hidden check '\w+' failed: ([^\"]*)", text):
                assert len(reason) <= 400, reason[:100]


def test_two_grading_runs_never_share_sandbox_uids():
    from course.sandbox import UidPool

    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    a, b = UidPool(2), UidPool(3)
    try:
        assert not set(a.uids) & set(b.uids) and len(set(a.uids + b.uids)) == 5
    finally:
        a.release()
        b.release()
    c = UidPool(2)
    c.release()
    assert c.uids == a.uids, "released uids are reused"


def test_refuses_without_a_cgroup_unless_told(monkeypatch, tmp_path):
    from course.grade import GradingError
    from course.grading import run_loop
    from course.sandbox import Cgroup, SandboxSpec

    monkeypatch.setattr(Cgroup, "create", classmethod(lambda cls, *a: None))
    spec = SandboxSpec(enabled=True, uid=None)
    with pytest.raises(GradingError, match="--no-cgroup"):
        run_loop.autograde_all([], "superres", tmp_path, spec, 1, progress=False)
    assert run_loop.autograde_all([], "superres", tmp_path, spec, 1, progress=False, require_cgroup=False) == []


def test_seccomp_denies_the_keyring_calls_and_memfd_without_cgroup():
    require_bwrap()
    from course.sandbox import Limits

    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print(libc.syscall(248, b'user', b'k', b'v', 1, ctypes.c_long(-3)), "
            "libc.syscall(250, 0, ctypes.c_long(-3), 0), os.memfd_create('x') >= 0)")
    assert _sandboxed(code).stdout.split() == ["-1", "-1", "True"]
    out = _sandboxed(code.replace("os.memfd_create('x') >= 0", "libc.syscall(319, b'x', 0)"), deny_memfd=True)
    assert out.stdout.split() == ["-1", "-1", "-1"], out.stderr


def test_intake_refuses_links_fifos_devices_and_oversized_files(tmp_path):
    from course import intake

    sub = tmp_path / "alice"
    sub.mkdir()
    (sub / "ok.ipynb").write_text("{}")
    os.symlink("/etc/passwd", sub / "link.ipynb")
    os.mkfifo(sub / "pipe")
    (sub / "big.bin").write_bytes(b"x" * 2048)
    problems = "; ".join(intake.inspect(sub, max_file_bytes=1024))
    assert "link.ipynb: a symbolic link" in problems and "pipe: a FIFO" in problems and "big.bin" in problems
    assert intake.inspect(tmp_path / "alice" / "ok.ipynb")  # not a folder
    for bad in ("..", ".", "../x", "a/b", "", "-rf", "x" * 200):
        assert not intake.safe_student_id(bad), bad


def test_an_lms_zip_with_bad_members_is_collected_for_everyone_else(tmp_path):
    import io
    import zipfile

    from course.grading.collection import DEFAULT_LMS_REGEXP
    from course.intake import collect_zip

    release = sorted((REPO / "release" / "superres").glob("*.ipynb"))
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as z:
        z.writestr("alice_0_01_models.ipynb", "{\"impersonated\": true}")
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as z:
        for student in ("alice", "bob"):
            for nb in release:
                z.write(nb, f"{student}_1_{nb.name}")
        z.writestr("../mallory_1_01_models.ipynb", "{}")                     # traversal
        z.writestr("/tmp/mallory_2_02_solver.ipynb", "{}")                   # absolute
        z.writestr("mallory_3_nested.zip", nested.getvalue())               # a nested zip naming alice
        z.writestr("sub/.._1_01_models.ipynb", "{}")                         # the student id ".."
        z.writestr("carol_1_01_models.ipynb", "{}")                          # a duplicate: neither taken
        z.writestr("carol_2_01_models.ipynb", "{\"second\": 1}")
        z.writestr("carol_1_02_solver.ipynb", "{}")
        info = zipfile.ZipInfo("dave_1_01_models.ipynb")                    # a symbolic link member
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/shadow")
    submitted = tmp_path / "submitted"
    students, attention = collect_zip(tmp_path / "download.zip", submitted, "superres", DEFAULT_LMS_REGEXP)
    assert students == ["alice", "bob", "carol"]
    for student in ("alice", "bob"):
        for nb in release:
            assert (submitted / student / "superres" / nb.name).read_bytes() == nb.read_bytes()
    assert sorted(p.name for p in (submitted / "carol" / "superres").iterdir()) == ["02_solver.ipynb"]
    assert "more than one file" in attention["carol"] and "link" in attention["dave"]
    assert "nested archive" in attention["mallory"]
    assert "'..' path" in attention["(unknown student)"] or "'..' path" in attention.get("mallory", "")
    assert not (tmp_path / "mallory_1_01_models.ipynb").exists() and not Path("/tmp/mallory_2_02_solver.ipynb").exists()
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob", "carol"]


def test_sanitizer_leaves_no_live_script_in_a_rendered_notebook(tmp_path):
    """Without bwrap: the preprocessor the formgrader and feedback rely on, on every kind of payload."""
    import nbformat

    from course.grading.sanitize_notebook import SanitizeNotebook

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(MARKDOWN_XSS))
    code = nbformat.v4.new_code_cell("x")
    js = "X" + "SS_"
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": f"<script>{js}SCRIPT</script><img src=x onerror="
                                                                  f"'{js}ONERROR'><a href='javascript:{js}HREF'>a</a>",
                                                     "application/javascript": f"{js}JSOUT",
                                                     "image/svg+xml": f"<svg onload='{js}SVG'/>",
                                                     "text/markdown": f"[x](javascript:{js}MIME)"},
                               metadata={"big": "z" * 1000}),
        nbformat.v4.new_output("execute_result", data={"text/latex": f"$\\href{{javascript:{js}MD_MATH}}{{x}}$"},
                               execution_count=1),
    ]
    nb.cells.append(code)
    clean, _ = SanitizeNotebook().preprocess(nb, {})
    path = tmp_path / "n.ipynb"
    nbformat.write(clean, str(path))
    page = _formgrader_page(path)
    assert not _live_script(page) - _live_script(_formgrader_page(_blank_notebook(tmp_path / "blank"))), \
        _live_script(page)
    for marker in LIVE_MARKERS:
        if marker != "XSS_MD_MATH":
            assert marker not in page, marker
    assert "\\href{" not in page


def _blank_notebook(folder: Path) -> Path:
    import nbformat

    folder.mkdir()
    path = folder / "n.ipynb"  # the same name: the template's own script holds it
    nbformat.write(nbformat.v4.new_notebook(), str(path))
    return path


def test_a_disk_flood_is_bounded_while_it_runs_and_costs_that_notebook_its_points(batch):
    """Many 100 MB files: the submission's folder bound holds during the run (as root: its tmpfs refuses the writes
    past it), its files are removed, its solved notebook scores 0, the grader lists it; the others keep theirs."""
    from course.grading.graded_folder import DISK_RESERVE_BYTES

    course = batch["course"]
    folder = course / "course" / "autograded" / "disk_flood"
    nb = (folder / "superres" / "01_models.ipynb").read_text()
    assert "FLOOD wrote" in nb, "the flood did not run"
    if os.geteuid() == 0:
        written = int(re.search(r"FLOOD wrote (\d+) files", nb).group(1))
        assert "No space left on device" in nb, "the folder's tmpfs did not stop the writes"
        assert written * (100 << 20) <= FOLDER_BYTES + DISK_RESERVE_BYTES, written
    assert not list(folder.rglob("flood*.bin")), "the flood's files were kept"
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= FOLDER_BYTES
    assert "DiskBoundExceeded" in nb
    scores = _scores(course, "disk_flood")
    assert all(v == 0 for (notebook, _), v in scores.items() if notebook == "01_models")
    assert sum(v or 0 for (notebook, _), v in batch["batch_scores"]["partial"].items() if notebook == "01_models") > 0, \
        "the same solved notebook scores when it does not flood"
    status = {r["student"]: r["status"] for r in batch["result"]["results"]}["disk_flood"]
    assert "MB" in status and "disk_flood" in batch["result"]["summary_text"], status
    for student in CORRECT:
        assert _total(course, student) == 36


def _course_of_one_notebook(dest: Path) -> Path:
    """A private course whose assignment is notebook 01 alone (the smallest real grading run), with the assignment
    generated."""
    from course.demo import copy_course

    course = copy_course(dest)
    for nb in (course / "source" / "superres").glob("*.ipynb"):
        if nb.name != "01_models.ipynb":
            nb.unlink()
    env = tool_env()
    subprocess.run([str(NBGRADER), "generate_assignment", "superres", "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    return course


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (the kernels' IPC socket paths under it must stay below 107 bytes)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="srk-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_two_grading_runs_at_once_never_share_a_sandbox_uid_and_both_grade_right(short_tmp):
    """Two `python -m course.grade` processes started together on separate course copies, one correct submission
    each: while they run, no sandbox uid serves both (seen from /proc: uid and working folder of every sandboxed
    process), and both give full marks."""
    require_bwrap()
    from nbgrader.api import Gradebook

    from course.sandbox import FIRST_SANDBOX_UID, SANDBOX_UIDS
    from data_tools.samples import ensure_sample_data

    if os.geteuid() != 0:
        pytest.skip("sandbox uids are used when grading as root")
    tmp_path = short_tmp
    data = ensure_sample_data(tmp_path / "data")
    for p in [tmp_path, data, *data.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    reference = _nb(REPO / "source" / "superres" / "01_models.ipynb")
    # a cell a student may add: it shows its uid and keeps the kernel alive long enough for the runs to overlap
    reference["cells"].insert(1, _code("import os, time\nprint('SANDBOX_UID', os.getuid())\ntime.sleep(8)\n"))
    courses, procs = {}, {}
    for name in ("a", "b"):
        courses[name] = _course_of_one_notebook(tmp_path / name)
        _write_submission(tmp_path / name / "from" / f"student_{name}", {"01_models.ipynb": reference})
        (tmp_path / name / "from" / f"student_{name}" / "report.md").write_text("# Report\n")  # (else: listed)
    env = tool_env(SR_DATA_DIR=str(data))
    for name, course in courses.items():
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "course.grade", "superres", "--course-dir", str(course), "--from",
             str(tmp_path / name / "from"), "--workers", "1", "--no-feedback", "--cell-timeout", "120"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen, together = {name: set() for name in courses}, False
    while any(p.poll() is None for p in procs.values()):
        now = {name: set() for name in courses}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:  # (not the owner of /proc/PID: a process that changed uid is not dumpable, and that is root's)
                with open(f"/proc/{pid}/status") as f:
                    uid = int(next(ln for ln in f if ln.startswith("Uid:")).split()[1])
                cwd = os.readlink(f"/proc/{pid}/cwd") if FIRST_SANDBOX_UID <= uid < FIRST_SANDBOX_UID + SANDBOX_UIDS \
                    else ""
            except (OSError, StopIteration, ValueError):
                continue
            for name, course in courses.items():
                if cwd.startswith(str(course) + os.sep):
                    now[name].add(uid)
        for name in courses:
            seen[name] |= now[name]
        together |= all(now.values())
        time.sleep(0.2)
    outputs = {name: p.stdout.read() for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0 and "needing manual attention" not in outputs[name].lower(), outputs[name][-2000:]
    assert together, f"the two runs never had sandboxed processes at the same time: {seen}"
    assert seen["a"] and seen["b"] and not seen["a"] & seen["b"], seen
    printed = {}
    for name, course in courses.items():
        nb = (course / "course" / "autograded" / f"student_{name}" / "superres" / "01_models.ipynb").read_text()
        printed[name] = int(re.search(r"SANDBOX_UID (\d+)", nb).group(1))
        assert {printed[name]} == seen[name], (printed, seen)
        with Gradebook("sqlite:///" + str(course / "course" / "gradebook.db")) as gb:
            sub = gb.find_submission_notebook("01_models", "superres", f"student_{name}")
            scores = {g.name: (g.score, g.max_score) for g in sub.grades if g.cell_type == "code"}
        assert scores and all(score == best > 0 for score, best in scores.values()), (name, scores)
    assert printed["a"] != printed["b"]


def test_a_bounded_folder_refuses_writes_past_its_size_and_comes_back_on_disk(short_tmp):
    """The tmpfs under a submission's grading folder (root): writes past its size fail, the folder's other entries
    (another assignment) survive, links do not come back, and a run killed in between is repaired by the next."""
    from course.sandbox import SizeLimitedFolder

    if os.geteuid() != 0:
        pytest.skip("the disk bound mounts a tmpfs: root only (docs/grading.md says what holds without)")
    folder, work = short_tmp / "autograded" / "alice", short_tmp / "disk" / "alice"
    (folder / "earlier").mkdir(parents=True)
    (folder / "earlier" / "kept.txt").write_text("graded before")
    (folder / "superres").mkdir()
    (folder / "superres" / "old.txt").write_text("replaced by this run")
    with SizeLimitedFolder(folder, work, 8 << 20) as mounted:
        assert mounted and os.path.ismount(folder) and not (folder / "earlier").exists()
        (folder / "superres").mkdir()
        (folder / "superres" / "models.py").write_text("x = 1\n")
        with pytest.raises(OSError, match="No space left"):
            (folder / "superres" / "big.bin").write_bytes(b"\0" * (16 << 20))
        os.symlink("/etc/shadow", folder / "superres" / "link")
    assert not os.path.ismount(folder)
    assert (folder / "earlier" / "kept.txt").read_text() == "graded before"
    assert sorted(p.name for p in (folder / "superres").iterdir()) == ["big.bin", "models.py"]
    assert (folder / "superres" / "big.bin").stat().st_size <= 8 << 20
    killed = SizeLimitedFolder(folder, work, 8 << 20)
    assert killed.__enter__()  # ... and never left: a grading run killed mid-way
    (folder / "superres").mkdir()
    (folder / "superres" / "lost.txt").write_text("written by the killed run")
    again = SizeLimitedFolder(folder, work, 8 << 20)
    with again as mounted:
        assert mounted and not (folder / "earlier").exists()
    assert not os.path.ismount(folder) and (folder / "earlier" / "kept.txt").read_text() == "graded before"
    # (what the killed run wrote is gone; the folder is as it was before it)
    assert sorted(p.name for p in (folder / "superres").iterdir()) == ["big.bin", "models.py"]
