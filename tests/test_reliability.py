"""Reliability: resume, safe checkpoint loading, NaN stop, bad data, disk faults, SIGKILL + resume.

Every fault in docs/RELIABILITY.md is proved by a test here; `test_reliability_doc_matches_the_tests` keeps the
table and this file in step. Tiny data (16 train / 8 val synthetic images at 48 px), a 4-channel U-Net for the
in-process runs, one torch thread (the CPU is shared), so the whole file runs in well under 90 s.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import starter_code.checkpoint as checkpoint
import starter_code.engine as engine
from starter_code.checkpoint import TrainingError, atomic_save, load_checkpoint
from starter_code.cli import main
from starter_code.config import BASELINE
from starter_code.data import DataError, build_dataset
from starter_code.data.check import check_dataset, quick_check
from starter_code.data.classes import VOC_INFO
from starter_code.data.synthetic import generate_synthetic_voc
from starter_code.engine import fit

DOC = Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md"
STEPS_PER_EPOCH = 2  # 16 training images, batch 8


# ------------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: much faster on a shared 2-core CPU, and the same for every run compared here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def syn(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("syn")
    generate_synthetic_voc(root, n_train=16, n_val=8, size=48, seed=0, progress=False)
    return root


@pytest.fixture
def data(syn, tmp_path) -> Path:
    """A private copy of the synthetic tree that a test may break."""
    shutil.copytree(syn, tmp_path / "data")
    return tmp_path / "data"


def voc(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"


def split_ids(root: Path, split: str = "train") -> list[str]:
    return (voc(root) / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()


def cfg_for(root: Path, **kw):
    """Three quick epochs exercising every piece of resumable state: augmentation RNG, warmup + cosine schedule,
    early-stopping counter."""
    base = dict(name="rel", data_root=str(root), image_size=48, batch_size=8, epochs=3, device="cpu", workers=0,
                model="unet", model_kwargs={"base_width": 4}, augment="strong", scheduler="cosine",
                warmup_epochs=1, patience=2)
    return replace(BASELINE, **{**base, **kw})


def strip_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def temp_files(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in f.iterdir() if ".tmp" in p.name]


def run_state(run: Path, ckpt: Path | None = None) -> dict:
    """What must match between an uninterrupted and a resumed run."""
    hist = json.loads((run / "history.json").read_text())
    best = load_checkpoint(run / "best.pt")
    last = load_checkpoint((ckpt or run) / "last.pt")
    return {"history": strip_time(hist["history"]), "best_epoch": hist["best_epoch"],
            "stopped": hist["stopped_epoch"], "metrics": json.loads((run / "metrics.json").read_text()),
            "best_pt_epoch": best["epoch"], "best_pt_metrics": best["metrics"], "best_model": best["model"],
            "last_model": last["model"], "last_epoch": last["epoch"]}


def assert_same_run(a: dict, b: dict) -> None:
    for key in ("history", "best_epoch", "stopped", "metrics", "best_pt_epoch", "best_pt_metrics", "last_epoch"):
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key  # bit-exact floats
    for key in ("best_model", "last_model"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["best_pt_epoch"] == a["best_epoch"] == a["metrics"]["epoch"]


@pytest.fixture(scope="module")
def reference(syn, tmp_path_factory) -> dict:
    """The uninterrupted run every resumed run must reproduce bit for bit."""
    run = tmp_path_factory.mktemp("ref") / "run"
    fit(cfg_for(syn), run, progress=False)
    return run_state(run)


class Interrupt(BaseException):
    """Stands in for a crash / Ctrl-C / SIGKILL at a chosen point of an in-process run."""


# ----------------------------------------------------------------------------------------------------- 1. resume
CRASH_POINTS = {
    # name: (module, its function to wrap, predicate on the function's arguments telling when to crash)
    "during_epoch_2": (engine, "train_one_epoch", lambda *a, **k: a[5] == 1),
    "before_best_pt_write": (checkpoint, "atomic_save", lambda obj, path: Path(path).name == "best.pt"),
    "before_last_history_write": (checkpoint, "write_json", lambda obj, path: Path(path).name == "history.json"
                                  and len(obj["history"]) == 3),
}


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_interrupted_then_resumed_run_is_identical(point, syn, tmp_path, monkeypatch, reference) -> None:
    """Crash at a chosen point, resume from a separate checkpoint folder: same history, metrics, best.pt, last.pt."""
    module, name, when = CRASH_POINTS[point]
    real = getattr(module, name)

    def crashing(*a, **k):
        if when(*a, **k):
            raise Interrupt(point)
        return real(*a, **k)

    run, ckpt = tmp_path / "run", tmp_path / "drive"
    monkeypatch.setattr(module, name, crashing)
    with pytest.raises(Interrupt):
        fit(cfg_for(syn), run, progress=False, checkpoint_dir=ckpt)
    monkeypatch.undo()
    assert (ckpt / "last.pt").is_file() and not (run / "last.pt").exists()
    if point == "before_best_pt_write":
        assert not (run / "best.pt").exists()  # killed between last.pt and best.pt: resume must rebuild it
    last = load_checkpoint(ckpt / "last.pt")
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "history", "best", "stopped_epoch", "stop_reason",
            "elapsed", "rng", "config"} <= set(last)
    assert {"python", "numpy", "torch"} <= set(last["rng"]) and isinstance(last["config"], dict)
    fit(cfg_for(syn), run, progress=False, resume=True, checkpoint_dir=ckpt)
    assert_same_run(run_state(run, ckpt), reference)
    assert not temp_files(run, ckpt)


def test_resume_with_a_different_config_is_refused(syn, tmp_path) -> None:
    run = tmp_path / "run"
    fit(cfg_for(syn, epochs=1), run, progress=False)
    before = (run / "last.pt").read_bytes()
    with pytest.raises(TrainingError) as e:
        fit(cfg_for(syn, epochs=1, lr=0.01, batch_size=4), run, progress=False, resume=True)
    msg = str(e.value)
    assert msg.startswith(f"{run / 'last.pt'}: cannot resume with a different config (batch_size: 8 -> 4, "
                          "lr: 0.001 -> 0.01)"), msg
    assert (run / "last.pt").read_bytes() == before
    with pytest.raises(TrainingError, match="nothing to resume"):
        fit(cfg_for(syn, epochs=1), tmp_path / "empty", progress=False, resume=True)


# ---------------------------------------------------------------------------------------------- 2. safe loading
class RunsAShellCommand:
    """Pickles to `os.system("touch PWNED")`: what a malicious checkpoint looks like."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoint_that_would_run_code_is_refused(syn, tmp_path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "last.pt"):
        torch.save({"model": RunsAShellCommand(), "config": {}, "classes": []}, run / name)
    control = tmp_path / "control"  # the file really is dangerous: an unsafe torch.load runs the command
    control.mkdir()
    monkeypatch.chdir(control)
    torch.load(run / "best.pt", weights_only=False)
    assert (control / "PWNED").exists()

    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainingError) as e:
        load_checkpoint(run / "best.pt")
    assert str(e.value).startswith(f"{run / 'best.pt'}: refused to load: the checkpoint holds Python objects that "
                                   "could execute code (")
    assert "posix.system" in str(e.value) and "only tensors and plain data are accepted" in str(e.value)
    with pytest.raises(TrainingError, match="refused to load"):
        fit(cfg_for(syn, epochs=1), run, progress=False, resume=True)
    assert main(["evaluate", "--run", str(run), "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'best.pt'}: refused to load") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.rglob("PWNED")) == [control / "PWNED"]  # only the control ran the command


