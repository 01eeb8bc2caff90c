"""Synthetic PASCAL VOC 2012-format segmentation data: the offline default dataset.

`generate_synthetic_voc` writes a real ``VOCdevkit/VOC2012`` tree (JPEGImages, SegmentationClass palette PNGs,
ImageSets/Segmentation lists) so every loader, metric and plot that reads VOC reads this unchanged.

It is meant as a fair miniature of VOC semantic segmentation, not a toy:

* each of the 20 classes has its own shape family (parts built from polygons, ellipses, capsules, rings) and its own
  texture (stripes, checkers, grids, dots, speckle, blotches, rings, ... with a class-specific orientation and
  period in pixels), both jittered a little per instance; related classes have related parts and textures
  (cat/dog, cow/horse/sheep, bus/train/car, chair/diningtable, ...);
* the texture is a high-contrast luminance pattern (dark to light shades) over the instance's base colour, and
  that colour is drawn from one distribution shared by every class, the distractors and the background, so colour
  alone does not tell the class: a model has to use texture and shape;
* 1-4 objects per image at 15-70 % of the image side, rotated, flipped, occluding one another and cut by the border;
  classes are sampled with VOC 2012 train-seg image frequencies (person far ahead of the rest);
* the background is smooth noise, gradients, an optional ground plane and distractor shapes (label 0) painted
  with soft low-frequency colour noise or gradients (no class's texture), sometimes in front of objects;
* a thin void (255) band on object outlines like VOC's, and per-image photometric noise (brightness, contrast,
  gaussian noise, occasional blur, JPEG).

Everything is deterministic from the seed: image ``i`` of split ``s`` uses ``np.random.default_rng([seed, s, i])``,
so the bytes do not depend on generation order or on the other counts.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from .classes import VOC_CLASSES, VOC_VOID, voc_palette

GENERATOR_VERSION = 2
JPEG_QUALITY = 90
SPLITS = ("train", "val")
_TMP_PREFIX = ".synthetic_voc_tmp_"
_MAX_LONG_SIDE = 0.95  # cap on an object's long side, as a fraction of the image side
_SS = 2  # supersampling factor when rasterising shapes (anti-aliased edges in the image)

# Images containing each class in VOC 2012 train (segmentation, 1464 images): the class sampling weights.
VOC_TRAIN_IMAGE_COUNTS: dict[str, int] = {
    "aeroplane": 88, "bicycle": 65, "bird": 105, "boat": 78, "bottle": 87, "bus": 78, "car": 128, "cat": 131,
    "chair": 148, "cow": 64, "diningtable": 82, "dog": 121, "horse": 68, "motorbike": 81, "person": 442,
    "pottedplant": 82, "sheep": 63, "sofa": 93, "train": 83, "tvmonitor": 83,
}
_CLASS_WEIGHTS = np.array([VOC_TRAIN_IMAGE_COUNTS[c] for c in VOC_CLASSES[1:]], dtype=np.float64)
_CLASS_WEIGHTS /= _CLASS_WEIGHTS.sum()
_N_OBJECTS_P = (0.3, 0.3, 0.22, 0.18)  # P(1..4 objects in an image)
_P_REPEAT = 0.5  # chance a further object repeats a class already in the image (herds, groups of people)


# --------------------------------------------------------------------------------------------------- geometry


def _j(r: np.random.Generator, x: float, rel: float = 0.1) -> float:
    """x jittered by a random factor in [1 - rel, 1 + rel]."""
    return float(x * r.uniform(1.0 - rel, 1.0 + rel))


class _Parts:
    """A shape as an ordered list of filled polygons in a local frame (x right, y down).

    Each part has a tone (a multiplier on the instance colour, e.g. dark windows or tyres) and is either added to
    the object's mask or cut out of what was drawn before (holes such as the inside of a bicycle wheel).
    """

    def __init__(self) -> None:
        self.prims: list[tuple[np.ndarray, float, bool]] = []

    def poly(self, pts, tone: float = 1.0, add: bool = True) -> None:
        self.prims.append((np.asarray(pts, dtype=np.float64).reshape(-1, 2), tone, add))

    def rect(self, x0: float, y0: float, x1: float, y1: float, tone: float = 1.0, add: bool = True) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], tone, add)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, ang: float = 0.0, tone: float = 1.0,
                add: bool = True, bumps: np.ndarray | None = None, n: int = 28) -> None:
        t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        rad = np.ones_like(t) if bumps is None else bumps
        x, y = rx * rad * np.cos(t), ry * rad * np.sin(t)
        a = math.radians(ang)
        ca, sa = math.cos(a), math.sin(a)
        self.poly(np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], axis=1), tone, add)

    def circle(self, cx: float, cy: float, rad: float, tone: float = 1.0, add: bool = True) -> None:
        self.ellipse(cx, cy, rad, rad, tone=tone, add=add, n=20)

    def ring(self, cx: float, cy: float, r_out: float, r_in: float, tone: float = 1.0) -> None:
        self.ellipse(cx, cy, r_out, r_out, tone=tone, n=32)
        self.ellipse(cx, cy, r_in, r_in, add=False, n=32)

    def rrect(self, cx: float, cy: float, w: float, h: float, rad: float, tone: float = 1.0) -> None:
        rad = min(rad, w / 2, h / 2)
        pts = []
        for (sx, sy, a0) in ((1, 1, 0.0), (-1, 1, 90.0), (-1, -1, 180.0), (1, -1, 270.0)):
            ccx, ccy = cx + sx * (w / 2 - rad), cy + sy * (h / 2 - rad)
            for a in np.radians(np.linspace(a0, a0 + 90.0, 4)):
                pts.append((ccx + rad * math.cos(a), ccy + rad * math.sin(a)))
        self.poly(pts, tone)

    def capsule(self, p0, p1, w: float, tone: float = 1.0) -> None:
        """A thick line with round ends (limbs, bars, masts); w is the full width."""
        (x0, y0), (x1, y1) = p0, p1
        a = math.atan2(y1 - y0, x1 - x0)
        h = w / 2
        end1 = [(x1 + h * math.cos(t), y1 + h * math.sin(t)) for t in np.linspace(a - np.pi / 2, a + np.pi / 2, 6)]
        end0 = [(x0 + h * math.cos(t), y0 + h * math.sin(t)) for t in np.linspace(a + np.pi / 2, a + 1.5 * np.pi, 6)]
        self.poly(end1 + end0, tone)

    def limb(self, p0, ang: float, length: float, w: float, tone: float = 1.0) -> tuple[float, float]:
        """A capsule from p0 at angle ang (degrees, 90 = straight down); returns its far end."""
        a = math.radians(ang)
        p1 = (p0[0] + length * math.cos(a), p0[1] + length * math.sin(a))
        self.capsule(p0, p1, w, tone)
        return p1


def _bumps(r: np.random.Generator, n: int, k: float, amp: float) -> np.ndarray:
    """Radial multipliers for a bumpy outline (sheep fleece, foliage)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    out = 1.0 + amp * np.abs(np.sin(k * t / 2 + r.uniform(0, np.pi)))
    out += 0.5 * amp * np.sin(2 * t + r.uniform(0, 2 * np.pi))
    return out


# ----------------------------------------------------------------------------------------------- class shapes
# Each builder draws one instance of its class with random part proportions; overall size and position do not
# matter (the result is normalised so its larger bounding-box side is 1 and then placed on the image).


def _aeroplane(r: np.random.Generator, p: _Parts) -> None:
    if r.random() < 0.5:  # top view: fuselage crossed by swept wings and a tailplane
        p.capsule((-0.5, 0.0), (0.5, 0.0), _j(r, 0.11))
        wx, span, chord, sweep = _j(r, 0.08, 0.5), _j(r, 0.5), _j(r, 0.16), _j(r, 0.16, 0.5)
        tspan = span * _j(r, 0.35)
        for s in (-1, 1):
            p.poly([(wx, 0), (wx - sweep, s * span), (wx - sweep - 0.6 * chord, s * span), (wx - 1.6 * chord, 0)])
            p.poly([(-0.34, 0), (-0.44, s * tspan), (-0.5, s * tspan), (-0.5, 0)])
    else:  # side view: fuselage, tail fin, wing root, engine, window line
        fh = _j(r, 0.12)
        p.capsule((-0.5, 0.0), (0.5, 0.0), fh)
        fin = _j(r, 0.24)
        p.poly([(-0.28, 0), (-0.52, 0), (-0.58, -fin), (-0.47, -fin)])
        wy = _j(r, 0.2)
        p.poly([(0.12, 0.01), (-0.06, 0.01), (-0.24, wy), (-0.15, wy)], tone=0.85)
        if r.random() < 0.6:
            p.capsule((-0.05, fh * 0.9), (0.1, fh * 0.9), 0.07, tone=0.7)
        p.capsule((-0.32, -fh * 0.12), (0.38, -fh * 0.12), fh * 0.22, tone=0.6)


def _bicycle(r: np.random.Generator, p: _Parts) -> None:
    rw, tyre, bar = _j(r, 0.2), _j(r, 0.06, 0.3), _j(r, 0.05, 0.3)
    a, f = (-0.34, 0.0), (_j(r, 0.34, 0.1), 0.0)
    b = (0.0, _j(r, 0.02, 1.0))
    s, h = (-0.1, -_j(r, 0.32, 0.1)), (0.22, -_j(r, 0.33, 0.1))
    for c in (a, f):
        p.ring(c[0], c[1], rw, rw - tyre, tone=0.45)
        p.circle(c[0], c[1], 0.03, tone=0.8)
    for u, v in ((a, b), (a, s), (s, b), (b, h), (s, h), (h, f)):
        p.capsule(u, v, bar)
    p.capsule((s[0] - 0.08, s[1] - 0.05), (s[0] + 0.03, s[1] - 0.05), 0.045, tone=0.5)  # saddle
    p.capsule(h, (h[0] - 0.05, h[1] - 0.09), bar)
    p.capsule((h[0] - 0.1, h[1] - 0.09), (h[0] + 0.01, h[1] - 0.09), bar * 0.9)  # handlebar


def _bird(r: np.random.Generator, p: _Parts) -> None:
    bx, by = _j(r, 0.22), _j(r, 0.13)
    p.ellipse(0, 0, bx, by, ang=-10)
    hx, hy, hr = bx * 0.95, -by * 0.9, _j(r, 0.085)
    p.circle(hx, hy, hr)
    p.poly([(hx + hr * 0.8, hy - 0.02), (hx + hr * 0.8, hy + 0.03), (hx + hr + _j(r, 0.07), hy + 0.01)], tone=0.7)
    tl = _j(r, 0.2)
    p.poly([(-bx * 0.8, -0.03), (-bx * 0.8, 0.04), (-bx - tl, 0.06 + r.uniform(-0.05, 0.08))], tone=0.85)
    if r.random() < 0.55:  # wings spread: two triangles above and below (flight, top-ish view)
        ws = _j(r, 0.42)
        tip = r.uniform(-0.15, 0.05)
        p.poly([(-0.1, -0.02), (0.1, -0.02), (tip, -ws)], tone=0.9)
        if r.random() < 0.6:
            p.poly([(-0.1, 0.02), (0.1, 0.02), (tip, ws * 0.8)], tone=0.9)
    else:  # folded wing and legs
        p.ellipse(-0.04, 0.0, bx * 0.7, by * 0.6, ang=-5, tone=0.8)
        for x in (-0.03, 0.04):
            p.limb((x, by * 0.7), 95, _j(r, 0.14), 0.022, tone=0.6)


def _boat(r: np.random.Generator, p: _Parts) -> None:
    tw, bw, hh = _j(r, 1.0), _j(r, 0.65), _j(r, 0.16)
    y0 = 0.25
    p.poly([(-tw / 2, y0), (tw / 2 + 0.05, y0 - 0.04), (bw / 2, y0 + hh), (-bw / 2, y0 + hh)])
    if r.random() < 0.65:  # sailing boat: mast, main sail, maybe a jib
        mx = r.uniform(-0.12, 0.1)
        top = -_j(r, 0.6, 0.1)
        p.capsule((mx, y0), (mx, top), 0.025, tone=0.7)
        p.poly([(mx + 0.02, top + 0.03), (mx + 0.02, y0 - 0.05), (mx + _j(r, 0.38), y0 - 0.05)], tone=1.25)
        if r.random() < 0.6:
            p.poly([(mx - 0.02, top + 0.08), (mx - 0.02, y0 - 0.05), (mx - _j(r, 0.28), y0 - 0.05)], tone=1.15)
    else:  # motor boat: cabin with a window row
        cw, ch = _j(r, 0.4), _j(r, 0.18)
        p.poly([(-cw / 2, y0), (cw / 2, y0), (cw / 2 - 0.06, y0 - ch), (-cw / 2, y0 - ch)], tone=1.1)
        for k in range(3):
            x = -cw / 2 + 0.05 + k * cw / 3.2
            p.rect(x, y0 - ch * 0.75, x + cw / 5, y0 - ch * 0.35, tone=0.5)


def _bottle(r: np.random.Generator, p: _Parts) -> None:
    w, wn = _j(r, 0.3), _j(r, 0.1)
    ys, yn = -_j(r, 0.05, 1.0), -_j(r, 0.25)
    p.rrect(0, (ys + 0.5) / 2, w, 0.5 - ys, 0.04)
    p.poly([(-w / 2, ys + 0.01), (w / 2, ys + 0.01), (wn / 2, yn), (-wn / 2, yn)])
    p.rect(-wn / 2, yn + 0.01, wn / 2, -0.45)
    p.rect(-wn / 2 - 0.01, -0.45, wn / 2 + 0.01, -0.5, tone=0.7)  # cap
    if r.random() < 0.6:  # label
        ly = r.uniform(0.05, 0.25)
        p.rect(-w / 2, ly, w / 2, ly + _j(r, 0.14), tone=1.3)


def _wheels(p: _Parts, xs, y: float, rad: float) -> None:
    for x in xs:
        p.circle(x, y, rad, tone=0.3)
        p.circle(x, y, rad * 0.45, tone=0.75)


def _bus(r: np.random.Generator, p: _Parts) -> None:
    double = r.random() < 0.2
    h = _j(r, 0.62 if double else 0.42, 0.1)
    p.rrect(0, 0, 1.0, h, 0.05)
    rows = (-h * 0.28, h * 0.12) if double else (-h * 0.15,)
    n = int(r.integers(5, 8))
    wh = min(0.12, h * 0.28)
    for wy in rows:
        for k in range(n):
            x = -0.44 + k * 0.82 / n
            p.rect(x, wy - wh / 2, x + 0.82 / n - 0.025, wy + wh / 2, tone=0.45)
    p.rect(0.42, -h * 0.35, 0.49, h * 0.2, tone=0.45)  # windscreen
    _wheels(p, (-0.3, 0.3), h / 2, _j(r, 0.08))


def _car(r: np.random.Generator, p: _Parts) -> None:
    bh, ch = _j(r, 0.24), _j(r, 0.2)
    p.rrect(0, 0.12, 1.0, bh, 0.06)
    cb, ct = _j(r, 0.7, 0.1), _j(r, 0.45)
    cx = r.uniform(-0.08, 0.05)
    top = 0.12 - bh / 2
    p.poly([(cx - cb / 2, top + 0.01), (cx + cb / 2, top + 0.01), (cx + ct / 2, top - ch), (cx - ct / 2, top - ch)])
    m, ty = 0.04, top - ch + 0.035
    p.poly([(cx - cb / 2 + 0.08, top), (cx - 0.02, top), (cx - 0.02, ty), (cx - ct / 2 + m, ty)], tone=0.45)
    p.poly([(cx + 0.02, top), (cx + cb / 2 - 0.08, top), (cx + ct / 2 - m, ty), (cx + 0.02, ty)], tone=0.45)
    _wheels(p, (-0.3, 0.3), 0.12 + bh / 2, _j(r, 0.11))


def _cat_like(r: np.random.Generator, p: _Parts, dog: bool) -> None:
    """Cats and dogs share a plan (body, head, ears, legs, tail) and differ in proportions, ears and snout."""
    if r.random() < 0.35:  # sitting, seen from the front-side
        bw, bh = _j(r, 0.17), _j(r, 0.26)
        p.ellipse(0, 0.1, bw, bh)
        hx, hy = r.uniform(-0.03, 0.03), 0.1 - bh - 0.06
        tail_from = (-bw * 0.6, 0.1 + bh * 0.8)
        for x in (-bw * 0.4, bw * 0.4):
            p.limb((x, 0.15), 90, bh * 0.9, 0.07)
    else:  # standing or walking, side view
        bw, bh = _j(r, 0.32 if dog else 0.3), _j(r, 0.15 if dog else 0.14)
        p.ellipse(0, 0, bw, bh, ang=r.uniform(-5, 5))
        hx, hy = bw * 0.95, -bh * 1.2
        tail_from = (-bw * 0.9, -bh * 0.3)
        leg = _j(r, 0.24 if dog else 0.17)
        for x in (-bw * 0.65, -bw * 0.45, bw * 0.45, bw * 0.65):
            p.limb((x, bh * 0.3), 90 + r.uniform(-15, 15), leg, 0.075 if dog else 0.065)
    hr = _j(r, 0.11)
    p.circle(hx, hy, hr)
    if dog:
        p.ellipse(hx + hr * 0.9, hy + hr * 0.3, _j(r, 0.09), _j(r, 0.05))  # snout
        p.circle(hx + hr * 0.9 + 0.08, hy + hr * 0.2, 0.025, tone=0.3)  # nose
        if r.random() < 0.7:  # floppy ears
            p.ellipse(hx - hr * 0.5, hy + hr * 0.3, 0.05, _j(r, 0.11), ang=15, tone=0.75)
        else:  # pointed ears: the confusable dogs
            for s in (-1, 1):
                p.poly([(hx + s * hr * 0.7, hy - hr * 0.3), (hx + s * hr * 0.1, hy - hr * 0.7),
                        (hx + s * hr * 0.55, hy - hr * 1.8)])
        p.limb(tail_from, -130 + r.uniform(-30, 30), _j(r, 0.18), 0.06)
    else:
        for s in (-1, 1):  # sharp triangle ears
            p.poly([(hx + s * hr * 0.85, hy - hr * 0.25), (hx + s * hr * 0.15, hy - hr * 0.8),
                    (hx + s * hr * 0.7, hy - hr * 1.75)])
        q = tail_from  # long curling tail
        ang = r.uniform(-200, -140)
        for _ in range(4):
            q = p.limb(q, ang, _j(r, 0.09), 0.05)
            ang += r.uniform(15, 35)


def _cat(r: np.random.Generator, p: _Parts) -> None:
    _cat_like(r, p, dog=False)


def _dog(r: np.random.Generator, p: _Parts) -> None:
    _cat_like(r, p, dog=True)


def _cow(r: np.random.Generator, p: _Parts) -> None:
    bw, bh = _j(r, 0.64), _j(r, 0.32)
    p.rrect(0, 0, bw, bh, 0.07)
    leg = _j(r, 0.26)
    for x in (-bw * 0.42, -bw * 0.3, bw * 0.3, bw * 0.42):
        p.rect(x - 0.04, bh * 0.4, x + 0.04, bh / 2 + leg)
    hx = bw / 2 + 0.05
    p.poly([(bw / 2 - 0.05, -bh * 0.45), (hx + 0.06, -bh * 0.55), (hx + 0.12, 0.05), (hx + 0.02, 0.1)])
    p.ellipse(hx + 0.09, 0.07, 0.06, 0.05, tone=0.8)  # muzzle
    for s in (-1, 1):  # horns
        p.poly([(hx + 0.02 + s * 0.03, -bh * 0.55), (hx + 0.05 + s * 0.03, -bh * 0.55),
                (hx + 0.03 + s * 0.06, -bh * 0.55 - 0.07)], tone=1.2)
    p.limb((-bw / 2, -bh * 0.4), 100, _j(r, 0.3), 0.035)
    if r.random() < 0.5:
        p.ellipse(bw * 0.15, bh / 2, 0.07, 0.05, tone=1.15)  # udder


def _horse(r: np.random.Generator, p: _Parts) -> None:
    bw, bh = _j(r, 0.3), _j(r, 0.16)
    p.ellipse(0, 0, bw, bh)
    leg = _j(r, 0.4)
    for x, a in ((-bw * 0.7, r.uniform(80, 100)), (-bw * 0.5, r.uniform(80, 110)),
                 (bw * 0.55, r.uniform(70, 100)), (bw * 0.75, r.uniform(80, 110))):
        knee = p.limb((x, bh * 0.3), a, leg * 0.55, 0.08)
        p.limb(knee, 90 + r.uniform(-10, 10), leg * 0.5, 0.065)
    na = r.uniform(-70, -45)  # long neck rising forwards
    neck0 = (bw * 0.7, -bh * 0.4)
    neck1 = p.limb(neck0, na, _j(r, 0.3), 0.14)
    p.limb((neck0[0] - 0.02, neck0[1] - 0.04), na, 0.3, 0.04, tone=0.6)  # mane
    p.limb(neck1, r.uniform(30, 60), _j(r, 0.22), 0.1)  # long head pointing down
    p.limb((-bw, -bh * 0.3), r.uniform(95, 130), _j(r, 0.32), 0.07, tone=0.6)  # tail


def _sheep(r: np.random.Generator, p: _Parts) -> None:
    bw, bh = _j(r, 0.3), _j(r, 0.2)
    leg = _j(r, 0.14)
    for x in (-bw * 0.6, -bw * 0.35, bw * 0.35, bw * 0.6):
        p.rect(x - 0.035, bh * 0.5, x + 0.035, bh + leg, tone=0.65)
    p.ellipse(0, 0, bw, bh, bumps=_bumps(r, 72, r.uniform(14, 20), _j(r, 0.09)), n=72)  # fleece
    hx, hy = bw * 1.05, -bh * 0.35
    p.ellipse(hx, hy, _j(r, 0.09), _j(r, 0.065), ang=25, tone=0.65)
    p.ellipse(hx - 0.05, hy - 0.05, 0.05, 0.022, ang=-20, tone=0.65)  # ear


