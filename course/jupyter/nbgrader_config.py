"""nbgrader configuration for the students' JupyterLab (``make lab`` puts this folder on JUPYTER_CONFIG_PATH).

It only says where the course's exchange is: ``course/exchange`` next to this folder, the one the instructor's
``nbgrader_config.py`` releases to and collects from. On a shared machine (mode b) the students' Assignments
panel lists what ``nbgrader release_assignment superres`` released, *Fetch* copies it into their Jupyter folder
and *Submit* hands it in; on a machine of one's own (mode a: local or LMS folders) the panel simply lists nothing,
instead of "Error fetching courses!". A JupyterHub sets the same with ``JUPYTER_CONFIG_PATH`` (docs/instructors.md).
This file lives in the kit, writable by the instructor only: the exchange itself is writable by everyone, so no
configuration is ever read from there.

*Submit* hands in what the course grades, nothing else (``handin.py``, next to this file, which a student kit
must ship with it): the notebooks, ``report.md``/``report.pdf``, ``results/``, ``submission/`` and the curves;
never ``checkpoints/`` (hundreds of MB), ``data/`` or hidden files; every file at most 10 MB.
"""
import importlib.util
import os
import sys

# the hand-in (handin.py): what `nbgrader submit` copies into the exchange, and where the exchange is
HANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "handin.py")
if "sr_kit_handin" not in sys.modules:
    if not os.path.isfile(HANDIN):
        raise FileNotFoundError(f"{HANDIN} is missing: it says what a submission holds (ship it with this file)")
    _spec = importlib.util.spec_from_file_location("sr_kit_handin", HANDIN)
    sys.modules["sr_kit_handin"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["sr_kit_handin"])
handin = sys.modules["sr_kit_handin"]

EXCHANGE = os.environ.get(handin.EXCHANGE_ENV) or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exchange")
try:  # in a copy of one's own, create it (an instructor's shared course already has it)
    os.makedirs(EXCHANGE, exist_ok=True)
except OSError:
    pass

c = get_config()  # noqa: F821 (provided by nbgrader)
c.Exchange.root = EXCHANGE
c.CourseDirectory.course_id = "sr-course-kit"
c.ExchangeFactory.submit = "sr_kit_handin.HandinSubmit"
# what nbgrader's own copies leave out too (fetch); single files bounded (kB)
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".*", "feedback", *handin.NEVER_TRAVELS]
c.CourseDirectory.max_file_size = handin.MAX_FILE_BYTES // 1000
