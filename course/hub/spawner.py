"""Each user's Jupyter server on the class server: JupyterHub's local-process spawner (the server runs as that
user's Unix account, in its home) with the course's environment -- the kit's Python and kernel, the students'
nbgrader configuration and exchange, JupyterLab's language -- and, as root, in a cgroup of the class's limits
(memory, CPU, processes) that every kernel it starts stays in."""
from __future__ import annotations

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from course.grading.contract import EXCHANGE_ENV
from course.hub.settings import HubSettings
from course.paths import BIN, KIT_ROOT
from course.sandbox import Cgroup

#: The students' Jupyter configuration: nbgrader's instructor extensions off (``student_config/``), the
#: students' nbgrader configuration (the exchange, the hand-in), JupyterLab's language.
STUDENT_CONFIG = KIT_ROOT / "course" / "hub" / "student_config"


def student_config_path(language: str) -> str:
    folders = [STUDENT_CONFIG, KIT_ROOT / "course" / "jupyter",
               KIT_ROOT / "course" / "student_kit_files" / "lab-locale" / language]
    return ":".join(map(str, folders))


class CourseSpawner(LocalProcessSpawner):
    """:class:`LocalProcessSpawner` with the course's environment and limits (``settings_file``: the hub's)."""

    settings_file = Unicode(help="the class server's settings (course.hub.settings)").tag(config=True)

    @property
    def settings(self) -> HubSettings:
        return HubSettings.load(self.settings_file)

    def get_env(self) -> dict:
        env = super().get_env()
        s = self.settings
        env["PATH"] = f"{BIN}:/usr/local/bin:/usr/bin:/bin"
        env[EXCHANGE_ENV] = str(s.exchange)
        env["JUPYTER_CONFIG_PATH"] = student_config_path(s.language)
        return env

    async def start(self):
        address = await super().start()
        s = self.settings
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
