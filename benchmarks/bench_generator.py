"""Generator benchmarks: training-step overhead of radaug's GANs, sampling throughput and memory.

Rows (benchmark contract: ``run(quick) -> list[dict]``):

* ``train_step/<gan>``: steps/s of ``ConditionalGAN.fit`` (through the framework:
  batch drawing, autocast, gradient scaler, deterministic mode, loss logging)
  against a plain PyTorch loop over the *same* networks, optimizers, batch and
  objective, measured in the same run, interleaved, median of rounds. Target ratio
  >= 0.95 (the framework adds no overhead).
* ``train_step/ddpm``: the same for the diffusion arm, against a plain loop of its
  training step (timestep, noise and label dropout drawn per sample, the v target on
  the cosine schedule, mean squared error, Adam, the weight average's update).
* ``sample/<model>/<2d64|3d32>``: samples/s of ``model.sample`` for 2D 64×64 and 3D
  32³ patches, and the peak resident-memory increase while sampling, each measured
  in a fresh process.

The device is recorded in every row's notes (CPU unless CUDA is present).
Run alone: ``python -m benchmarks.bench_generator [--quick]``.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from radaug.generative import MODELS, get_model
from radaug.generative.ddpm import DDPM, cosine_alpha_bar
from radaug.generative.gan import ConditionalGAN
from radaug.generative.small_data import ema_decay

GANS = ("dcgan", "lsgan", "wgan_gp")


def _device() -> str:
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name()}, AMP)"
    return f"cpu ({torch.get_num_threads()} thread(s), no GPU on this machine)"


def _data(size: int, dims: int, n: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n,) + (size,) * dims
    images = rng.normal(size=shape).astype(np.float32)
    masks = (rng.random(shape) > 0.7).astype(np.uint8)
    return images, masks, (np.arange(n) % 2).astype(np.int64)


def _plain_batches(images, masks, labels, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The plain loops' training patches (image and mask in [-1, 1], as ``fit`` scales them) and labels."""
    lo, hi = np.percentile(images, (0.5, 99.5))
    patches = np.stack([np.clip((images - lo) / (hi - lo) * 2 - 1, -1, 1), masks.astype(np.float32) * 2 - 1], axis=1)
    return torch.from_numpy(patches.astype(np.float32)).to(dev), torch.from_numpy(labels).to(dev)


def _plain_loop(model: ConditionalGAN, images, masks, labels, steps: int, batch_size: int) -> float:
    """A hand-written PyTorch GAN loop over ``model``'s networks; returns seconds per step."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen, disc = model.nets["generator"].to(dev), model.nets["discriminator"].to(dev)
    betas = model.objective.betas
    opt_g = torch.optim.Adam(gen.parameters(), lr=model.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=model.lr, betas=betas)
    patches, labels_t = _plain_batches(images, masks, labels, dev)
    objective, n_critic = model.objective.name, model.hyperparams["n_critic"]
    gp_weight = model.hyperparams.get("gp_weight", 0.0)

    def d_loss(real, fake):
        if objective == "non_saturating":
            return F.softplus(-real).mean() + F.softplus(fake).mean()
        if objective == "least_squares":
            return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
        return fake.mean() - real.mean()

    def g_loss(fake):
        if objective == "non_saturating":
            return F.softplus(-fake).mean()
        if objective == "least_squares":
            return 0.5 * ((fake - 1) ** 2).mean()
        return -fake.mean()

    start = time.perf_counter()
    for _ in range(steps):
        for _ in range(n_critic):
            idx = torch.randint(len(labels_t), (batch_size,), device=dev)
            real, lab = patches[idx], labels_t[idx]
            fake = torch.tanh(gen(torch.randn(batch_size, model.latent_dim, device=dev), lab))
            loss = d_loss(disc(real, lab), disc(fake.detach(), lab))
            if gp_weight:
                eps = torch.rand(batch_size, *(1,) * (real.dim() - 1), device=dev)
                mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
                (grad,) = torch.autograd.grad(disc(mixed, lab).sum(), mixed, create_graph=True)
                loss = loss + gp_weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            opt_d.zero_grad()
            loss.backward()
            opt_d.step()
        disc.requires_grad_(False)
        loss_g = g_loss(disc(fake, lab))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        disc.requires_grad_(True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _plain_ddpm_loop(model: DDPM, images, masks, labels, steps: int, batch_size: int) -> float:
    """A hand-written PyTorch loop of ``model``'s diffusion training step on its U-Net; seconds per step."""
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    unet, average = model.nets["unet"].to(dev), model.nets["unet_ema"].to(dev)
    opt = torch.optim.Adam(unet.parameters(), lr=model.lr)
    patches, labels_t = _plain_batches(images, masks, labels, dev)
    hp = model.hyperparams
    alpha_bars = torch.from_numpy(cosine_alpha_bar(hp["diffusion_steps"])).float().to(dev)
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(len(labels_t), (batch_size,), device=dev)
        x0, lab = patches[idx], labels_t[idx]
        t = torch.randint(1, hp["diffusion_steps"] + 1, (batch_size,), device=dev)
        a = alpha_bars[t - 1].view(-1, 1, 1, 1)
        eps = torch.randn_like(x0)
        lab = torch.where(torch.rand(batch_size, device=dev) < hp["label_dropout"],
                          torch.full_like(lab, model.n_classes), lab)
        loss = F.mse_loss(unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, lab), a.sqrt() * eps - (1 - a).sqrt() * x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            beta = ema_decay(hp["ema_beta"], step)
            for p_avg, p_live in zip(average.parameters(), unet.parameters()):
                p_avg.lerp_(p_live, 1.0 - beta)
        loss.item()  # the framework logs each step's loss
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _framework_loop(name: str, hp: dict, images, masks, labels, steps: int, batch_size: int) -> float:
    """Seconds per step of ``fit``, from its own throughput log: the training loop only.

    The clock starts where the plain loop's does, after data checks, intensity
    scaling and network set-up, which happen once per job, not per step.
    """
    model = get_model(name, **hp)
    log = model.fit(images, masks, labels, steps=steps, batch_size=batch_size, seed=0, log_every=steps,
                    log=lambda m: None)
    return batch_size / float(log["images_per_s"].iloc[-1])


