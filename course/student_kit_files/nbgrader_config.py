"""nbgrader configuration of the student kit: the course's exchange, from ``jupyter/nbgrader_config.py``.

Its place also marks the kit's root: the notebooks and ``python -m data_tools`` keep data sets in ``data/`` here.
"""
load_subconfig("jupyter/nbgrader_config.py")  # noqa: F821 (provided by nbgrader's config loader)
