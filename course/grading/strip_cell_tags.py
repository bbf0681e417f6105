"""An nbgrader preprocessor of the course kit (``nbgrader_config.py`` names it as
``course.grading.strip_cell_tags.StripCellTags``): no cell tag survives into autograding."""
from nbgrader.preprocessors import NbGraderPreprocessor


class StripCellTags(NbGraderPreprocessor):
    """Remove every cell tag before autograding.

    A student who tags the test cells of an unsolved notebook ``skip-execution`` (or ``raises-exception``) would
    otherwise have them skipped (or their errors ignored) and get full marks (reproduced with nbgrader 0.9.6).
    """

    def preprocess_cell(self, cell, resources, index):
        if "tags" in cell.metadata:
            del cell.metadata["tags"]
        return cell, resources
