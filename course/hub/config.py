"""The hub's configuration from the class server's settings: JupyterHub and its proxy on the settings' address,
the hub's own login (PAM: the Unix accounts ``setup`` made), the instructors' group, and the formgrader as a hub
service that runs as the grader account in the instructors' course and that only that group may reach
(nbgrader's documented pattern)."""
from __future__ import annotations

import os

from course.grading.contract import EXCHANGE_ENV, FORMGRADER_SERVICE_ENV, GRADEBOOK_URL_ENV
from course.hub.settings import HubSettings
from course.paths import BIN

#: Ports after the hub's own: the hub's API, the proxy's API, the formgrader service.
HUB_API, PROXY_API, FORMGRADER = 1, 2, 3


def free_port_block(host: str = "127.0.0.1", first: int = 20000) -> int:
    """A port p such that p..p+FORMGRADER are free on ``host`` now (``setup --port 0``: tests, a second hub)."""
    import socket

    for base in range(first + os.getpid() % 997 * 8, 61000, 13):
        socks = []
        try:
            for port in range(base, base + FORMGRADER + 1):
                sock = socket.socket()
                socks.append(sock)
                sock.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise OSError(f"no {FORMGRADER + 1} free ports in a row on {host}")


def configure(c, s: HubSettings, settings_file: str) -> None:
    """Set JupyterHub's configuration object ``c`` from ``s`` (whose file is ``settings_file``)."""
    from course.hub.spawner import CourseSpawner

    c.JupyterHub.bind_url = f"http://{s.host}:{s.port}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.port + HUB_API}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.port + PROXY_API}"
    c.ConfigurableHTTPProxy.command = [str(s.proxy)]
    c.ConfigurableHTTPProxy.pid_file = str(s.state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{s.state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(s.state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(s.state / "jupyterhub.pid")
    # a restarted hub finds the students' servers and its proxy still running (``stop`` ends them itself)
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.allowed_users = set(s.students) | set(s.instructors)
    c.JupyterHub.load_groups = {s.group: {"users": list(s.instructors)}}
    c.JupyterHub.load_roles = [{
        "name": "formgrader", "groups": [s.group],
        "scopes": [f"access:services!service={s.service}", "list:services", f"read:services!service={s.service}"],
    }]
    env = {"JUPYTERHUB_DEFAULT_URL": "/formgrader", "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
           EXCHANGE_ENV: str(s.exchange), FORMGRADER_SERVICE_ENV: s.service}
    if s.gradebook_url:
        env[GRADEBOOK_URL_ENV] = s.gradebook_url
    c.JupyterHub.services = [{
        "name": s.service, "url": f"http://127.0.0.1:{s.port + FORMGRADER}", "user": s.grader,
        "command": [str(BIN / "jupyterhub-singleuser")], "cwd": str(s.course), "environment": env,
        "oauth_no_confirm": True,
    }]
    c.JupyterHub.spawner_class = CourseSpawner
    c.CourseSpawner.settings_file = settings_file
    c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.notebook_dir = "~"
    # a class logging in at once on a small server: a server may take minutes, not JupyterHub's 30 s, to answer;
    # a hub restarted meanwhile waits as long for a server the hub before it was still starting (http_timeout)
    c.Spawner.http_timeout = 300
    c.Spawner.start_timeout = 300
