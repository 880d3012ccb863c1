"""CUDA check of the generative models: the code path the CPU suite cannot reach.

On a machine with a CUDA GPU, for every registered model (the five conditional
samplers, joint and mask-conditioned, and CycleGAN), in 2D and 3D:

* ``fit`` on ``device="cuda"`` (autocast in :func:`radaug.generative.device.amp_dtype`,
  the gradient scaler where float16) finishes with finite losses;
* sampling (or translating) on the GPU gives finite arrays of the right shape;
* a checkpoint written on the GPU loads onto the CPU and samples finite arrays there;
* the same seed trained twice on the GPU: whether the weights are the same bytes
  (recorded, not asserted: :func:`radaug.generative.device.deterministic` asks torch for
  deterministic kernels on CUDA, and torch has none for some backward passes);
* seconds per training step on the GPU and on the CPU (one thread per core here).

Writes one JSON row per model and dimension to stdout and to ``--out``; exits 1 if any
model fails a check above (the weight identity is reported only). Not part of
``make test``: CI has no GPU. Run on a GPU machine with
``PYTHONPATH=src python -m benchmarks.gpu_check --out gpu_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from radaug.generative import MODELS, TRANSLATION_MODELS, get_model, load_model
from radaug.generative.device import CUBLAS_WORKSPACE_CONFIG

SIZES = {2: 64, 3: 32}
"""Patch edge per dimension: the default study's 2D patch and a 3D patch of the 3D tests' order."""


def _data(dims: int, n: int = 32, seed: int = 0):
    """Blob patches: a bright disc/ball of random radius over noise, its mask, two classes."""
    rng = np.random.default_rng(seed)
    size = SIZES[dims]
    grid = np.stack(np.meshgrid(*[np.arange(size)] * dims, indexing="ij"))
    radius = rng.uniform(size / 8, size / 4, n)
    dist = np.sqrt(((grid - size / 2) ** 2).sum(axis=0))
    masks = (dist[None] < radius.reshape((n,) + (1,) * dims)).astype(np.uint8)
    labels = (np.arange(n) % 2).astype(np.int64)
    images = (rng.normal(0, 10, (n,) + (size,) * dims) + masks * (80 + 40 * labels.reshape((n,) + (1,) * dims)))
    return images.astype(np.float32), masks, labels


def _model(name: str, dims: int, mask: bool):
    small = {"base_channels": 8, **({"sample_steps": 10} if name == "ddpm" else {})}
    if name in MODELS:
        small["condition_on_mask"] = mask
    return get_model(name, patch_size=SIZES[dims], n_classes=2, spatial_dims=dims, **small)


def _fit(model, data, device: str, steps: int):
    images, masks, labels = data
    start = time.perf_counter()
    history = model.fit(images, masks, labels, steps=steps, batch_size=8, seed=0, device=device,
                        log=lambda message: None)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return history, (time.perf_counter() - start) / steps


def _generate(model, data):
    images, masks, labels = data
    if hasattr(model, "translate"):
        return model.translate(images[:4], masks[:4]), None
    given = masks[:4] if getattr(model, "condition_on_mask", False) else None
    return model.sample(labels[:4], seed=1, masks=given)


def _finite(*arrays) -> bool:
    return all(a is None or bool(np.isfinite(np.asarray(a, dtype=np.float64)).all()) for a in arrays)


def check(name: str, dims: int, mask: bool, steps: int, device: str = "cuda") -> dict:
    data = _data(dims)
    row = {"model": name, "dims": dims, "condition_on_mask": mask, "steps": steps, "failures": []}
    model = _model(name, dims, mask)
    history, row["gpu_s_per_step"] = _fit(model, data, device, steps)
    losses = history.select_dtypes("number").drop(columns="step", errors="ignore")
    if not np.isfinite(losses.to_numpy(dtype=np.float64)).all():
        row["failures"].append("non-finite loss on cuda")
    images, out_masks = _generate(model, data)
    row["gpu_sample_shape"] = list(np.shape(images))
    if not _finite(images, out_masks) or np.shape(images)[1:] != data[0].shape[1:]:
        row["failures"].append("non-finite or misshapen sample on cuda")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        model.save(path)
        on_cpu = load_model(path, device="cpu")
        cpu_images, cpu_masks = _generate(on_cpu, data)
        if not _finite(cpu_images, cpu_masks):
            row["failures"].append("checkpoint from cuda samples non-finite on cpu")
        row["cuda_vs_cpu_sample_max_abs_diff"] = float(np.max(np.abs(np.asarray(cpu_images) - np.asarray(images))))
    again = _model(name, dims, mask)
    _fit(again, data, device, steps)
    a, b = model.nets.state_dict(), again.nets.state_dict()
    row["cuda_same_seed_same_weights"] = all(torch.equal(a[k], b[k]) for k in a)
    row["cuda_same_seed_max_weight_diff"] = max(float((a[k].float() - b[k].float()).abs().max()) for k in a
                                                if a[k].numel())
    cpu_model = _model(name, dims, mask)
    _, row["cpu_s_per_step"] = _fit(cpu_model, data, "cpu", max(2, steps // 10))
    row["cpu_over_gpu_step_time"] = row["cpu_s_per_step"] / row["gpu_s_per_step"]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--models", help="comma-separated model names (default: every registered model)")
    parser.add_argument("--device", default="cuda", help="'cpu' runs the checks on the CPU (a dry run of this script)")
    parser.add_argument("--strict", action="store_true",
                        help="deterministic algorithms enforced for the whole run: an operation without a "
                             "deterministic CUDA kernel raises (radaug's own setting on CUDA only warns)")
    args = parser.parse_args(argv)
    if args.strict:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        torch.use_deterministic_algorithms(True)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    print(json.dumps({"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
                      "bf16": args.device == "cuda" and torch.cuda.is_bf16_supported(), "cpu_threads": torch.get_num_threads(),
                      "strict": args.strict}), flush=True)
    rows = []
    cases = [(name, dims, mask) for dims in (2, 3) for name in sorted(MODELS) for mask in (False, True)]
    cases += [(name, dims, False) for dims in (2, 3) for name in sorted(TRANSLATION_MODELS)]
    if args.models:
        wanted = args.models.split(",")
        unknown = set(wanted) - set(MODELS) - set(TRANSLATION_MODELS)
        if unknown:
            parser.error(f"unknown model(s) {sorted(unknown)}; registered: {sorted({**MODELS, **TRANSLATION_MODELS})}")
        cases = [case for case in cases if case[0] in wanted]
    for name, dims, mask in cases:
        try:
            row = check(name, dims, mask, args.steps, args.device)
        except Exception:  # noqa: BLE001 - a crash is this check's finding; go on with the others
            row = {"model": name, "dims": dims, "condition_on_mask": mask, "failures": [traceback.format_exc()]}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))
    failed = [f"{r['model']}/{r['dims']}d/mask={r['condition_on_mask']}" for r in rows if r["failures"]]
    print(f"{len(rows) - len(failed)} of {len(rows)} passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
