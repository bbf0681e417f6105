"""What the grader says to a student is in the notebook's language (``metadata.sr_kit.language``): Chinese for a
zh-CN submission, English otherwise, and the grade is the same.

The words live in the course's catalogue (``course/locales/zh_CN.py``); ``course/grading`` writes each as an
English template (``CheckFailed("...", **fields)``, ``expect(cond, "...")``, ``Message(...)``, ``grader_tr(...)``,
``"..." | kit_tr(nb)`` in the feedback template). Here:

1. the catalogue is complete: every template of ``course/grading`` (read from the source: AST for the Python
   files, the filter calls of the template) has its translation with the same fields, no entry is unused, no
   reason is an f-string or English text outside a template, and no text quotes the solution or adds code its
   English does not have;
2. the same check, with the same verdict, reads in each language: a real check against a fake student side
   (quick), the wrappers around a reason, the disk bound, and (integration lane) the command a kernel runs under
   plain nbgrader and the check server of the sandboxed grader;
3. the feedback page and the cells the grader inserts (submitted outputs, report, notes) read in Chinese for a
   zh-CN notebook and as before for an English one, also through nbgrader itself (integration lane).
"""
from __future__ import annotations

import ast
import json
import os
import re
import string
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
GRADING = REPO / "course" / "grading"
TEMPLATE = GRADING / "templates" / "feedback_kit" / "index.html.j2"

from course.grading.contract import CHECK_SERVER_ENV, SANDBOX_ENV, VERDICTS_ENV, check_command  # noqa: E402
from course.locales.zh_CN import MESSAGES  # noqa: E402
from course.paths import tool, tool_env  # noqa: E402
from course_fixtures import solution_lines  # noqa: E402

# the Python files of the grader that say something to a student
CHECK_FILES = ("checks/__init__.py", "checks/common.py", "checks/models_checks.py", "checks/solver_checks.py",
               "checks/results_checks.py")
GRADER_FILES = (*CHECK_FILES, "recompute.py", "student_client.py", "check_server.py", "run_check.py",
                "strip_cell_tags.py", "limited_output_execute.py", "check_server_client.py", "trusted_hidden_checks.py",
                "trusted_scores.py", "sanitize_notebook.py", "feedback_kit.py", "submitted_outputs.py",
                "report_cell.py")
# calls whose argument (at this position) is a template of the catalogue
TEMPLATE_ARG = {"CheckFailed": 0, "StudentGone": 0, "Message": 0, "grader_tr": 0, "say": 0, "kit_tr": 0,
                "expect": 1}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ \t]+[A-Za-z][a-z]+){2,}\b")  # three English words in a row
ZH = "zh-CN"


