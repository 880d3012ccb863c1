"""Where and how the generative models compute: device choice, mixed precision, determinism.

``"auto"`` picks CUDA when available. On CUDA the forward passes run under
:func:`torch.autocast` (bfloat16, or float16 with a gradient scaler); on CPU the same
code runs in float32. Both run with deterministic algorithms (:func:`deterministic`), so
the same seed gives the same bytes on one kind of device: on CPU enforced, on CUDA
wherever torch has a deterministic kernel (every model but the 3D CycleGAN, measured on
an H200 by ``benchmarks/gpu_check.py``). A CPU and a GPU run differ (float32 against
bfloat16 autocast); a checkpoint loads on either.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch


def select_device(device: str) -> torch.device:
    """Resolve a device name; ``"auto"`` is CUDA when available, else CPU.

    Raises
    ------
    ValueError
        If the name is not a torch device, or names CUDA on a machine without it.
    """
    if device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
        if resolved.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        if resolved.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if resolved.type == "cuda":
        # torch's deterministic mode wants cuBLAS on a fixed workspace (its "Reproducibility" notes) and
        # warns without one. The process's environment is changed; torch and cuBLAS read it at the
        # first CUDA matrix product, so this takes effect only before any (radaug's jobs start fresh).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    return resolved


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype on CUDA (bfloat16 where supported, else float16); None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# torch's deterministic mode also fills every new tensor's memory with NaN (a debugging aid that
# makes a read of uninitialised memory reproducible). The models read none: every model's weights
# after training are the same bytes with and without the fill (2D and 3D, tests/unit/test_generative.py),
# and the fill cost the ddpm U-Net 6% of a CPU training step (BENCHMARKS.md, "Generator training").
FILL_UNINITIALIZED_MEMORY = False

CUBLAS_WORKSPACE_CONFIG = ":4096:8"
"""cuBLAS's workspace on CUDA (set by :func:`select_device` unless the environment sets it)."""


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms for the duration; the settings restored after.

    On CPU enforced: an operation without a deterministic implementation raises. On CUDA
    torch warns instead, as it has none for some backward passes (in torch 2.11, that of 3D
    reflection padding, in the 3D CycleGAN's generators), which then stay nondeterministic;
    the same seed trained every other model to the same weights twice on an H200, where two
    CycleGAN runs had differed by up to 5e-3 without deterministic algorithms
    (``benchmarks/gpu/gpu_check.h200.nondeterministic.json``). A caller that already enforces
    them strictly keeps that. Uninitialised memory is not filled (:data:`FILL_UNINITIALIZED_MEMORY`).
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    strict = device.type == "cpu" or (enabled and not warn_only)
    try:
        torch.use_deterministic_algorithms(True, warn_only=not strict)
        torch.utils.deterministic.fill_uninitialized_memory = FILL_UNINITIALIZED_MEMORY
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill
