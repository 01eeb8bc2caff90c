"""Predictions written to disk: class-index PNGs (and, for your own images, overlays and legends).

`predict_files(run_dir, paths, out_dir)` is what `python -m starter_code predict` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .data.classes import IGNORE_INDEX, DatasetInfo


def save_index_png(pred: np.ndarray, path: str | Path, info: DatasetInfo) -> None:
    """Pixel value = class index: a palette PNG for VOC/synthetic (opens coloured), 8-bit grey for CamVid."""
    im = Image.fromarray(pred.astype(np.uint8), mode="P" if info.name == "voc" else "L")
    if info.name == "voc":
        im.putpalette(info.palette.flatten().tolist())
    im.save(path)


# ------------------------------------------------------------------------------------- your own images
# The engine, the models and matplotlib are imported inside the functions, so the CLI parser stays cheap to build.
OUTPUT_SUFFIXES = {"mask": ".png", "overlay": "_overlay.png", "legend": "_legend.png"}


def _open_image(path: Path, decode: bool) -> np.ndarray | None:
    """Open (and optionally decode) an image; a missing or unreadable file raises DataError naming it."""
    from .data import DataError

    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB")) if decode else None
    except FileNotFoundError:
        raise DataError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: {path.name} is not an image PIL can read ({e})") from None


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 HxWx3, rotated as its EXIF orientation says (as viewers show it).

    A missing file or one PIL cannot decode raises DataError naming it."""
    return _open_image(Path(path), decode=True)


def _check_image(path: Path) -> None:
    """Fail fast (header only, no decoding) on a missing or non-image file before any model work."""
    _open_image(path, decode=False)


