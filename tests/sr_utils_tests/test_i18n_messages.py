"""The messages students meet, in Chinese: every ``tr("...")`` of ``sr_utils`` and ``data_tools`` has its zh-CN
entry with the same placeholders, every entry is used, and real failures, tables and figures speak zh-CN when the
process does (and English otherwise)."""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from sr_utils.i18n import LANGUAGE_ENV, placeholders, use_language

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sr_utils", "data_tools")
CJK = re.compile(r"[\u4e00-\u9fff]")  # Chinese characters
CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # ... or Chinese punctuation


# ---------------------------------------------------------------------------------------------------------------
# (a) the catalogues against the code, read by AST
# ---------------------------------------------------------------------------------------------------------------
def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments (a template may be such a constant, e.g. ``CONVENTION``)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, str):
                found[node.targets[0].id] = value
    return found


def _tr_catalogue(tree: ast.Module, package: str) -> str | None:
    """The package whose catalogue this module's ``tr`` reads: where it imports ``tr`` from."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "tr" and a.asname is None for a in node.names):
            if node.level:  # from .i18n import tr
                return package if node.module == "i18n" else None
            return node.module.split(".")[0] if node.module and node.module.endswith(".i18n") else None
    return None


def _tr_calls():
    """``(where, catalogue package, template or None, keyword names or None, problem)`` of every ``tr(...)`` call."""
    calls = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "locales" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            constants = _string_constants(tree)
            catalogue = _tr_catalogue(tree, package)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "tr"):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    template = first.value
                elif isinstance(first, ast.Name) and first.id in constants:
                    template = constants[first.id]
                else:
                    calls.append((where, catalogue, None, None, "the template is not a string literal"))
                    continue
                spread = any(k.arg is None for k in node.keywords)  # tr(..., **params): names not known statically
                names = None if spread else {k.arg for k in node.keywords if k.arg != "language"}
                calls.append((where, catalogue, template, names, None))
    return calls


CALLS = _tr_calls()


def _messages(package: str) -> dict[str, str]:
    return importlib.import_module(f"{package}.locales.zh_CN").MESSAGES


def _entry_lines(package: str) -> dict[str, int]:
    """The line of each key of ``<package>/locales/zh_CN.py``'s ``MESSAGES``."""
    path = ROOT / package / "locales" / "zh_CN.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):
            return {ast.literal_eval(k): k.lineno for k in node.keys if k is not None}
    return {}


def test_the_kit_has_translated_messages():
    assert len(CALLS) > 100, "the AST scan should find the tr() calls of sr_utils and data_tools"
    assert {c[1] for c in CALLS} == set(PACKAGES)


def test_every_tr_call_is_checkable_and_reads_its_own_package_catalogue():
    bad = [f"{where}: {problem}" for where, _, _, _, problem in CALLS if problem]
    bad += [f"{where}: tr is not imported from the package's own i18n module ({catalogue})"
            for where, catalogue, _, _, _ in CALLS if catalogue not in PACKAGES]
    assert not bad, "\n".join(bad)


def test_every_template_has_a_zh_cn_entry_with_the_same_placeholders():
    bad = []
    for where, package, template, _, problem in CALLS:
        if problem or package not in PACKAGES:
            continue
        messages = _messages(package)
        if template not in messages:
            bad.append(f"{where}: no zh-CN entry in {package}/locales/zh_CN.py for {template!r}")
        elif placeholders(messages[template]) != placeholders(template):
            bad.append(f"{where}: the zh-CN entry of {template!r} has the placeholders "
                       f"{sorted(placeholders(messages[template]))}, the English {sorted(placeholders(template))}")
    assert not bad, "\n".join(bad)


