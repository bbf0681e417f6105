"""Human evaluation of the students' super-resolved images: a blinded mean-opinion-score study (``python -m course.mos``).

One concept per module: :mod:`~course.mos.collect` (checking students' files), :mod:`~course.mos.study` (freezing a
study), :mod:`~course.mos.store` (answers in SQLite), :mod:`~course.mos.app` and :mod:`~course.mos.pages` (the rating
web app), :mod:`~course.mos.stats` (MOS, intervals, agreement), :mod:`~course.mos.results` (tables, page, plot),
:mod:`~course.mos.gradebook` (points into nbgrader), :mod:`~course.mos.references` (reference models' outputs),
:mod:`~course.mos.demo` (the scripted study at the end of ``make demo``). See docs/mos.md.
"""
