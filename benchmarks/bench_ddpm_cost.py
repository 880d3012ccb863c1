"""Cost of the ``ddpm`` arm against ``cvae`` at the default study's patch size, measured in the same run.

Per model, with the schema's default hyperparameters, 2D 64×64 patches, batch 32,
one CPU thread: seconds per training step (``fit``'s own throughput log, after a
warm-up), and seconds per sample of ``sample`` one sample at a time (as
``sample_synthetic`` draws them: one seed per sample). Rows: ``ddpm/train_step`` and
``ddpm/sample`` with the cvae figure as reference (``ratio`` is ddpm over cvae). No
target: it is a cost figure for choosing the arm, run with ``python -m
benchmarks.bench_ddpm_cost [--quick]``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks import row, standalone
from radaug.generative import get_model

BENCH = "ddpm_cost"

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


def run(quick: bool = False) -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        steps, samples = (10, 3) if quick else (40, 10)
        cvae, ddpm = (measure(name, steps, samples) for name in ("cvae", "ddpm"))
    finally:
        torch.set_num_threads(threads)
    notes = f"2D {SIZE}x{SIZE}, batch {BATCH}, 1 CPU thread, schema defaults; reference: cvae in the same run"
    return [
        row(BENCH, "ddpm/train_step", 1000 * ddpm["train_step_s"], "ms", reference=1000 * cvae["train_step_s"],
            notes=notes),
        row(BENCH, "ddpm/sample", 1000 * ddpm["sample_s"], "ms", reference=1000 * cvae["sample_s"],
            notes="one sample per call, as sample_synthetic draws them"),
    ]


if __name__ == "__main__":
    standalone(run)
