"""The class server: JupyterHub for the students, the instructors and TAs, on one machine (``make hub``).

``python -m course.hub setup|start|stop`` (:mod:`.__main__`); the hub's configuration is
``jupyterhub_config.py`` (next to this file), which applies :func:`.config.configure` to the settings ``setup``
wrote (:class:`.settings.HubSettings`). The parts: ``accounts`` (the Unix accounts and group from the roster),
``spawner`` (each student's server, as that student, in a cgroup of the class's limits), ``mounts`` (what
other accounts' processes see: the kit's Python where it sits below a closed folder, a student's server without
the kit's checkout). docs/hub.md tells the whole set-up.
"""
