"""Small synthetic (image, mask) cases shared by the augmentation tests."""
import numpy as np


def disc_case(shape=(64, 64), radius=12.0, value=60.0, background=-1000.0, body=40.0, seed=0):
    """CT-like case: air background, a body region near 40 HU, a round lesion in the middle."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r = np.sqrt(sum(g ** 2 for g in grids))
    image = np.full(shape, background, np.float32)
    image[r < min(shape) * 0.45] = body
    image += rng.normal(0, 5, size=shape).astype(np.float32) * (image > background + 1)
    mask = (r <= radius).astype(np.uint8)
    image[mask > 0] = value + rng.normal(0, 10, size=int(mask.sum()))
    return image.astype(np.float32), mask
