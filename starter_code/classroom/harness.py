"""What the grader has code do, identically in two processes: the submission's, and the grader's own (with the
kit's reference). Each part is a few named cases; a case calls the code under test on the inputs the grader drew
and returns plain values (numbers, lists, arrays). Nothing here decides a score.

Run as a script, this file is the submission's process: `python -I harness.py JOB_DIR SUBMISSION` reads
JOB_DIR/job.pkl (written by the grader), imports `starter_code` from SUBMISSION only, runs the part's cases and
writes JOB_DIR/outputs.json + JOB_DIR/arrays.npz. The grader reads those back with json and numpy
(allow_pickle=False): a submission can only hand over values.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pickle
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CPU = torch.device("cpu")
MAX_TEXT = 300


class Api:
    """The code under test, looked up by short name (parts.LOCATIONS) in whatever `starter_code` this process
    imports: the submission's in the submission's process, the kit's in the grader."""

    def __init__(self, locations: dict[str, str], files: str | Path) -> None:
        self.locations = dict(locations)
        self.files = Path(files)

    def __call__(self, name: str) -> Any:
        module, qualname = self.locations[name].split(":")
        obj: Any = importlib.import_module(module)
        for attr in qualname.split("."):
            obj = getattr(obj, attr)
        return obj


def describe(exc: BaseException) -> str:
    """One line: the exception and the last place in starter_code it went through (file, line, function)."""
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    frames = [(f.filename.replace(os.sep, "/"), f) for f in traceback.extract_tb(exc.__traceback__)]
    where = [(path, f) for path, f in frames if "starter_code/" in path and "/classroom/" not in path]
    if where:
        path, f = where[-1]
        msg += f" (in {path[path.rindex('starter_code/'):]}, line {f.lineno}, {f.name})"
    return msg if len(msg) <= MAX_TEXT else msg[: MAX_TEXT - 3] + "..."


# -------------------------------------------------------------------------------------------- small helpers
def _t(a: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a))


def _plain(x: Any) -> Any:
    """Tensors (tv_tensors included) as numpy arrays; everything else as it is."""
    if isinstance(x, torch.Tensor):
        return x.detach().as_subclass(torch.Tensor).cpu().numpy()
    return x


def _state(sd: dict[str, Any]) -> dict[str, torch.Tensor]:
    return {k: _t(v) for k, v in sd.items()}


class TinySeg(nn.Module):
    """A small segmentation model that notes, per forward, whether autocast was on and whether it was training."""

    def __init__(self, classes: int, bn: bool = False, down: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 6, 3, padding=1)]
        if bn:
            layers.append(nn.BatchNorm2d(6))
        self.net = nn.Sequential(*layers, nn.ReLU(), nn.Conv2d(6, classes, 1))
        self.down = down
        self.autocast: list[bool] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        self.modes.append(self.training)
        return self.net(F.avg_pool2d(x, 2) if self.down else x)


def tiny_seg(inp: dict[str, Any]) -> TinySeg:
    model = TinySeg(inp["classes"], bn=inp.get("bn", False), down=inp.get("down", False))
    model.load_state_dict(_state(inp["state"]))
    return model


def _batches(inp: dict[str, Any]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(_t(x), _t(y)) for x, y in inp["batches"]]


class FakeScaler:
    """Stands in for torch.amp.GradScaler: records the calls, scales by 1."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def is_enabled(self) -> bool:
        return True

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        self.calls.append("scale")
        return loss * 1.0

    def step(self, optimizer: torch.optim.Optimizer, *args: Any, **kwargs: Any) -> None:
        self.calls.append("step")
        optimizer.step()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append("update")


class ShiftFlip:
    """A joint random transform: one random roll and horizontal flip of image and mask, from torch's RNG."""

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dy, dx = (int(v) for v in torch.randint(0, 8, (2,)))
        flip = bool(torch.rand(()) < 0.5)
        image = torch.roll(image.as_subclass(torch.Tensor), (dy, dx), (-2, -1))
        mask = torch.roll(mask.as_subclass(torch.Tensor), (dy, dx), (-2, -1))
        return (image.flip(-1), mask.flip(-1)) if flip else (image, mask)


# ------------------------------------------------------------------------------------------------- the cases
def _load_mask(kind: str) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        return {"mask": api("load_mask")(api.files / inp["files"][kind], inp["palette"])}
    return run


def _dataset(api: Api, inp: dict, transform: Any, cache: bool) -> Any:
    base = api("SegmentationDataset")
    images, masks = inp["images"], inp["masks"]

    class Given(base):  # the pairs come from the grader, not from files: only __getitem__ is under test
        def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            return images[index].copy(), masks[index].copy()

    info = api("DatasetInfo")("grader", tuple(f"class{i}" for i in range(inp["classes"])), inp["palette"], 255)
    n = len(images)
    return Given([f"image{i}.png" for i in range(n)], [f"mask{i}.png" for i in range(n)], info,
                 [f"item{i}" for i in range(n)], transform=transform, cache=cache)


def _items(ds: Any, order: list[int]) -> list[list[Any]]:
    return [[_plain(x) for x in ds[i]] for i in order]


