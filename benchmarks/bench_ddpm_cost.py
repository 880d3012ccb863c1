"""Cost of the ``ddpm`` arm against ``cvae`` at the default study's patch size, measured in the same run.

Per model, with the schema's default hyperparameters, 2D 64×64 patches, batch 32,
one CPU thread: seconds per training step (``fit``'s own throughput log, after a
warm-up), and seconds per sample of ``sample`` one sample at a time (as
``sample_synthetic`` draws them: one seed per sample). ``ratio`` is ddpm over cvae.
No target is asserted; run with ``python -m benchmarks.bench_ddpm_cost [--quick]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from radaug.generative import get_model

SIZE, BATCH = 64, 32


def _data(n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(n, SIZE, SIZE)).astype(np.float32)
    masks = (rng.random((n, SIZE, SIZE)) > 0.7).astype(np.uint8)
    return images, masks, (np.arange(n) % 2).astype(np.int64)


def measure(name: str, steps: int, samples: int) -> dict:
    model = get_model(name, patch_size=SIZE, n_classes=2)
    data = _data()
    log = model.fit(*data, steps=steps, batch_size=BATCH, seed=0, device="cpu", log_every=steps // 2,
                    log=lambda message: None)
    step_s = BATCH / float(log["images_per_s"].iloc[-1])  # the second half: after the warm-up
    model.sample(np.array([0]), seed=0)
    start = time.perf_counter()
    for seed in range(samples):
        model.sample(np.array([seed % 2]), seed=seed)
    return {"model": name, "train_step_s": step_s, "sample_s": (time.perf_counter() - start) / samples}


def main(quick: bool) -> None:
    torch.set_num_threads(1)
    steps, samples = (10, 3) if quick else (40, 10)
    rows = [measure(name, steps, samples) for name in ("cvae", "ddpm")]
    for row in rows:
        print(f"{row['model']}: {1000 * row['train_step_s']:.0f} ms per training step, "
              f"{1000 * row['sample_s']:.0f} ms per sample")
    print(f"ratio ddpm / cvae: training step {rows[1]['train_step_s'] / rows[0]['train_step_s']:.1f}x, "
          f"sample {rows[1]['sample_s'] / rows[0]['sample_s']:.0f}x")


if __name__ == "__main__":
    main("--quick" in sys.argv)
