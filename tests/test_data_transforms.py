"""Joint image/mask transforms: alignment, nearest-only masks, padding, sizes, randomness per epoch.

Alignment is checked with coordinates. The image encodes its own pixel coordinates (R = x mod 256,
G = y mod 256, B = x // 256 + 16 * (y // 256)) and the mask is a fixed function f(x, y) of them. The same
transform is replayed, with the same torch seed, on two int64 `tv_tensors.Mask`s that hold x and y (v2 warps
masks with nearest and pads them with 255; the coordinates are offset by 256 so that 255 can only mean padding).
So after any random geometry, the output mask must equal f(x_out, y_out) on every non-padded pixel, and the
image decodes to (about) the same coordinates: the image is resampled bilinearly with antialias, so it is only
close (a few source pixels), while a flip or a different crop would be off by tens of pixels.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from conftest import make_voc_tree
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from starter_code.data.classes import VOC_INFO
from starter_code.data.dataset import SegmentationDataset
from starter_code.data.transforms import PRESETS, SCALE_RANGE, EvalTransform, build_transform, to_tv

pytestmark = pytest.mark.usefixtures("torch_single_thread")

SIZE = 64
OFF = 256  # coordinate offset in the coordinate masks, so that the pad value 255 is never a coordinate
SHAPES = [(90, 130), (130, 90), (40, 50), (64, 64)]  # landscape, portrait, smaller than SIZE, exactly SIZE
VALUES = torch.tensor([3, 8, 17])  # the mask uses only these classes (+ 255): any interpolation would show


def coords(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return x, y


def coord_image(h: int, w: int) -> torch.Tensor:
    return _coord_image(h, w).clone()


@lru_cache
def _coord_image(h: int, w: int) -> torch.Tensor:
    x, y = coords(h, w)
    return torch.stack([x % 256, y % 256, x // 256 + 16 * (y // 256)]).to(torch.uint8)


def decode(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    img = img.as_subclass(torch.Tensor).long()
    return img[0] + 256 * (img[2] % 16), img[1] + 256 * (img[2] // 16)


def label(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mask as a function of the coordinates: blocks of 3 classes, with a sprinkling of void (255)."""
    m = VALUES[(x // 7 + y // 5) % 3]
    return torch.where((x * 3 + y * 5) % 13 == 0, torch.tensor(255), m)


def coord_mask(h: int, w: int) -> torch.Tensor:
    return _coord_mask(h, w).clone()


@lru_cache
def _coord_mask(h: int, w: int) -> torch.Tensor:
    return label(*coords(h, w)).to(torch.uint8)


def geometric_part(t):
    """The transform without its photometric ops (ColorJitter and RandomGrayscale change the pixel values that
    encode coordinates)."""
    if isinstance(t, EvalTransform):
        return t
    assert isinstance(t, v2.Compose)
    return v2.Compose([op for op in t.transforms if not isinstance(op, (v2.ColorJitter, v2.RandomGrayscale))])


def replay_coords(t, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) source coordinates of every output pixel (255 where padded), for the draw made under `seed`."""
    x, y = coords(h, w)
    torch.manual_seed(seed)
    xo, yo = geometric_part(t)(tv_tensors.Mask(x + OFF), tv_tensors.Mask(y + OFF))  # grey needs an image
    return xo.as_subclass(torch.Tensor), yo.as_subclass(torch.Tensor)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("hw", SHAPES)
def test_mask_follows_the_same_geometry_as_the_image(preset, hw):
    h, w = hw
    t = build_transform(preset, SIZE)
    geo = geometric_part(t)
    padded_somewhere = False
    for seed in range(12):
        torch.manual_seed(seed)
        img, mask = t(*to_tv(coord_image(h, w), coord_mask(h, w)))
        assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.uint8 and img.dtype == torch.uint8
        mask = mask.as_subclass(torch.Tensor)
        if preset == "eval":  # the mask stays native, only the image is rescaled (compare at the image's size)
            assert torch.equal(mask, coord_mask(h, w))
            xo, yo = (TF.resize(tv_tensors.Mask(c + OFF), list(img.shape[-2:])).as_subclass(torch.Tensor)
                      for c in coords(h, w))
        else:
            xo, yo = replay_coords(t, h, w, seed)
            assert mask.shape == xo.shape == img.shape[-2:]
        pad = xo == 255
        assert torch.equal(pad, yo == 255)
        padded_somewhere |= bool(pad.any())
        # the mask: exactly f(source coordinates) where not padded, 255 (void) where padded
        if preset != "eval":
            assert torch.equal(mask[~pad], label(xo[~pad] - OFF, yo[~pad] - OFF).to(torch.uint8)), seed
            assert torch.all(mask[pad] == 255)
        # nearest only: no value that was not in the input mask
        assert set(mask.unique().tolist()) <= set(VALUES.tolist()) | {255}
        # the image: the same draw without colour jitter decodes to the same coordinates (within resampling blur)
        torch.manual_seed(seed)
        gimg, gmask = geo(*to_tv(coord_image(h, w), coord_mask(h, w)))
        assert torch.equal(gmask.as_subclass(torch.Tensor), mask)  # colour jitter never moves anything
        dx, dy = decode(gimg)
        ex = (dx - (xo - OFF))[~pad].abs().float()
        ey = (dy - (yo - OFF))[~pad].abs().float()
        assert ex.max() <= 4 and ey.max() <= 4, (seed, ex.max(), ey.max())
        assert ex.mean() <= 2 and ey.mean() <= 2, (seed, ex.mean(), ey.mean())
        assert torch.all(gimg[:, pad] == 0)  # images are padded with 0
    if preset == "scale" or (preset == "strong" and min(h, w) < SIZE):
        assert padded_somewhere  # the scale jitter does produce padded crops (so the pad checks ran)


@pytest.mark.parametrize("preset", ["none", "paper", "paper_color", "scale", "strong"])
@pytest.mark.parametrize("hw", SHAPES + [(375, 500), (17, 300)])
def test_train_presets_output_exactly_size_by_size(preset, hw):
    t = build_transform(preset, SIZE)
    for seed in range(6):
        torch.manual_seed(seed)
        img, mask = t(*to_tv(coord_image(*hw), coord_mask(*hw)))
        assert tuple(img.shape) == (3, SIZE, SIZE)
        assert tuple(mask.shape) == (SIZE, SIZE)


@pytest.mark.parametrize("hw", [(90, 130), (130, 90), (64, 64)])
def test_eval_is_deterministic_resizes_the_image_shorter_side_and_keeps_the_mask(hw):
    h, w = hw
    t = build_transform("eval", SIZE)
    image, mask = to_tv(coord_image(h, w), coord_mask(h, w))
    img1, m1 = t(image, mask)
    img2, m2 = t(image, mask)
    assert torch.equal(img1, img2) and torch.equal(m1, m2)
    assert torch.equal(m1.as_subclass(torch.Tensor), coord_mask(h, w))  # native, untouched
    assert min(img1.shape[-2:]) == SIZE
    long_side = int(max(h, w) * SIZE / min(h, w))
    assert max(img1.shape[-2:]) == long_side
    assert (img1.shape[-2] < img1.shape[-1]) == (h < w)  # orientation kept
    # size None: the image is untouched too
    img3, m3 = build_transform("eval", None)(image, mask)
    assert torch.equal(img3, image) and torch.equal(m3, mask)


def test_scale_preset_shows_the_whole_frame_paper_never_its_sides():
    """A wide frame: `paper` (resize, centre crop) never trains on its left and right edges; `scale`'s random
    crops over moderate scales reach every column, and its shorter side stays within SCALE_RANGE x SIZE."""
    h, w = 90, 180
    seen = {}
    for preset in ("paper", "scale"):
        geo = geometric_part(build_transform(preset, SIZE))
        cols = torch.zeros(w, dtype=torch.bool)
        for seed in range(60):
            xo, _ = replay_coords(geo, h, w, seed)
            src = xo[xo != 255] - OFF
            cols[src.unique()] = True
        seen[preset] = cols
    # (nearest-neighbour downscaling skips a column here and there, so: both outermost bands, nearly every column)
    assert seen["scale"][:3].any() and seen["scale"][-3:].any() and seen["scale"].float().mean() > 0.95
    assert not seen["paper"][: w // 8].any() and not seen["paper"][-(w // 8):].any()
    lo, hi = (int(f * SIZE) for f in SCALE_RANGE)
    resize = geometric_part(build_transform("scale", SIZE)).transforms[0]
    for seed in range(30):
        torch.manual_seed(seed)
        assert lo <= min(resize(tv_tensors.Mask(coord_mask(h, w))).shape) <= hi


def test_photo_preset_greys_about_a_fifth_and_keeps_paper_geometry():
    """photo = paper's geometry (the mask is exactly paper's under the same seed), then harsher colour and a grey
    image on GRAYSCALE_P of the draws; paper_color never greys."""
    img = torch.stack([torch.full((90, 130), v, dtype=torch.uint8) for v in (200, 80, 20)])  # saturated orange
    mask = torch.randint(0, 21, (90, 130), dtype=torch.uint8)
    photo, paper, color = (build_transform(p, 64) for p in ("photo", "paper", "paper_color"))
    grey = {"photo": 0, "paper_color": 0}
    for seed in range(100):
        torch.manual_seed(seed)
        out, m = photo(*to_tv(img, mask))
        torch.manual_seed(seed)
        assert torch.equal(m, paper(*to_tv(img, mask))[1])
        grey["photo"] += bool((out[0] == out[1]).all() and (out[1] == out[2]).all())
        torch.manual_seed(seed)
        out = color(*to_tv(img, mask))[0]
        grey["paper_color"] += bool((out[0] == out[1]).all() and (out[1] == out[2]).all())
    assert 10 <= grey["photo"] <= 32 and grey["paper_color"] == 0, grey  # 100 draws at p = GRAYSCALE_P = 0.2


def test_none_preset_is_deterministic_centre_crop():
    t = build_transform("none", SIZE)
    image, mask = to_tv(coord_image(64, 100), coord_mask(64, 100))
    out = [t(image, mask) for _ in range(3)]
    assert all(torch.equal(o[0], out[0][0]) and torch.equal(o[1], out[0][1]) for o in out)
    # 64 x 100 at size 64: no resize, the middle 64 columns (18..81)
    assert torch.equal(out[0][1].as_subclass(torch.Tensor), coord_mask(64, 100)[:, 18:82])


def test_train_presets_need_a_size_and_unknown_preset_raises():
    with pytest.raises(ValueError):
        build_transform("paper", None)
    with pytest.raises(ValueError, match="nope"):
        build_transform("nope", SIZE)


@pytest.mark.parametrize("preset", ["paper", "scale", "strong"])
def test_random_presets_change_across_epochs_for_the_same_index(tmp_path, preset):
    make_voc_tree(tmp_path, {"train": ["a"]}, hw=(90, 130))
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    ds = SegmentationDataset([voc / "JPEGImages" / "a.jpg"], [voc / "SegmentationClass" / "a.png"], VOC_INFO,
                             ["a"], transform=build_transform(preset, SIZE))
    torch.manual_seed(0)
    epochs = [ds[0] for _ in range(10)]  # the same index, epoch after epoch
    for img, mask in epochs:
        assert img.dtype == torch.float32 and tuple(img.shape) == (3, SIZE, SIZE)
        assert mask.dtype == torch.int64 and tuple(mask.shape) == (SIZE, SIZE)
    distinct = {(img.numpy().tobytes(), mask.numpy().tobytes()) for img, mask in epochs}
    if preset in ("strong", "scale"):  # scale jitter + crop + colour jitter: every epoch differs from the one before
        assert all(not torch.equal(a[0], b[0]) for a, b in zip(epochs, epochs[1:]))
        assert len(distinct) == 10
    else:  # crop and flip each on 30% of the draws: identical epochs happen, but not always
        assert len(distinct) >= 3
        assert any(not torch.equal(a[0], b[0]) for a, b in zip(epochs, epochs[1:]))
    # the deterministic preset, for contrast
    ds.transform = build_transform("none", SIZE)
    assert torch.equal(ds[0][0], ds[0][0]) and torch.equal(ds[0][1], ds[0][1])
