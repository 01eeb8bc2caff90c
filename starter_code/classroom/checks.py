"""The grader's side of each part: fresh random inputs for every grading, and the named checks that compare the
submission's outputs with the reference's outputs on the same inputs. Feedback says in words which property
failed and never prints an expected value.

Inputs are plain data; keys starting with "_" stay in the grader (never sent to the submission's process).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .harness import Api, TinySeg

Check = Callable[["Outputs", "Outputs", dict], "str | None"]
INPUTS: dict[str, Callable[[np.random.Generator, Api], dict]] = {}
CHECKS: dict[str, dict[str, Check]] = {}


class CaseFailed(Exception):
    """A case the check needs crashed (or is missing) on this side."""


class Outputs:
    """One side's results of a part, {case: {"ok": outputs} | {"error": text}}, as decoded by the grader."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results if isinstance(results, dict) else {}

    def __call__(self, case: str) -> Any:
        r = self.results.get(case)
        if isinstance(r, dict) and "ok" in r:
            return r["ok"]
        if isinstance(r, dict) and "error" in r:
            raise CaseFailed(f"crashed: {r['error']}")
        raise CaseFailed(f"no result for the '{case}' case")


def inputs(part: str) -> Callable:
    def register(fn: Callable) -> Callable:
        INPUTS[part] = fn
        return fn
    return register


