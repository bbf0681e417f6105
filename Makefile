# The kit's two commands: `make demo` (main job, offline, bundled data) and `make test` (the test-suite).
# Each creates .venv with pip on first use and installs what it needs; re-runs are fast (a stamp file
# records that pyproject.toml was installed).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=

.PHONY: demo test test-fast bench release grade sandbox-tools browser-tools gradebook-tools gradebook-server \
        hub hub-tools \
        install clean-venv help \
        mos-collect mos-serve mos-results class-results lab student-kit

help:
	@echo "make demo    run the main job on the bundled sample data (creates .venv)"
	@echo "make test    run the tests (creates .venv)"
	@echo "make test-fast  the unit tests only, for the edit-test loop (no nbgrader, Jupyter, browser or sandbox)"
	@echo "make bench   run the benchmarks in benchmarks/"
	@echo "make release regenerate release/ (the student version) from source/ with nbgrader"
	@echo "make student-kit  what students receive (outputs/student-kit/: a git repository and a zip), no solutions"
	@echo "make lab     the student command: JupyterLab on release/superres (--allow-root only when run as root)"
	@echo "make lab LANGUAGE=zh-CN   the same in Chinese: release/zh-CN/superres, JupyterLab's menus in Chinese"
	@echo "make grade   autograde course/submitted/ in bubblewrap sandboxes (GRADE_ARGS='--from DIR --workers N')"
	@echo "make gradebook-server  a PostgreSQL gradebook for graders and TAs writing at once (docs/grading.md)"
	@echo "make hub    the class server on this machine, as root: JupyterHub, accounts from HUB_ROSTER (docs/hub.md)"
	@echo "make mos-collect / mos-serve / mos-results   the human evaluation (MOS study) of the Set5 images (docs/mos.md)"
	@echo "make class-results   the class's PSNR/SSIM (recomputed vs reported) and MOS, perception-distortion plot"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed, $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

# One stamp per extra: reinstalled only when pyproject.toml changes. pip byte-compiles what it installs on one core
# (~50 s of the first set-up here: ~15,000 files, torch's among them): it installs without, and compileall then
# writes the same .pyc files on every core (the sandboxes read site-packages read-only: they could not write them
# later). As with pip, a file that this Python cannot compile (torch ships one for Python 3.12) is no error. The
# packages' own test suites (tests/ and test/ folders, a fifth of the files) and pip's and setuptools' sources are
# left out: nothing the kit or a notebook runs imports them (were one imported, Python would compile it in memory).
COMPILE := $(PY) -m compileall -q -j 0 -x '/site-packages/([^/]+/)*tests?/|/site-packages/(pip|setuptools)/' \
           $(VENV)/lib >/dev/null || true
# jsonschema imports rfc3987-syntax whenever it is installed (jupyter-events asks for it), and that import builds ~35
# parsers: ~1 s of CPU in every process that imports nbformat, nbgrader or a Jupyter server, for an IRI format that
# no notebook or Jupyter schema uses. The set-up removes it; jsonschema then skips that format (docs/dependencies.md).
DROP_SLOW_IMPORTS := $(PIP) uninstall -y rfc3987-syntax
# A new venv's pip is the one Python bundled (23.2 with Python 3.11.7): each install upgrades it first, since pip
# >= 24 resolves the kit's ~200 packages in a third of the CPU (`make test`'s pip install: 83 -> 47 s here).
UPGRADE_PIP := $(PIP) install -U "pip>=24" \
               || echo "(pip could not be upgraded: installing with $$($(PY) -m pip --version))"
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(UPGRADE_PIP)
	$(PIP) install --no-compile -e ".[$*]"
	$(DROP_SLOW_IMPORTS)
	$(COMPILE)
	@touch $@

$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(UPGRADE_PIP)
	$(PIP) install --no-compile -e .
	$(DROP_SLOW_IMPORTS)
	$(COMPILE)
	@touch $@

install: $(VENV)/.installed-base

# The main job: train, evaluate, pictures, report, release and autograde (needs the instructor tools).
demo: $(VENV)/.installed-instructor
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m course demo

# The suite on TEST_WORKERS processes (pytest-xdist; tests/conftest.py: one test module at a time, the class batch's
# modules together and first, the integration modules before the unit tests), then the tests marked `alone` (they
# measure CPU shares or wall time) by themselves. Exit code 5: PYTEST_ARGS selected no test in that part.
TEST_WORKERS ?= 3
test: $(VENV)/.installed-test sandbox-tools browser-tools gradebook-tools hub-tools
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not alone" $(PYTEST_ARGS) || [ $$? = 5 ]
	$(PY) -m pytest -m alone $(PYTEST_ARGS) || [ $$? = 5 ]

# The fast lane: every module's unit tests, without the integration modules listed in tests/conftest.py; on
# FAST_WORKERS processes (the unit tests are CPU-bound: one process leaves a core idle).
FAST_WORKERS ?= 2
test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -n $(FAST_WORKERS) -m "not integration" $(PYTEST_ARGS)

# Sandboxed grading runs student code in bubblewrap (Debian/Ubuntu package `bubblewrap`). As root with apt, install
# it; otherwise say how (the grading command refuses to run without it unless told --unsafe).
sandbox-tools:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (apt-get)"; \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; \
	  else echo "bubblewrap (bwrap) is not installed: sandboxed grading needs it (apt-get/dnf install bubblewrap)"; fi; }

