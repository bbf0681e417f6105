"""Who rates what: a balanced, randomised assignment of raters to students, and each rater's blinded order with its
hidden gold and repeated items.

- With a target of ``per_student`` raters per student, every student's images are rated by exactly that many distinct
  raters, never by themselves, and the raters' loads differ by at most one student (greedy least-loaded choice with
  random tie-breaking). A rater sees ``per_student · students / raters`` students' images (rounded up) plus the
  controls: for a class of 100 peers and a target of 7, 7 students (35 images) + 20 controls + 3 repeats = 58.
- Without a target every rater rates every version (a small class, or staff only), as the SRGAN paper's protocol.
- Every rater sees every control (nearest-neighbour, bicubic, HR, the degraded gold item) and every reference: the
  controls tie all raters to one scale and are the gold items of the screening.
- ``repeats`` items of the rater's own set come back a second time, under a new id, in the last third of the order
  (test–retest agreement).
"""
from __future__ import annotations

import random

__all__ = ["assign_students", "rater_order"]


def assign_students(students: list[str], raters: list[str], per_student: int | None,
                    rng: random.Random) -> dict[str, list[str]]:
    """``{rater: [students whose images they rate]}``. ``per_student`` None: every student (but their own).
    Raises ``ValueError`` when fewer than ``per_student`` raters can rate some student."""
    if per_student is None:
        return {r: [s for s in students if s != r] for r in raters}
    if per_student < 1:
        raise ValueError(f"--ratings-per-student must be at least 1, got {per_student}")
    load = {r: 0 for r in raters}
    out: dict[str, list[str]] = {r: [] for r in raters}
    order = list(students)
    rng.shuffle(order)
    for s in order:
        eligible = [r for r in raters if r != s]
        if len(eligible) < per_student:
            raise ValueError(f"--ratings-per-student {per_student}: only {len(eligible)} raters can rate {s} "
                             "(add raters or lower the target)")
        rng.shuffle(eligible)
        eligible.sort(key=lambda r: load[r])  # stable: random among the least loaded
        for r in eligible[:per_student]:
            out[r].append(s)
            load[r] += 1
    return out


def rater_order(items: dict[str, dict], mine: set[str], repeats: int, rng: random.Random,
                new_id) -> tuple[list[str], dict[str, dict]]:
    """One rater's shuffled order of the items whose version is in ``mine``, with ``repeats`` of them shown again.

    Returns ``(order, repeat items {new id: {"version", "image", "repeat_of"}})``; ``new_id()`` makes an opaque id.
    """
    order = [i for i, it in items.items() if it["version"] in mine and "repeat_of" not in it]
    rng.shuffle(order)
    extra: dict[str, dict] = {}
    if repeats and len(order) >= 3 * repeats:
        early = order[: len(order) // 2]
        for original in rng.sample(early, repeats):
            rid = new_id()
            extra[rid] = {**items[original], "repeat_of": original}
            start = (2 * len(order)) // 3
            order.insert(rng.randint(start, len(order)), rid)
    return order, extra