# ---------------------------------------------------------------------------------------------------------
# 1. Reading the templates out of the grader's source
# ---------------------------------------------------------------------------------------------------------
def _call_name(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _constants(tree: ast.Module) -> dict[str, str]:
    """Names bound to a string constant at module or class level (``RAISED = "..."``, ``a, b = "x", "y"``)."""
    found = {}
    bodies = [tree.body] + [n.body for n in tree.body if isinstance(n, ast.ClassDef)]
    for body in bodies:
        for stmt in body:
            if not isinstance(stmt, ast.Assign):
                continue
            for target in stmt.targets:
                pairs = [(target, stmt.value)]
                if isinstance(target, ast.Tuple) and isinstance(stmt.value, ast.Tuple):
                    pairs = list(zip(target.elts, stmt.value.elts))
                for t, v in pairs:
                    if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and isinstance(v.value, str):
                        found[t.id] = v.value
    return found


def grader_templates(path: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """``([(template, line)], [problems])`` of one file of the grader: every template given to a call of
    :data:`TEMPLATE_ARG` (module-level constants resolved), and each message that cannot be translated (an
    f-string, a string built with ``+`` or ``%``), as ``file:line: ...``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    consts = _constants(tree)
    found, problems = [], []
    where = f"course/grading/{path.relative_to(GRADING).as_posix()}"

    def take(arg, line):
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append((arg.value, line))
        elif isinstance(arg, ast.JoinedStr):
            problems.append(f"{where}:{line}: an f-string cannot be translated: write a template with fields")
        elif isinstance(arg, ast.BinOp) and isinstance(arg.op, (ast.Add, ast.Mod)):
            problems.append(f"{where}:{line}: a message built with + or %: write one template with fields")
        elif isinstance(arg, ast.IfExp):
            take(arg.body, line)
            take(arg.orelse, line)
        elif isinstance(arg, (ast.Name, ast.Attribute)):
            name = arg.id if isinstance(arg, ast.Name) else arg.attr
            if name in consts:
                found.append((consts[name], line))
        # anything else (a call such as describe_error(...), a variable) is a Message made elsewhere, read there

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in TEMPLATE_ARG:
            i = TEMPLATE_ARG[_call_name(node)]
            if len(node.args) > i:
                take(node.args[i], node.lineno)
    return found, problems


def template_filter_templates() -> list[tuple[str, int]]:
    """``[(template, line)]`` of every ``"..." | kit_tr(...)`` of the feedback template."""
    text = TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"\{#.*?#\}", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)  # (comments)
    return [(m.group(1), text.count("\n", 0, m.start()) + 1)
            for m in re.finditer(r'"((?:[^"\\]|\\.)*)"\s*\|\s*kit_tr\b', text)]


def all_templates() -> dict[str, list[str]]:
    """{template: [file:line, ...]} over the whole grader."""
    out: dict[str, list[str]] = {}
    for name in GRADER_FILES:
        for template, line in grader_templates(GRADING / name)[0]:
            out.setdefault(template, []).append(f"course/grading/{name}:{line}")
    for template, line in template_filter_templates():
        out.setdefault(template, []).append(f"{TEMPLATE.relative_to(REPO)}:{line}")
    return out


def _fields(template: str) -> set[tuple]:
    """Each ``{field!conversion:spec}`` of a template: the name, conversion and format are kept in a translation."""
    return {(name, conv, spec) for _, name, spec, conv in string.Formatter().parse(template) if name is not None}


def _docstrings(tree) -> set[int]:
    return {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}


def _not_for_students(tree) -> set[int]:
    """String constants that only the instructor or the machinery reads: docstrings, traitlets' ``help=``, the
    grader's log (``self.log.*``, ``sys.stderr.write``), regular expressions and sanitiser options."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = _call_name(node)
        logs = isinstance(f, ast.Attribute) and isinstance(f.value, ast.Attribute) and f.value.attr in ("log",
                                                                                                       "stderr")
        if logs or name in ("compile", "match", "sub"):
            skip.update(id(n) for a in node.args for n in ast.walk(a))
        skip.update(id(n) for k in node.keywords if k.arg in ("help", "link_rel") for n in ast.walk(k.value))
    return skip


# ---------------------------------------------------------------------------------------------------------
# 1. The catalogue is complete
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GRADER_FILES)
def test_every_message_of_the_grader_has_its_translation(name):
    """Every reason of the hidden checks (``CheckFailed(...)``, ``expect(..., message)``, ``Message(...)`` in
    helpers that build reasons) and every word the grader writes into a notebook is a template of the catalogue,
    translated with the same fields; none is an f-string."""
    templates, problems = grader_templates(GRADING / name)
    found = {CHECK_FILES[0]: (sum(len(grader_templates(GRADING / n)[0]) for n in CHECK_FILES), 100),  # the package's
             "student_client.py": (len(templates), 15)}
    if name in found:
        assert found[name][0] >= found[name][1], "the reasons were not found: is the AST reader still right?"
    for template, line in templates:
        where = f"course/grading/{name}:{line}"
        if template not in MESSAGES:
            problems.append(f"{where}: no zh-CN translation in course/locales/zh_CN.py for {template!r}")
        elif _fields(MESSAGES[template]) != _fields(template):
            problems.append(f"{where}: the translation of {template!r} has the fields "
                            f"{sorted(_fields(MESSAGES[template]))}, the English {sorted(_fields(template))}")
    assert not problems, "\n".join(problems)


def test_every_word_of_the_feedback_template_has_its_translation():
    templates = template_filter_templates()
    assert len(templates) >= 15
    missing = [f"{TEMPLATE.relative_to(REPO)}:{line}: {t!r}" for t, line in templates if t not in MESSAGES]
    assert not missing, "no zh-CN translation for:\n" + "\n".join(missing)
    # and no word of the page is written outside a kit_tr call (in HTML text between tags)
    text = TEMPLATE.read_text(encoding="utf-8")
    bare = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}|<[^>]*>", " ", text, flags=re.S)
    words = [(text[:text.find(w)].count("\n") + 1, w) for w in re.findall(r"[A-Za-z]{2,}", bare)]
    assert not words, f"untranslated words in the feedback template (line, word): {words}"


