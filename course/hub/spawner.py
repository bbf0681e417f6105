"""Each user's Jupyter server on the class server: JupyterHub's local-process spawner (the server runs as that
user's Unix account, in its home) with the course's environment, and, as root, in a cgroup of the class's limits
(memory, CPU, processes) that every kernel it starts stays in.

A student's server never sees the kit's checkout: it runs in a private mount namespace in which the checkout is
covered (:func:`course.hub.mounts.cover_script`), only the Python environment, the exchange, the student kit and
the students' Jupyter configuration (where they sit below it) bound back. What the server and every kernel,
terminal and command it starts import or read of the course comes from the student kit that ``setup`` built
(:attr:`HubSettings.student_kit`): ``sr_utils`` and ``data_tools`` on ``PYTHONPATH``, the students' nbgrader
configuration (the exchange, the hand-in) and JupyterLab's language. An instructor's or TA's server sees what
that account may read. The namespace is made as root, then the server's command runs as the user (``setpriv``);
the cgroup is joined by the same process, whose pid the hub keeps."""
from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from course.grading.contract import EXCHANGE_ENV
from course.hub.mounts import cover_script
from course.hub.settings import HubSettings
from course.paths import BIN, KIT_ROOT
from course.sandbox import Cgroup

def student_config_path(s: HubSettings) -> str:
    """``JUPYTER_CONFIG_PATH`` of a student's server: the server's configuration, then the student kit's
    (nbgrader: the exchange and the hand-in; JupyterLab's language)."""
    jupyter = s.student_kit / "jupyter"
    return ":".join(map(str, [s.server_config, jupyter, jupyter / "lab-locale" / s.language]))


def checkout_covered(s: HubSettings) -> str:
    """Shell commands that cover the kit's checkout with what a student's server needs of it, nothing more."""
    keep = [p for p in (Path(sys.prefix), s.exchange, s.student_kit, s.server_config) if p.is_relative_to(KIT_ROOT)]
    return cover_script(KIT_ROOT, keep)


class CourseSpawner(LocalProcessSpawner):
    """:class:`LocalProcessSpawner` with the course's environment, the checkout covered, and the class's limits
    (``settings_file``: the hub's)."""

    settings_file = Unicode(help="the class server's settings (course.hub.settings)").tag(config=True)

    @property
    def settings(self) -> HubSettings:
        return HubSettings.load(self.settings_file)

    def get_env(self) -> dict:
        env = super().get_env()
        s = self.settings
        env["PATH"] = f"{BIN}:/usr/local/bin:/usr/bin:/bin"
        env["PYTHONPATH"] = str(s.student_kit)
        env[EXCHANGE_ENV] = str(s.exchange)
        env["JUPYTER_CONFIG_PATH"] = student_config_path(s)
        return env

    def make_preexec_fn(self, name):
        """Only into the user's home: the mounts need root, so the command drops to the user itself."""
        home = pwd.getpwnam(name).pw_dir

        def into_home():
            os.chdir(home if os.path.isdir(home) else "/")

        return into_home

    async def start(self):
        s = self.settings
        for needed in (s.student_kit, s.server_config):
            if not needed.is_dir():
                raise RuntimeError(f"{needed} is missing: run `python -m course.hub setup` again")
        user = pwd.getpwnam(self.user.name)
        as_user = f'exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups -- sh -c "exec $1"'
        # (an instructor's or TA's server sees what the account may read: the checkout, the instructors' course)
        view = checkout_covered(s) + " && " if self.user.name not in s.instructors else ""
        self.shell_cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", view + as_user, "sh"]
        address = await super().start()
        self._cgroup = Cgroup.create(f"sr-hub-{self.user.name}", s.memory_bytes, s.processes, s.cpu_cores)
        if self._cgroup is not None:  # (the server's later children, its kernels, stay in it)
            for procs in self._cgroup.procs:
                with open(procs, "w") as f:
                    f.write(str(self.pid))
        else:
            self.log.warning("no cgroup for %s: its server runs without the class's memory and CPU limits",
                             self.user.name)
        return address

    async def stop(self, now=False):
        await super().stop(now=now)
        cgroup = getattr(self, "_cgroup", None)
        if cgroup is not None:
            cgroup.remove(wait=2.0)