def test_truncated_checkpoint_is_reported_as_corrupt(syn, tmp_path) -> None:
    run = tmp_path / "run"
    fit(cfg_for(syn, epochs=1), run, progress=False)
    data = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainingError) as e:
        fit(cfg_for(syn, epochs=1), run, progress=False, resume=True)
    assert str(e.value).startswith(f"{run / 'last.pt'}: cannot read checkpoint (")
    assert "the file is corrupt or truncated" in str(e.value)


# ------------------------------------------------------------------------------------------------------- 3. NaN
class CrossEntropyThen(nn.Module):
    """Cross-entropy (as build_criterion makes it) for the first `after` training steps, then a fault."""

    def __init__(self, after: int, fault: str) -> None:
        super().__init__()
        self.ce, self.after, self.fault, self.steps = nn.CrossEntropyLoss(ignore_index=255), after, fault, 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.ce(logits, target)
        if not torch.is_grad_enabled():  # evaluation
            return loss
        self.steps += 1
        if self.steps > self.after and self.fault == "nan_loss":
            return loss * float("nan")
        if self.steps == self.after + STEPS_PER_EPOCH and self.fault == "nan_weights":
            return loss + torch.sqrt((logits * 0).sum())  # finite loss, NaN gradients on the epoch's last step
        return loss


