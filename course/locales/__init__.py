"""Message catalogues of the course's grader (``course/grading``): what the grader says to a student -- the
hidden checks' reasons, the notes it leaves in a graded notebook, the words of the feedback page -- one module
per language, ``MESSAGES = {English template: translation}``, read by ``sr_utils.i18n.Catalogue("course")``.

The English templates are written where the words are said (``CheckFailed("...", **fields)``, ``Message(...)``,
``grader_tr(...)`` in ``course/grading``, ``"..." | kit_tr(nb)`` in its feedback template) and rendered in the
language of the notebook being graded (``metadata.sr_kit.language``); see ``course/grading/student_client.py``.
``tests/course_tests/grading/test_grading_i18n.py`` reads every one of them and fails on one without its translation
here.
"""
