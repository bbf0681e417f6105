"""Human evaluation of the students' super-resolved images: a blinded mean-opinion-score study (``python -m course.mos``).

One concept per module: :mod:`~course.mos.collect` (checking students' files), :mod:`~course.mos.study` (freezing a
study), :mod:`~course.mos.store` (answers in SQLite), :mod:`~course.mos.app` and :mod:`~course.mos.pages` (the rating
web app), :mod:`~course.mos.design` (who rates what: balanced peer sets, gold and repeated items),
:mod:`~course.mos.plausibility` (images no model could make), :mod:`~course.mos.screening` (flagging raters),
:mod:`~course.mos.model` (the bias-corrected subject model and its bootstrap), :mod:`~course.mos.analysis` (from
answers to MOS, points and the one-rater check), :mod:`~course.mos.pairwise` and
:mod:`~course.mos.pairwise_analysis` (pairwise mode, Bradley–Terry), :mod:`~course.mos.stats` (agreement),
:mod:`~course.mos.results` (tables, page, plot), :mod:`~course.mos.gradebook` (points into nbgrader),
:mod:`~course.mos.feedback` (each student's own result), :mod:`~course.mos.i18n` (English or Chinese:
what raters and students read, ``locales/zh_CN.py``), :mod:`~course.mos.csvsafe` (formula-safe CSV),
:mod:`~course.mos.simulate` (a simulated class), :mod:`~course.mos.references` (reference models' outputs),
:mod:`~course.mos.scripted_study` (the scripted study at the end of ``make demo``). See docs/mos.md.
"""