@pytest.mark.parametrize("fault", ["nan_loss", "nan_weights"])
def test_nan_stops_training_and_keeps_the_last_good_checkpoint(fault, syn, tmp_path, monkeypatch, reference) -> None:
    run = tmp_path / "run"
    monkeypatch.setattr(engine, "build_criterion", lambda *a, **k: CrossEntropyThen(STEPS_PER_EPOCH, fault))
    with pytest.raises(TrainingError) as e:
        fit(cfg_for(syn), run, progress=False)
    msg = str(e.value)
    head = "loss is nan at epoch 2, step 1" if fault == "nan_loss" else "the weights became NaN/inf at epoch 2"
    assert msg.startswith(head) and "training diverged. Likely causes: learning rate too high" in msg, msg
    assert "last.pt (if any) keeps the last good epoch" in msg
    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 0 and len(last["history"]) == 1
    assert all(torch.isfinite(t).all() for t in last["model"].values() if t.is_floating_point())
    assert load_checkpoint(run / "best.pt")["epoch"] == 1
    assert len(json.loads((run / "history.json").read_text())["history"]) == 1
    assert not temp_files(run)
    monkeypatch.undo()  # the fault is gone: the same run resumes from epoch 1 and matches the reference
    fit(cfg_for(syn), run, progress=False, resume=True)
    assert_same_run(run_state(run), reference)


# -------------------------------------------------------------------------------------------------- 4. bad data
def _write_mask(path: Path, mask: np.ndarray, mode: str = "P") -> None:
    if mode == "RGB":
        Image.fromarray(mask).save(path)
        return
    im = Image.fromarray(mask.astype(np.uint8))
    im.putpalette(VOC_INFO.palette.reshape(-1).tolist())
    im.save(path)


def _mask(root: Path, i: str) -> np.ndarray:
    return np.array(Image.open(voc(root) / "SegmentationClass" / f"{i}.png"))


def break_corrupt_jpeg(root, i):
    p = voc(root) / "JPEGImages" / f"{i}.jpg"
    p.write_bytes(b"this is not a JPEG" * 64)
    return p, "cannot read the image file header"


def break_truncated_jpeg(root, i):
    p = voc(root) / "JPEGImages" / f"{i}.jpg"
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) * 6 // 10])
    return p, "cannot decode image (image file is truncated"


def break_truncated_png(root, i):
    p = voc(root) / "SegmentationClass" / f"{i}.png"
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) * 9 // 10])
    return p, "cannot decode mask (image file is truncated)"


def break_mask_size(root, i):
    p = voc(root) / "SegmentationClass" / f"{i}.png"
    _write_mask(p, _mask(root, i)[:40])
    return p, "mask is 48x40 but its image"


def break_mask_values(root, i):
    m = _mask(root, i)
    m[5, 5], m[6, 6] = 30, 100
    p = voc(root) / "SegmentationClass" / f"{i}.png"
    _write_mask(p, m)
    return p, "mask values [30, 100] are outside the voc classes 0..20 and void 255"


def break_rgb_mask(root, i):
    rgb = VOC_INFO.palette[_mask(root, i)].copy()
    rgb[0, 0] = (1, 2, 3)
    p = voc(root) / "SegmentationClass" / f"{i}.png"
    _write_mask(p, rgb, "RGB")
    return p, "RGB mask has colours that are not in the palette ((1,2,3))"


def break_missing_image(root, i):
    p = voc(root) / "JPEGImages" / f"{i}.jpg"
    p.unlink()
    return p, "image file listed in the split is missing"


