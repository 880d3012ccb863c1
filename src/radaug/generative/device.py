"""Where and how the generative models compute: device choice, mixed precision, determinism.

``"auto"`` picks CUDA when available. On CUDA the forward passes run under
:func:`torch.autocast` (bfloat16, or float16 with a gradient scaler); on CPU the same
code runs in float32 with deterministic algorithms enforced (:func:`deterministic`),
so the same seed gives the same bytes.
"""

from __future__ import annotations

import contextlib
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
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
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


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Enforce deterministic algorithms on CPU for the duration; restore the settings after.

    Uninitialised memory is not filled (:data:`FILL_UNINITIALIZED_MEMORY`).
    """
    if device.type != "cpu":
        yield
        return
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = FILL_UNINITIALIZED_MEMORY
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill
