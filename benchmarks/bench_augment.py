"""Throughput of classical augmentation against plain SimpleITK, and the cost of plausibility checks.

For each case size (2D 256², 3D 128³) and transform, the same map is applied
(a) through radaug — random draw with its plausibility check (|det A − 1|
bound, Jacobian of the actual elastic field, CT anchors), deterministic twin,
record — and (b) with the plain SimpleITK calls that resample image and mask
through the same transform, without checks. ``ratio`` is radaug throughput over
plain throughput; the target ``>= 0.8`` means the checks cost less than 25 %
extra time. Elastic: radaug resamples through the dense displacement field it
already computed for the Jacobian check; the plain reference resamples through
the B-spline transform itself. Run alone: ``python -m benchmarks.bench_augment [--quick]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import SimpleITK as sitk

from radaug.augment import (RandomAffine, RandomChain, RandomElasticDeformation, RandomGaussianBlur,
                            RandomGaussianNoise)
from radaug.augment.base import to_sitk

TARGET = ">= 0.8"  # radaug cases/s over plain cases/s: checks cost < 25 % extra


def _case(shape, seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    r = np.sqrt(sum(g ** 2 for g in grids))
    image = np.where(r < min(shape) * 0.45, 40.0, -1000.0) + rng.normal(0, 5, size=shape)
    mask = (r < min(shape) * 0.2).astype(np.uint8)
    return image.astype(np.float32), mask


def _plain_resample(image, mask, spacing, transform, padding):
    ref = to_sitk(image, spacing)
    out = sitk.Resample(ref, ref, transform, sitk.sitkLinear, padding, sitk.sitkFloat32)
    msk = sitk.Resample(to_sitk(mask, spacing), ref, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(msk)


def _plain_photometric(image, spacing, sigma, sd, seed):
    smooth = sitk.DiscreteGaussian(to_sitk(image, spacing), [sigma ** 2] * image.ndim, 32, 0.01, True)
    return sitk.GetArrayFromImage(smooth) + np.random.default_rng(seed).normal(0, sd, size=image.shape)


def _paired_times(ours, plain, repeats):
    """Seconds per call of each, paired: every iteration times radaug, then plain SimpleITK on the same draw.

    Returns the median times and the median of the per-iteration ratios plain/ours (robust to load changes
    on a shared machine and to draws that differ in cost, e.g. blur kernel width).
    """
    if repeats > 1:
        ours(), plain()  # warm-up
    times = np.empty((repeats, 2))
    for i in range(repeats):
        for j, fn in enumerate((ours, plain)):
            start = time.perf_counter()
            fn()
            times[i, j] = time.perf_counter() - start
    return float(np.median(times[:, 0])), float(np.median(times[:, 1])), float(np.median(times[:, 1] / times[:, 0]))


def run(quick: bool = False) -> list[dict]:
    # One SimpleITK thread: on a shared machine, thread contention otherwise dominates the ratios.
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        return _run(quick)
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def _run(quick: bool) -> list[dict]:
    rows = []
    sizes = [("2D 256^2", (256, 256), (0.8, 0.8), 10 if quick else 40),
             ("3D 128^3", (128, 128, 128), (1.0, 1.0, 1.5), 1 if quick else 3)]
    for size_name, shape, spacing, repeats in sizes:
        image, mask = _case(shape)
        rng = np.random.default_rng(0)
        affine = RandomAffine(padding=-1000.0)
        elastic = RandomElasticDeformation(padding=-1000.0)
        photometric = RandomChain([], [RandomGaussianBlur(0.5), RandomGaussianNoise(10.0)], modality="CT",
                                  ct_tolerances={"anchor_tolerance_hu": 10, "roi_tolerance_hu": 10})
        last = {}

        def draw(name, random_transform):
            def ours():
                twin, _ = random_transform.sample(rng, image, mask, spacing)
                last[name] = twin
                return twin(image, mask, spacing)
            return ours

        def ours_photometric():
            result = photometric(image, mask, spacing, rng)
            last["ct_photometric"] = result.chain
            return result

        def plain_photometric():
            blur, noise = last["ct_photometric"][0], last["ct_photometric"][1]
            return _plain_photometric(image, spacing, blur["sigma_mm"], noise["sd"], noise["seed"])

        # The plain reference applies the parameters radaug drew in the same iteration.
        cases = {
            "affine": (draw("affine", affine), lambda: _plain_resample(
                image, mask, spacing, last["affine"].sitk_transform(shape, spacing), -1000.0)),
            "elastic": (draw("elastic", elastic), lambda: _plain_resample(
                image, mask, spacing, last["elastic"].sitk_transform(shape, spacing), -1000.0)),
            "ct_photometric": (ours_photometric, plain_photometric),
        }
        for name, (ours, plain) in cases.items():
            ours_s, plain_s, ratio = _paired_times(ours, plain, repeats)
            rows.append({
                "benchmark": f"augment_{name}_{size_name.split()[0]}",
                "figure": f"{name} on a {size_name} case, cases/s (radaug with checks; reference: plain SimpleITK; "
                          "ratio: median paired plain/radaug time)",
                "value": 1.0 / ours_s, "unit": "cases/s", "reference": 1.0 / plain_s,
                "ratio": ratio, "target": TARGET,
                "notes": f"median of {repeats} paired runs, 1 SimpleITK thread; checks: "
                         + {"affine": "|det A - 1| bound", "elastic": "Jacobian determinant of the dense field",
                            "ct_photometric": "air/water/ROI median HU"}[name],
            })
    return rows


if __name__ == "__main__":
    from benchmarks import check_flags

    for row in run(quick="--quick" in check_flags(sys.argv[1:], ("--quick",))):
        print(f"{row['benchmark']:28s} {row['value']:9.2f} {row['unit']}  reference {row['reference']:9.2f}  "
              f"ratio {row['ratio']:.2f} (target {row['target']})  {row['notes']}")