def _chair(r: np.random.Generator, p: _Parts) -> None:
    sw, dep, sy = _j(r, 0.42), _j(r, 0.14), _j(r, 0.05, 1.0)
    th, leg = 0.06, _j(r, 0.42)
    x0 = -sw / 2
    p.poly([(x0, sy), (x0 + sw, sy), (x0 + sw + dep, sy - dep * 0.6), (x0 + dep, sy - dep * 0.6)])  # seat top
    p.rect(x0, sy, x0 + sw, sy + th, tone=0.8)
    for x, y, t in ((x0, sy, 1.0), (x0 + sw - 0.055, sy, 1.0), (x0 + dep, sy - dep * 0.6, 0.75),
                    (x0 + sw + dep - 0.055, sy - dep * 0.6, 0.75)):
        p.rect(x, y, x + 0.055, y + leg, tone=t)
    # backrest: posts continuing the back legs up (the chair's L), with a panel or slats between them
    bt = -_j(r, 0.5)
    bx0, bx1 = x0 + dep, x0 + sw + dep
    p.rect(bx0, bt, bx0 + 0.06, sy - dep * 0.6)
    p.rect(bx1 - 0.06, bt, bx1, sy - dep * 0.6)
    if r.random() < 0.5:
        p.rect(bx0, bt, bx1, bt + (sy - bt) * _j(r, 0.5, 0.3))
    else:
        for k in range(3):
            y = bt + k * 0.11
            p.rect(bx0, y, bx1, y + 0.06)


def _diningtable(r: np.random.Generator, p: _Parts) -> None:
    w, d, leg = 1.0, _j(r, 0.24), _j(r, 0.38)
    inset = _j(r, 0.1)
    if r.random() < 0.75:  # rectangular top in perspective, apron and four legs
        p.poly([(-w / 2, 0), (w / 2, 0), (w / 2 - inset, -d), (-w / 2 + inset, -d)])
        p.rect(-w / 2, 0, w / 2, 0.05, tone=0.75)
        for x in (-w / 2 + 0.02, w / 2 - 0.085):
            p.rect(x, 0.03, x + 0.065, 0.03 + leg)
        for x in (-w / 2 + inset + 0.03, w / 2 - inset - 0.08):
            p.rect(x, 0.0, x + 0.06, leg * 0.85, tone=0.75)
    else:  # round top on a pedestal
        p.ellipse(0, -d / 2, w / 2, d / 2)
        p.rect(-w / 2, -d / 2, w / 2, -d / 2 + 0.04, tone=0.75)
        p.rect(-0.05, 0, 0.05, leg)
        p.poly([(-0.05, leg - 0.05), (0.05, leg - 0.05), (0.22, leg + 0.02), (-0.22, leg + 0.02)])


def _motorbike(r: np.random.Generator, p: _Parts) -> None:
    rw = _j(r, 0.16)
    a, f = (-0.35, 0.0), (_j(r, 0.36, 0.1), 0.0)
    _wheels(p, (a[0], f[0]), 0.0, rw)
    p.poly([a, (-0.05, -0.18), (-0.3, -0.22)], tone=0.8)  # rear frame
    p.rect(-0.12, -0.14, 0.1, 0.04, tone=0.6)  # engine block
    p.ellipse(0.05, -0.2, _j(r, 0.14), 0.065, ang=-8)  # tank
    p.capsule((-0.3, -0.24), (-0.05, -0.22), 0.06, tone=0.45)  # seat
    hb = (f[0] - 0.08, -_j(r, 0.38, 0.1))
    p.capsule(f, hb, 0.04, tone=0.8)  # fork
    p.capsule((hb[0] - 0.06, hb[1]), (hb[0] + 0.04, hb[1] - 0.02), 0.03, tone=0.5)
    p.circle(hb[0] + 0.05, hb[1] + 0.07, 0.04, tone=1.3)  # headlight
    p.capsule((-0.1, 0.04), (-0.42, -0.06), 0.035, tone=0.85)  # exhaust


def _person(r: np.random.Generator, p: _Parts) -> None:
    pose = r.choice(3, p=[0.6, 0.2, 0.2])  # standing, sitting, upper body only (portrait cut)
    hr = _j(r, 0.075 if pose != 2 else 0.11)
    sw = _j(r, 0.27 if pose != 2 else 0.4)
    tl = _j(r, 0.33 if pose != 2 else 0.5)
    hy = -0.42
    neck = hy + hr
    p.circle(0, hy, hr, tone=1.1)
    p.ellipse(0, hy - hr * 0.35, hr * 1.05, hr * 0.75, tone=0.55, n=20)  # hair
    p.rect(-hr * 0.35, neck - 0.01, hr * 0.35, neck + 0.04, tone=1.1)
    top, hip_w = neck + 0.03, sw * _j(r, 0.75, 0.1)
    p.poly([(-sw / 2, top), (sw / 2, top), (hip_w / 2, top + tl), (-hip_w / 2, top + tl)])
    aw, al = 0.07 * (1.4 if pose == 2 else 1.0), _j(r, 0.17 if pose != 2 else 0.22)
    for s in (-1, 1):
        sh = (s * (sw / 2 - 0.02), top + 0.03)
        if r.random() < 0.2:  # raised arm
            elbow = p.limb(sh, 90 - s * r.uniform(100, 150), al, aw)
        else:
            elbow = p.limb(sh, 90 - s * r.uniform(5, 35), al, aw)
        p.limb(elbow, 90 - s * r.uniform(-60, 40), al * 0.95, aw * 0.9, tone=1.1)
    if pose == 2:
        return
    lw, ll = 0.095, _j(r, 0.24)
    for s in (-1, 1):
        hip = (s * (hip_w / 2 - lw / 2), top + tl - 0.02)
        if pose == 1:  # sitting: thighs forward, shins down
            knee = p.limb(hip, r.uniform(-10, 15), ll, lw, tone=0.75)
            p.limb(knee, 90 + r.uniform(-10, 10), ll, lw * 0.9, tone=0.75)
        else:
            knee = p.limb(hip, 90 + s * r.uniform(0, 15), ll, lw, tone=0.75)
            p.limb(knee, 90 + s * r.uniform(-5, 15), ll, lw * 0.9, tone=0.75)


def _pottedplant(r: np.random.Generator, p: _Parts) -> None:
    tw, bw, ph = _j(r, 0.34), _j(r, 0.24), _j(r, 0.26)
    y0 = 0.5 - ph
    p.poly([(-tw / 2, y0), (tw / 2, y0), (bw / 2, 0.5), (-bw / 2, 0.5)], tone=0.8)
    p.rect(-tw / 2 - 0.02, y0 - 0.03, tw / 2 + 0.02, y0 + 0.02, tone=0.9)  # rim
    if r.random() < 0.5:  # leaves radiating from the pot
        for _ in range(int(r.integers(5, 10))):
            a = r.uniform(-160, -20)
            ln = _j(r, 0.32, 0.4)
            rad = math.radians(a)
            cx, cy = ln / 2 * math.cos(rad), y0 - 0.02 + ln / 2 * math.sin(rad)
            p.ellipse(cx, cy, ln / 2, _j(r, 0.05), ang=a, tone=r.uniform(0.9, 1.2))
    else:  # a bushy crown
        fr = _j(r, 0.3)
        p.ellipse(0, y0 - fr * 0.8, fr, fr * _j(r, 0.85), bumps=_bumps(r, 64, r.uniform(7, 11), 0.18), n=64)
        p.rect(-0.02, y0 - fr * 0.3, 0.02, y0, tone=0.7)


