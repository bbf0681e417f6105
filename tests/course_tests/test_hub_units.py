"""The class server's pieces that need no hub: its settings, the names it accepts for accounts, the configuration
it gives JupyterHub (the formgrader reachable by the instructors' group only, its autograde refused, the limits),
the Python made readable to other accounts, and refusals before anything is made. The hub itself, with real
accounts, is tested in ``test_hub``."""
from __future__ import annotations

import grp
import os
from pathlib import Path

import pytest

from course.grading.contract import EXCHANGE_ENV, FORMGRADER_SERVICE_ENV
from course.hub.accounts import unix_name_problem
from course.hub.mounts import closed_python_folder, with_readable_python
from course.hub.settings import HubSettings
from course_fixtures import skip_or_fail


def test_settings_travel_through_their_file(tmp_path):
    s = HubSettings(state=tmp_path, students=["stu01", "stu02"], instructors=["wang"], homes=tmp_path / "homes",
                    port=18000, gradebook_url="postgresql+psycopg2://gradebook@/gradebook?host=/x")
    loaded = HubSettings.load(s.save())
    assert loaded == s and isinstance(loaded.homes, Path) and isinstance(loaded.proxy, Path)
    assert loaded.course == tmp_path / "course" and loaded.service == "formgrader-superres"
    with pytest.raises(FileNotFoundError, match="python -m course.hub setup"):
        HubSettings.load(tmp_path / "none.json")


@pytest.mark.parametrize("name,ok", [("stu01", True), ("ta-li", True), ("_svc", True), ("2024001", False),
                                     ("Ada", False), ("a b", False), ("x" * 33, False), ("", False)])
def test_account_names(name, ok):
    assert (unix_name_problem(name) is None) == ok, unix_name_problem(name)


def test_the_hubs_configuration(tmp_path):
    pytest.importorskip("jupyterhub", reason="JupyterHub is not installed (pip install -e '.[test]')")
    from traitlets.config import Config

    from course.hub.config import FORMGRADER, configure, free_port_block

    s = HubSettings(state=tmp_path, students=["stu01"], instructors=["wang", "ta1"], group="teachers",
                    port=free_port_block())
    c = Config()
    configure(c, s, str(tmp_path / "settings.json"))
    assert c.JupyterHub.bind_url == f"http://127.0.0.1:{s.port}"
    assert c.Authenticator.allowed_users == {"stu01", "wang", "ta1"}
    assert c.JupyterHub.load_groups == {"teachers": {"users": ["wang", "ta1"]}}
    role, = c.JupyterHub.load_roles  # the formgrader: the instructors' group only
    assert role["groups"] == ["teachers"] and f"access:services!service={s.service}" in role["scopes"]
    service, = c.JupyterHub.services
    assert service["user"] == s.grader and service["cwd"] == str(s.course)
    assert service["url"].endswith(f":{s.port + FORMGRADER}")
    assert service["environment"][FORMGRADER_SERVICE_ENV] == s.service
    assert service["environment"][EXCHANGE_ENV] == str(s.exchange)
    assert c.Spawner.http_timeout >= 120 and not c.JupyterHub.cleanup_servers


def test_the_formgraders_autograde_refuses_to_run_anything():
    pytest.importorskip("nbgrader")
    import nbformat

    from course.grading.refuse_autograde import RefuseUnsandboxedAutograde, UnsandboxedAutogradeRefused

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("open('/tmp/ran', 'w')")])
    with pytest.raises(UnsandboxedAutogradeRefused, match="python -m course.grade superres"):
        RefuseUnsandboxedAutograde().preprocess(nb, {})