def _dataset_eval(api: Api, inp: dict) -> Any:
    return {"items": _items(_dataset(api, inp, None, False), [0, 1])}


def _dataset_epochs(cache: bool) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        ds = _dataset(api, inp, ShiftFlip(), cache)
        torch.manual_seed(inp["seed"])
        return {"items": _items(ds, inp["order"])}
    return run


def _transform(preset: str) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        p = inp[preset]
        t = api("build_transform")(preset, inp["size"])
        image, mask = api("to_tv")(_t(p["image"]), _t(p["mask"]))
        torch.manual_seed(p["seed"])
        out = [[_plain(x) for x in t(image, mask)] for _ in range(p["n"])]
        shapes = sorted({(tuple(np.shape(i)), tuple(np.shape(m))) for i, m in out})
        if len(shapes) > 1:
            return {"shapes": [list(map(list, s)) for s in shapes[:5]]}
        return {"images": np.stack([i for i, _ in out]), "masks": np.stack([m for _, m in out])}
    return run


def _weights(**kwargs: Any) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        w = api("class_weights")(dict(inp["stats"]), **kwargs)
        return {"w": w, "types": [type(x).__name__ for x in w] if isinstance(w, list) else type(w).__name__}
    return run


class TrainSet:
    """Stands for the training set handed to build_criterion."""


def _criterion(weighted: bool) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        build = api("build_criterion")
        cfg = dataclasses.replace(api("BASELINE"), class_weights=inp["method"] if weighted else None,
                                  weight_clip=inp["clip"] if weighted else None)
        calls: list[list[Any]] = []
        train_ds = TrainSet()

        def class_stats(ds: Any, *args: Any, **kwargs: Any) -> dict:
            calls.append(["class_stats", ds is train_ds])
            return {k: list(v) for k, v in inp["stats"].items()}

        def class_weights(stats: dict, method: str = "inverse", clip: float | None = None, *args: Any,
                          **kwargs: Any) -> list[float]:
            calls.append(["class_weights", stats == inp["stats"], method, clip])
            return list(inp["weights"])

        names = getattr(build, "__globals__", {})
        saved = {k: names[k] for k in ("class_stats", "class_weights") if k in names}
        names.update(class_stats=class_stats, class_weights=class_weights)  # the stats/weights parts stay apart
        try:
            criterion = build(cfg, train_ds, CPU)
        finally:
            for k in ("class_stats", "class_weights"):
                if k in saved:
                    names[k] = saved[k]
                else:
                    names.pop(k, None)
        loss = criterion(_t(inp["logits"]), _t(inp["target"]))
        return {"loss": float(loss), "calls": calls}
    return run


def _cm(api: Api, classes: int, pairs: list) -> Any:
    cm = api("ConfusionMatrix")(classes, ignore_index=255)
    for pred, target in pairs:
        cm.update(_t(pred), _t(target))
    return {"mat": _plain(cm.mat), "dtype": str(cm.mat.dtype)}


def _update(case: str) -> Callable[[Api, dict], Any]:
    return lambda api, inp: _cm(api, inp["classes"], inp[case])


def _compute(case: str) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        mat = np.asarray(inp[case])
        cm = api("ConfusionMatrix")(len(mat), ignore_index=255)
        cm.mat = torch.as_tensor(mat, dtype=torch.int64)
        r = cm.compute()
        return {"values": {k: _plain(v) for k, v in r.items()}, "types": {k: type(v).__name__ for k, v in r.items()}}
    return run


def _train(amp: bool) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        model = tiny_seg(inp["model"])
        before = {k: v.clone() for k, v in model.state_dict().items()}
        opt = torch.optim.SGD(model.parameters(), lr=inp["lr"])
        steps: list[int] = []
        plain_step = opt.step
        opt.step = lambda *a, **k: (steps.append(1), plain_step(*a, **k))[1]  # type: ignore[method-assign]
        criterion = nn.CrossEntropyLoss(weight=_t(inp["weight"]).float(), ignore_index=255)
        scaler = FakeScaler() if amp else None
        mean = api("train_one_epoch")(model, _batches(inp), criterion, opt, CPU, 0, scaler=scaler, progress=False)
        state = model.state_dict()
        return {"mean": float(mean), "state": {k: _plain(v) for k, v in state.items()}, "autocast": model.autocast,
                "training": model.training, "steps": len(steps), "calls": scaler.calls if scaler else [],
                "changed": any(not torch.equal(state[k], before[k]) for k in state)}
    return run


def _evaluate(with_loss: bool) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        model = tiny_seg(inp["model"]).train()  # evaluate must switch it to eval mode itself
        kwargs: dict[str, Any] = {"progress": False}
        if with_loss:
            kwargs["criterion"] = nn.CrossEntropyLoss(ignore_index=255)
        out = api("evaluate")(model, _batches(inp), inp["model"]["classes"], CPU, **kwargs)
        keep = ("pixel_acc", "miou", "iou", "num_pixels", "confusion", "loss")
        return {"metrics": {k: _plain(out.get(k)) for k in keep}, "modes": model.modes}
    return run