def _sofa(r: np.random.Generator, p: _Parts) -> None:
    w, sh, bh, aw = 1.0, _j(r, 0.18), _j(r, 0.3), _j(r, 0.12)
    sy = 0.0
    p.rrect(0, sy - bh / 2 + 0.02, w - aw, bh, 0.05, tone=0.85)  # backrest
    p.rect(-w / 2 + aw * 0.6, sy, w / 2 - aw * 0.6, sy + sh)  # seat
    n = int(r.integers(2, 4))
    cw = (w - 2 * aw) / n
    for k in range(n):  # cushions
        x = -w / 2 + aw + k * cw
        p.rrect(x + cw / 2, sy + 0.02, cw - 0.015, 0.07, 0.03, tone=1.1)
    for s in (-1, 1):  # armrests
        p.rrect(s * (w / 2 - aw / 2), sy + sh / 2 - 0.06, aw, sh + 0.14, 0.05, tone=0.95)
        p.rect(s * (w / 2 - aw / 2) - 0.025, sy + sh, s * (w / 2 - aw / 2) + 0.025, sy + sh + 0.05, tone=0.5)


def _train(r: np.random.Generator, p: _Parts) -> None:
    if r.random() < 0.3:  # head-on: tall rounded front, windscreen, lamps, buffer
        w, h = _j(r, 0.6), 1.0
        p.rrect(0, 0, w, h, 0.12)
        p.rect(-w * 0.38, -h * 0.3, w * 0.38, -h * 0.08, tone=0.45)
        for s in (-1, 1):
            p.circle(s * w * 0.3, h * 0.2, 0.045, tone=1.3)
        p.rect(-w * 0.45, h * 0.38, w * 0.45, h * 0.46, tone=0.4)
        return
    n, ln, h = int(r.integers(1, 4)), _j(r, 0.45), _j(r, 0.22)
    x = 0.0
    for k in range(n):  # a chain of carriages, the first with a sloped nose
        if k == 0:
            p.poly([(x, -h / 2), (x + ln - 0.08, -h / 2), (x + ln, h * 0.1), (x + ln, h / 2), (x, h / 2)])
        else:
            p.rect(x, -h / 2, x + ln, h / 2)
        nw = int(r.integers(4, 7))
        for i in range(nw):
            wx = x + 0.04 + i * (ln - 0.1) / nw
            p.rect(wx, -h * 0.3, wx + (ln - 0.1) / nw - 0.02, -h * 0.02, tone=0.45)
        p.rect(x + 0.02, h / 2, x + ln - 0.02, h / 2 + 0.03, tone=0.4)
        for wx in (x + 0.06, x + 0.12, x + ln - 0.12, x + ln - 0.06):
            p.circle(wx, h / 2 + 0.03, 0.027, tone=0.3)
        if k:
            p.rect(x - 0.035, -0.02, x + 0.01, 0.03, tone=0.5)  # coupler
        x -= ln + 0.03


def _tvmonitor(r: np.random.Generator, p: _Parts) -> None:
    w, h = _j(r, 0.8), _j(r, 0.55)
    crt = r.random() < 0.3
    p.rrect(0, 0, w, h, 0.03)
    b = _j(r, 0.05 if not crt else 0.09)
    p.rect(-w / 2 + b, -h / 2 + b, w / 2 - b, h / 2 - b * (1.0 if not crt else 1.8), tone=0.55)  # screen
    if crt:
        p.rect(-w * 0.4, h / 2, w * 0.4, h / 2 + 0.05, tone=0.8)
    else:  # stand
        p.rect(-0.035, h / 2, 0.035, h / 2 + _j(r, 0.12), tone=0.7)
        p.poly([(-0.06, h / 2 + 0.1), (0.06, h / 2 + 0.1), (0.2, h / 2 + 0.15), (-0.2, h / 2 + 0.15)], tone=0.7)


_SHAPES: tuple[Callable[[np.random.Generator, _Parts], None], ...] = (
    _aeroplane, _bicycle, _bird, _boat, _bottle, _bus, _car, _cat, _chair, _cow,
    _diningtable, _dog, _horse, _motorbike, _person, _pottedplant, _sheep, _sofa, _train, _tvmonitor,
)

# Per-class size multipliers, calibrated so the mean share of an image a class covers when present follows VOC
# 2012 train (cats, buses, trains, tables fill much of a photo; bottles, plants, bicycles are small).
_SIZE_FACTOR = np.array([1.0, 1.21, 0.96, 1.30, 1.06, 0.80, 1.18, 0.91, 1.70, 1.04, 1.17,
                         1.54, 1.26, 1.46, 1.38, 1.10, 0.80, 1.03, 1.11, 1.14, 0.82])
# Class rotation spread (degrees, std of a clipped normal): most VOC objects are roughly upright; flying things less.
_ROT_STD = {1: 30.0, 3: 30.0}
# Texture of each class (index 1..20): a luminance pattern that modulates the instance's random base colour, so
# it tells the class while the colour does not. angle is in degrees in the object's frame; period is the pattern's
# period in pixels at 128 px (scaled with the image size), so a class keeps its local texture at any object scale.
# Every instance jitters them a little (angle +-8 degrees, period x0.88-1.14). Related classes have related
# textures (cat/dog: warped diagonal stripes of opposite slant; cow/horse/sheep: coarse blotches, mottling, fine
# speckle; bus/train/car: grid, horizontal bands, dots).
_TEXTURES: dict[int, list[tuple[float, dict]]] = {
    1: [(1.0, dict(family="stripes", angle=90, period=11, k=3.0))],
    2: [(1.0, dict(family="checker", angle=0, period=4, k=2.0))],
    3: [(1.0, dict(family="chevron", angle=0, period=7, k=2.0))],
    4: [(1.0, dict(family="stripes", angle=90, period=5, k=2.0))],
    5: [(1.0, dict(family="stripes", angle=0, period=5, k=2.0))],
    6: [(1.0, dict(family="grid", angle=0, period=8))],
    7: [(1.0, dict(family="dots", angle=0, period=6, rad=0.25))],
    8: [(1.0, dict(family="stripes", angle=45, period=6, k=2.0, warp=0.35))],
    9: [(1.0, dict(family="stripes", angle=0, period=10, k=3.0))],
    10: [(1.0, dict(family="blotch", period=12))],
    11: [(1.0, dict(family="stripes", angle=90, period=4, k=1.5, warp=0.8))],
    12: [(1.0, dict(family="stripes", angle=135, period=6, k=2.0, warp=0.35))],
    13: [(1.0, dict(family="noise", period=5, gain=2.5))],
    14: [(1.0, dict(family="checker", angle=45, period=8, k=2.0))],
    15: [(0.5, dict(family="checker", angle=0, period=6, k=2.0)), (0.5, dict(family="stripes", angle=90, period=7,
                                                                                k=2.0))],
    16: [(1.0, dict(family="dots", angle=0, period=9, rad=0.32))],
    17: [(1.0, dict(family="noise", period=2.5, gain=3.0))],
    18: [(1.0, dict(family="quilt", angle=0, period=12, k=2.0))],
    19: [(1.0, dict(family="stripes", angle=90, period=3.5, k=2.0))],
    20: [(1.0, dict(family="rings", period=6, k=2.0))],
}