def break_missing_mask(root, i):
    p = voc(root) / "SegmentationClass" / f"{i}.png"
    p.unlink()
    return p, "mask file listed in the split is missing"


def break_empty_split(root, i):
    p = voc(root) / "ImageSets" / "Segmentation" / "train.txt"
    p.write_text("\n")
    return p, "split list is empty"


def break_duplicate_ids(root, i):
    p = voc(root) / "ImageSets" / "Segmentation" / "train.txt"
    p.write_text(p.read_text() + f"{i}\n")
    return p, f"duplicate ids ['{i}']; each id must appear once"


def break_wrong_root(root, i):
    return voc(root) / "SegmentationClass", "no VOC segmentation data here; expected layout ROOT/VOCdevkit/VOC2012/"


BAD_DATA = {  # kind: (how to break the tree, extra CLI args)
    "corrupt_jpeg": (break_corrupt_jpeg, []),
    "truncated_jpeg": (break_truncated_jpeg, []),
    "truncated_png": (break_truncated_png, []),
    "mask_size_differs": (break_mask_size, []),
    "mask_values_out_of_range": (break_mask_values, []),
    "rgb_mask_off_palette": (break_rgb_mask, []),
    "missing_image": (break_missing_image, []),
    "missing_mask": (break_missing_mask, []),
    "empty_split": (break_empty_split, []),
    "duplicate_ids": (break_duplicate_ids, []),
    "wrong_data_root": (break_wrong_root, ["--dataset", "voc"]),
    "bad_file_in_loader_worker": (break_truncated_png, ["--workers", "1"]),
}


def train_cli(root: Path, out: Path, *extra: str) -> int:
    return main(["train", "--dataset", "synthetic", "--data-root", str(root), "--out", str(out), "--epochs", "1",
                 "--batch-size", "16", "--image-size", "48", "--device", "cpu", "--workers", "0", "--quiet", *extra])


@pytest.mark.parametrize("kind", list(BAD_DATA))
def test_bad_data_fails_early_with_one_line_naming_the_file(kind, data, tmp_path, capsys, monkeypatch) -> None:
    breaker, extra = BAD_DATA[kind]
    bad, what = breaker(data, split_ids(data)[5])
    before = tree_hash(data)
    out = tmp_path / "run"
    if kind == "wrong_data_root":
        extra = [*extra, "--data-root", str(bad)]
    # after a worker's error, torch joins the worker with a 5 s timeout when the iterator is collected (a CLI run
    # just exits); shorten that wait and collect now, so this long-lived test process does not stall
    monkeypatch.setattr(torch.utils.data._utils, "MP_STATUS_CHECK_INTERVAL", 0.2)
    assert train_cli(data, out, *extra) == 2
    gc.collect()
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: "), err  # the file first
    assert what in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and "Caught DataError" not in err
    assert tree_hash(data) == before  # the data folder is never written to
    for name in ("best.pt", "last.pt", "history.json", "metrics.json"):
        assert not (out / name).exists(), name  # nothing half-made: the failure came before the first epoch ended
    assert not temp_files(out)


def test_rgb_mask_of_exact_palette_colours_is_converted(data) -> None:
    i = split_ids(data)[5]
    want = _mask(data, i)
    _write_mask(voc(data) / "SegmentationClass" / f"{i}.png", VOC_INFO.palette[want].copy(), "RGB")
    ds = build_dataset("synthetic", data, "train", "eval", None)
    quick_check(ds)
    got = ds.read(ds.ids.index(i))[1]
    assert np.array_equal(got, want) and check_dataset(ds, progress=False) == []


