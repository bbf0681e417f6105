"""Release notebooks that open clean (loaded by nbgrader_config.py into ``GenerateAssignment.preprocessors``).

A notebook whose ``language_info`` holds only ``{"name": "python"}`` is completed by JupyterLab from the kernel's
reply the moment it opens, and shows the unsaved-changes mark before the student typed anything. This writes the
complete kernelspec and ``language_info`` that ipykernel reports (the Python running the generation: the course's
environment), so the release is what the kernel would have written.
"""
from __future__ import annotations

import platform

from nbgrader.preprocessors import NbGraderPreprocessor

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def language_info(version: str | None = None) -> dict:
    """ipykernel's ``language_info`` for Python ``version`` (default: the running one), as a new dict."""
    return {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
            "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3", "version": version or platform.python_version()}


class CompleteNotebookMetadata(NbGraderPreprocessor):
    """Set the notebook's kernelspec and ``language_info`` to what the ``python3`` ipykernel reports."""

    def preprocess(self, nb, resources):
        nb.metadata["kernelspec"] = dict(KERNELSPEC)
        nb.metadata["language_info"] = language_info()
        return nb, resources