# ------------------------------------------------------------------------------------------------- textures


def _value_noise(u: np.ndarray, v: np.ndarray, freq: float, r: np.random.Generator) -> np.ndarray:
    """Smooth value noise in [0, 1] with about `freq` random values per unit of (u, v)."""
    gx, gy = u * freq, v * freq
    gx = gx - np.floor(gx.min())
    gy = gy - np.floor(gy.min())
    lat = r.random((int(gy.max()) + 2, int(gx.max()) + 2)).astype(np.float32)
    ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    fx, fy = gx - ix, gy - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    top = lat[iy, ix] * (1 - fx) + lat[iy, ix + 1] * fx
    bot = lat[iy + 1, ix] * (1 - fx) + lat[iy + 1, ix + 1] * fx
    return (top * (1 - fy) + bot * fy).astype(np.float32)


def _sharp(s: np.ndarray, k: float) -> np.ndarray:
    """Map s in [-1, 1] to [0, 1], squarer for larger k."""
    return 0.5 + 0.5 * np.tanh(k * s) / math.tanh(k)


def _texture(tex: dict, u: np.ndarray, v: np.ndarray, r: np.random.Generator) -> np.ndarray:
    """A pattern in [0, 1] over object-frame coordinates (u, v) (object extent ~1)."""
    fam = tex["family"]
    a = math.radians(tex.get("angle", 0.0))
    xr, yr = u * math.cos(a) + v * math.sin(a), -u * math.sin(a) + v * math.cos(a)
    f, k = tex.get("freq", 1.0), tex.get("k", 1.5)
    tau = 2.0 * np.pi
    if fam == "stripes":
        ph = tau * f * xr + r.uniform(0, tau)
        if tex.get("warp", 0.0) > 0:
            ph = ph + tex["warp"] * tau * (_value_noise(u, v, max(1.5, f / 3), r) - 0.5)
        return _sharp(np.sin(ph), k)
    if fam == "chevron":
        return _sharp(np.sin(tau * f * (xr + 0.9 * np.abs(yr)) + r.uniform(0, tau)), k)
    if fam == "checker":
        return _sharp(np.sin(tau * f * xr + r.uniform(0, tau)) * np.sin(tau * f * yr + r.uniform(0, tau)), k)
    if fam == "grid":  # thin lines in both directions
        gx = np.abs(np.cos(np.pi * f * xr + r.uniform(0, np.pi)))
        gy = np.abs(np.cos(np.pi * f * yr + r.uniform(0, np.pi)))
        return np.clip((np.maximum(gx, gy) - 0.85) / 0.08, 0.0, 1.0)
    if fam == "quilt":
        return _sharp(np.cos(tau * f * xr) * np.cos(tau * f * yr), k)
    if fam == "dots":
        gy = yr * f + r.uniform(0, 1)
        gx = xr * f + 0.5 * np.floor(gy) + r.uniform(0, 1)
        d = np.hypot(gx - np.floor(gx) - 0.5, gy - np.floor(gy) - 0.5)
        return np.clip((tex.get("rad", 0.3) - d) / 0.1 + 0.5, 0.0, 1.0)
    if fam == "rings":
        rr = np.hypot(u - r.uniform(-0.15, 0.15), v - r.uniform(-0.15, 0.15))
        return _sharp(np.sin(tau * f * rr + r.uniform(0, tau)), k)
    if fam == "noise":
        return np.clip((_value_noise(u, v, f, r) - 0.5) * tex.get("gain", 1.6) + 0.5, 0.0, 1.0)
    if fam == "blotch":
        return np.clip((_value_noise(u, v, f, r) - 0.5) * 8.0 + 0.5, 0.0, 1.0)
    if fam == "gradient":
        return np.clip(0.5 + xr * r.uniform(0.8, 1.6), 0.0, 1.0)
    if fam == "cylinder":
        w = tex.get("width", 0.12)
        return np.exp(-(((yr - r.uniform(-0.15, 0.15)) / w) ** 2))
    raise ValueError(f"unknown texture family {fam!r}")


def _jitter_texture(tex: dict, r: np.random.Generator) -> dict:
    out = dict(tex)
    out["angle"] = tex.get("angle", 0.0) + r.uniform(-8, 8)
    if "period" in tex:
        out["period"] = tex["period"] * float(np.exp(r.uniform(-0.13, 0.13)))
    else:
        out["freq"] = tex.get("freq", 1.0) * float(np.exp(r.uniform(-0.13, 0.13)))
    return out


def _smooth_texture(r: np.random.Generator) -> dict:
    """A low-frequency pattern (distractors, ground): soft noise or a gradient, unlike any class texture."""
    if r.random() < 0.7:
        return dict(family="noise", freq=r.uniform(0.8, 2.5), gain=r.uniform(0.8, 1.5))
    return dict(family="gradient", angle=r.uniform(0, 180))


# --------------------------------------------------------------------------------------------------- colours


