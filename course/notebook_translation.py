"""Translated notebooks from one source: the English notebook plus a translation catalogue keyed by cell id.

The instructor keeps one notebook per assignment step in ``source/<assignment>/`` (English, with solutions and
hidden tests). Each other language has one catalogue file per notebook,
``course/translations/<language>/<assignment>/<notebook>.md``, instructor-only (it holds the translated solution
cells too). An entry is a header line naming the cell's id and a fingerprint of the English source it translates,
followed by the translated source::

    <!-- cell c02-code en 4be1c8e2a0f3 -->
    ## 1.1 `ConvolutionalBlock`

    两种网络都由这个模块搭建……

Rules, checked by :func:`catalogue_problems` (``python -m course.notebook_translation check``, and the test suite):

- every markdown cell, and every code cell with English prose in its comments, docstrings or strings, has an entry;
- an entry's fingerprint is the English source's: an English cell changed since it was translated is *stale*;
- a translated code cell is the same program: the same statements and names, the same nbgrader markers
  (``### BEGIN SOLUTION``…), the same ``%%writefile`` line; only comments, docstrings and string constants that
  hold Chinese text may differ (and the language given to ``use_language``). So a submission is graded the same in
  either language;
- the inline code (```identifiers```) of an English markdown cell is kept in its translation.

:func:`translate_notebook` applies a catalogue to a notebook; the release (``python -m course.release``) writes one
student version per language from the translated sources, and the grader puts back the translated text of the
locked cells of a translated submission (``course/grading/localized_cells.py``).
"""
from __future__ import annotations

import ast
import copy
import hashlib
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from course.paths import KIT_ROOT as REPO
from sr_utils.i18n import LANGUAGES

TRANSLATIONS = Path("course") / "translations"  # below the course root: <language>/<assignment>/<notebook>.md
HEADER = re.compile(r"^<!-- cell (?P<id>[A-Za-z0-9_-]+) en (?P<fingerprint>[0-9a-f]{12}) -->$")
NBGRADER_MARKER = re.compile(r"^\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS|MARK SCHEME)\b.*$", re.M)
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# English words in a row (letters only, two or more each): what "English prose" means for these checks; three in
# markdown (where a name such as "Ledig et al" may stay), two in a code cell's comments and strings
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ \t]+[A-Za-z][a-z]+){2,}\b")
ENGLISH_RUN_IN_CODE = re.compile(r"\b[A-Za-z][a-z]+(?:[ \t]+[A-Za-z][a-z]+)+\b")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# what nbgrader puts in place of a solution in each language's release (ClearSolutions.code_stub / text_stub)
RELEASE_STUBS = {"zh-CN": {"code": "# 在这里写你的代码\nraise NotImplementedError()", "text": "在这里写你的答案"}}

__all__ = ["Entry", "TranslationError", "fingerprint", "catalogue_path", "read_catalogue", "write_catalogue",
           "cell_prose", "has_prose", "english_prose", "cell_english", "code_difference", "catalogue_problems",
           "translate_notebook", "translated_sources", "add_missing_entries", "main"]


class TranslationError(ValueError):
    """A catalogue cannot be read or applied; the message names the file, line or cell at fault."""


@dataclass(frozen=True)
class Entry:
    """One translated cell: ``source`` translates the English source whose :func:`fingerprint` is ``fingerprint``;
    ``line`` is where the entry starts in its catalogue file (1-based)."""
    source: str
    fingerprint: str
    line: int = 0


