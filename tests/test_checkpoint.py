"""checkpoint: one writer per run file, the random state round trip, and best.pt restored after a kill."""

from __future__ import annotations

import errno
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from starter_code import checkpoint
from starter_code.checkpoint import (
    TrainingError,
    implied_stop_reason,
    load_checkpoint,
    plain_state_dict,
    read_history,
    remove_temp_files,
    restore_best,
    rng_state,
    save_best,
    save_last,
    set_rng_state,
)
from starter_code.config import BASELINE


def weights(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), value)}


def last_pt(best_epoch: int, last_epoch: int) -> dict:
    """A last.pt as fit saves it after (1-based) epoch `last_epoch`, the best being `best_epoch`."""
    return {"model": weights(float(last_epoch)), "optimizer": {}, "scheduler": {}, "epoch": last_epoch - 1,
            "history": [], "best": {"miou": 0.5, "epoch": best_epoch, "metrics": {"miou": 0.5}}, "rng": {},
            "config": BASELINE.to_dict(), "classes": ["a", "b"]}


def test_rng_state_round_trip_repeats_every_generator() -> None:
    state = rng_state()
    first = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    set_rng_state(state)
    again = (random.random(), np.random.rand(), np.random.randn(), torch.rand(3))
    assert first[:3] == again[:3] and torch.equal(first[3], again[3])


def test_plain_state_dict_unwraps_and_moves_to_cpu() -> None:
    model = nn.Linear(2, 3)
    wrapped = nn.Module()
    wrapped.module = model  # what DDP looks like from outside
    sd = plain_state_dict(wrapped)
    assert list(sd) == ["weight", "bias"] and all(v.device.type == "cpu" and not v.requires_grad for v in sd.values())


def test_save_last_refuses_a_state_resume_could_not_use(tmp_path) -> None:
    state = last_pt(1, 1)
    del state["rng"]
    with pytest.raises(ValueError, match="last.pt state is missing rng"):
        save_last(tmp_path / "last.pt", state)
    assert not (tmp_path / "last.pt").exists()


def test_history_writer_and_reader_agree(tmp_path) -> None:
    rows = [{"epoch": 1, "val_miou": float("nan")}]
    checkpoint.write_history(tmp_path, rows, 1, 1, "time_limit", 12.5)
    saved = read_history(tmp_path)
    assert saved["best_epoch"] == 1 and saved["stop_reason"] == "time_limit" and saved["fit_seconds"] == 12.5
    assert saved["history"][0]["val_miou"] != saved["history"][0]["val_miou"]  # NaN survives


def test_best_epoch_saved_last_is_rebuilt_from_last_pt(tmp_path) -> None:
    """Killed between last.pt and best.pt: every folder gets the last epoch's weights as best.pt."""
    drive, local = tmp_path / "drive", tmp_path / "local"
    drive.mkdir(), local.mkdir()
    save_best([drive, local], weights(1.0), BASELINE.to_dict(), 1, ["a", "b"], {})
    restore_best([drive, local], last_pt(best_epoch=2, last_epoch=2))
    for d in (drive, local):
        got = load_checkpoint(d / "best.pt")
        assert got["epoch"] == 2 and torch.equal(got["model"]["w"], weights(2.0)["w"])
        assert got["metrics"] == {"miou": 0.5} and got["classes"] == ["a", "b"]


def test_best_pt_is_copied_to_a_folder_that_lost_it(tmp_path) -> None:
    """A new machine: the run dir is empty, the checkpoint folder holds best.pt of epoch 2."""
    drive, local = tmp_path / "drive", tmp_path / "local"
    drive.mkdir(), local.mkdir()
    save_best([drive], weights(2.0), BASELINE.to_dict(), 2, ["a", "b"], {"miou": 0.5})
    restore_best([drive, local], last_pt(best_epoch=2, last_epoch=4))
    got = load_checkpoint(local / "best.pt")
    assert got["epoch"] == 2 and torch.equal(got["model"]["w"], weights(2.0)["w"])
    assert got["metrics"] == load_checkpoint(drive / "best.pt")["metrics"] == {"miou": 0.5}


def test_a_best_pt_of_another_epoch_is_not_taken(tmp_path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    save_best([drive], weights(1.0), BASELINE.to_dict(), 1, ["a", "b"], {})
    with pytest.raises(TrainingError, match=r"the best epoch's weights \(epoch 2\) are neither in "):
        restore_best([drive], last_pt(best_epoch=2, last_epoch=4))


def test_only_the_run_files_temp_files_are_removed(tmp_path) -> None:
    for name in (".last.pt.tmp-12", ".history.json.tmp-3", ".notes.txt.tmp-1", "best.pt"):
        (tmp_path / name).write_text("x")
    remove_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.tmp-1", "best.pt"]


def test_implied_stop_reason_for_files_without_one() -> None:
    cfg = replace(BASELINE, patience=3)
    assert implied_stop_reason(cfg, None, 4) is None
    assert implied_stop_reason(cfg, 7, 4) == "early_stop"
    assert implied_stop_reason(cfg, 6, 4) == "time_limit"
    assert implied_stop_reason(replace(cfg, patience=None), 7, 4) == "time_limit"


def test_a_failed_json_write_is_one_line_and_leaves_no_temp_file(tmp_path, monkeypatch) -> None:
    checkpoint.write_history(tmp_path, [{"epoch": 1}], 1, None, None, 1.0)
    before = (tmp_path / "history.json").read_text()

    def disk_full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "replace", disk_full)
    with pytest.raises(TrainingError) as e:
        checkpoint.write_history(tmp_path, [{"epoch": 1}, {"epoch": 2}], 2, None, None, 2.0)
    assert str(e.value) == (f"could not write {tmp_path / 'history.json'} (No space left on device); "
                            "the previous version is intact")
    assert (tmp_path / "history.json").read_text() == before
    assert not list(tmp_path.glob(".history.json.tmp-*"))