def test_every_call_fills_exactly_its_placeholders():
    """A template's placeholders are the call's keywords; one without keywords is shown as it is, so it must have
    neither placeholders nor escaped braces."""
    bad = []
    for where, _, template, names, problem in CALLS:
        if problem or names is None:
            continue
        wanted = placeholders(template)
        if names and names != wanted:
            bad.append(f"{where}: the call fills {sorted(names)}, the template {template!r} has {sorted(wanted)}")
        if not names and (wanted or "{{" in template or "}}" in template):
            bad.append(f"{where}: {template!r} has placeholders or escaped braces but the call gives no values")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_catalogue_entry_is_used_and_formats(package):
    used = {template for _, catalogue, template, _, _ in CALLS if catalogue == package}
    lines = _entry_lines(package)
    unused = [f"{package}/locales/zh_CN.py:{lines.get(key, '?')}: {key!r} is used by no tr() call"
              for key in _messages(package) if key not in used]
    assert not unused, "\n".join(unused)
    for english, chinese in _messages(package).items():
        values = {name: 1.5 for name in placeholders(english)}  # a number fits every format spec the kit uses
        english.format(**values), chinese.format(**values)  # neither has a stray brace or a wrong format spec
        assert CHINESE.search(chinese) or english in {"psnr", "ssim", "lpips"}, \
            f"{package}/locales/zh_CN.py:{lines.get(english)}: {chinese!r} is not Chinese"


# ---------------------------------------------------------------------------------------------------------------
# (b) real failures, in the process's language
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def language(monkeypatch):
    """``language("zh-CN")``: this process speaks zh-CN for the test; the environment is restored afterwards."""
    monkeypatch.setenv(LANGUAGE_ENV, "en")
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return use_language


def _error(call, kind=Exception) -> str:
    with pytest.raises(kind) as info:
        call()
    return str(info.value)


def test_a_missing_checkpoint_says_to_fix_notebook_03_in_the_students_language(language, tmp_path):
    from sr_utils.trained import load_trained_generators

    language("zh-CN")
    said = _error(lambda: load_trained_generators(None, folder=tmp_path), FileNotFoundError)
    assert "checkpoints/srresnet/best.pth" in said and "03_train" in said and CJK.search(said), said
    assert "请先修正 03_train" in said and "fix" not in said
    language("en")
    said = _error(lambda: load_trained_generators(None, folder=tmp_path), FileNotFoundError)
    assert said == ("notebook 03_train did not produce checkpoints/srresnet/best.pth: fix 03_train first (run it to "
                    "the end; its first error is the one to fix)")


def test_while_grading_the_stand_in_is_announced_in_chinese(language, tmp_path, monkeypatch, capsys):
    from sr_utils.trained import load_trained_generators

    language("zh-CN")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    nets = load_trained_generators(None, folder=tmp_path)
    said = capsys.readouterr().out
    assert list(nets) == ["SRResNet (stand-in)", "SRGAN (stand-in)"]  # labels are data: the same in every language
    assert "checkpoints/srgan/best.pth" in said and "评分时由 'SRGAN (stand-in)'" in said and "While" not in said


def test_missing_data_is_explained_in_chinese(language, tmp_path):
    from data_tools.prepare import prepare
    from sr_utils.lists import human_eval_list, test_lists, train_list

    language("zh-CN")
    said = _error(lambda: test_lists(tmp_path), FileNotFoundError)
    assert said.startswith(f"{tmp_path / 'lists'} 中没有测试集列表：请运行 `python -m data_tools samples`"), said
    said = _error(lambda: train_list(tmp_path), FileNotFoundError)
    assert "DIV2K_train_x4.json or samples_train_x4.json" in said and "训练集列表" in said
    assert "Set5" in _error(lambda: human_eval_list(tmp_path)) and "既没有" in _error(lambda: human_eval_list(tmp_path))
    said = _error(lambda: prepare(tmp_path / "absent"), FileNotFoundError)  # data_tools' own catalogue
    assert said.startswith(f"数据文件夹 {tmp_path / 'absent'} 不存在") and "SR_DATA_DIR" in said
    language("en")
    assert _error(lambda: test_lists(tmp_path)) == (
        f"no test list in {tmp_path / 'lists'}: run `python -m data_tools samples` (the bundled photos, offline) and "
        "`python -m data_tools prepare`")
    assert _error(lambda: prepare(tmp_path / "absent")).startswith(f"data folder {tmp_path / 'absent'} does not exist")


