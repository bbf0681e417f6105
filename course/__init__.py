"""Instructor-side tools of the course kit: sandboxed grading (``python -m course.grade``)."""