def fingerprint(source: str) -> str:
    """12 hex digits of the SHA-256 of an English cell source: what a translation was made from."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def catalogue_path(root: Path, language: str, assignment: str, notebook: str) -> Path:
    """``<root>/course/translations/<language>/<assignment>/<notebook>.md``."""
    if language not in LANGUAGES or language == "en":
        raise TranslationError(f"no catalogue for language {language!r}: translations exist for "
                               f"{', '.join(l for l in LANGUAGES if l != 'en')}")
    return Path(root) / TRANSLATIONS / language / assignment / f"{notebook}.md"


def read_catalogue(path: Path) -> dict[str, Entry]:
    """``{cell id: Entry}`` of a catalogue file; a missing file is an empty catalogue. Text before the first
    header is a preamble for translators and is ignored."""
    path = Path(path)
    if not path.exists():
        return {}
    entries: dict[str, Entry] = {}
    current, lines = None, []

    def close():
        if current is not None:
            cell_id, fp, line = current
            if cell_id in entries:
                raise TranslationError(f"{path}:{line}: cell {cell_id} is translated twice "
                                       f"(first at line {entries[cell_id].line})")
            while lines and not lines[-1].strip():
                lines.pop()
            entries[cell_id] = Entry("\n".join(lines), fp, line)

    for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        m = HEADER.match(text)
        if m:
            close()
            current, lines = (m["id"], m["fingerprint"], number), []
        elif current is not None:
            lines.append(text)
        elif text.startswith("<!-- cell"):
            raise TranslationError(f"{path}:{number}: malformed header {text!r}: write "
                                   "<!-- cell CELL_ID en FINGERPRINT -->")
    close()
    return entries


def write_catalogue(path: Path, entries: dict[str, Entry], preamble: str = "") -> None:
    """Write ``entries`` (in their order) to ``path``, atomically; a source that holds a header line is refused."""
    parts = [preamble.rstrip("\n") + "\n\n"] if preamble else []
    for cell_id, entry in entries.items():
        if any(HEADER.match(line) for line in entry.source.split("\n")):
            raise TranslationError(f"the translation of cell {cell_id} holds a line that looks like a header")
        parts.append(f"<!-- cell {cell_id} en {entry.fingerprint} -->\n{entry.source}\n\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(parts).rstrip("\n") + "\n", encoding="utf-8")
    tmp.replace(path)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _split_magics(source: str) -> tuple[list[str], str]:
    """(IPython lines: ``%``/``!`` commands, kept as they are; the Python code with those lines blanked)."""
    magics, code = [], []
    for line in source.split("\n"):
        if line.lstrip().startswith(("%", "!")):
            magics.append(line.strip())
            code.append("")
        else:
            code.append(line)
    return magics, "\n".join(code)


def _comments_and_strings(code: str) -> list[str]:
    """The comments (nbgrader markers excepted) and string constants of Python ``code``, less the strings it
    compares with something (values such as a library's error text)."""
    found = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT and not NBGRADER_MARKER.match(tok.string):
                found.append(tok.string.lstrip("#").strip())
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return found + [code]
    # a string compared with something (`"... a second time" in str(error)`) is a value, not text to translate
    compared = {id(n) for c in ast.walk(tree) if isinstance(c, ast.Compare) for n in (c.left, *c.comparators)}
    found += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
              and id(n) not in compared]
    return found


def cell_prose(cell) -> list[str]:
    """The human text of a cell: a markdown cell's text without code blocks, inline code, links' targets, HTML
    tags or maths; a code cell's comments, docstrings and strings."""
    src = _source(cell)
    if cell.get("cell_type") == "markdown":
        text = re.sub(r"```.*?```", " ", src, flags=re.S)
        text = re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", text, flags=re.S)
        text = INLINE_CODE.sub(" ", text)
        text = re.sub(r"\]\([^)]*\)", "]", text)
        text = re.sub(r"<[^>]+>", " ", text)
        return [text]
    if cell.get("cell_type") == "code":
        return _comments_and_strings(_split_magics(src)[1])
    return []


def english_prose(texts: list[str], in_code: bool = False) -> list[str]:
    """The runs of English words in ``texts`` (what is left to translate): three or more in markdown, two or more
    in code (``in_code``)."""
    texts = [re.sub(r"《[^》]*》", " ", text) for text in texts]  # a title in 《》 keeps its own language
    run = ENGLISH_RUN_IN_CODE if in_code else ENGLISH_RUN
    return [m.group(0) for text in texts for m in run.finditer(text)]


def cell_english(cell) -> list[str]:
    """The English prose of a cell (see :func:`english_prose`)."""
    return english_prose(cell_prose(cell), in_code=cell.get("cell_type") == "code")


def has_prose(cell) -> bool:
    """True when the cell holds English prose, so a translation must give it its own entry."""
    return bool(cell_english(cell))


def _flatten_fstrings(tree: ast.AST) -> ast.AST:
    """Each f-string becomes one string constant: its sorted fields, and its text when it holds Chinese (a
    translated f-string may put its fields in another order, never change them)."""
    class Flatten(ast.NodeTransformer):
        def visit_JoinedStr(self, node):
            fields = "|".join(sorted(ast.dump(v) for v in node.values if isinstance(v, ast.FormattedValue)))
            text = "".join(str(v.value) for v in node.values if isinstance(v, ast.Constant))
            return ast.Constant(value=f"<f-string {fields}>" + (text if CJK.search(text) else ""))
    return Flatten().visit(tree)