def test_load_module_of_a_missing_module_names_the_file(language, tmp_path):
    from sr_utils.notebook import export_modules, load_module

    language("zh-CN")
    said = _error(lambda: load_module("solver", tmp_path), FileNotFoundError)
    assert said == f"找不到 {tmp_path / 'solver.py'}：请先运行 `%%writefile solver.py` 所在的单元格"
    said = _error(lambda: export_modules(tmp_path / "02_solver.ipynb"), FileNotFoundError)
    assert "02_solver.ipynb" in said and "同一个文件夹" in said
    language("en")
    assert _error(lambda: load_module("solver", tmp_path)) == \
        f"{tmp_path / 'solver.py'} not found: run the `%%writefile solver.py` cells first"


def test_export_modules_reports_in_the_students_language(language, tmp_path, capsys):
    import json

    from sr_utils.notebook import export_modules

    nb = {"cells": [{"cell_type": "code", "source": "%%writefile m.py\nA = 1\n"}]}
    (tmp_path / "01.ipynb").write_text(json.dumps(nb))
    language("zh-CN")
    export_modules(tmp_path / "01.ipynb", dest_dir=tmp_path)
    assert capsys.readouterr().out.strip() == "已根据 01.ipynb 重新生成 m.py"
    said = _error(lambda: export_modules(tmp_path / "01.ipynb", tmp_path, only=["solver.py"]), ValueError)
    assert said.startswith("01.ipynb 中没有 `%%writefile solver.py` 单元格")
    language("en")
    export_modules(tmp_path / "01.ipynb", dest_dir=tmp_path)
    assert capsys.readouterr().out.strip() == "regenerated m.py from 01.ipynb"


def test_checkpoint_and_metric_errors_follow_the_language(language, tmp_path):
    from sr_utils.checkpoint import CheckpointError, load_checkpoint
    from sr_utils.metrics import evaluate_sr

    language("zh-CN")
    said = _error(lambda: load_checkpoint(tmp_path / "best.pth"), CheckpointError)
    assert said == f"检查点 {tmp_path / 'best.pth'} 不存在"
    said = _error(lambda: evaluate_sr(np.zeros((8, 8, 3), np.uint8), np.zeros((16, 16, 3), np.uint8), 4), ValueError)
    assert said.startswith("evaluate_sr：在 4 倍下，超分辨率图像 8x8 与高分辨率图像 16x16 不匹配")
    language("en")
    said = _error(lambda: load_checkpoint(tmp_path / "best.pth"))
    assert said == f"checkpoint {tmp_path / 'best.pth'} does not exist"


def test_an_unknown_language_value_falls_back_to_english(monkeypatch, tmp_path):
    from sr_utils.checkpoint import load_checkpoint

    monkeypatch.setenv(LANGUAGE_ENV, "fr")
    assert _error(lambda: load_checkpoint(tmp_path / "x.pth")) == f"checkpoint {tmp_path / 'x.pth'} does not exist"


# ---------------------------------------------------------------------------------------------------------------
# (c) what tables and figures show
# ---------------------------------------------------------------------------------------------------------------
def test_tables_have_chinese_headers_and_caption(language):
    from sr_utils.tables import convention_note, markdown_table

    rows = [{"set": "Set5", "method": "bicubic", "psnr": 28.42, "ssim": 0.8104}]
    language("zh-CN")
    table = markdown_table(rows, ["set", "method", "psnr", "ssim"], caption=convention_note(4))
    lines = table.splitlines()
    assert lines[0] == "| 数据集 | 方法 | PSNR (dB) | SSIM |"
    assert lines[2] == "| Set5 | bicubic | 28.42 | 0.8104 |"  # the data stays as it is
    assert lines[3].startswith("| **平均值** |")
    assert lines[-1].startswith("评价方式：Y 通道") and "每条边裁去 4 像素" in lines[-1]
    language("en")
    table = markdown_table(rows, ["set", "method", "psnr", "ssim"], caption=convention_note(4))
    assert table.splitlines()[0] == "| set | method | psnr | ssim |" and "| **mean** |" in table
    assert table.splitlines()[-1].startswith("Evaluation: Y channel (BT.601")


