"""Part load_mask (10 points): a mask file read as class indices, never through RGB, so void (255) stays 255.
Public tests: small fixed examples (the grader checks the same properties on fresh random inputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from starter_code.data.classes import voc_palette
from starter_code.data.dataset import DataError, load_mask

# classes 0, 1 and 15 (person), a void border (255) as VOC draws around objects
MASK = np.array([[0, 0, 255, 1],
                 [0, 15, 255, 1],
                 [255, 255, 255, 1]], dtype=np.uint8)


def _save(path: Path, mode: str) -> Path:
    if mode == "RGB":
        Image.fromarray(voc_palette()[MASK], "RGB").save(path)
    else:
        im = Image.fromarray(MASK)  # mode L: the values are the indices
        if mode == "P":
            im.putpalette(voc_palette().reshape(-1).tolist())
        im.save(path)
    return path


@pytest.mark.parametrize("mode", ["P", "L", "RGB"])
def test_indices_come_back_as_stored(tmp_path: Path, mode: str) -> None:
    m = load_mask(_save(tmp_path / f"mask_{mode}.png", mode), voc_palette())
    assert isinstance(m, np.ndarray) and m.dtype == np.uint8 and m.shape == MASK.shape
    assert m.tolist() == MASK.tolist()


def test_void_is_kept_not_mapped_to_background(tmp_path: Path) -> None:
    m = load_mask(_save(tmp_path / "mask.png", "P"), voc_palette())
    assert (m[MASK == 255] == 255).all(), "void pixels must stay 255 (the loss and the metrics skip them)"


def test_a_colour_outside_the_palette_is_refused(tmp_path: Path) -> None:
    rgb = voc_palette()[MASK].copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb, "RGB").save(tmp_path / "odd.png")
    with pytest.raises(DataError, match="odd.png"):
        load_mask(tmp_path / "odd.png", voc_palette())