def _double_conv(mode: str) -> Callable[[Api, dict], Any]:
    def run(api: Api, inp: dict) -> Any:
        if mode == "unet":
            model = api("UNet")(num_classes=3, base_width=2)
            model.load_state_dict(_state(inp["unet_state"]))
            x = inp["unet_x"]
        else:
            model = api("double_conv")(inp["cin"], inp["cout"])
            if mode == "params":
                return {"names": [[k, list(v.shape)] for k, v in model.state_dict().items()]}
            model.load_state_dict(_state(inp["state"]))
            x = inp["x"]
        model.train(mode == "train")
        with torch.no_grad():
            return {"y": _plain(model(_t(x)))}
    return run


CASES: dict[str, dict[str, Callable[[Api, dict], Any]]] = {
    "load_mask": {"P": _load_mask("P"), "L": _load_mask("L"), "RGB": _load_mask("RGB")},
    "dataset_epochs": {"eval": _dataset_eval, "epochs": _dataset_epochs(False), "cached": _dataset_epochs(True)},
    "transforms": {"paper": _transform("paper"), "strong": _transform("strong")},
    "class_weights": {"inverse": _weights(method="inverse"), "inverse_eps0": _weights(method="inverse", eps=0.0),
                      "median": _weights(method="median"), "median_clip": _weights(method="median", clip=2.5),
                      "inverse_clip": _weights(method="inverse", clip=1.5)},
    "criterion": {"plain": _criterion(False), "weighted": _criterion(True)},
    "metrics_update": {"single": _update("single"), "void": _update("void"), "accumulate": _update("accumulate")},
    "metrics_compute": {"main": _compute("main"), "perfect": _compute("perfect")},
    "train_step": {"sgd": _train(False), "amp": _train(True)},
    "evaluate": {"with_loss": _evaluate(True), "no_loss": _evaluate(False)},
    "double_conv": {"params": _double_conv("params"), "train": _double_conv("train"), "eval": _double_conv("eval"),
                    "unet": _double_conv("unet")},
}


def run_part(part: str, api: Api, inputs: dict[str, Any], catch: bool = True) -> dict[str, dict[str, Any]]:
    """Every case of `part`: {case: {"ok": outputs}} or {case: {"error": one line}} (`catch`=False: raise)."""
    results: dict[str, dict[str, Any]] = {}
    for case, fn in CASES[part].items():
        torch.manual_seed(0)
        try:
            results[case] = {"ok": fn(api, inputs)}
        except BaseException as e:  # noqa: BLE001 - a submission may raise anything, SystemExit included
            if not catch:
                raise
            results[case] = {"error": describe(e)}
    return results


# ----------------------------------------------------------------------------------- values across processes
def encode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    """`obj` as JSON-able data, arrays moved into `arrays` (saved as .npz) and referenced by key."""
    obj = _plain(obj)
    if isinstance(obj, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(obj)
        return {"__nd__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): encode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v, arrays) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return {"__type__": type(obj).__name__}


def decode(data: Any, arrays: Any) -> Any:
    """The inverse of `encode` (a missing array key raises KeyError)."""
    if isinstance(data, dict):
        if set(data) == {"__nd__"}:
            return np.asarray(arrays[str(data["__nd__"])])
        return {k: decode(v, arrays) for k, v in data.items()}
    if isinstance(data, list):
        return [decode(v, arrays) for v in data]
    return data


def roundtrip(obj: Any) -> Any:
    """`obj` as the grader sees a submission's outputs: encoded and decoded (in memory)."""
    arrays: dict[str, np.ndarray] = {}
    data = json.loads(json.dumps(encode(obj, arrays)))
    return decode(data, arrays)


def _foreign(root: str) -> list[str]:
    return sorted(name for name, mod in list(sys.modules.items())
                  if (name == "starter_code" or name.startswith("starter_code.")) and getattr(mod, "__file__", None)
                  and not os.path.realpath(mod.__file__).startswith(root))


def main(job_dir: str, submission: str) -> None:
    """The submission's process: run the job's cases on the submission's code and write their outputs."""
    job = Path(job_dir)
    root = os.path.realpath(submission) + os.sep
    # the kit's editable install is a meta-path finder for starter_code: nothing may resolve to the kit
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "starter_code").is_dir()]
    sys.path.insert(0, submission)
    torch.set_num_threads(1)
    with open(job / "job.pkl", "rb") as f:
        spec = pickle.load(f)
    try:
        import starter_code  # noqa: F401

        bad = _foreign(root)
        if bad:
            raise ImportError(f"{', '.join(bad)} imported from outside the submission")
        results = run_part(spec["part"], Api(spec["locations"], job), spec["inputs"])
    except BaseException as e:  # noqa: BLE001
        results = {"__import__": {"error": f"cannot import the submission's starter_code: {describe(e)}"}}
    arrays: dict[str, np.ndarray] = {}
    data = encode(results, arrays)
    np.savez(job / "arrays.tmp.npz", **arrays)
    (job / "outputs.tmp.json").write_text(json.dumps(data))
    os.replace(job / "arrays.tmp.npz", job / "arrays.npz")
    os.replace(job / "outputs.tmp.json", job / "outputs.json")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