@pytest.fixture
def chinese_font(monkeypatch):
    """Matplotlib believes that one Chinese font is installed, and only that one (a name of CJK_FONTS on DejaVu
    Sans's file): the Chinese fonts this machine really has are hidden, so the answer does not depend on them."""
    from matplotlib import font_manager

    from sr_utils import plotting

    dejavu = font_manager.findfont("DejaVu Sans")
    fake = font_manager.FontEntry(fname=dejavu, name="WenQuanYi Zen Hei", style="normal", weight=400)
    others = [f for f in font_manager.fontManager.ttflist if f.name not in plotting.CJK_FONTS]
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [*others, fake])
    plotting.cjk_font.cache_clear()
    yield "WenQuanYi Zen Hei"
    plotting.cjk_font.cache_clear()


HISTORY = [{"step": s, "content": 0.5 / s, "adversarial": 0.7, "generator": 0.6, "discriminator": 1.3, "lr": 1e-4,
            "val_psnr": 24.0 + s} for s in (1, 2, 3)]


def _texts(fig) -> dict:
    losses, psnr = fig.axes
    return {"titles": [losses.get_title(), psnr.get_title()], "xlabel": losses.get_xlabel(),
            "legend": [t.get_text() for t in losses.get_legend().get_texts()]}


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # the stand-in font has no Chinese
def test_training_curves_are_labelled_in_chinese_with_a_chinese_font(language, chinese_font):
    from sr_utils.plotting import cjk_font, plot_training

    assert cjk_font() == chinese_font
    language("zh-CN")
    fig = plot_training(HISTORY, title="SRGAN")
    texts = _texts(fig)
    assert texts["titles"] == ["SRGAN：损失", "验证集 Y 通道 PSNR (dB)"] and texts["xlabel"] == "迭代次数"
    assert texts["legend"] == ["内容损失", "对抗损失", "生成器损失", "判别器损失"]
    assert fig.axes[0].title.get_fontfamily() == ["DejaVu Sans", chinese_font]  # Chinese glyphs from the CJK font
    assert _texts(plot_training(HISTORY))["titles"][0] == "训练：损失"
    language("en")
    texts = _texts(plot_training(HISTORY, title="SRGAN"))
    assert texts["titles"] == ["SRGAN: losses", "validation Y-PSNR (dB)"] and texts["xlabel"] == "iteration"
    assert texts["legend"] == ["content", "adversarial", "generator", "discriminator"]


def test_without_a_chinese_font_figures_stay_english(language, monkeypatch):
    from sr_utils import plotting

    monkeypatch.setattr(plotting, "cjk_font", lambda: None)
    language("zh-CN")
    assert plotting.figure_language() == "en"
    assert _texts(plotting.plot_training(HISTORY, title="SRGAN"))["xlabel"] == "iteration"  # not empty boxes


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")  # the stand-in font has no Chinese
def test_comparison_figures_name_bicubic_and_hr_in_chinese(language, chinese_font):
    from sr_utils.experiments import plot_runs
    from sr_utils.plotting import comparison_figure

    img = np.zeros((32, 32, 3), np.uint8)
    language("zh-CN")
    images = {"bicubic": img, "SRGAN": img, "SRResNet (stand-in)": img, "HR": img}
    fig = comparison_figure(images, {"bicubic": (24.0, 0.7)}, title="baby")
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["双三次插值\n24.00 dB / 0.7000", "SRGAN", "SRResNet（评分用的替代模型）", "高分辨率图像（HR）"]
    runs = [{"name": "default", "stage": "srresnet", "history": HISTORY}]
    ax = plot_runs(runs).axes[0]
    assert (ax.get_title(), ax.get_xlabel()) == ("验证集 Y 通道 PSNR", "迭代次数")
    language("en")
    fig = comparison_figure({"bicubic": img, "SRGAN (stand-in)": img, "HR": img})
    assert [ax.get_title() for ax in fig.axes[:3]] == ["bicubic", "SRGAN (stand-in)", "HR"]