def _may_differ(english: str, translated: str) -> bool:
    """Two string constants at the same place: the translation may change a text into Chinese (an f-string keeping
    its fields), or one language tag into another."""
    if {english, translated} <= set(LANGUAGES):
        return True
    if not CJK.search(translated):
        return False
    if english.startswith("<f-string ") or translated.startswith("<f-string "):
        fields = lambda s: s.split(">", 1)[0] if s.startswith("<f-string ") else None  # noqa: E731
        return fields(english) == fields(translated)
    return True


def code_difference(english: str, translated: str) -> str | None:
    """None when ``translated`` is the same program as ``english`` (see the module doc), else what differs."""
    en_magics, en_code = _split_magics(english)
    zh_magics, zh_code = _split_magics(translated)
    if en_magics != zh_magics:
        return f"its IPython lines differ: {en_magics} became {zh_magics}"
    if NBGRADER_MARKER.findall(en_code) != NBGRADER_MARKER.findall(zh_code):
        return "its nbgrader markers (### BEGIN/END SOLUTION, HIDDEN TESTS) differ"
    try:
        en_tree = ast.parse(en_code)
    except SyntaxError:
        return None if en_code == zh_code else "the English cell is not Python, so its translation must equal it"
    try:
        zh_tree = ast.parse(zh_code)
    except SyntaxError as e:
        return f"the translation is not valid Python (line {e.lineno}: {e.msg})"
    en_tree, zh_tree = _flatten_fstrings(en_tree), _flatten_fstrings(zh_tree)
    en_nodes, zh_nodes = list(ast.walk(en_tree)), list(ast.walk(zh_tree))
    if len(en_nodes) == len(zh_nodes):
        for a, b in zip(en_nodes, zh_nodes):
            if isinstance(a, ast.Constant) and isinstance(b, ast.Constant) and isinstance(a.value, str) \
                    and isinstance(b.value, str) and a.value != b.value and _may_differ(a.value, b.value):
                a.value = b.value = "<text>"
    if ast.dump(en_tree) != ast.dump(zh_tree):
        return "its code differs from the English cell (only comments, docstrings and Chinese strings may differ)"
    return None


def catalogue_problems(source_nb: dict, entries: dict[str, Entry], where: str) -> list[str]:
    """Everything wrong with the translation ``entries`` of the English notebook ``source_nb``, one line each,
    naming ``where`` (the catalogue file) and the cell."""
    problems = []
    cells = {c.get("id"): c for c in source_nb["cells"]}
    for index, cell in enumerate(source_nb["cells"]):
        cell_id, src = cell.get("id"), _source(cell)
        first = src.strip().split("\n")[0][:60]
        label = f"{where}: cell {cell_id} (#{index}, {first!r})"
        entry = entries.get(cell_id)
        if entry is None:
            if cell.get("cell_type") == "markdown" and src.strip() or has_prose(cell):
                problems.append(f"{label} has no translation")
            continue
        if entry.fingerprint != fingerprint(src):
            problems.append(f"{label} changed in English since it was translated (line {entry.line}): update the "
                            f"translation and its fingerprint to {fingerprint(src)}")
        if cell.get("cell_type") == "code":
            why = code_difference(src, entry.source)
            if why:
                problems.append(f"{label}: the translation is not the same code: {why}")
        elif cell.get("cell_type") == "markdown":
            lost = [c for c in INLINE_CODE.findall(src) if f"`{c}`" not in entry.source]
            if lost:
                problems.append(f"{label}: the translation drops the inline code {', '.join(lost[:5])}")
        left = cell_english({"cell_type": cell.get("cell_type"), "source": entry.source})
        if left:
            problems.append(f"{label}: English left in the translation: {left[0]!r}")
    for cell_id, entry in entries.items():
        if cell_id not in cells:
            problems.append(f"{where}:{entry.line}: cell {cell_id} is not in the English notebook any more")
    return problems