def test_the_python_is_made_readable_only_where_it_is_closed():
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(dir="/tmp"))  # (every folder above it open to others)
    top.chmod(0o755)
    closed = top / "closed"
    exe = closed / "pyenv" / "bin" / "python3"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    try:
        assert closed_python_folder(str(exe)) is None
        assert with_readable_python(["id"], str(exe)) == ["id"]
        closed.chmod(0o700)
        assert closed_python_folder(str(exe)) == (closed, "pyenv")
        argv = with_readable_python(["id"], str(exe))
        assert argv[:4] == ["unshare", "--mount", "--propagation", "private"] and argv[-1] == "id"
        assert str(closed / "pyenv") in argv[6]
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_setup_refuses_a_roster_whose_ids_cannot_be_accounts_before_making_anything(tmp_path):
    from course.hub.__main__ import HubError, setup

    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email\n2024001,A,B,\nAda,C,D,\n")
    group = f"srkunit{os.getpid() % 10000}"
    with pytest.raises(HubError) as e:
        setup(roster, ["wang"], tmp_path / "state", tmp_path / "homes", "zh-CN", 0, group=group, log=lambda *a: None)
    if os.geteuid() != 0:
        assert "as root" in str(e.value)
    else:
        assert "'2024001'" in str(e.value) and "'Ada'" in str(e.value) and "nothing was created" in str(e.value)
        with pytest.raises(KeyError):
            grp.getgrnam(group)
    assert not (tmp_path / "state").exists()


def test_stop_removes_a_users_cgroup_even_with_a_process_still_in_it(tmp_path):
    """A kernel its server left behind keeps the user's cgroup busy; stopping the hub kills it and removes the
    cgroup (an ``rmdir`` alone fails while a task is inside)."""
    import subprocess
    import sys

    from course.hub.__main__ import remove_cgroups
    from course.sandbox import Cgroup

    name = f"srkcg{os.getpid() % 100000}"
    cgroup = Cgroup.create(f"sr-hub-{name}", 256 << 20, 64) if os.geteuid() == 0 else None
    if cgroup is None:
        skip_or_fail("cgroups cannot be made here (root with a writable /sys/fs/cgroup is needed)")
    left = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        for procs in cgroup.procs:
            Path(procs).write_text(str(left.pid))
        remove_cgroups(HubSettings(state=tmp_path, students=[name], instructors=[]))
        assert left.wait(timeout=10) == -9, "the process left in the cgroup was not killed"
        assert not [d for d in cgroup.dirs if d.exists()], "the user's cgroup is still there"
    finally:
        left.kill()
        cgroup.remove(wait=2)


def test_a_covered_folder_shows_only_what_is_kept_and_only_inside(tmp_path):
    """What a student's server sees of the kit's checkout: the kept entries, nothing else; outside the namespace
    nothing changes, and no staging folder is left in /tmp."""
    import glob
    import shutil
    import subprocess

    from course.hub.mounts import cover_script

    if os.geteuid() != 0 or not shutil.which("unshare"):
        skip_or_fail("covering a folder mounts in a private namespace: it needs root and unshare")
    folder = tmp_path / "checkout"
    for rel in ("source/01_models.ipynb", ".git/HEAD", "env/bin/python", "course/hub/state/exchange/x",
                "course/reference.py"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(rel)
    before = set(glob.glob("/tmp/.sr-kit-cover-*"))
    script = cover_script(folder, [folder / "env", folder / "course" / "hub" / "state" / "exchange"])
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          script + ' && cd "$1" && find . -type f | sort', "sh", str(folder)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["./course/hub/state/exchange/x", "./env/bin/python"]
    assert (folder / "source" / "01_models.ipynb").is_file() and not os.path.ismount(folder)
    assert set(glob.glob("/tmp/.sr-kit-cover-*")) == before


def test_setup_refuses_homes_the_students_servers_would_not_see(tmp_path):
    from course.hub.__main__ import HubError, check_checkout
    from course.paths import KIT_ROOT

    with pytest.raises(HubError, match="inside the kit's checkout"):
        check_checkout(KIT_ROOT / "homes", "sr-instructors", log=lambda m: None)
    said = []
    check_checkout(tmp_path, "sr-instructors", log=said.append)
    assert all("readable by every account" in m and "chgrp -R sr-instructors" in m for m in said)
