"""Turn MOS into points for the rubric's ``human_evaluation`` line and put them in the nbgrader gradebook.

Points (the rubric line in ``course/handout.md``): ``max_score × clip((MOS − MOS_NN) / (MOS_HR − MOS_NN), 0, 1)``,
rounded to 0.01: the hidden nearest-neighbour control scores 0, the hidden HR original full marks, whatever the
raters' use of the scale.

The gradebook needs a manually graded cell named ``human_evaluation`` (a markdown task cell of
``05_super_resolution.ipynb``, in ``source/`` and so in the released notebooks). nbgrader refuses to release an
assignment whose gradebook cells differ from its notebooks' once there are submissions, so that cell cannot be added
to the gradebook alone: when it is absent, :func:`to_gradebook` changes nothing in the gradebook and says so; the
points are always written to ``human_evaluation.csv`` too.
"""
from __future__ import annotations

import math
from pathlib import Path

__all__ = ["points", "to_gradebook", "write_points_csv", "CELL"]

#: The grade id of the manually graded cell for the human evaluation.
CELL = "human_evaluation"


def points(mos: float, nn: float, hr: float, max_score: float) -> float:
    """Points of a student's MOS between the NN (0) and HR (``max_score``) controls' MOS; NaN without ratings."""
    from course.mos.analysis import points as _points

    return _points(mos, nn, hr, max_score)


def student_points(a: dict, max_score: float) -> dict[str, tuple[float, float]]:
    """``{student: (model MOS, points)}`` from :func:`course.mos.results.analyse`'s output (the bias-corrected MOS of
    the subject model, the controls' likewise)."""
    mos = {r["version"]: r["model_mos"] for r in a["rows"]}
    nn, hr = mos.get("control:nn", math.nan), mos.get("control:hr", math.nan)
    return {r["name"]: (r["model_mos"], points(r["model_mos"], nn, hr, max_score))
            for r in a["rows"] if r["kind"] == "student"}


def write_points_csv(scores: dict[str, tuple[float, float]], max_score: float, path: Path) -> Path:
    """``student, mos, points, max_points`` (formula-safe, atomic)."""
    from course.mos.csvsafe import write_csv

    return write_csv(path, ["student", "mos", "points", "max_points"],
                     ([student, round(mos, 4), "" if math.isnan(pts) else pts, max_score]
                      for student, (mos, pts) in sorted(scores.items())))


def _find_cell(gb, assignment: str):
    for nb in gb.find_assignment(assignment).notebooks:
        for cell in [*nb.grade_cells, *nb.task_cells]:
            if cell.name == CELL:
                return nb.name, cell
    return None, None


def to_gradebook(db_url: str, assignment: str, a: dict, log=print, language: str = "en") -> dict:
    """Write each student's points as the manual score of the ``human_evaluation`` cell, and their own result
    (:func:`course.mos.feedback.student_text`) into that cell's comment, which their feedback page shows.

    Returns ``{"written": {student: points}, "skipped": {student: reason}, "cell": (notebook, max_score) | None}``.
    Nothing is written when the cell does not exist (the message says which notebook change is needed).
    """
    from nbgrader.api import Gradebook, MissingEntry

    from course.gradebook_url import sqlite_path
    from course.mos.feedback import merge_comment, student_text

    out = {"written": {}, "skipped": {}, "cell": None}
    db_file = sqlite_path(db_url)
    if db_file is not None and not db_file.is_file():
        log(f"no gradebook at {db_file} (grade the class first: `make grade`): nothing written")
        return out
    with Gradebook(db_url) as gb:
        try:
            notebook, cell = _find_cell(gb, assignment)
        except MissingEntry:
            notebook, cell = None, None
        if cell is None:
            log(f"the gradebook has no manually graded cell {CELL!r} in assignment {assignment!r}: nothing written to "
                "it. Add a markdown task cell with grade id 'human_evaluation' (points as in the handout's rubric) to "
                f"source/{assignment}/05_super_resolution.ipynb, run `make release` before collecting submissions, "
                "then `--to-gradebook` again. The points are in human_evaluation.csv meanwhile.")
            return out
        max_score = float(cell.max_score)
        out["cell"] = (notebook, max_score)
        for student, (_, pts) in student_points(a, max_score).items():
            if math.isnan(pts):
                out["skipped"][student] = "no rating, or the controls have no ratings"
                continue
            try:
                grade = gb.find_grade(CELL, notebook, assignment, student)
            except MissingEntry:
                out["skipped"][student] = "no graded submission in the gradebook"
                continue
            grade.manual_score = pts
            grade.needs_manual_grade = False
            out["written"][student] = pts
            try:  # a task cell has a comment per student: nbgrader renders it in that student's feedback only
                comment = gb.find_comment(CELL, notebook, assignment, student)
                comment.manual_comment = merge_comment(comment.manual_comment,
                                                       student_text(a, student, max_score, language))
            except MissingEntry:
                pass
        gb.db.commit()
    for student, reason in out["skipped"].items():
        log(f"  gradebook: {student} skipped ({reason})")
    log(f"  gradebook: {len(out['written'])} scores written to {notebook}/{CELL} (out of {max_score:g})")
    return out
