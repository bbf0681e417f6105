"""JupyterHub's configuration file for the class server (``python -m course.hub start`` runs
``jupyterhub -f`` this file): the settings ``python -m course.hub setup`` wrote, applied by
:func:`course.hub.config.configure`."""
import os

from course.grading.contract import HUB_SETTINGS_ENV
from course.hub.config import configure
from course.hub.settings import HubSettings

settings_file = os.environ[HUB_SETTINGS_ENV]
configure(get_config(), HubSettings.load(settings_file), settings_file)  # noqa: F821 (JupyterHub's)