def test_data_check_scans_everything_and_lists_each_bad_file(data, capsys) -> None:
    assert main(["data", "check", "--dataset", "synthetic", "--data-root", str(data)]) == 0
    assert "train: 16 pairs checked, 0 problem(s)" in capsys.readouterr().out
    ids = split_ids(data)
    breakers = [break_corrupt_jpeg, break_truncated_png, break_mask_size, break_mask_values, break_rgb_mask,
                break_missing_mask]
    expected = [b(data, i) for b, i in zip(breakers, ids)]
    before = tree_hash(data)
    assert main(["data", "check", "--dataset", "synthetic", "--data-root", str(data), "--split", "train"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"train: 16 pairs checked, {len(breakers)} problem(s)"
    for (path, _), line in zip(expected, out[1:]):
        assert line.strip().startswith(f"{path}: "), line
    assert tree_hash(data) == before


def test_duplicate_ids_are_caught_for_any_dataset(data) -> None:
    ds = build_dataset("synthetic", data, "train", "eval", None)
    ds.ids[3] = ds.ids[2]  # e.g. a CamVid list naming one frame twice (VOC lists are refused on reading)
    with pytest.raises(DataError, match=f"id '{ds.ids[2]}' is listed more than once"):
        quick_check(ds)
    assert "is listed more than once" in check_dataset(ds, progress=False)[0]


# ------------------------------------------------------------------------------------------------ 5. disk faults
def make_unwritable(folder: Path, monkeypatch) -> str:
    """chmod 0o500 when that stops writes; as root it does not, so os.replace into `folder` fails with ENOSPC."""
    folder.chmod(0o500)
    try:
        (folder / ".probe").touch()
    except PermissionError:
        return "Permission denied"
    (folder / ".probe").unlink()
    folder.chmod(0o700)
    real = os.replace

    def no_space(src, dst, *a, **k):
        if Path(dst).parent == folder:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", no_space)
    return os.strerror(errno.ENOSPC)


DISK_FAULTS = ["read_only_folder", "disk_full_mid_write", "zip_writer_error"]


@pytest.mark.parametrize("fault", DISK_FAULTS)
def test_failed_checkpoint_write_keeps_the_previous_one(fault, syn, tmp_path, monkeypatch, reference) -> None:
    """Epoch 2's last.pt write fails: TrainingError saying so, epoch 1's last.pt whole, nothing half-written."""
    run, ckpt = tmp_path / "run", tmp_path / "drive"
    real_save, real_torch_save, saves, armed = checkpoint.atomic_save, torch.save, [], []
    why = {"disk_full_mid_write": os.strerror(errno.ENOSPC),
           "zip_writer_error": "PytorchStreamWriter failed writing file data/0: file write failed"}.get(fault)

    def torch_save(obj, f, *a, **k):
        if armed:
            armed.clear()
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, why) if fault == "disk_full_mid_write" else RuntimeError(why)
        return real_torch_save(obj, f, *a, **k)

    def second_last_pt_fails(obj, path):
        nonlocal why
        if Path(path).name == "last.pt":
            saves.append(path)
            if len(saves) == 2 and fault == "read_only_folder":
                why = make_unwritable(ckpt, monkeypatch)
            elif len(saves) == 2:
                armed.append(True)
        return real_save(obj, path)

    monkeypatch.setattr(torch, "save", torch_save)
    monkeypatch.setattr(checkpoint, "atomic_save", second_last_pt_fails)
    try:
        with pytest.raises(TrainingError) as e:
            fit(cfg_for(syn), run, progress=False, checkpoint_dir=ckpt)
    finally:
        ckpt.chmod(0o700)
    monkeypatch.undo()
    assert str(e.value) == f"could not write checkpoint {ckpt / 'last.pt'} ({why}); the previous one is intact"
    assert load_checkpoint(ckpt / "last.pt")["epoch"] == 0  # epoch 1's checkpoint, whole
    assert load_checkpoint(run / "best.pt")["epoch"] == 1  # best.pt is written after last.pt: not ahead of it
    assert not temp_files(run, ckpt)
    fit(cfg_for(syn), run, progress=False, resume=True, checkpoint_dir=ckpt)
    assert_same_run(run_state(run, ckpt), reference)


def test_failed_first_checkpoint_write_says_none_existed(tmp_path, monkeypatch) -> None:
    def torch_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left")

    monkeypatch.setattr(torch, "save", torch_save)
    with pytest.raises(TrainingError, match=r"\(No space left\); no earlier checkpoint existed$"):
        atomic_save({"x": torch.zeros(3)}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- 6. SIGKILL
def test_sigkill_then_resume_matches_an_uninterrupted_run(syn, tmp_path) -> None:
    """Train in a subprocess, SIGKILL it once last.pt exists (as soon as the next checkpoint write is in flight,
    when we can see it), resume with --resume: history.json etc. equal an uninterrupted run of the same command."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "starter_code", "train", "--dataset", "synthetic", "--data-root", str(syn),
           "--epochs", "3", "--batch-size", "8", "--image-size", "32", "--device", "cpu", "--workers", "0", "--quiet"]
    ref, run, ckpt = tmp_path / "ref", tmp_path / "run", tmp_path / "drive"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "env": env}
    uninterrupted = subprocess.Popen([*cmd, "--out", str(ref)], **pipes)
    victim = subprocess.Popen([*cmd, "--out", str(run), "--checkpoint-dir", str(ckpt)], **pipes)
    try:
        deadline, seen_last, mid_write = time.monotonic() + 300, None, False
        while victim.poll() is None and time.monotonic() < deadline:
            if seen_last is None and (ckpt / "last.pt").exists():
                seen_last = time.monotonic()
            if seen_last is not None:
                mid_write = bool(temp_files(ckpt, run))
                hist = run / "history.json"
                if mid_write or (hist.exists() and len(json.loads(hist.read_text())["history"]) >= 2):
                    victim.send_signal(signal.SIGKILL)
                    break
            time.sleep(0.001)
        victim.wait(timeout=60)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read().decode()[-2000:]
    last = load_checkpoint(ckpt / "last.pt")  # whatever the moment of the kill, last.pt is whole
    assert last["epoch"] in (0, 1), "the run finished before it could be killed"
    assert not (run / "metrics.json").exists()
    if mid_write:
        print(f"killed mid-write; temp files left: {[p.name for p in temp_files(ckpt, run)]}")

    # resume in this process (one torch thread, like the subprocesses): saves a Python + torch start-up
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float reductions depend on the thread count: match the subprocesses' OMP_NUM_THREADS
    try:
        assert main([*cmd[3:], "--out", str(run), "--checkpoint-dir", str(ckpt), "--resume"]) == 0
    finally:
        torch.set_num_threads(threads)
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read().decode()[-2000:]
    assert_same_run(run_state(run, ckpt), run_state(ref))
    assert not temp_files(run, ckpt)  # the killed run's partial temp file is cleaned up on resume


# --------------------------------------------------------------------------------------------------- 7. the doc
def documented_tests() -> list[str]:
    """Test names (with an optional [param]) in the 'Test' column of docs/RELIABILITY.md's fault table."""
    rows = [ln for ln in DOC.read_text().splitlines() if ln.startswith("|") and "`test_" in ln]
    return [m for ln in rows for m in re.findall(r"`(test_\w+(?:\[\w+\])?)`", ln.rsplit("|", 2)[-2])]


def test_reliability_doc_matches_the_tests() -> None:
    """Every test in the table exists here (with a real parameter id), and every test here is in the table."""
    params = {"test_interrupted_then_resumed_run_is_identical": set(CRASH_POINTS),
              "test_nan_stops_training_and_keeps_the_last_good_checkpoint": {"nan_loss", "nan_weights"},
              "test_bad_data_fails_early_with_one_line_naming_the_file": set(BAD_DATA),
              "test_failed_checkpoint_write_keeps_the_previous_one": set(DISK_FAULTS)}
    listed = documented_tests()
    assert listed, f"no fault table found in {DOC}"
    here = {n for n, f in globals().items() if n.startswith("test_") and callable(f)}
    for entry in listed:
        name, _, param = entry.partition("[")
        assert name in here, f"{DOC.name} lists {name}, which is not in {Path(__file__).name}"
        if param:
            assert param.rstrip("]") in params[name], f"{DOC.name} lists {entry}: no such parameter"
    for name in here - {"test_reliability_doc_matches_the_tests"}:
        assert name in {e.partition("[")[0] for e in listed}, f"{name} is not in {DOC.name}'s table"
    for name, ids in params.items():
        assert {e.partition("[")[2].rstrip("]") for e in listed if e.startswith(name + "[")} == ids, name