def _as_rgb(image: str | Path | Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 HxWx3 array, got shape {arr.shape} dtype {arr.dtype}")
    return arr[..., :3]


def predict_image(model: Any, image: str | Path | Image.Image | np.ndarray, info: DatasetInfo,
                  device: str | Any = "cpu", eval_size: int | None = None) -> np.ndarray:
    """Class-index mask (uint8 HxW) at the image's own size.

    `image`: a path, a PIL image or an RGB uint8 array. The model sees the image rescaled so its shorter side
    is `eval_size` (None = native size), ImageNet-normalised like the datasets; its logits are resized back
    bilinearly before the argmax. The model must already be on `device`; it runs in eval mode and its
    train/eval flag is restored afterwards."""
    import torch
    from torchvision.transforms.v2 import functional as TF

    from .data.transforms import normalize
    from .engine import forward_logits

    device = torch.device(device)
    param = next(model.parameters(), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(f"the model is on {param.device} but device={device}; move it with model.to({device.type!r})"
                         " or pass its device")
    rgb = _as_rgb(image)
    h, w = rgb.shape[:2]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)  # copy: PIL arrays are read-only
    if eval_size is not None and min(h, w) != eval_size:
        x = TF.resize(x, eval_size, antialias=True)
    x = normalize(x)[None].to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = forward_logits(model, x, (h, w))
    finally:
        model.train(was_training)
    if logits.shape[1] != info.num_classes:
        raise ValueError(f"the model predicts {logits.shape[1]} classes but {info.name} has {info.num_classes}")
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


def overlay(image_rgb: np.ndarray, mask: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with each pixel blended with its class colour (weight `alpha`); void (255) pixels untouched.
    RGB uint8 HxWx3 in (float images are taken as 0-1), RGB uint8 HxWx3 out."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = np.asarray(image_rgb)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3].astype(np.float32) * (255.0 if np.issubdtype(img.dtype, np.floating) else 1.0)
    mask = np.asarray(mask)
    if img.shape[:2] != mask.shape:
        raise ValueError(f"image is {img.shape[0]}x{img.shape[1]} but the mask is {mask.shape[0]}x{mask.shape[1]}")
    colours = np.asarray(palette)[mask.astype(np.intp).clip(0, 255)].astype(np.float32)
    labelled = (mask != IGNORE_INDEX)[..., None]
    out = np.where(labelled, (1.0 - alpha) * img + alpha * colours, img)
    return out.round().clip(0, 255).astype(np.uint8)


def save_legend(mask: np.ndarray, path: str | Path, info: DatasetInfo) -> None:
    """A small PNG listing the classes present in `mask` with their colours (void only if present)."""
    from matplotlib.figure import Figure

    from .viz import class_legend

    present = np.unique(mask).tolist()
    handles = class_legend(info, present, void=IGNORE_INDEX in present)
    fig = Figure(figsize=(3.2, 0.3 * len(handles) + 0.5))
    fig.legend(handles=handles, loc="center", frameon=False, fontsize=9, title="predicted classes")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def save_prediction(image_path: str | Path, mask: np.ndarray, out_dir: str | Path, info: DatasetInfo,
                    stem: str | None = None, image: np.ndarray | None = None) -> dict[str, Path]:
    """Write <stem>.png (class indices, see save_index_png), <stem>_overlay.png and <stem>_legend.png into
    `out_dir`; returns {"mask", "overlay", "legend"} -> path. `stem` defaults to the image's file stem; `image`
    (RGB array) saves re-reading the file."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or Path(image_path).stem
    paths = {k: out_dir / f"{stem}{suffix}" for k, suffix in OUTPUT_SUFFIXES.items()}
    if any(p.resolve() == Path(image_path).resolve() for p in paths.values()):
        raise ValueError(f"{image_path}: writing the prediction would overwrite the image; choose another --out")
    rgb = read_image(image_path) if image is None else image
    save_index_png(mask, paths["mask"], info)
    Image.fromarray(overlay(rgb, mask, info.palette)).save(paths["overlay"])
    save_legend(mask, paths["legend"], info)
    return paths


def output_stems(paths: list[Path]) -> list[str]:
    """One output stem per input, such that no two inputs share an output file (<stem>.png, <stem>_overlay.png,
    <stem>_legend.png; compared case-insensitively, as macOS and Windows do). An input keeps its own file stem
    when that collides with nothing; the others get the first free <stem>-2, <stem>-3, ...
    (x-2.jpg, x.jpg, b/x.jpg -> x-2, x, x-3; a.jpg, a_overlay.jpg -> a, a_overlay-2)."""

    def files(stem: str) -> set[str]:
        return {f"{stem}{suffix}".casefold() for suffix in OUTPUT_SUFFIXES.values()}

    used: set[str] = set()
    stems: list[str | None] = [None] * len(paths)
    for i, p in enumerate(paths):  # first every input that can keep its own name, in order
        if not files(p.stem) & used:
            stems[i] = p.stem
            used |= files(p.stem)
    for i, p in enumerate(paths):  # then numbered names for the rest
        n = 2
        while stems[i] is None:
            if not files(f"{p.stem}-{n}") & used:
                stems[i] = f"{p.stem}-{n}"
                used |= files(f"{p.stem}-{n}")
            n += 1
    return [s for s in stems if s is not None]


def predict_files(run_dir: str | Path, paths: list[str | Path], out_dir: str | Path,
                  device: str | Any = "cpu") -> list[dict[str, Any]]:
    """Segment image files with a trained run (its best.pt) and write three PNGs per image into `out_dir`.

    Every path is checked first, so a non-image fails (DataError naming it) before anything is written.
    Returns one dict per image: image, mask, overlay, legend (paths), size (H, W), classes (names present)."""
    from dataclasses import replace

    from .data import dataset_info, eval_size
    from .engine import resolve_device
    from .runs import load_model

    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no images given")
    for p in paths:
        _check_image(p)
    out_dir = Path(out_dir)
    stems = output_stems(paths)
    inputs = {p.resolve() for p in paths}
    for stem in stems:
        for suffix in OUTPUT_SUFFIXES.values():
            if (out_dir / f"{stem}{suffix}").resolve() in inputs:
                raise ValueError(f"{out_dir / (stem + suffix)} is one of the input images and would be overwritten; "
                                 "choose another --out")
    device = resolve_device(device) if isinstance(device, str) else device
    model, cfg, ckpt = load_model(run_dir, device=device)  # never needs ImageNet weights
    info = dataset_info(cfg.dataset)
    classes = tuple(ckpt["classes"])
    if classes != info.classes:
        if len(classes) != info.num_classes:
            raise ValueError(f"{run_dir}: checkpoint has {len(classes)} classes but {cfg.dataset} has "
                             f"{info.num_classes}")
        info = replace(info, classes=classes)
    size = eval_size(cfg)
    results = []
    for path, stem in zip(paths, stems):
        rgb = read_image(path)
        mask = predict_image(model, rgb, info, device, size)
        files = save_prediction(path, mask, out_dir, info, stem=stem, image=rgb)
        results.append({"image": path, **files, "size": mask.shape,
                        "classes": [info.classes[i] for i in np.unique(mask).tolist() if i < info.num_classes]})
    return results


# ------------------------------------------------------------------------------------------------------ CLI
def cmd_predict(args: argparse.Namespace) -> int:
    """Run predict_files and print one line per image."""
    results = predict_files(args.run, args.images, args.out, device=args.device)
    for r in results:
        h, w = r["size"]
        print(f"{r['image']} ({w}x{h}) -> {r['mask']}, {r['overlay'].name}, {r['legend'].name}: "
              f"{', '.join(r['classes'])}")
    print(f"{len(results)} image(s) segmented into {args.out}")
    return 0
