"""JupyterHub's configuration file for the class server (``python -m course.hub start`` runs
``jupyterhub -f`` this file): the settings ``python -m course.hub setup`` wrote, applied by
:func:`course.hub.config.configure`."""
import os

from course.hub.config import configure
from course.hub.settings import HUB_SETTINGS_ENV, HubSettings

configure(get_config(), HubSettings.load(os.environ[HUB_SETTINGS_ENV]), os.environ[HUB_SETTINGS_ENV])  # noqa: F821
