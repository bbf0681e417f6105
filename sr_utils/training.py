"""Small pieces the training notebooks and command line share: device choice, data choice, the epoch loop."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["default_device", "train_list", "test_lists", "run_epochs", "TEST_SETS"]

#: The course's test sets, in table order.
TEST_SETS = ("DIV2K_valid", "Set5", "Set14", "B100", "Urban100")


def default_device():
    """``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_list(data_dir, scale: int = 4) -> Path:
    """The training list: prepared DIV2K train if present, else the bundled samples' train split."""
    lists = Path(data_dir) / "lists"
    for name in ("DIV2K_train", "samples_train"):
        if (lists / f"{name}_x{scale}.json").is_file():
            return lists / f"{name}_x{scale}.json"
    raise FileNotFoundError(f"no training list in {lists}: run `python -m data_tools samples` and "
                            "`python -m data_tools prepare` (or sr_utils.notebook.ensure_sample_data())")


def test_lists(data_dir, scale: int = 4) -> dict[str, Path]:
    """``{set name: list}`` of the course's test sets that are prepared; the bundled test split when none is."""
    lists = Path(data_dir) / "lists"
    found = {s: lists / f"{s}_x{scale}.json" for s in TEST_SETS if (lists / f"{s}_x{scale}.json").is_file()}
    if not found and (lists / f"samples_test_x{scale}.json").is_file():
        found = {"samples_test": lists / f"samples_test_x{scale}.json"}
    if not found:
        raise FileNotFoundError(f"no test list in {lists}: run `python -m data_tools prepare`")
    return found


def run_epochs(epoch_fn: Callable[[int], float | dict], n_epochs: int, desc: str = "train",
               schedulers: Iterable = (), on_epoch_end: Callable | None = None,
               progress: bool = True) -> dict[str, list[float]]:
    """Call ``epoch_fn(epoch)`` ``n_epochs`` times (it returns a loss or a dict of losses), step the LR
    ``schedulers`` after each epoch, call ``on_epoch_end(epoch, history)`` (e.g. to save a checkpoint), and return
    the history ``{loss name: [one value per epoch]}``. Shows a progress bar with the latest losses."""
    from tqdm.auto import tqdm

    history: dict[str, list[float]] = defaultdict(list)
    bar = tqdm(range(n_epochs), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        out = epoch_fn(epoch)
        out = out if isinstance(out, dict) else {"loss": float(out)}
        for key, value in out.items():
            history[key].append(float(value))
        for scheduler in schedulers:
            scheduler.step()
        bar.set_postfix({k: f"{v:.4g}" for k, v in out.items()})
        if on_epoch_end is not None:
            on_epoch_end(epoch, dict(history))
    return dict(history)