def train_rows(quick: bool) -> list[dict]:
    size, batch = (32, 16) if quick else (64, 32)
    steps, rounds = (4, 3) if quick else (20, 5)
    images, masks, labels = _data(size, 2)
    rows = []
    for name in (*GANS, "ddpm"):
        hp = {"patch_size": size, "n_classes": 2, "spatial_dims": 2}
        if quick and name != "ddpm":
            hp["base_channels"] = 16
        loop = _plain_ddpm_loop if name == "ddpm" else _plain_loop
        ours, plain = [], []
        loop(get_model(name, **hp), images, masks, labels, 1, batch)  # warm-up
        for _ in range(rounds):  # interleaved, so machine load affects both alike
            ours.append(_framework_loop(name, hp, images, masks, labels, steps, batch))
            plain.append(loop(get_model(name, **hp), images, masks, labels, steps, batch))
        value, reference = 1 / statistics.median(ours), 1 / statistics.median(plain)
        objective = ("v prediction, EMA" if name == "ddpm"
                     else f"n_critic={get_model(name, **hp).hyperparams['n_critic']}")
        rows.append({
            "benchmark": f"train_step/{name}", "figure": f"training steps/s, 2D {size}x{size}, batch {batch}",
            "value": value, "unit": "steps/s", "reference": reference, "ratio": value / reference,
            "target": ">= 0.95",
            "notes": (f"radaug fit() vs a plain PyTorch loop of the same networks, optimizers, objective and "
                      f"batch ({objective}); median of {rounds} interleaved rounds of {steps} steps; "
                      f"{batch * value:.0f} images/s; device {_device()}"),
        })
    return rows


def _sample_child(name: str, dims: int, size: int, n: int, queue) -> None:
    torch.set_num_threads(1)
    model = get_model(name, patch_size=size, n_classes=2, spatial_dims=dims)
    model.fit(*_data(size, dims, n=4), steps=1, batch_size=2, seed=0, log=lambda m: None)
    labels = np.arange(n) % 2
    model.sample(labels[:2], seed=0)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    model.sample(labels, seed=1, batch_size=64)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((n / elapsed, (peak - before) / 1024, peak / 1024))


def sample_rows(quick: bool) -> list[dict]:
    ctx = multiprocessing.get_context("spawn")
    rows = []
    models = ("cvae", "dcgan") if quick else tuple(sorted(MODELS))
    for dims, size in ((2, 64), (3, 32)):
        n = (64 if dims == 2 else 16) if quick else (512 if dims == 2 else 64)
        for name in models:
            queue = ctx.Queue()
            proc = ctx.Process(target=_sample_child, args=(name, dims, size, n, queue))
            proc.start()
            rate, grew_mib, peak_mib = queue.get(timeout=600)
            proc.join()
            shape = "x".join([str(size)] * dims)
            common = {"reference": None, "ratio": None, "target": None}
            rows.append({"benchmark": f"sample/{name}/{dims}d{size}", "figure": f"sampling throughput, {shape}",
                         "value": rate, "unit": "samples/s", **common,
                         "notes": f"{n} samples, batches of 64, default hyperparameters; device {_device()}"})
            rows.append({"benchmark": f"sample_memory/{name}/{dims}d{size}",
                         "figure": f"peak resident memory increase while sampling, {shape}",
                         "value": grew_mib, "unit": "MiB", **common,
                         "notes": f"{n} samples; process peak RSS {peak_mib:.0f} MiB (incl. torch); device {_device()}"})
    return rows


def run(quick: bool = False) -> list[dict]:
    """All generator benchmark rows; ``quick`` uses smaller patches and fewer steps (under a minute)."""
    torch.set_num_threads(1)
    return train_rows(quick) + sample_rows(quick)


if __name__ == "__main__":
    from benchmarks import check_flags

    for r in run(quick="--quick" in check_flags(sys.argv[1:], ("--quick",))):
        print(json.dumps(r))