def translate_notebook(nb: dict, entries: dict[str, Entry], language: str) -> dict:
    """A copy of notebook ``nb`` with each cell's source replaced by its translation in ``entries`` and
    ``metadata.sr_kit.language`` set to ``language``. Refuses (``TranslationError``) a stale entry."""
    out = copy.deepcopy(nb)
    for cell in out["cells"]:
        entry = entries.get(cell.get("id"))
        if entry is None:
            continue
        if entry.fingerprint != fingerprint(_source(cell)):
            raise TranslationError(f"cell {cell.get('id')}: its translation is stale (the English changed): "
                                   "run `python -m course.notebook_translation check` and update it")
        cell["source"] = entry.source
    out.setdefault("metadata", {}).setdefault("sr_kit", {})["language"] = language
    return out


def translated_sources(root: Path, assignment: str, language: str, into: Path) -> list[Path]:
    """Write the ``language`` version of every source notebook of ``assignment`` into ``into/<assignment>/``;
    refuses, naming them, when any catalogue has a problem. Returns the notebooks written."""
    root = Path(root)
    notebooks = sorted((root / "source" / assignment).glob("*.ipynb"))
    problems, written = [], []
    for path in notebooks:
        cat = catalogue_path(root, language, assignment, path.stem)
        problems += catalogue_problems(json.loads(path.read_text(encoding="utf-8")), read_catalogue(cat),
                                       str(cat.relative_to(root)))
    if problems:
        raise TranslationError(f"the {language} translation of {assignment} is not complete:\n  "
                               + "\n  ".join(problems[:30]) + (f"\n  ... {len(problems) - 30} more"
                                                             if len(problems) > 30 else ""))
    target = Path(into) / assignment
    target.mkdir(parents=True, exist_ok=True)
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        out = translate_notebook(nb, read_catalogue(catalogue_path(root, language, assignment, path.stem)), language)
        (target / path.name).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target / path.name)
    return written


PREAMBLE = """<!-- Translation of source/{assignment}/{notebook}.ipynb into {language}: one entry per cell, the header names the
cell's id and the fingerprint of the English it translates. How to add or change a translated cell:
docs/translation.md. Check with `python -m course.notebook_translation check`. -->"""


def add_missing_entries(root: Path, assignment: str, language: str) -> dict[str, list[str]]:
    """Give every cell that needs a translation and has none an entry holding its English source (to be
    translated in place; the check lists it until it is), keeping the notebook's cell order. Stale entries are
    left as they are (the check says so). Returns ``{catalogue file: cell ids added}``."""
    added = {}
    for path in sorted((Path(root) / "source" / assignment).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cat = catalogue_path(root, language, assignment, path.stem)
        entries = read_catalogue(cat)
        new = [c for c in nb["cells"] if c.get("id") not in entries
               and (c.get("cell_type") == "markdown" and _source(c).strip() or has_prose(c))]
        if not new:
            continue
        order = {c.get("id"): i for i, c in enumerate(nb["cells"])}
        for cell in new:
            entries[cell["id"]] = Entry(_source(cell), fingerprint(_source(cell)))
        entries = dict(sorted(entries.items(), key=lambda kv: order.get(kv[0], len(order))))
        write_catalogue(cat, entries, PREAMBLE.format(assignment=assignment, notebook=path.stem, language=language))
        added[str(cat.relative_to(root))] = [c["id"] for c in new]
    return added


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m course.notebook_translation",
                                 description="Check or extend the translation catalogues of an assignment.")
    ap.add_argument("command", choices=["check", "add-missing"],
                    help="check: list every untranslated, stale or non-equivalent cell (exit 1 if any); "
                         "add-missing: give each untranslated cell an entry with its English text, to translate")
    ap.add_argument("assignment", nargs="?", default="superres")
    ap.add_argument("--language", default="zh-CN", choices=[l for l in LANGUAGES if l != "en"])
    args = ap.parse_args(argv)
    from sr_utils.notebook import find_project_root

    root = find_project_root() or REPO
    if args.command == "add-missing":
        for cat, ids in add_missing_entries(root, args.assignment, args.language).items():
            print(f"{cat}: added {len(ids)} cell(s) to translate: {', '.join(ids)}")
    problems = []
    for path in sorted((root / "source" / args.assignment).glob("*.ipynb")):
        cat = catalogue_path(root, args.language, args.assignment, path.stem)
        problems += catalogue_problems(json.loads(path.read_text(encoding="utf-8")), read_catalogue(cat),
                                       str(cat.relative_to(root)))
    for line in problems:
        print(line)
    print(f"{len(problems)} problem(s) in the {args.language} translation of {args.assignment}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
