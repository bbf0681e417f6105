"""course.plain_tree: walking, copying and removing what student code wrote, at any depth, nothing followed."""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from course import plain_tree


def _deep(top, depth: int):
    top.mkdir(exist_ok=True)
    path = top
    for _ in range(depth):
        path = path / "d"
        path.mkdir()
    (path / "bottom.png").write_bytes(b"x" * 10)
    return path


def test_a_tree_deeper_than_the_recursion_limit_is_walked_copied_and_removed(tmp_path):
    src = tmp_path / "src"
    _deep(src, 1500)
    with pytest.raises(RecursionError):  # the standard library's walk (Python 3.11) cannot: the reason for this
        list(os.walk(src))
    assert len([e for e in plain_tree.walk(src)]) == 1501
    assert plain_tree.regular_files(src)[0][1] == 10
    copied = plain_tree.copy_plain_tree(src, tmp_path / "copy")
    assert copied == 10 and len(plain_tree.regular_files(tmp_path / "copy")) == 1
    for top in (src, tmp_path / "copy"):
        plain_tree.remove_tree(top)
        assert not os.path.lexists(top)


def test_links_and_special_files_are_never_followed_nor_copied(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.ipynb").write_text("{}")
    os.symlink(outside, src / "sub" / "linked_dir")
    os.symlink(outside / "secret.txt", src / "b.ipynb")
    os.mkfifo(src / "pipe.ipynb")
    kinds = {"/".join(parts): stat.S_IFMT(st.st_mode) for _, parts, st in plain_tree.walk(src)}
    assert kinds["sub/linked_dir"] == stat.S_IFLNK and "sub/linked_dir/secret.txt" not in kinds
    plain_tree.copy_plain_tree(src, tmp_path / "copy", keep=lambda parts: parts[-1].endswith(".ipynb"))
    got = sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*")
                 if not p.is_dir())
    assert got == ["sub/a.ipynb"]
    plain_tree.remove_tree(src)
    assert (outside / "secret.txt").read_text() == "secret", "removing a tree never follows a link out of it"


def test_keep_only_leaves_the_chosen_entries_and_says_what_it_removed(tmp_path):
    folder = tmp_path / "graded"
    folder.mkdir()
    (folder / "01_models.ipynb").write_text("{}")
    (folder / "page.html").write_bytes(b"x" * 100)
    _deep(folder / ".grading-run", 1200)
    os.symlink("/etc/passwd", folder / "02_solver.ipynb")
    removed = plain_tree.keep_only(folder, lambda parts, st: stat.S_ISREG(st.st_mode) and
                                   parts[-1].endswith(".ipynb"))
    assert removed == 110 and sorted(os.listdir(folder)) == ["01_models.ipynb"]
    shutil.rmtree(folder)


def test_folders_nested_too_deep_are_pruned_and_the_rest_kept(tmp_path):
    _deep(tmp_path / "deep", 1500)
    (tmp_path / "ok" / "a" / "b").mkdir(parents=True)
    (tmp_path / "ok" / "a" / "b" / "kept.txt").write_text("x")
    removed = plain_tree.prune_deeper_than(tmp_path, 32)
    assert removed == ["deep/" + "/".join(["d"] * 31)]
    assert (tmp_path / "ok" / "a" / "b" / "kept.txt").exists()
    assert max(len(parts) for _, parts, st in plain_tree.walk(tmp_path) if stat.S_ISDIR(st.st_mode)) == 32 - 1
    list(os.walk(tmp_path))  # the standard library's recursive walk copes now