@pytest.mark.parametrize("name", GRADER_FILES)
def test_no_english_text_for_students_outside_the_catalogue(name):
    """A reason made by a helper (a dict of mistakes, a function returning one) must be a Message too: any
    string of three English words or more that is not a template of the catalogue, a docstring or text for the
    instructor (help, log, a regular expression) fails, naming file:line."""
    path = GRADING / name
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip, templates = _not_for_students(tree), {t for t, _ in grader_templates(path)[0]}
    stray = [f"course/grading/{name}:{n.lineno}: {n.value[:80]!r}" for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip
             and ENGLISH_RUN.search(n.value) and n.value not in templates]
    assert not stray, "English text a student may read, not in a template of the catalogue:\n" + "\n".join(stray)


def test_every_entry_of_the_catalogue_is_used_and_is_chinese():
    used = all_templates()
    unused = sorted(set(MESSAGES) - set(used))
    assert not unused, f"entries of course/locales/zh_CN.py no message uses (stale?): {unused}"
    untranslated = [k for k, v in MESSAGES.items() if not CJK.search(v)]
    assert not untranslated, f"entries left in English: {untranslated}"


def test_no_text_quotes_the_solution_and_no_translation_adds_code():
    """No template or translation holds a line of the solution; a translation holds no identifier, call or
    other ASCII word its English template does not (so it says no more than the English: only words change).
    BN is the glossary's abbreviation of batch-norm (批归一化（BN））."""
    solution = solution_lines(sorted((REPO / "source" / "superres").glob("*.ipynb")))  # every notebook's
    assert len(solution) > 20
    problems = []
    for english, chinese in MESSAGES.items():
        for text in (english, chinese):
            problems += [f"{english!r} quotes the solution: {line!r}" for line in solution if line in text]
        extra = [w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", chinese) if w not in english and w != "BN"]
        if extra:
            problems.append(f"the translation of {english!r} adds {extra}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------------------
# 2. The same check, the same verdict, in each language
# ---------------------------------------------------------------------------------------------------------
class FakeStudent:
    """A student side answering from a script: ``answers[op]`` (a dict, or a function of the request)."""

    def __init__(self, answers):
        self.answers, self.deadline, self.timeout = answers, 0, 0

    def request(self, op, what, **fields):
        answer = self.answers[op]
        return answer(fields) if callable(answer) else answer


class FakeSession:
    def __init__(self, student):
        self.student, self.used = student, False

    def fresh_objects(self, timeout):
        pass

    def get(self, timeout):
        return self.student

    def close(self):
        pass


def _wrong_shape_student():
    """Builds a ConvolutionalBlock whose forward answers a (2, 8, 1, 1) tensor whatever the input."""
    import torch

    return FakeStudent({"new": {"h": 1}, "forward": lambda req: {"outs": [torch.zeros(2, 8, 1, 1)]}})


def test_a_failing_check_gives_its_reason_in_the_language_asked_with_the_same_verdict(tmp_path, monkeypatch):
    """``conv_block`` (the real check) against a student side whose block maps every input to (2, 8, 1, 1):
    decided once, it fails in both languages; the English reason is the one the check has always given, the
    Chinese one its translation with the same numbers."""
    from course.grading import checks

    verdicts = {lang: checks.run_checks(checks.CHECKS, ["conv_block"], tmp_path, language=lang,
                                        session=FakeSession(_wrong_shape_student()))["conv_block"]
                for lang in ("en", ZH)}
    assert not verdicts["en"][0] and not verdicts[ZH][0]
    fields = dict(name="ConvolutionalBlock", k=3, stride=1, got=(2, 8, 1, 1), want=(2, 8, 17, 16))
    template = "{name}(3, 8, kernel_size={k}, stride={stride}) maps (2, 3, 17, 16) to {got}, expected {want}"
    assert verdicts["en"][1] == ("ConvolutionalBlock(3, 8, kernel_size=3, stride=1) maps (2, 3, 17, 16) to "
                                 "(2, 8, 1, 1), expected (2, 8, 17, 16)")
    assert verdicts[ZH][1] == MESSAGES[template].format(**fields)
    assert CJK.search(verdicts[ZH][1]) and "(2, 8, 1, 1)" in verdicts[ZH][1] and not CJK.search(verdicts["en"][1])
    # without a language: the process's (a kernel's SR_KIT_LANGUAGE under plain nbgrader)
    monkeypatch.delenv("SR_KIT_LANGUAGE", raising=False)
    assert checks.run_checks(checks.CHECKS, ["conv_block"], tmp_path, session=FakeSession(_wrong_shape_student())
                             )["conv_block"] == verdicts["en"]


def test_nested_reasons_and_student_errors_render_in_one_language():
    """A reason holding other messages (a ``what``, a hint, a mistake) is put into words whole, in one language;
    student text in it stays as the student wrote it (escaped)."""
    from course.grading.checks import solver_checks
    from course.grading.student_client import CheckFailed, Message, describe_error

    e = CheckFailed("{what} should raise ValueError ({hint})", what=Message('an unknown activation (e.g. "swish")'),
                    hint=Message("only 2, 4, 8 are possible"))
    assert str(e) == 'an unknown activation (e.g. "swish") should raise ValueError (only 2, 4, 8 are possible)'
    zh = e.render(ZH)
    assert MESSAGES['an unknown activation (e.g. "swish")'] in zh and MESSAGES["only 2, 4, 8 are possible"] in zh
    assert "unknown" not in zh and "should" not in zh

    raised = describe_error({"raised": "RuntimeError", "message": "size mismatch\x1b[31m"},
                            Message("setting parameters of {name}", name="SRResNet"))
    assert raised.render("en") == "setting parameters of SRResNet raised RuntimeError: size mismatch\\x1b[31m"
    assert raised.render(ZH) == MESSAGES["{what} raised {kind}: {message}"].format(
        what=MESSAGES["setting parameters of {name}"].format(name="SRResNet"), kind="RuntimeError",
        message="size mismatch\\x1b[31m")
    for key, why in solver_checks.G_STEP_MISTAKES.items():
        assert isinstance(why, Message) and CJK.search(why.render(ZH)) and not CJK.search(str(why)), key


class StubServer:
    """The check server as TrustedHiddenChecks sees it: records what it is asked, answers ``verdicts``."""

    def __init__(self, verdicts):
        self.verdicts, self.asked = verdicts, []

    def send(self, op, names, language="en"):
        self.asked.append((op, names, language))

    def answer(self):
        return self.verdicts


def _hidden_check_notebook(language: str | None):
    from course_fixtures import nbgrader_cell
    from nbformat.v4 import new_notebook

    nb = new_notebook(cells=[nbgrader_cell("code", 'hidden_check("conv_block")\nhidden_check("srgan_epoch")',
                                           grade_id="test_conv_block", grade=True, points=2, locked=True)])
    if language:
        nb.metadata["sr_kit"] = {"language": language}
    return nb


@pytest.mark.parametrize("language", [ZH, None])
def test_the_trusted_grader_marks_a_cell_in_the_notebooks_language(language, tmp_path, monkeypatch):
    """TrustedHiddenChecks asks the server for reasons in the notebook's language and writes the failure (and
    "no verdict", when the server gave none) in it; the cell fails either way."""
    from course.grading import trusted_hidden_checks

    stub = StubServer({"conv_block": (False, "REASON")})
    monkeypatch.setattr(trusted_hidden_checks, "check_server_for", lambda folder, timeout: stub)
    monkeypatch.setenv(VERDICTS_ENV, str(tmp_path / "verdicts"))
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    resources = {"metadata": {"path": str(tmp_path)}, "nbgrader": {"student": "s", "notebook": "01_models"}}
    lang = language or "en"
    for verdicts, reason in (({"conv_block": (False, "REASON")}, "REASON"),
                             ({"conv_block": (True, "")}, MESSAGES["no verdict"] if language else "no verdict")):
        stub.verdicts = verdicts
        nb, _ = trusted_hidden_checks.TrustedHiddenChecks().preprocess(_hidden_check_notebook(language), resources)
        (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
        failed = "conv_block" if verdicts["conv_block"][0] is False else "srgan_epoch"
        want = ("hidden check {name!r} failed: {reason}" if lang == "en"
                else MESSAGES["hidden check {name!r} failed: {reason}"]).format(name=failed, reason=reason)
        assert error.ename == "HiddenCheckFailed" and error.evalue == want, error.evalue
        assert stub.asked[-1] == ("decide", ["conv_block", "srgan_epoch"], lang)


def test_the_disk_bound_says_so_in_the_notebooks_language(tmp_path):
    """What ``course.sandbox.enforce_folder_size_limit`` says (English, for the grader's summary) is read back into
    the notebook's language for the test cells; a text that does not read as it is shown as it is."""
    from course.grading.trusted_hidden_checks import folder_size_limit_message

    from course.sandbox import enforce_folder_size_limit

    (tmp_path / "big.bin").write_bytes(b"x" * (3 << 20))
    over = enforce_folder_size_limit(tmp_path, 1 << 20)
    assert over and not (tmp_path / "big.bin").exists()
    assert folder_size_limit_message(over, "en") == ("wrote 3 MB into its grading folder (at most 1 MB): its files "
                                                     "were removed and the notebook scores 0") == over
    zh = folder_size_limit_message(over, ZH)
    assert zh == MESSAGES["wrote {total} MB into its grading folder (at most {limit} MB): its files were removed "
                          "and the notebook scores 0"].format(total=3, limit=1)
    assert folder_size_limit_message("something else", ZH) == "something else"


# ---------------------------------------------------------------------------------------------------------
# 3. The feedback page and the cells the grader inserts
# ---------------------------------------------------------------------------------------------------------
def _graded_notebook(language: str | None):
    """An autograded notebook as ``generate_feedback`` has it: a failed test cell, a written answer awaiting a
    human (with a comment), a graded coding answer, an ungraded answer."""
    from course_fixtures import nbgrader_cell
    from nbformat.v4 import new_markdown_cell, new_notebook, new_output

    test = nbgrader_cell("code", "assert x == 1", grade_id="test_x", grade=True, points=2, locked=True, score=0.0)
    test.outputs = [new_output("error", ename="HiddenCheckFailed", evalue="x", traceback=["x"])]
    nb = new_notebook(cells=[
        new_markdown_cell("Intro"),
        nbgrader_cell("code", "x = 1", grade_id="answer", solution=True),
        test,
        nbgrader_cell("markdown", "my answer", grade_id="report", grade=True, solution=True, points=3, score=0.0,
                      awaiting_manual_grade=True, comment="well argued"),
        nbgrader_cell("code", "y = 2", grade_id="code_answer", grade=True, solution=True, points=1, score=1.0,
                      awaiting_manual_grade=False),
    ])
    if language:
        nb.metadata["sr_kit"] = {"language": language}
    return nb


FEEDBACK_WORDS = ("awaiting manual grading", "Score: {score} / {points}", "Student's answer", "Test cell",
                  "Written response", "Coding free-response", "Comment", "Comments:", "(Top)",
                  "Grade cell: {grade_id}", "{n} answer awaiting manual grading",
                  "Late submission penalty (Score: -{penalty})")


def _feedback_page(language: str | None) -> str:
    from course.grading.feedback_kit import KitFeedbackExporter

    resources = {"nbgrader": {"notebook": "01_models", "score": 1.0, "max_score": 6.0, "late_penalty": 0.5}}
    html, _ = KitFeedbackExporter().from_notebook_node(_graded_notebook(language), resources=resources)
    return html


def _words(html: str) -> str:
    body = re.sub(r"<style.*?</style>|<script.*?</script>", " ", html[html.index("<body"):], flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def _label(template: str) -> str:
    """The fixed words of a template, before its first field."""
    return template.split("{", 1)[0].strip() or template.split("}", 1)[1].split("{", 1)[0].strip()


def test_the_feedback_page_speaks_the_notebooks_language():
    """The kit's feedback template on a small graded notebook: every word of the page in Chinese for a zh-CN
    notebook (``<html lang="zh-CN">``, scores as numbers), and the English words of nbgrader's page otherwise."""
    zh, en = _feedback_page(ZH), _feedback_page(None)
    zh_words, en_words = _words(zh), _words(en)
    assert '<html lang="zh-CN">' in zh and '<html lang="en">' in en
    for template in FEEDBACK_WORDS:
        assert _label(MESSAGES[template]) in zh_words, (template, zh_words)
        assert _label(template) in en_words, (template, en_words)
        assert _label(template) not in zh_words.replace("01_models", ""), (template, zh_words)
    assert MESSAGES["Score: {score} / {points}"].format(score=1.0, points=1.0) in zh_words
    assert MESSAGES["{notebook} (Score: {score} / {max_score}; {pending})"].format(
        notebook="01_models", score=1.0, max_score=6.0,
        pending=MESSAGES["{n} answer awaiting manual grading"].format(n=1)) in zh_words
    assert "01_models (Score: 1.0 / 6.0; 1 answer awaiting manual grading)" in en_words
    assert "Score: 0.0 / 3.0" not in en_words, "a pending answer reads as awaiting, not as 0"
    assert not CJK.search(en_words)
    assert "well argued" in zh_words and "my answer" in zh_words  # the student's and grader's own words stay


def test_redaction_and_sanitiser_notes_speak_the_notebooks_language():
    from course.grading.feedback_kit import RedactHiddenTestsInOutputs
    from nbformat.v4 import new_code_cell, new_notebook, new_output
    from course.grading.sanitize_notebook import SanitizeNotebook

    for language, placeholder in ((ZH, MESSAGES["[hidden test]"]), (None, "[hidden test]")):
        source = 'print(1)\n### BEGIN HIDDEN TESTS\nhidden_check("conv_block")\n### END HIDDEN TESTS\n'
        cell = new_code_cell(source, outputs=[
            new_output("stream", name="stdout", text='leak: hidden_check("conv_block")\n'),
            new_output("display_data", data={"application/javascript": "alert(1)"})])
        nb = new_notebook(cells=[cell])
        if language:
            nb.metadata["sr_kit"] = {"language": language}
        nb, _ = RedactHiddenTestsInOutputs().preprocess(nb, {})
        assert nb.cells[0].outputs[0].text == f"leak: {placeholder}\n"
        nb, _ = SanitizeNotebook().preprocess(nb, {})
        removed = "[output removed by the grader: only text and images are kept]"
        assert nb.cells[0].outputs[1].data["text/plain"] == (MESSAGES[removed] if language else removed)
        tiny = SanitizeNotebook(max_notebook_bytes=1500)
        nb.cells[0].outputs[0].text = "x" * 5000
        nb, _ = tiny.preprocess(nb, {})
        too_large = "[output removed by the grader: the notebook was too large]"
        assert nb.cells[0].outputs[0].text == (MESSAGES[too_large] if language else too_large) + "\n"


def _submitted(language: str | None):
    """A submitted notebook: a cell with outputs (one an error), a forged "submitted outputs" cell in the
    other language, an answer cell."""
    from course_fixtures import nbgrader_cell
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from course.grading.submitted_outputs import MARKERS

    run = nbgrader_cell("code", "train()", grade_id="plots", locked=True)
    run.outputs = [new_output("stream", name="stdout", text="28.1 dB\n"),
                   new_output("error", ename="ValueError", evalue="old error", traceback=[])]
    other = MARKERS[0] if language else MARKERS[-1]
    forged = new_code_cell(other + "\nprint('all good')", outputs=[new_output("stream", name="stdout", text="forged\n")])
    nb = new_notebook(cells=[run, forged, new_code_cell("extra()", outputs=[new_output("stream", name="stdout",
                                                                                        text="extra\n")]),
                             nbgrader_cell("markdown", "answer", grade_id="report", grade=True, solution=True,
                                           points=2)])
    if language:
        nb.metadata["sr_kit"] = {"language": language}
    return nb


@pytest.mark.parametrize("language", [ZH, None])
def test_the_submitted_outputs_and_report_cells_speak_the_notebooks_language(language, tmp_path):
    from course.grading.report_cell import NO_REPORT_TEXT, REPORT_LABEL, REPORT_LABELS, ShowReport
    from course.grading.submitted_outputs import MARKER, MARKERS, ShowSubmittedOutputs, StashSubmittedOutputs, missing_outputs

    assert len(MARKERS) == 2 and len(REPORT_LABELS) == 2  # one per language
    tr = (lambda t: MESSAGES[t]) if language else (lambda t: t)
    stash = StashSubmittedOutputs(expected_outputs={"03_train": ["plots", "figure"]})
    nb, res = stash.preprocess(_submitted(language), {"nbgrader": {"notebook": "03_train"}})
    nb, _ = ShowSubmittedOutputs().preprocess(nb, res)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(MARKERS)]
    assert cell.source == tr(MARKER)
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "forged" not in text, "a forged cell of the other language is dropped too"
    assert tr("--- submitted output of cell {which} ---").format(which="plots") in text
    assert tr("#{n} (a cell the student added)").format(n=2) in text
    assert tr("[submitted error] {ename}: {evalue}").format(ename="ValueError", evalue="old error") in text
    assert tr("submitted without outputs: {cells}").format(cells="figure") in text
    assert missing_outputs(json.loads(json.dumps(nb))) == ["figure"]
    assert bool(CJK.search(text)) == bool(language)

    report = ShowReport().text(str(tmp_path), "course/submitted/s/superres", language or "en")
    assert report.startswith(f"**{tr(REPORT_LABEL)}**") and tr(NO_REPORT_TEXT) in report
    (tmp_path / "report.md").write_text("# My run\n\n![curve](checkpoints/srgan/curves.png)\n")
    report = ShowReport().text(str(tmp_path), "course/submitted/s/superres", language or "en")
    assert tr("*[picture {name!r}: `{path}` in the hand-in]*").format(
        name="curve", path="checkpoints/srgan/curves.png") in report and "# My run" in report
    assert bool(CJK.search(report)) == bool(language)


# ---------------------------------------------------------------------------------------------------------
# Integration lane: real processes (torch, a kernel, nbgrader)
# ---------------------------------------------------------------------------------------------------------
def _slope_mutant(folder: Path) -> Path:
    """A submission whose ConvolutionalBlock uses LeakyReLU(0.1): conv_block fails on the slope."""
    folder.mkdir(parents=True)
    for name in ("01_models.ipynb", "02_solver.ipynb"):
        text = (REPO / "source" / "superres" / name).read_text(encoding="utf-8")
        if name == "01_models.ipynb":
            assert text.count("nn.LeakyReLU(0.2))") >= 1
            text = text.replace("layers.append(nn.LeakyReLU(0.2))", "layers.append(nn.LeakyReLU(0.1))", 1)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.integration
def test_the_hidden_check_command_speaks_the_kernels_language(tmp_path):
    """Under plain nbgrader, ``hidden_check`` runs the check command from the kernel, whose SR_KIT_LANGUAGE the
    notebook's first cell set: the same mutant fails (exit code 1) with the reason in that language."""
    folder = _slope_mutant(tmp_path / "sub")
    reasons = {}
    for lang in ("en", ZH):
        token = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "SR_KIT_LANGUAGE"}
        env["SR_KIT_LANGUAGE"] = lang
        out = subprocess.run([*check_command(), "conv_block", "--submission", str(folder)], input=token + "\n", capture_output=True, text=True, timeout=600,
                             cwd=folder, env=env)
        (line,) = [x for x in out.stdout.splitlines() if x.startswith(f"{token} ")]
        assert out.returncode == 1 and line.startswith(f"{token} FAIL conv_block "), (out.stdout, out.stderr[-2000:])
        reasons[lang] = line.split(" ", 3)[3]
    assert reasons["en"] == "LeakyReLU slope should be 0.2, is 0.1"
    assert reasons[ZH] == MESSAGES["LeakyReLU slope should be 0.2, is {slope:g}"].format(slope=0.1)


@pytest.mark.integration
def test_the_check_server_gives_one_verdict_in_each_notebooks_language(tmp_path, monkeypatch):
    """The sandboxed grader's path without the sandbox: TrustedHiddenChecks starts the submission's check server
    (a trusted process) and marks the cell; asked again for an English notebook, the server gives the verdict it
    already decided, in English. The verdicts file holds what the student read."""
    from course.grading import check_server_client, trusted_hidden_checks

    folder = _slope_mutant(tmp_path / "sub")
    monkeypatch.delenv(SANDBOX_ENV, raising=False)
    monkeypatch.delenv(CHECK_SERVER_ENV, raising=False)
    monkeypatch.setenv(VERDICTS_ENV, str(tmp_path / "verdicts"))
    said = {}
    try:
        for lang in (ZH, "en"):
            nb = _hidden_check_notebook(None if lang == "en" else lang)
            nb.cells[0].source = 'hidden_check("conv_block")'
            resources = {"metadata": {"path": str(folder)}, "nbgrader": {"student": "s", "notebook": "01_models"}}
            nb, _ = trusted_hidden_checks.TrustedHiddenChecks(check_timeout=300).preprocess(nb, resources)
            (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
            said[lang] = error.evalue
            recorded = json.loads((tmp_path / "verdicts" / "s" / "01_models.json").read_text())
            assert recorded["conv_block"]["passed"] is False and recorded["conv_block"]["reason"] in error.evalue
    finally:
        check_server_client.close_servers()
    assert said["en"] == "hidden check 'conv_block' failed: LeakyReLU slope should be 0.2, is 0.1"
    assert said[ZH] == MESSAGES["hidden check {name!r} failed: {reason}"].format(
        name="conv_block", reason=MESSAGES["LeakyReLU slope should be 0.2, is {slope:g}"].format(slope=0.1))


@pytest.mark.integration
def test_the_output_budget_note_speaks_the_notebooks_language():
    """LimitedOutputExecute in a real kernel: a cell printing past its budget gets the note in the notebook's
    language."""
    from nbformat.v4 import new_code_cell, new_notebook

    from course.grading.limited_output_execute import LimitedOutputExecute

    for language in (ZH, None):
        nb = new_notebook(cells=[new_code_cell("for i in range(200):\n    print('x' * 100)")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        if language:
            nb.metadata["sr_kit"] = {"language": language}
        nb, _ = LimitedOutputExecute(max_output_bytes=2000, kernel_name="python3").preprocess(nb, {})
        text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        note = "[output truncated by the grader: at most {cell} bytes per cell and {notebook} per notebook]"
        want = (MESSAGES[note] if language else note).format(cell=2000, notebook=8 << 20)
        assert want in text, text[-500:]


@pytest.mark.integration
@pytest.mark.slow
def test_nbgrader_feedback_of_a_zh_cn_submission_is_in_chinese(tmp_path):
    """Through nbgrader itself (the kit's nbgrader_config.py): a tiny assignment autograded and its feedback
    generated for a zh-CN and an English submission of the same work. Same scores; the zh-CN feedback page and
    the cells inserted into it are in Chinese, the English one in English."""
    from course.demo import copy_course
    from course_fixtures import nbgrader_cell
    from nbformat.v4 import new_notebook

    import nbformat

    nbgrader = tool("nbgrader")
    if not nbgrader.exists():
        pytest.skip("nbgrader is not installed")
    root = copy_course(tmp_path / "course")
    source = new_notebook(cells=[
        nbgrader_cell("code", "x = 2\nprint('run', x)", grade_id="plots", locked=True),
        nbgrader_cell("code", "### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION", grade_id="answer_code",
                      solution=True),
        nbgrader_cell("code", "assert y == 3", grade_id="test_y", grade=True, points=1, locked=True),
        nbgrader_cell("code", "assert y == 4", grade_id="test_wrong", grade=True, points=1, locked=True),
        nbgrader_cell("markdown", "Discuss.\n\n### BEGIN SOLUTION\nreference\n### END SOLUTION", grade_id="report",
                      grade=True, solution=True, points=2),
    ])
    source.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    (root / "source" / "tiny").mkdir(parents=True)
    nbformat.write(source, root / "source" / "tiny" / "03_train.ipynb")
    env = tool_env()
    env.pop(SANDBOX_ENV, None)

    def run(*args):
        out = subprocess.run([str(nbgrader), *args], cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]

    run("generate_assignment", "tiny", "--force")
    release = json.loads((root / "release" / "tiny" / "03_train.ipynb").read_text())
    for student, language in (("li", ZH), ("ann", None)):
        nb = json.loads(json.dumps(release))
        nb["cells"][1]["source"] = "y = x + 1"
        nb["cells"][4]["source"] = "My run."
        if language:
            nb["metadata"]["sr_kit"] = {"language": language}
        folder = root / "course" / "submitted" / student / "tiny"
        folder.mkdir(parents=True)
        (folder / "03_train.ipynb").write_text(json.dumps(nb))
    run("autograde", "tiny", "--force")
    run("generate_feedback", "tiny", "--force")

    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(root / "course" / "gradebook.db")) as gb:
        scores = {s: {g.name: g.score for g in gb.find_submission_notebook("03_train", "tiny", s).grades}
                  for s in ("li", "ann")}
    assert scores["li"] == scores["ann"] and scores["li"]["test_y"] == 1 and scores["li"]["test_wrong"] == 0
    pages = {s: (root / "course" / "feedback" / s / "tiny" / "03_train.html").read_text(encoding="utf-8")
             for s in ("li", "ann")}
    zh, en = _words(pages["li"]), _words(pages["ann"])
    assert '<html lang="zh-CN">' in pages["li"] and '<html lang="en">' in pages["ann"]
    for template in ("awaiting manual grading", "Student's answer", "Test cell",
                     "WRITTEN REPORT (handed in by the student, shown as submitted; this cell is not graded by "
                     "itself)", "NO REPORT HANDED IN"):
        assert MESSAGES[template] in zh and template not in zh, template
        assert template in en, template
    assert MESSAGES["# SUBMITTED OUTPUTS (the student's own run, shown as submitted; this cell is not run by the "
                    "grader)"] in zh
    assert MESSAGES["submitted without outputs: {cells}"].format(cells="plots") in zh
    assert not CJK.search(en)