# The PostgreSQL gradebook (docs/grading.md): the system's PostgreSQL server programs. As root with apt, install
# them; otherwise say how (the gradebook server's tests skip with that reason, and fail under CI).
gradebook-tools:
	@{ command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing postgresql (apt-get)"; \
	    apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }; \
	  else echo "PostgreSQL is not installed: the PostgreSQL gradebook needs it (apt-get install postgresql)"; fi; }

# A PostgreSQL server for the gradebook in course/.postgres/ (GRADEBOOK_ARGS='--group instructors'); it prints the
# SR_KIT_GRADEBOOK_URL to export for every course command.
GRADEBOOK_ARGS ?=
gradebook-server: $(VENV)/.installed-instructor gradebook-tools
	$(PY) -m course.gradebook_server start $(GRADEBOOK_ARGS)

# The class server (docs/hub.md): JupyterHub's proxy, configurable-http-proxy from npm, in course/.hub/proxy/ (Node.js
# and npm from apt as root when missing; otherwise say how: the hub's test skips with that reason, fails under CI).
HUB_PROXY := course/.hub/proxy/node_modules/.bin/configurable-http-proxy
hub-tools:
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing nodejs and npm (apt-get)"; \
	    apt-get install -y -q nodejs npm >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q nodejs npm >/dev/null; }; \
	  else echo "npm is not installed: the class server's proxy comes from npm (apt-get install nodejs npm)"; fi; }
	@test -x $(HUB_PROXY) || ! command -v npm >/dev/null 2>&1 || { echo "installing configurable-http-proxy (npm)"; \
	  mkdir -p course/.hub/proxy && npm install --prefix course/.hub/proxy --silent --no-audit --no-fund configurable-http-proxy@4 >/dev/null; }

# The class server on this machine, as root: accounts for HUB_ROSTER's students and the instructors in HUB_ARGS, the
# formgrader as a hub service, then JupyterHub in the foreground on http://127.0.0.1:8000 (passwords of the new
# accounts in course/.hub/passwords.csv). A real class: HUB_ROSTER=course/roster.csv HUB_ARGS='--instructor NAME ...'
HUB_ROSTER ?= course/hub/demo_roster.csv
HUB_ARGS ?= --instructor teacher --instructor ta1
hub: $(VENV)/.installed-hub hub-tools
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m course.hub setup --roster $(HUB_ROSTER) $(HUB_ARGS)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m course.hub start

# The browser tests drive the distribution's headless Chromium (Debian: chromium + chromium-driver).
# As root with apt, install them; otherwise say how (the test skips with that reason, and fails under CI).
browser-tools:
	@{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver (apt-get)"; \
	    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "chromium/chromedriver are not installed: the rating app's browser test needs them (apt-get install chromium chromium-driver)"; fi; }
	@# a Chinese font, for the screenshots of JupyterLab in Chinese (tests/course_tests/test_lab_zh_browser.py): boxes without it
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing a Chinese font (apt-get fonts-wqy-microhei)"; \
	    apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q fonts-wqy-microhei >/dev/null; }; \
	  else echo "no Chinese font: screenshots of JupyterLab in Chinese show boxes (apt-get install fonts-wqy-microhei)"; fi; }

# The human evaluation (docs/mos.md): MOS_ARGS='--from DIR --rater ta1 --peer' etc.
MOS_ARGS ?=
mos-collect: $(VENV)/.installed-instructor
	$(PY) -m course.mos collect superres $(MOS_ARGS)

mos-serve: $(VENV)/.installed-instructor
	$(PY) -m course.mos serve superres $(MOS_ARGS)

mos-results: $(VENV)/.installed-instructor
	$(PY) -m course.mos results superres $(MOS_ARGS)

class-results: $(VENV)/.installed-instructor
	$(PY) -m course.class_results superres $(MOS_ARGS)

# The student command: JupyterLab in release/superres with the course's exchange (course/jupyter/nbgrader_config.py)
# for the Assignments panel; --allow-root only as root (Jupyter refuses root without it). LAB_ARGS='--no-browser'
# `make lab LANGUAGE=zh-CN`: the Chinese release (release/zh-CN/superres) with JupyterLab's menus in Chinese. The
# interface language is a default setting read from lab-locale/<LANGUAGE>/labconfig/ (the student kit's own copy is
# jupyter/lab-locale/): the user's settings are not touched, and a language picked in Settings -> Language wins.
# Only LANGUAGE given on make's command line counts (gettext's LANGUAGE=en_US:en in the environment is not this).
# NOTEBOOKS: another folder to open (a copy of the release).
LAB_ARGS     ?=
LAB_LANGUAGE := $(if $(filter command line,$(origin LANGUAGE)),$(LANGUAGE),en)
NOTEBOOKS    ?= release/$(if $(filter-out en,$(LAB_LANGUAGE)),$(LAB_LANGUAGE)/)superres
lab: $(VENV)/.installed-instructor
	@case "$(LAB_LANGUAGE)" in en|zh-CN) ;; *) echo "LANGUAGE=$(LAB_LANGUAGE): the course speaks en and zh-CN" >&2; exit 2;; esac
	@test -d "$(NOTEBOOKS)" || { echo "$(NOTEBOOKS) does not exist: run make release" >&2; exit 2; }
	cd "$(NOTEBOOKS)" && JUPYTER_CONFIG_PATH="$(abspath course/jupyter):$(abspath course/student_kit_files/lab-locale/$(LAB_LANGUAGE))$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	  PATH="$(abspath $(VENV))/bin:$$PATH" jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

GRADE_ARGS ?=
grade: $(VENV)/.installed-instructor sandbox-tools
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m course.grade superres $(GRADE_ARGS)

bench: $(VENV)/.installed-base
	$(PY) benchmarks/imresize_bench.py
	$(PY) benchmarks/data_bench.py
	$(PY) benchmarks/train_bench.py

# The student version: commit release/ after running this (tests check that it is in sync with source/).
# Refuses (and lists them) when release/superres holds files that are not generated ones; FORCE=1 deletes them.
release: $(VENV)/.installed-instructor
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m course.release superres $(if $(FORCE),--force)
	@find source -name models.py -o -name solver.py | grep . && echo "warning: generated modules in source/ (ignored by nbgrader)" || true

# What students receive: release/, handout, report template, sr_utils, data_tools, the student environment and
# commands, scanned for any solution or hidden-check line (docs/instructors.md). STUDENT_KIT_ARGS='--out DIR'
STUDENT_KIT_ARGS ?=
student-kit: $(VENV)/.installed-base
	$(PY) -m course.student_kit $(STUDENT_KIT_ARGS)

clean-venv:
	rm -rf $(VENV)