def _random_colour(r: np.random.Generator) -> np.ndarray:
    """An RGB colour (float, 0-255) from the one distribution every class, distractor and background shares."""
    h, s, v = r.random(), r.uniform(0.0, 1.0) ** 0.8, r.uniform(0.15, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p_, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = ((v, t, p_), (q, v, p_), (p_, v, t), (p_, q, v), (t, p_, v), (v, p_, q))[i]
    return np.array(rgb, dtype=np.float32) * 255.0


def _second_colour(r: np.random.Generator, c: np.ndarray) -> np.ndarray:
    """The other colour of a texture: a fresh colour, or a darker or lighter shade of the first."""
    x = r.random()
    if x < 0.5:
        return _random_colour(r)
    if x < 0.75:
        return c * r.uniform(0.35, 0.7)
    return c + (255.0 - c) * r.uniform(0.3, 0.7)


# ------------------------------------------------------------------------------------------------- rendering


class _Placed:
    """A shape rasterised on the image: coverage, tone and object-frame coordinates over its bounding box."""

    def __init__(self, prims, size: int, centre, extent: float, angle_deg: float, flip: bool,
                 aspect: float) -> None:
        adds = np.concatenate([pts for pts, _, add in prims if add])
        lo, hi = adds.min(axis=0), adds.max(axis=0)
        mid, span, short = (lo + hi) / 2, float((hi - lo).max()), float((hi - lo).min())
        # extent is sqrt(bbox area) / image side, so elongated things (trains, people) get a longer long side
        extent_px = min(extent * size * math.sqrt(span / max(short, 1e-6)), _MAX_LONG_SIDE * size)
        a = math.radians(angle_deg)
        ca, sa = math.cos(a), math.sin(a)
        sx = (-1.0 if flip else 1.0) * aspect * extent_px / span
        sy = extent_px / span
        self.centre = np.asarray(centre, dtype=np.float64)
        self.size = size

        def to_px(pts: np.ndarray) -> np.ndarray:
            q = (pts - mid) * (sx, sy)
            return np.stack([ca * q[:, 0] - sa * q[:, 1], sa * q[:, 0] + ca * q[:, 1]], axis=1) + self.centre

        px = [(to_px(pts), tone, add) for pts, tone, add in prims]
        allp = np.concatenate([q for q, _, add in px if add])
        x0, y0 = (max(0, int(math.floor(v))) for v in allp.min(axis=0))
        x1, y1 = (min(size, int(math.ceil(v)) + 1) for v in allp.max(axis=0))
        self.box = (x0, y0, x1, y1)
        self.empty = x1 <= x0 or y1 <= y0
        if self.empty:
            return
        w, h = x1 - x0, y1 - y0
        cov = Image.new("L", (w * _SS, h * _SS), 0)
        ton = Image.new("L", (w * _SS, h * _SS), 0)
        dc, dt = ImageDraw.Draw(cov), ImageDraw.Draw(ton)
        for q, tone, add in px:
            flat = ((q - (x0, y0)) * _SS - 0.5).ravel().tolist()
            dc.polygon(flat, fill=255 if add else 0)
            dt.polygon(flat, fill=int(round(min(tone, 2.5) * 100)) if add else 0)
        self.cover_ss = np.asarray(cov) >= 128  # supersampled mask: the void band is found at this resolution
        cov_raw = np.asarray(cov.resize((w, h), Image.BOX), dtype=np.float32)
        ton_raw = np.asarray(ton.resize((w, h), Image.BOX), dtype=np.float32)
        self.alpha = cov_raw / 255.0
        self.tone = np.where(cov_raw > 0, ton_raw / np.maximum(cov_raw, 1.0) * 2.55, 1.0).astype(np.float32)
        # object-frame coordinates of the pixel centres (normalised so the shape's extent is 1)
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32) + 0.5, np.arange(y0, y1, dtype=np.float32) + 0.5)
        dx, dy = gx - self.centre[0], gy - self.centre[1]
        self.u = ((ca * dx + sa * dy) / sx / span).astype(np.float32)
        self.v = ((-sa * dx + ca * dy) / sy / span).astype(np.float32)
        self.extent_px = extent_px


def _paint(img: np.ndarray, pl: _Placed, tex: dict, r: np.random.Generator, smooth: bool = False) -> None:
    """Composite a textured, shaded shape onto img (in place), anti-aliased by its coverage.

    Class objects (smooth=False) get their texture as a strong luminance pattern on a random base colour: the
    pattern runs from a dark to a light shade of that colour. Distractors and ground (smooth=True) get a soft blend
    of two random colours instead, so they are no class's texture.
    """
    x0, y0, x1, y1 = pl.box
    c1 = _random_colour(r)
    tex = dict(tex)
    if "period" in tex:  # period in pixels at 128 px -> cycles per object extent
        tex["freq"] = pl.extent_px / (tex["period"] * pl.size / 128.0)
    t = _texture(tex, pl.u, pl.v, r)
    if smooth:
        c2 = _second_colour(r, c1)
        m = (r.uniform(0.35, 0.95) * t)[..., None]
        col = c1 * (1.0 - m) + c2 * m
    else:
        lo = c1 * r.uniform(0.2, 0.45)
        hi = c1 + (255.0 - c1) * r.uniform(0.15, 0.5)
        if r.random() < 0.2:  # sometimes a two-colour pattern, still dark against light
            hi = 0.5 * hi + 0.5 * (_random_colour(r) * 0.5 + 127.5)
        col = lo + (hi - lo) * t[..., None]
    la = r.uniform(0, 2 * np.pi)
    light = 1.0 + r.uniform(0.0, 0.35) * (pl.u * math.cos(la) + pl.v * math.sin(la))
    col = col * (pl.tone * light)[..., None]
    a = pl.alpha[..., None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1.0 - a) + col * a


def _background(r: np.random.Generator, size: int) -> np.ndarray:
    """Smooth two-colour noise, a lighting gradient and sometimes a textured ground plane."""
    g = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    u, v = np.meshgrid(g, g)
    ca, cb = _random_colour(r), _random_colour(r)
    n = _value_noise(u, v, r.uniform(1.5, 4.0), r)[..., None]
    img = ca * (1 - n) + cb * n
    if r.random() < 0.5:
        hy = r.uniform(-0.1, 0.35) + r.uniform(-0.2, 0.2) * u
        below = np.clip((v - hy) * size / 2.0, 0.0, 1.0)[..., None]
        cg = _random_colour(r)
        t = _texture(_smooth_texture(r), u * 2, v * 2, r)[..., None] * r.uniform(0.1, 0.5)
        ground = cg * (1 - t) + _second_colour(r, cg) * t
        img = img * (1 - below) + ground * below
    la = r.uniform(0, 2 * np.pi)
    img = img * (1.0 + r.uniform(0, 0.4) * (u * math.cos(la) + v * math.sin(la)))[..., None]
    return img.astype(np.float32)


def _distractor_parts(r: np.random.Generator) -> list:
    """Shapes that belong to no class: blobs, boxes, poles, discs, rounded panels."""
    p = _Parts()
    kind = int(r.integers(5))
    if kind == 0:
        p.ellipse(0, 0, 0.5, r.uniform(0.3, 0.6), bumps=_bumps(r, 48, r.uniform(2, 6), r.uniform(0.1, 0.5)), n=48)
    elif kind == 1:
        p.rect(-0.5, -r.uniform(0.15, 0.5), 0.5, r.uniform(0.15, 0.5))
    elif kind == 2:
        p.capsule((0, -0.5), (0, 0.5), r.uniform(0.04, 0.12))
    elif kind == 3:
        p.ellipse(0, 0, 0.5, r.uniform(0.2, 0.5))
    else:
        p.rrect(0, 0, 1.0, r.uniform(0.3, 0.8), r.uniform(0.05, 0.2))
    return p.prims


def _place(r: np.random.Generator, prims, size: int, extent: float, rot_std: float, margin: float = 0.05) -> _Placed:
    centre = r.uniform(margin, 1.0 - margin, size=2) * size
    angle = float(np.clip(r.normal(0.0, rot_std), -2.5 * rot_std, 2.5 * rot_std))
    if r.random() < 0.08:  # the occasional strongly rotated object
        angle = r.uniform(-70, 70)
    return _Placed(prims, size, centre, extent, angle, bool(r.random() < 0.5), r.uniform(0.85, 1.15))


