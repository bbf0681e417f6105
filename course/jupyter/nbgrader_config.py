"""nbgrader configuration for the students' JupyterLab (``make lab`` puts this folder on JUPYTER_CONFIG_PATH).

It only says where the course's exchange is: ``course/exchange`` next to this folder, the one the instructor's
``nbgrader_config.py`` releases to and collects from. On a shared machine (mode b) the students' Assignments
panel lists what ``nbgrader release_assignment superres`` released, *Fetch* copies it into their Jupyter folder
and *Submit* hands it in; on a machine of one's own (mode a: local or LMS folders) the panel simply lists nothing,
instead of "Error fetching courses!". A JupyterHub sets the same with ``JUPYTER_CONFIG_PATH`` (docs/instructors.md).
This file lives in the kit, writable by the instructor only: the exchange itself is writable by everyone, so no
configuration is ever read from there.
"""
import os

EXCHANGE = os.environ.get("SR_KIT_EXCHANGE") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exchange")
try:  # in a copy of one's own, create it (an instructor's shared course already has it)
    os.makedirs(EXCHANGE, exist_ok=True)
except OSError:
    pass

c = get_config()  # noqa: F821 (provided by nbgrader)
c.Exchange.root = EXCHANGE
c.CourseDirectory.course_id = "sr-course-kit"