def check(part: str, name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS.setdefault(part, {})[name] = fn
        return fn
    return register


def public(inp: dict[str, Any]) -> dict[str, Any]:
    """The inputs a submission's process receives: everything but the grader's own "_" keys."""
    return {k: v for k, v in inp.items() if not k.startswith("_")}


def write_files(part: str, inp: dict[str, Any], folder: Path) -> None:
    """Files a part's cases read (mask PNGs for load_mask), written by the grader into `folder`."""
    if part != "load_mask":
        return
    pal = inp["palette"]
    for kind, name in inp["files"].items():
        m = inp["_masks"][kind]
        if kind == "RGB":
            im = Image.fromarray(pal[m], "RGB")
        else:
            im = Image.fromarray(m)
            if kind == "P":
                im.putpalette(pal.reshape(-1).tolist())
        im.save(folder / name)


# ---------------------------------------------------------------------------------------------- comparisons
def _arr(x: Any, dtype: Any = np.float64) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == object:
        raise ValueError("not an array of numbers")
    return a.astype(dtype)


def close(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """Same shape and values within tolerance (NaN where NaN); False for anything that is not numbers."""
    try:
        a, b = _arr(a), _arr(b)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def equal(a: Any, b: Any) -> bool:
    """Same shape and exactly the same values."""
    try:
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype != object and a.shape == b.shape and bool((a == b).all())
    except (TypeError, ValueError):
        return False


def _dtype(x: Any) -> str:
    return str(np.asarray(x).dtype) if isinstance(x, np.ndarray) else type(x).__name__


def _state(module: torch.nn.Module, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values for every entry of a module's state dict (positive BatchNorm variances)."""
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = np.asarray(int(rng.integers(1, 50)), dtype=np.int64)
        elif k.endswith("running_var"):
            out[k] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
        elif k.endswith(".weight") and v.dim() == 1:
            out[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
        else:
            out[k] = (rng.standard_normal(v.shape) * (0.3 if v.dim() > 1 else 0.1)).astype(np.float32)
    return out


def _void(rng: np.random.Generator, m: np.ndarray, rate: float) -> np.ndarray:
    m = m.copy()
    m[rng.random(m.shape) < rate] = 255
    return m


# ------------------------------------------------------------------------------------------------ load_mask
@inputs("load_mask")
def _load_mask_inputs(rng: np.random.Generator, ref: Api) -> dict:
    codes = rng.choice(2**24, 256, replace=False)
    palette = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], 1).astype(np.uint8)
    masks = {}
    for kind in ("P", "L", "RGB"):
        h, w = (int(v) for v in rng.integers(9, 30, 2))
        m = rng.integers(0, 21, (h, w)).astype(np.uint8)
        m[: int(rng.integers(1, 3))] = 255  # a void band, as VOC's object borders
        masks[kind] = _void(rng, m, 0.1)
    return {"palette": palette, "files": {k: f"mask_{k}.png" for k in masks}, "_masks": masks}


def _mask_ok(out: Any, kind: str) -> np.ndarray:
    m = out["mask"]
    if not isinstance(m, np.ndarray):
        raise CaseFailed(f"{kind} mask: load_mask must return a numpy array (got {type(m).__name__})")
    return m


@check("load_mask", "palette mask: indices read as they are")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    m, r = _mask_ok(sub("P"), "palette"), ref("P")["mask"]
    if m.shape != r.shape:
        return f"a palette mask must come back as H x W class indices (got shape {m.shape})"
    keep = r != 255
    if not equal(m[keep], r[keep]):
        return ("the class indices of a palette ('P') mask differ from the indices stored in the file: read them "
                "as they are (np.array of the 'P' image), never through .convert('RGB') or 'L'")
    return None


@check("load_mask", "void (255) stays 255, never mapped to background")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    for kind in ("P", "L", "RGB"):
        m, r = _mask_ok(sub(kind), kind), ref(kind)["mask"]
        if m.shape != r.shape:
            return f"{kind} mask: wrong shape {m.shape}"
        void = r == 255
        if not equal(m[void], r[void]):
            got = sorted(set(np.unique(m[void]).tolist()) - {255})[:3]
            return f"void pixels of a {kind} mask must stay 255; some came back as {got}"
    return None


@check("load_mask", "greyscale (L) mask")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if not equal(_mask_ok(sub("L"), "greyscale"), ref("L")["mask"]):
        return "a greyscale ('L') mask must come back with its pixel values as class indices"
    return None


@check("load_mask", "RGB mask mapped through the palette, uint8 H x W")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if not equal(_mask_ok(sub("RGB"), "RGB"), ref("RGB")["mask"]):
        return "an RGB mask must be mapped to class indices through the palette (rgb_to_index)"
    for kind in ("P", "L", "RGB"):
        m = _mask_ok(sub(kind), kind)
        if m.dtype != np.uint8 or m.ndim != 2:
            return f"load_mask must return a uint8 H x W array (a {kind} mask came back {m.dtype}, {m.ndim}-d)"
    return None


# ------------------------------------------------------------------------------------------- dataset_epochs
@inputs("dataset_epochs")
def _dataset_inputs(rng: np.random.Generator, ref: Api) -> dict:
    h, w = (int(v) for v in rng.integers(10, 16, 2))
    images = [rng.integers(0, 256, (h, w, 3)).astype(np.uint8) for _ in range(2)]
    masks = [_void(rng, rng.integers(0, 5, (h, w)).astype(np.uint8), 0.15) for _ in range(2)]
    palette = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    return {"images": images, "masks": masks, "classes": 5, "palette": palette,
            "seed": int(rng.integers(2**31)), "order": [0, 0, 1, 0]}


def _items(out: Any) -> list:
    items = out["items"]
    if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
        raise CaseFailed("an item must be an (image, mask) pair")
    return items


@check("dataset_epochs", "eval item: normalised float32 C x H x W image, int64 H x W mask with void 255")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    for (img, mask), (rimg, rmask) in zip(_items(sub("eval")), _items(ref("eval"))):
        if not isinstance(img, np.ndarray) or img.dtype != np.float32 or img.shape != rimg.shape:
            return f"the image must be a float32 C x H x W tensor (got {_dtype(img)} {np.shape(img)})"
        if not close(img, rimg, 1e-4, 1e-4):
            return "the image is not the decoded pixels scaled to [0, 1] and ImageNet-normalised (normalize)"
        if not isinstance(mask, np.ndarray) or mask.dtype != np.int64 or mask.shape != rmask.shape:
            return f"the mask must be an int64 H x W tensor (got {_dtype(mask)} {np.shape(mask)})"
        if not equal(mask, rmask):
            return "the mask's values must be the class indices of the file, void kept as 255"
    return None


def _reads(sub: Outputs, ref: Outputs, case: str, what: int) -> tuple[list, list]:
    s, r = _items(sub(case)), _items(ref(case))
    if len(s) != len(r):
        raise CaseFailed("wrong number of items")
    return [x[what] for x in s], [x[what] for x in r]


def _same_every_epoch(images: list, order: list[int]) -> bool:
    first = [img for img, i in zip(images, order) if i == 0]
    return all(equal(first[0], x) for x in first[1:])


@check("dataset_epochs", "augmentation drawn on every read (two epochs of one item differ)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = _reads(sub, ref, "epochs", 0)
    if all(close(a, b, 1e-4, 1e-4) for a, b in zip(s, r)):
        return None
    if _same_every_epoch(s, inp["order"]):
        return ("one item came back identical in every epoch: apply self.transform to the decoded pair on every "
                "__getitem__ call, so each epoch draws a new augmentation")
    return "the items are not the decoded pair passed once through self.transform per read, then normalised"


@check("dataset_epochs", "with cache=True the decoded pair is cached, the augmentation still drawn per read")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = _reads(sub, ref, "cached", 0)
    sm, rm = _reads(sub, ref, "cached", 1)
    if all(close(a, b, 1e-4, 1e-4) for a, b in zip(s, r)) and all(equal(a, b) for a, b in zip(sm, rm)):
        return None
    if _same_every_epoch(s, inp["order"]):
        return ("with cache=True one item came back identical in every epoch: cache the decoded pair (_pair), "
                "never the augmented one")
    return "with cache=True the items differ from the cached decoded pair passed through self.transform per read"


@check("dataset_epochs", "image and mask go through one joint transform")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = _reads(sub, ref, "epochs", 1)
    if all(isinstance(a, np.ndarray) and a.dtype == np.int64 for a in s) and all(equal(a, b) for a, b in zip(s, r)):
        return None
    return ("the masks do not follow their images: call self.transform(image, mask) once with both (wrapped "
            "by to_tv) and return the mask as int64")


# ----------------------------------------------------------------------------------------------- transforms
SIZE = 64
H, W = 48, 64


def _pattern(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Block classes (8 px wide, 16 px tall), random labels and a random grey level per class."""
    y, x = np.mgrid[0:H, 0:W]
    cls = x // 8 + 8 * (y // 16)
    labels = rng.choice(254, 24, replace=False).astype(np.uint8)
    grey = rng.permutation(np.linspace(25, 185, 24)).round().astype(np.uint8)
    return x, y, cls, labels, grey


@inputs("transforms")
def _transform_inputs(rng: np.random.Generator, ref: Api) -> dict:
    x, y, cls, labels, grey = _pattern(rng)
    mask = labels[cls]
    paper = np.stack([x * 4, y * 5, grey[cls]]).astype(np.uint8)  # x and y ramps decode the crop box
    strong = np.stack([grey[cls]] * 3).astype(np.uint8)  # grey: colour jitter stays affine on it
    lut_grey = np.full(256, np.nan)
    lut_grey[labels] = grey
    lut_bx = np.full(256, -1)
    lut_bx[labels] = np.arange(24) % 8
    return {"size": SIZE,
            "paper": {"image": paper, "mask": mask, "seed": int(rng.integers(2**31)), "n": 400},
            "strong": {"image": strong, "mask": mask, "seed": int(rng.integers(2**31)), "n": 240},
            "_labels": labels, "_grey": lut_grey, "_bx": lut_bx}


def _samples(out: Any, preset: str) -> tuple[np.ndarray, np.ndarray]:
    if "shapes" in out:
        raise CaseFailed(f"{preset}: samples of different sizes {out['shapes']}: every output must be size x size")
    images, masks = out["images"], out["masks"]
    if not (isinstance(images, np.ndarray) and isinstance(masks, np.ndarray)):
        raise CaseFailed(f"{preset}: the transform must return two tensors")
    return images, masks


def _shape_labels(images: np.ndarray, masks: np.ndarray, inp: dict, preset: str) -> str | None:
    n = inp[preset]["n"]
    if images.shape != (n, 3, SIZE, SIZE) or masks.shape != (n, SIZE, SIZE):
        return (f"{preset}: every sample must be a 3 x size x size image and a size x size mask (got "
                f"{images.shape[1:]} and {masks.shape[1:]})")
    if images.dtype != np.uint8:
        return f"{preset}: the image must stay uint8 (normalisation happens later), got {images.dtype}"
    if not np.isin(masks, np.append(inp["_labels"], 255)).all():
        return (f"{preset}: the mask has values that are not labels of the input: resize masks with nearest "
                "neighbour (tv_tensors.Mask does it) and pad them with void 255")
    return None


def _aligned(images: np.ndarray, masks: np.ndarray, inp: dict, channel: int | None) -> float:
    """Fraction of samples whose image grey levels correlate with the grey of their mask's classes."""
    ok = 0
    counted = 0
    for img, m in zip(images, masks):
        keep = m != 255
        expect = inp["_grey"][m[keep]]
        seen = (img.mean(0) if channel is None else img[channel].astype(np.float64))[keep]
        if keep.sum() < 50 or np.std(expect) == 0:
            continue
        counted += 1
        ok += np.std(seen) > 0 and np.corrcoef(seen, expect)[0, 1] > 0.8
    return ok / max(counted, 1)


def _paper_boxes(images: np.ndarray) -> dict[str, np.ndarray]:
    """The crop box of each 'paper' sample, from the decoded x/y ramps: width and height as a fraction of the
    resized image, centre offset in source pixels, and whether the sample is mirrored."""
    x = images[:, 0].astype(np.float64) / 4
    y = images[:, 1].astype(np.float64) / 5
    grow = SIZE / (SIZE - 1)  # output pixel centres span (S - 1) / S of the crop
    w = (x.max((1, 2)) - x.min((1, 2))) / W * grow
    h = (y.max((1, 2)) - y.min((1, 2))) / H * grow
    centre = (x.max((1, 2)) + x.min((1, 2))) / 2 - (W - 1) / 2
    flipped = (x[:, :, -1] - x[:, :, 0]).mean(1) < 0
    return {"w": w, "h": h, "centre": centre, "flipped": flipped, "scale": w * h, "ratio": w / h * (W / H)}


def _paper(sub: Outputs, inp: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    images, masks = _samples(sub("paper"), "paper")
    bad = _shape_labels(images, masks, inp, "paper")
    if bad:
        raise CaseFailed(bad)
    return images, masks, _paper_boxes(images)


@check("transforms", "paper: size x size output, image and mask aligned, labels kept")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    images, masks, _ = _paper(sub, inp)
    if _aligned(images, masks, inp, 2) < 0.95:
        return "paper: image and mask are not aligned: apply one joint transform to both (same crop, same flip)"
    return None


@check("transforms", "paper: random-resized crop on about 30% of samples, centre crop otherwise")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    b = _paper(sub, inp)[2]
    rrc = b["w"] > 0.83
    centre = (np.abs(b["w"] - 0.75) < 0.04) & (b["h"] > 0.95) & (np.abs(b["centre"]) < 1.5)
    if (~rrc & ~centre).any():
        return (f"paper: {int((~rrc & ~centre).sum())} samples are neither a random-resized crop nor a centre crop "
                "of the image resized to shorter side `size`")
    rate = rrc.mean()
    if not 0.18 <= rate <= 0.42:
        return f"paper: {rate:.0%} of the samples are random-resized crops; expected about 30% (RandomApply p=0.3)"
    return None


@check("transforms", "paper: crop scale (area 90-100%) and aspect ratio (3/4-4/3) statistics")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    b = _paper(sub, inp)[2]
    rrc = b["w"] > 0.83
    if rrc.sum() < 20:
        return "paper: too few random-resized crops to measure their scale and aspect ratio"
    scale, ratio = b["scale"][rrc], b["ratio"][rrc]
    if scale.min() < 0.86 or scale.max() > 1.03:
        return (f"paper: crop areas from {scale.min():.0%} to {scale.max():.0%} of the image; the random-resized "
                "crop must take 90-100% (scale=(0.9, 1.0))")
    if ratio.min() < 0.7 or ratio.max() > 1.42:
        return (f"paper: crop aspect ratios from {ratio.min():.2f} to {ratio.max():.2f}; they must lie in 3/4-4/3 "
                "(ratio=(3/4, 4/3))")
    if scale.std() < 0.008 or (scale < 0.985).mean() < 0.2:
        return "paper: the crop areas hardly vary: draw the crop's scale at random in 0.9-1.0 for each sample"
    return None


@check("transforms", "paper: horizontal flip on about 30% of samples")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    rate = _paper(sub, inp)[2]["flipped"].mean()
    if not 0.18 <= rate <= 0.42:
        return f"paper: {rate:.0%} of the samples are mirrored; expected about 30% (RandomHorizontalFlip p=0.3)"
    return None


def _strong(sub: Outputs, inp: dict) -> tuple[np.ndarray, np.ndarray]:
    images, masks = _samples(sub("strong"), "strong")
    bad = _shape_labels(images, masks, inp, "strong")
    if bad:
        raise CaseFailed(bad)
    return images, masks


def _runs(m: np.ndarray) -> list[int]:
    """Lengths of the runs of one class along each row that touch neither the border nor void."""
    out = []
    for row in m:
        edges = np.flatnonzero(row[1:] != row[:-1]) + 1
        for a, b in zip(edges[:-1], edges[1:]):
            if row[a] != 255 and row[a - 1] != 255 and row[b] != 255:
                out.append(int(b - a))
    return out


@check("transforms", "strong: size x size output, aligned, mask padded with void 255")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    images, masks = _strong(sub, inp)
    if _aligned(images, masks, inp, None) < 0.9:
        return "strong: image and mask are not aligned: apply one joint transform to both (same crop, same flip)"
    padded = (masks == 255).any((1, 2)).mean()
    if padded < 0.12:
        return ("strong: no void padding in the masks: when the rescaled image is smaller than the crop, pad the "
                "mask with 255 (RandomCrop pad_if_needed with fill=FILL)")
    return None


@check("transforms", "strong: scale jitter from 0.5x to 2x the size")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    images, masks = _strong(sub, inp)
    shorter = []
    for m in masks:
        runs = _runs(m)
        if runs:
            shorter.append(np.median(runs) / 8 * H / SIZE)  # 8 px blocks: run length / 8 = resize factor
    s = np.asarray(shorter)
    if len(s) < len(masks) / 2:
        return "strong: cannot measure the rescaling of the samples (are the masks resized with nearest neighbour?)"
    if s.min() < 0.4 or s.max() > 2.25:
        return (f"strong: the shorter side is rescaled from {s.min():.2f}x to {s.max():.2f}x the size; "
                "keep it within 0.5x-2x (RandomResize)")
    if s.min() > 0.7 or s.max() < 1.6:
        return (f"strong: the shorter side is rescaled only from {s.min():.2f}x to {s.max():.2f}x the size; "
                "draw it at random from 0.5x to 2x (RandomResize)")
    return None


@check("transforms", "strong: flip on about half, mild colour jitter of the image only")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    images, masks = _strong(sub, inp)
    bx = inp["_bx"]
    flips, slopes = [], []
    for img, m in zip(images, masks):
        a, b = m[:, :-1], m[:, 1:]
        ok = (a != 255) & (b != 255) & (a != b)
        d = bx[b[ok]] - bx[a[ok]]
        if ok.any() and (d == 1).sum() != (d == -1).sum():
            flips.append((d == -1).sum() > (d == 1).sum())
        keep = m != 255
        expect = inp["_grey"][m[keep]]
        if keep.sum() >= 50 and np.std(expect) > 0:
            slopes.append(np.polyfit(expect, img.mean(0)[keep].astype(np.float64), 1)[0])
    rate = float(np.mean(flips)) if flips else 0.0
    if not 0.35 <= rate <= 0.65:
        return f"strong: {rate:.0%} of the samples are mirrored; expected about half (RandomHorizontalFlip p=0.5)"
    s = np.asarray(slopes)
    if len(s) < 10 or s.std() < 0.03:
        return "strong: the image's brightness and contrast never change: add a mild ColorJitter (image only)"
    if s.min() < 0.3 or s.max() > 1.8:
        return "strong: the colour jitter is far from mild (brightness/contrast change by more than +-70%)"
    return None


# -------------------------------------------------------------------------------------------- class_weights
@inputs("class_weights")
def _weights_inputs(rng: np.random.Generator, ref: Api) -> dict:
    n = int(rng.integers(6, 10))
    pixels = rng.integers(1_000, 1_000_000, n)
    pixels[rng.choice(n, 2, replace=False)] = 0
    image_pixels = np.where(pixels > 0, (pixels / rng.uniform(0.05, 0.6, n)).astype(np.int64), 0)
    return {"stats": {"pixels": pixels.tolist(), "image_pixels": image_pixels.tolist()}}


def _w(sub: Outputs, case: str) -> Any:
    return sub(case)["w"]


@check("class_weights", "inverse frequency, normalised to mean 1 over present classes")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    present = np.asarray(inp["stats"]["pixels"]) > 0
    for case in ("inverse", "inverse_eps0"):
        w, r = _w(sub, case), _w(ref, case)
        if close(w, r):
            continue
        if close(np.shape(w), np.shape(r)) and abs(float(_arr(w)[present].mean()) - 1) > 1e-6:
            return ("inverse: the weights of the classes present must average 1 (divide 1 / (pixels + eps) by "
                    "their mean)")
        return "inverse: the weights must be 1 / (pixels + eps) on present classes, divided by their mean"
    return None


@check("class_weights", "median-frequency balancing")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if close(_w(sub, "median"), _w(ref, "median")):
        return None
    return ("median: the weights must be median(freq) / freq, freq = pixels / image_pixels of each class present "
            "(the median over the present classes)")


@check("class_weights", "absent classes weigh 0, clip caps the weights, plain floats")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    absent = np.asarray(inp["stats"]["pixels"]) == 0
    for case in ("inverse", "median"):
        w = _w(sub, case)
        if np.shape(w) != absent.shape or not close(_arr(w)[absent], 0.0 * absent[absent]):
            return f"{case}: a class absent from the training masks must get weight 0"
    for case in ("inverse_clip", "median_clip"):
        if not close(_w(sub, case), _w(ref, case)):
            return f"{case.replace('_', ' with ')}: weights above `clip` must be capped at clip"
    for case in ("inverse", "median"):
        if sub(case)["types"] != ref(case)["types"]:
            return "class_weights must return a list of plain Python floats (w.tolist())"
    return None


# ------------------------------------------------------------------------------------------------ criterion
@inputs("criterion")
def _criterion_inputs(rng: np.random.Generator, ref: Api) -> dict:
    n = 5
    target = rng.integers(0, n, (2, 6, 7))
    target[rng.random(target.shape) < 0.25] = 255
    pixels = rng.integers(100, 10_000, n)
    return {"logits": (rng.standard_normal((2, n, 6, 7)) * 2).astype(np.float32), "target": target.astype(np.int64),
            "stats": {"pixels": pixels.tolist(), "image_pixels": (pixels * 3).tolist()},
            "weights": rng.uniform(0.2, 3.0, n).round(4).tolist(), "method": str(rng.choice(["inverse", "median"])),
            "clip": round(float(rng.uniform(3, 10)), 1)}


@check("criterion", "void pixels (255) are ignored")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if close(sub("plain")["loss"], ref("plain")["loss"], 1e-4):
        return None
    return "the loss must be the cross-entropy averaged over the non-void pixels (ignore_index=255)"


@check("criterion", "no class weights when cfg.class_weights is None")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s = sub("plain")
    if s["calls"]:
        return "with cfg.class_weights None, build_criterion must not compute class statistics or weights"
    if not close(s["loss"], ref("plain")["loss"], 1e-4):
        return "with cfg.class_weights None, the loss must be the plain (unweighted) cross-entropy"
    return None


@check("criterion", "class weights of the training set reach the loss")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if close(sub("weighted")["loss"], ref("weighted")["loss"], 1e-4):
        return None
    if close(sub("weighted")["loss"], ref("plain")["loss"], 1e-4):
        return "the class weights are computed but never reach the loss: pass weight= to nn.CrossEntropyLoss"
    return "with cfg.class_weights set, the loss must be the cross-entropy weighted by class_weights(...)"


@check("criterion", "weights from class_stats(train_ds) and class_weights(stats, method, clip)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    calls, expected = sub("weighted")["calls"], ref("weighted")["calls"]
    if calls == expected:
        return None
    names = [c[0] for c in calls if isinstance(c, list) and c]
    return ("build_criterion must call class_stats(train_ds) once, then class_weights(stats, cfg.class_weights, "
            f"cfg.weight_clip) (the functions engine imports); it called: {', '.join(names) or 'neither'}")


# ------------------------------------------------------------------------------------------- metrics_update
@inputs("metrics_update")
def _update_inputs(rng: np.random.Generator, ref: Api) -> dict:
    n = int(rng.integers(4, 8))

    def batch(shape: tuple[int, ...], void: float) -> list[np.ndarray]:
        return [rng.integers(0, n, shape), _void(rng, rng.integers(0, n, shape), void) if void else
                rng.integers(0, n, shape)]

    return {"classes": n, "single": [batch((2, 7, 9), 0)], "void": [batch((2, 8, 6), 0.3)],
            "accumulate": [batch((1, 5, 5), 0.1), batch((3, 4, 6), 0.1), batch((2, 6, 3), 0.1)]}


def _mat(out: Any) -> np.ndarray:
    m = out["mat"]
    if not isinstance(m, np.ndarray):
        raise CaseFailed(f"cm.mat must be a tensor (got {type(m).__name__})")
    return m


@check("metrics_update", "rows are ground truth, columns prediction")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    m, r = _mat(sub("single")), _mat(ref("single"))
    if equal(m, r):
        return None
    if equal(m, r.T):
        return "the matrix is transposed: rows must be ground truth (target), columns prediction"
    wrong = int((m != r).sum()) if m.shape == r.shape else None
    return ("the counts differ from a pixel-by-pixel count" +
            (f" at {wrong} of {m.size} entries" if wrong is not None else f" (shape {m.shape})"))


@check("metrics_update", "void pixels (ignore_index) are skipped")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    m, r = _mat(sub("void")), _mat(ref("void"))
    if equal(m, r):
        return None
    if m.shape == r.shape and int(m.sum()) > int(r.sum()):
        return "pixels whose target is ignore_index (255) were counted: drop them before counting"
    return "with void pixels in the target, the counts differ from a pixel-by-pixel count of the other pixels"


@check("metrics_update", "batches accumulate into one matrix")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    m, r = _mat(sub("accumulate")), _mat(ref("accumulate"))
    if equal(m, r):
        return None
    if m.shape == r.shape and int(m.sum()) < int(r.sum()):
        return "after three update() calls the matrix misses pixels: add each batch to self.mat, never replace it"
    return "after three update() calls the matrix is not the sum of the three batches' counts"


@check("metrics_update", "int64 counts, num_classes x num_classes")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    out = sub("accumulate")
    n = inp["classes"]
    if out["dtype"] != "torch.int64" or _mat(out).shape != (n, n):
        return f"cm.mat must stay an int64 num_classes x num_classes tensor (got {out['dtype']} {_mat(out).shape})"
    return None


# ------------------------------------------------------------------------------------------ metrics_compute
@inputs("metrics_compute")
def _compute_inputs(rng: np.random.Generator, ref: Api) -> dict:
    n = 6
    mat = rng.integers(0, 20, (n, n))
    absent, never_true, never_pred = rng.choice(n, 3, replace=False)
    mat[absent, :] = 0
    mat[:, absent] = 0
    mat[never_true, :] = 0
    mat[:, never_pred] = 0
    mat[rng.choice([i for i in range(n) if i not in (absent, never_true)]), never_true] += 3
    return {"main": mat, "perfect": np.diag(rng.integers(1, 30, 4)), "_absent": int(absent),
            "_never_true": int(never_true)}


def _values(out: Any, key: str) -> Any:
    v = out["values"]
    if not isinstance(v, dict) or key not in v:
        raise CaseFailed(f"compute() must return a dict with '{key}'")
    return v[key]


def _metric(name: str, message: str, rtol: float = 1e-6) -> Check:
    def run(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
        for case in ("main", "perfect"):
            if not close(_values(sub(case), name), _values(ref(case), name), rtol):
                return message
        return None
    return run


check("metrics_compute", "pixel accuracy")(_metric(
    "pixel_acc", "pixel_acc must be the correctly classified pixels (the diagonal) over all counted pixels"))
check("metrics_compute", "mIoU = mean IoU over the classes present")(_metric(
    "miou", "miou must be the mean of the per-class IoU over the classes whose IoU is defined (not NaN)"))
check("metrics_compute", "frequency-weighted IoU")(_metric(
    "fw_iou", "fw_iou must weight each class's IoU by its share of ground-truth pixels"))


@check("metrics_compute", "per-class IoU = tp / (tp + fp + fn)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = _values(sub("main"), "iou"), _values(ref("main"), "iou")
    if np.shape(s) != np.shape(r):
        return f"iou must hold one value per class (got shape {np.shape(s)})"
    s, r = _arr(s), _arr(r)
    if np.isnan(s[inp["_never_true"]]):
        return ("the IoU of a class that is predicted but never true must be 0 (its union is not empty), got nan")
    defined = ~np.isnan(r)
    wrong = int((~np.isclose(s[defined], r[defined], rtol=1e-6, equal_nan=False)).sum())
    if wrong:
        return f"per-class IoU must be tp / (gt + pred - tp): {wrong} of {int(defined.sum())} classes differ"
    return None


@check("metrics_compute", "IoU of a class absent from prediction and target is NaN (left out of mIoU)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s = _values(sub("main"), "iou")
    v = _arr(s)[inp["_absent"]] if np.shape(s) == (len(inp["main"]),) else None
    if v is None or not np.isnan(v):
        return f"IoU of a class absent from prediction and target must be NaN (excluded), got {v}"
    return None


@check("metrics_compute", "class accuracy and mean class accuracy")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    for case in ("main", "perfect"):
        if not close(_values(sub(case), "class_acc"), _values(ref(case), "class_acc")):
            return "class_acc must be tp / ground-truth pixels per class, NaN for a class that is never true"
        if not close(_values(sub(case), "mean_class_acc"), _values(ref(case), "mean_class_acc")):
            return "mean_class_acc must average class_acc over the classes that occur in the ground truth"
    return None


@check("metrics_compute", "plain Python values (float, list, int)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = sub("main"), ref("main")
    types = s["types"] if isinstance(s["types"], dict) else {}
    wrong = sorted(k for k, t in r["types"].items() if types.get(k) != t)
    if wrong:
        return f"these values must be plain Python numbers/lists (float(), .tolist(), int()): {', '.join(wrong)}"
    if not equal(_values(s, "confusion"), inp["main"]) or _values(s, "num_pixels") != int(inp["main"].sum()):
        return "confusion must be the matrix as a list of lists and num_pixels the number of counted pixels"
    return None


# ----------------------------------------------------------------------------------------------- train_step
def _tiny(rng: np.random.Generator, classes: int, bn: bool = False, down: bool = False) -> dict:
    return {"classes": classes, "bn": bn, "down": down, "state": _state(TinySeg(classes, bn, down), rng)}


@inputs("train_step")
def _train_inputs(rng: np.random.Generator, ref: Api) -> dict:
    batches = []
    for bs in (2, 3):
        masks = rng.integers(0, 3, (bs, 6, 6))
        masks[:, 0] = 255
        batches.append([rng.standard_normal((bs, 3, 6, 6)).astype(np.float32), masks.astype(np.int64)])
    return {"model": _tiny(rng, 3), "batches": batches, "lr": 0.5,
            "weight": rng.uniform(0.5, 2.0, 3).astype(np.float32)}


@check("train_step", "returns the mean training loss over the epoch's samples")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if close(sub("sgd")["mean"], ref("sgd")["mean"], 1e-4):
        return None
    return "train_one_epoch must return the mean loss over the epoch's samples (each batch's loss times its size)"


@check("train_step", "one SGD step per batch: zero_grad, backward, step")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = sub("sgd"), ref("sgd")
    if s["steps"] != r["steps"]:
        return f"the optimizer stepped {s['steps']} times for {len(inp['batches'])} batches: once per batch"
    state = s["state"] if isinstance(s["state"], dict) else {}
    if set(state) != set(r["state"]) or not all(close(state[k], v, 1e-4, 1e-5) for k, v in r["state"].items()):
        return ("the weights after the epoch differ from one SGD step per batch on the criterion's loss: "
                "optimizer.zero_grad() before loss.backward(), then optimizer.step()")
    return None


@check("train_step", "forward under torch.autocast exactly when AMP is on")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if sub("sgd")["autocast"] != ref("sgd")["autocast"]:
        return "without a scaler (AMP off) the forward pass must not run under autocast"
    if sub("amp")["autocast"] != ref("amp")["autocast"]:
        return "with an enabled scaler the forward pass must run under torch.autocast(..., enabled=use_amp)"
    return None


@check("train_step", "under AMP: backward and step through the GradScaler (scale, step, update)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = sub("amp"), ref("amp")
    if s["calls"] != r["calls"]:
        return ("under AMP each step must call scaler.scale(loss).backward(), scaler.step(optimizer), "
                "scaler.update(), in that order")
    if s["steps"] != r["steps"] or not s["changed"]:
        return "under AMP the optimizer must step only through scaler.step(optimizer)"
    return None


# ------------------------------------------------------------------------------------------------- evaluate
@inputs("evaluate")
def _evaluate_inputs(rng: np.random.Generator, ref: Api) -> dict:
    batches = []
    for bs, classes in ((3, [0, 1]), (1, [2, 3]), (2, [0, 1, 2, 3])):  # batches see different classes
        masks = _void(rng, rng.choice(classes, (bs, 8, 10)), 0.1).astype(np.int64)
        batches.append([rng.standard_normal((bs, 3, 8, 10)).astype(np.float32), masks])
    return {"model": _tiny(rng, 4, bn=True, down=True), "batches": batches}


def _m(out: Any, key: str) -> Any:
    m = out["metrics"]
    if not isinstance(m, dict):
        raise CaseFailed("evaluate must return a dict of metrics")
    return m.get(key)


@check("evaluate", "one confusion matrix over the split (not a mean of per-batch metrics)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = sub("with_loss"), ref("with_loss")
    if all(close(_m(s, k), _m(r, k)) for k in ("confusion", "miou", "pixel_acc", "iou")):
        return None
    return ("the metrics must come from one ConfusionMatrix updated with every batch of the loader, computed once "
            "at the end (not per batch, not averaged over batches)")


@check("evaluate", "every non-void pixel counted once, at the mask's resolution")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if _m(sub("with_loss"), "num_pixels") == _m(ref("with_loss"), "num_pixels"):
        return None
    return ("the matrix must count each non-void pixel of the split once, with predictions at the mask's size "
            "(forward_logits(model, images, masks.shape[-2:]))")


@check("evaluate", "mean loss weighted by batch size")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    if close(_m(sub("with_loss"), "loss"), _m(ref("with_loss"), "loss"), 1e-4):
        return None
    return "'loss' must be the criterion's loss averaged over the samples (each batch's loss times its size)"


@check("evaluate", "model in eval mode")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    modes = sub("with_loss")["modes"]
    if modes and not any(modes):
        return None
    return "evaluate must put the model in eval mode (model.eval()) before the first forward pass"


@check("evaluate", "without a criterion: loss is NaN, metrics still computed")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s, r = sub("no_loss"), ref("no_loss")
    loss = _m(s, "loss")
    if not isinstance(loss, float) or not np.isnan(loss):
        return "without a criterion 'loss' must be float('nan')"
    if not close(_m(s, "confusion"), _m(r, "confusion")):
        return "without a criterion the metrics must still be computed over the whole split"
    return None


# ---------------------------------------------------------------------------------------------- double_conv
@inputs("double_conv")
def _double_conv_inputs(rng: np.random.Generator, ref: Api) -> dict:
    cin, cout = int(rng.integers(3, 6)), int(rng.integers(4, 9))
    return {"cin": cin, "cout": cout, "state": _state(ref("double_conv")(cin, cout), rng),
            "x": rng.standard_normal((2, cin, 9, 11)).astype(np.float32),
            "unet_state": _state(ref("UNet")(num_classes=3, base_width=2), rng),
            "unet_x": rng.standard_normal((1, 3, 20, 28)).astype(np.float32)}


@check("double_conv", "two 3x3 convs without bias and two BatchNorm2d (parameter names and shapes)")
def _(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
    s = sub("params")["names"]
    r = ref("params")["names"]
    if s == r:
        return None
    got = ", ".join(f"{k} {tuple(v)}" for k, v in s) if isinstance(s, list) else "?"
    return ("the block must be nn.Sequential(conv 3x3 padding 1 without bias, BatchNorm2d, ReLU, conv, BatchNorm2d, "
            f"ReLU) from cin to cout to cout; its state dict has: {got[:200]}")


def _forward(case: str, what: str) -> Check:
    def run(sub: Outputs, ref: Outputs, inp: dict) -> str | None:
        if close(sub(case)["y"], ref(case)["y"], 1e-4, 1e-4):
            return None
        return f"{what} differs from (conv 3x3 -> BatchNorm2d -> ReLU) x 2 with the same weights"
    return run


check("double_conv", "forward in training mode")(_forward("train", "the output in training mode"))
check("double_conv", "forward in eval mode (running statistics)")(_forward("eval", "the output in eval mode"))
check("double_conv", "the U-Net built from it")(_forward("unet", "the U-Net's output (built from double_conv)"))