def _void_band(lab: np.ndarray, inst_ss: np.ndarray, radius: int) -> None:
    """Set to void every pixel holding a supersampled pixel within `radius` of a change of instance.

    inst_ss is the instance map at _SS times the resolution (0 = background, also where a distractor hides an
    object), so outlines between objects and background and between two objects (even of one class) get a band
    centred on the true outline, about (2 * radius / _SS + 0.5) pixels wide.
    """
    h, w = inst_ss.shape
    pad = np.pad(inst_ss, radius, mode="edge")
    band = np.zeros(inst_ss.shape, dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                band |= pad[radius + dy:radius + dy + h, radius + dx:radius + dx + w] != inst_ss
    band = band.reshape(h // _SS, _SS, w // _SS, _SS).sum(axis=(1, 3)) >= 2
    lab[band] = VOC_VOID


def void_radius(size: int) -> int:
    """Void band half-width in supersampled pixels: 1 at 128 px (a band ~1.5 px wide, like VOC's 5 px at 500 px)."""
    return max(1, int(round(size / 128)))


def synthesize_example(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Render one image and its label map: (H, W, 3) uint8 RGB and (H, W) uint8 in {0..20, 255}.

    The JPEG round trip is not applied here; `generate_synthetic_voc` writes the image as JPEG.
    """
    r = rng
    img = _background(r, size)
    inst = np.zeros((size * _SS, size * _SS), dtype=np.int16)
    lab = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(r.integers(1, 5))):  # distractors behind the objects
        pl = _place(r, _distractor_parts(r), size, r.uniform(0.15, 0.6), 60.0)
        if not pl.empty:
            _paint(img, pl, _smooth_texture(r), r, smooth=True)
    n_obj = int(r.choice(4, p=_N_OBJECTS_P)) + 1
    classes: list[int] = []
    for _ in range(n_obj):
        if classes and r.random() < _P_REPEAT:
            c = classes[int(r.integers(len(classes)))]
        else:
            c = int(r.choice(20, p=_CLASS_WEIGHTS)) + 1
        classes.append(c)
    for k, c in enumerate(classes, start=1):
        parts = _Parts()
        _SHAPES[c - 1](r, parts)
        extent = (r.uniform(0.45, 0.8) if k == 1 else r.uniform(0.25, 0.6)) * float(_SIZE_FACTOR[c])
        extent = min(extent, _MAX_LONG_SIDE)
        pl = _place(r, parts.prims, size, extent, _ROT_STD.get(c, 10.0), 0.2 if k == 1 else 0.05)
        if pl.empty:
            continue
        opts = _TEXTURES[c]
        tex = opts[int(r.choice(len(opts), p=[w for w, _ in opts]))][1] if len(opts) > 1 else opts[0][1]
        _paint(img, pl, _jitter_texture(tex, r), r)
        x0, y0, x1, y1 = pl.box
        inst[y0 * _SS:y1 * _SS, x0 * _SS:x1 * _SS][pl.cover_ss] = k
        lab[y0:y1, x0:x1][pl.alpha >= 0.5] = c
    if r.random() < 0.25:  # a distractor in front, hiding part of an object (label stays background)
        pl = _place(r, _distractor_parts(r), size, r.uniform(0.1, 0.35), 60.0)
        if not pl.empty:
            _paint(img, pl, _smooth_texture(r), r, smooth=True)
            x0, y0, x1, y1 = pl.box
            inst[y0 * _SS:y1 * _SS, x0 * _SS:x1 * _SS][pl.cover_ss] = 0
            lab[y0:y1, x0:x1][pl.alpha >= 0.5] = 0
    _void_band(lab, inst, void_radius(size))
    # photometric noise: contrast, brightness, sensor noise, sometimes a little blur
    mean = img.mean()
    img = (img - mean) * r.uniform(0.8, 1.2) + mean * r.uniform(0.75, 1.25)
    img = img + r.normal(0.0, r.uniform(1.0, 5.0), size=img.shape).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if r.random() < 0.25:
        out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(r.uniform(0.3, 0.8) * size / 128)))
    return out, lab


# ------------------------------------------------------------------------------------------------ the VOC tree


def _params(n_train: int, n_val: int, size: int, seed: int) -> dict:
    return {"generator": "starter_code.data.synthetic", "version": GENERATOR_VERSION, "seed": int(seed),
            "n_train": int(n_train), "n_val": int(n_val), "size": int(size), "jpeg_quality": JPEG_QUALITY}


def _image_id(split: str, i: int) -> str:
    return f"syn_{split}_{i:06d}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _clean_stale_tmp(root: Path) -> None:
    """Remove temp dirs left by generator processes that no longer run (killed mid-way)."""
    for d in root.glob(_TMP_PREFIX + "*"):
        try:
            pid = int(d.name[len(_TMP_PREFIX):].split("_")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)


def _read_params(voc: Path) -> dict | None:
    try:
        return json.loads((voc / "SYNTHETIC.json").read_text())
    except (OSError, ValueError):
        return None


def _same(a: dict | None, b: dict) -> bool:
    return a is not None and all(a.get(k) == v for k, v in b.items())


def generate_synthetic_voc(root: str | os.PathLike, n_train: int = 600, n_val: int = 200, size: int = 128,
                           seed: int = 0, progress: bool = True, overwrite: bool = False) -> Path:
    """Write a synthetic VOC 2012 segmentation tree under root/VOCdevkit/VOC2012 and return that path.

    Reuses an existing tree made with the same parameters (SYNTHETIC.json); raises FileExistsError for one made
    with other parameters unless overwrite=True. Never touches a VOC2012 tree it did not make. Writes into a temp
    dir inside root and moves it into place, so an interrupted run leaves no half-written tree.
    """
    if n_train < 0 or n_val < 0 or size < 16:
        raise ValueError(f"need n_train, n_val >= 0 and size >= 16, got {n_train}, {n_val}, {size}")
    root = Path(root)
    voc = root / "VOCdevkit" / "VOC2012"
    params = _params(n_train, n_val, size, seed)
    if voc.exists():
        old = _read_params(voc)
        if _same(old, params):
            return voc
        if old is None:
            raise FileExistsError(f"{voc} exists and was not made by this generator (no SYNTHETIC.json); "
                                  "refusing to touch it")
        if not overwrite:
            diff = {k: (old.get(k), v) for k, v in params.items() if old.get(k) != v}
            raise FileExistsError(f"{voc} holds a synthetic set with other parameters (existing, requested): "
                                  f"{diff}; pass overwrite=True to replace it")
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale_tmp(root)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}_", dir=root))
    try:
        new = tmp / "VOC2012"
        jpg, seg, sets = new / "JPEGImages", new / "SegmentationClass", new / "ImageSets" / "Segmentation"
        for d in (jpg, seg, sets):
            d.mkdir(parents=True)
        palette = voc_palette().ravel().tolist()
        ids: dict[str, list[str]] = {}
        with tqdm(total=n_train + n_val, desc="synthetic VOC", unit="img", disable=not progress) as bar:
            for s, (split, n) in enumerate(zip(SPLITS, (n_train, n_val))):
                ids[split] = []
                for i in range(n):
                    name = _image_id(split, i)
                    img, lab = synthesize_example(np.random.default_rng([seed, s, i]), size)
                    Image.fromarray(img).save(jpg / f"{name}.jpg", quality=JPEG_QUALITY)
                    mask = Image.frombytes("P", (size, size), np.ascontiguousarray(lab).tobytes())
                    mask.putpalette(palette)
                    mask.save(seg / f"{name}.png")
                    ids[split].append(name)
                    bar.update(1)
        ids["trainval"] = ids["train"] + ids["val"]
        for split, names in ids.items():
            (sets / f"{split}.txt").write_text("".join(f"{x}\n" for x in names))
        (new / "SYNTHETIC.json").write_text(json.dumps(params, indent=2) + "\n")  # written last: marks complete
        voc.parent.mkdir(parents=True, exist_ok=True)
        if voc.exists():
            if _same(_read_params(voc), params):  # another process finished the same set meanwhile
                return voc
            if not overwrite or _read_params(voc) is None:
                raise FileExistsError(f"{voc} appeared while generating; refusing to replace it")
            os.replace(voc, tmp / "old")
        try:
            os.replace(new, voc)
        except OSError:
            if _same(_read_params(voc), params):
                return voc
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return voc
