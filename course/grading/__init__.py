"""The grader: nbgrader's plugins and the hidden checks of the assignment (instructor-only, never released).

Every process of a grading run imports this package by name (``course`` is installed with the kit):

- nbgrader (``nbgrader autograde``/``generate_feedback``/``generate_assignment``) loads the plugins that
  ``nbgrader_config.py`` names by dotted path, one preprocessor (or close family) per module:
  :mod:`.strip_cell_tags`, :mod:`.limited_output_execute` (output budget), :mod:`.trusted_hidden_checks` (and the
  check server's client, :mod:`.check_server_client`), :mod:`.trusted_scores`, :mod:`.sanitize_notebook`,
  :mod:`.submitted_outputs`, :mod:`.report_cell`, :mod:`.localized_cells`, :mod:`.feedback_kit`,
  :mod:`.release_metadata`;
- the trusted side of the hidden checks: :mod:`.checks` and :mod:`.recompute` (the checks and their oracles),
  :mod:`.student_client` (the student-side process, framing, timeouts, messages), run as
  ``python -I -m course.grading.run_check`` (the command a kernel's ``hidden_check`` runs under plain nbgrader) or
  ``python -I -m course.grading.check_server`` (one per submission under ``python -m course.grade``, forked from
  the run's fork server, ``python -I -m course.grading.trusted_forkserver``);
- the student side, :mod:`.student_side` (the server), :mod:`.student_wire` (its frames and boot) and
  :mod:`.training_fixtures` (the kit networks and recorders of the training checks): kit code without secrets,
  imported here for its framing and kit networks and sent as sources to a sandboxed process that cannot see this
  package;
- the grading command (``python -m course.grade``, the command line and its ``grade()``) runs a class in these
  parts: :mod:`.collection` (collecting the submissions, intake), :mod:`.run_loop` (one nbgrader process per
  submission, ``workers`` at a time), :mod:`.trusted_forkserver_client` (the trusted processes forked from one
  that imported nbgrader, torch and the checks once), :mod:`.trusted_processes` (their environment, rlimits, start and stop),
  :mod:`.graded_folder` (what a graded folder keeps), :mod:`.reports` (CSV files, summary, feedback),
  :mod:`.permissions` (the course folder closed to other accounts), :mod:`.errors`.

What these processes agree on -- environment variables, folders, file names, the frame format -- is declared in
:mod:`.contract`. The security model: ``docs/grading.md``.
"""
