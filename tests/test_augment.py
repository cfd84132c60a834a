"""Train-time augmentation: literal per-image reference, determinism, config checks, effect on training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dnmsnn import ConfigError, InputError
from dnmsnn.data.augment import Augmentation, random_hflip, random_shift
from dnmsnn.train import Trainer, load_run_config


def reference_shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[c, i, j] = x[c, i - dy, j - dx] inside the image, else 0 -- one pixel at a time."""
    c, h, w = x.shape
    out = np.zeros_like(x)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                si, sj = i - dy, j - dx
                if 0 <= si < h and 0 <= sj < w:
                    out[ch, i, j] = x[ch, si, sj]
    return out


@pytest.mark.parametrize("s", [1, 2, 3])
def test_shift_matches_the_literal_translation(s):
    x = torch.rand(6, 2, 7, 5)
    got = random_shift(x, s, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)  # the same draws: crop origins oy, ox in [0, 2s]; dy = s - oy
    oy, ox = torch.randint(0, 2 * s + 1, (6,), generator=g), torch.randint(0, 2 * s + 1, (6,), generator=g)
    for b in range(6):
        want = reference_shift(x[b].numpy(), s - int(oy[b]), s - int(ox[b]))
        np.testing.assert_array_equal(got[b].numpy(), want)


def test_shift_draws_every_offset_and_zero_is_a_copy():
    x = torch.zeros(400, 1, 5, 5)
    x[:, :, 2, 2] = 1.0  # one lit pixel: where it lands is the offset
    out = random_shift(x, 2, torch.Generator().manual_seed(0))
    rows, cols = out[:, 0].sum(2).argmax(1), out[:, 0].sum(1).argmax(1)
    assert set(rows.tolist()) == set(range(5)) and set(cols.tolist()) == set(range(5))
    assert torch.equal(out.sum((1, 2, 3)), torch.ones(400))
    same = random_shift(x, 0, torch.Generator())
    assert torch.equal(same, x) and same.data_ptr() != x.data_ptr()


def test_hflip_mirrors_about_half():
    x = torch.rand(1000, 1, 3, 4)
    out = random_hflip(x, torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert bool((flipped ^ kept).all()) and 400 < int(flipped.sum()) < 600


def test_augmentation_is_reproducible_from_its_seed():
    x = torch.rand(8, 1, 6, 6)
    a, b = Augmentation(shift=2, hflip=True), Augmentation(shift=2, hflip=True)
    a.seed(3), b.seed(3)
    assert torch.equal(a(x), b(x))
    b.seed(4)
    assert not torch.equal(a(x), b(x))
    assert not Augmentation().active and Augmentation().__call__(x) is x


@pytest.mark.parametrize("bad", [torch.rand(3, 6, 6), torch.zeros(2, 1, 4, 4, dtype=torch.int64), "images"])
def test_bad_input_is_refused(bad):
    with pytest.raises(InputError, match=r"\[B,C,H,W\]"):
        random_shift(bad, 1, torch.Generator())
    with pytest.raises(InputError, match=r"\[B,C,H,W\]"):
        random_hflip(bad, torch.Generator())


def test_negative_shift_is_refused():
    with pytest.raises(InputError, match=">= 0"):
        Augmentation(shift=-1)
    with pytest.raises(ConfigError, match="data.shift"):
        load_run_config(None, ["data.shift=-1"])


def test_shift_larger_than_the_image_is_a_config_error(tmp_path):
    cfg = load_run_config(None, ["data.name=digits", "data.shift=8", "train.progress=false"])
    with pytest.raises(ConfigError, match="out of view"):
        Trainer(cfg, tmp_path / "run", echo=lambda s: None)


def test_augmented_training_differs_and_leaves_the_test_set_alone(tmp_path):
    base = ["data.name=digits", "model.name=digits_mlp", "encoder.T=4", "train.epochs=1", "train.progress=false"]
    plain = Trainer(load_run_config(None, base), tmp_path / "a", echo=lambda s: None)
    shifted = Trainer(load_run_config(None, [*base, "data.shift=1"]), tmp_path / "b", echo=lambda s: None)
    test_before = shifted.test.images.clone()
    plain.fit(), shifted.fit()
    assert torch.equal(shifted.test.images, test_before)
    assert not torch.equal(plain.model.state_dict()["1.weight"], shifted.model.state_dict()["1.weight"])
