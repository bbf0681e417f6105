"""The grading command's one error: something the instructor must fix before grading can run."""


class GradingError(RuntimeError):
    """Something the instructor must fix before grading can run (the message says what)."""
