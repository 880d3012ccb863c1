"""CycleGAN: unpaired translation of patches between two imaging domains.

CycleGAN (Zhu, Park, Isola & Efros 2017, arXiv:1703.10593) learns two mappings
between domains A and B from unpaired examples: generators ``G_AB`` and
``G_BA`` and PatchGAN discriminators ``D_A`` and ``D_B`` (Isola et al. 2017,
arXiv:1611.07004). The generator objective is

.. math::

    L_G = L_{adv}(G_{AB}, D_B) + L_{adv}(G_{BA}, D_A)
          + \\lambda_{cyc} (\\lVert G_{BA}(G_{AB}(a)) - a \\rVert_1 + \\lVert G_{AB}(G_{BA}(b)) - b \\rVert_1)
          + \\lambda_{id} (\\lVert G_{AB}(b) - b \\rVert_1 + \\lVert G_{BA}(a) - a \\rVert_1)

with the least-squares adversarial loss (Mao et al. 2017, arXiv:1611.04076)
that the CycleGAN paper uses. Each discriminator minimises
``((D(real) - 1)^2 + D(fake)^2) / 2``.

In radaug a CycleGAN arm translates the **image** channel of fold-training cases
of the source domain into the target domain. The ROI mask is an input of both
generators (so they know where the lesion is) but is never generated: every
translated sample carries its parent's mask unchanged, so the geometry is
preserved by construction. What can still go wrong is the image: a translation
network can hallucinate or erase structure (Cohen, Luck & Honari 2018,
"Distribution matching losses can hallucinate features in medical image
translation", arXiv:1805.08841). :func:`structure_agreement` measures, per
sample, whether the translated image still has the parent's edges in and around
the ROI; :func:`translate_with_quotas` rejects samples below a threshold.

Networks are dimension-generic: ``Conv2d`` or ``Conv3d`` is chosen from the
model's patch shape.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from torch import nn

from ..errors import SamplingError
from .base import GenerativeModel, check_float, check_int
from .device import deterministic
from .layers import SPATIAL_DIMS, layer

DOMAIN_CODES = {"source": 0, "target": 1}
"""Integer codes of the two domains in :meth:`CycleGAN.fit`: 0 is A (source), 1 is B (target)."""

_EDGE = 1 - 1e-3
"""Images are clamped to [-_EDGE, _EDGE] before atanh in the residual generator."""

STRUCTURE_SIGMA = 2.0
"""Gaussian scale (voxels) of the gradient magnitudes compared by :func:`structure_agreement`."""

STRUCTURE_MARGIN = 3
"""Voxels by which the ROI is dilated to form the region compared by :func:`structure_agreement`."""


# --------------------------------------------------------------------------- #
# Networks
# --------------------------------------------------------------------------- #


class ResidualBlock(nn.Module):
    """Two 3-wide reflection-padded convolutions with instance norm and a skip connection."""

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        conv, norm = layer("Conv", dims), layer("InstanceNorm", dims)
        self.body = nn.Sequential(
            conv(channels, channels, 3, padding=1, padding_mode="reflect"), norm(channels, affine=True), nn.ReLU(),
            conv(channels, channels, 3, padding=1, padding_mode="reflect"), norm(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """(image, mask) → image: the CycleGAN generator (Johnson et al. 2016, arXiv:1603.08155).

    A 7-wide convolution, two stride-2 downsamplings, ``n_res_blocks`` residual
    blocks and two upsamplings back to the input size; instance norm and ReLU
    throughout. The network predicts a residual: the output is
    ``tanh(atanh(image) + net(image, mask))`` with the last layer initialised
    to zero, so training starts from the identity map and learns the change of
    appearance (residual learning, He et al. 2016, arXiv:1512.03385). An
    identity start keeps the anatomy in place from the first step, which a
    short in-fold training run needs. Upsampling is nearest-neighbour followed by a
    convolution rather than a transposed convolution, which avoids checkerboard
    artefacts (Odena et al. 2016, doi:10.23915/distill.00003).

    Parameters
    ----------
    base_channels
        Channels at full resolution; doubled at each downsampling.
    n_res_blocks
        Residual blocks at the lowest resolution.
    dims
        Spatial dimensions (2 or 3).
    """

    def __init__(self, base_channels: int, n_res_blocks: int, dims: int) -> None:
        super().__init__()
        conv, norm = layer("Conv", dims), layer("InstanceNorm", dims)
        c = base_channels
        layers: list[nn.Module] = [conv(2, c, 7, padding=3, padding_mode="reflect"), norm(c, affine=True), nn.ReLU()]
        for k in (1, 2):
            layers += [conv(c * k, c * 2 * k, 3, stride=2, padding=1), norm(c * 2 * k, affine=True), nn.ReLU()]
        layers += [ResidualBlock(c * 4, dims) for _ in range(n_res_blocks)]
        for k in (4, 2):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                conv(c * k, c * k // 2, 3, padding=1, padding_mode="reflect"), norm(c * k // 2, affine=True), nn.ReLU(),
            ]
        layers += [conv(c, 1, 7, padding=3, padding_mode="reflect")]
        nn.init.zeros_(layers[-1].weight)  # start as the identity map (see forward)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Translate (B, 2, *S) patches (image, mask in [-1, 1]) to (B, 1, *S) images in [-1, 1]."""
        image = patches[:, :1].clamp(-_EDGE, _EDGE)
        return torch.tanh(torch.atanh(image) + self.net(patches))


class PatchDiscriminator(nn.Module):
    """PatchGAN: (image, mask) → a map of real/fake scores, one per overlapping patch.

    Two stride-2 4-wide convolutions (no norm on the first, instance norm after),
    a stride-1 one and a final 1-channel convolution, LeakyReLU(0.2), as in
    Isola et al. 2017 (arXiv:1611.07004) scaled down to small patches.
    """

    def __init__(self, base_channels: int, dims: int) -> None:
        super().__init__()
        conv, norm = layer("Conv", dims), layer("InstanceNorm", dims)
        c = base_channels
        self.net = nn.Sequential(
            conv(2, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            conv(c, 2 * c, 4, stride=2, padding=1), norm(2 * c, affine=True), nn.LeakyReLU(0.2),
            conv(2 * c, 4 * c, 3, padding=1), norm(4 * c, affine=True), nn.LeakyReLU(0.2),
            conv(4 * c, 1, 3, padding=1),
        )

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.net(patches)


# --------------------------------------------------------------------------- #
# The model
# --------------------------------------------------------------------------- #


class CycleGAN(GenerativeModel):
    """Unpaired image translation between a source and a target domain.

    A :class:`~radaug.generative.protocols.Translator`, not a conditional sampler: it has
    no ``sample``. Trained with :meth:`fit` on the patches of both domains (``domains`` codes
    0 = source, 1 = target); :meth:`translate` maps source patches to the target
    domain (or back with ``reverse=True``). Every step draws ``batch_size``
    patches of each domain (uniformly with replacement, from the model's seeded
    generator), updates both generators on the adversarial, cycle and identity
    losses, then both discriminators. Adam with betas (0.5, 0.999) as in the paper.

    Parameters
    ----------
    patch_size
        Side of the square/cubic patches, a power of two >= 16.
    n_classes
        Number of class labels of the study (kept for the shared interface; the
        translation is not class-conditional, the class is the parent's).
    source_domain, target_domain
        Names of the domains (values of the manifest's ``domain`` column); stored
        so a checkpoint records its direction.
    base_channels
        Generator and discriminator width at full resolution.
    n_res_blocks
        Residual blocks in each generator.
    lr
        Adam learning rate of all networks.
    lambda_cyc
        Weight of the cycle-consistency L1 loss (paper: 10).
    lambda_id
        Weight of the identity L1 loss (paper: half of ``lambda_cyc``).
    min_structure
        Acceptance threshold of :func:`structure_agreement` used by
        :func:`translate_with_quotas`, in [-1, 1].

    Logged losses: ``loss_g`` (generator total), ``adv_g``, ``cycle`` and
    ``identity`` (unweighted L1), ``loss_d`` (both discriminators).
    """

    name = "cyclegan"

    def __init__(
        self,
        patch_size: int,
        n_classes: int,
        *,
        source_domain: str = "scanner_a",
        target_domain: str = "scanner_b",
        base_channels: int = 16,
        n_res_blocks: int = 3,
        lr: float = 2e-4,
        lambda_cyc: float = 10.0,
        lambda_id: float = 5.0,
        min_structure: float = 0.6,
        spatial_dims: int = SPATIAL_DIMS,
    ) -> None:
        for key, value in (("source_domain", source_domain), ("target_domain", target_domain)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{key} must be a non-empty domain name, got {value!r}")
        if source_domain == target_domain:
            raise ValueError(f"source_domain and target_domain must differ, both are {source_domain!r}")
        self.n_res_blocks = check_int("n_res_blocks", n_res_blocks, 0)
        min_structure = check_float("min_structure", min_structure, minimum=-1.0, inclusive=True)
        if min_structure > 1:
            raise ValueError(f"min_structure must lie in [-1, 1], got {min_structure!r}")
        super().__init__(
            patch_size, n_classes, latent_dim=1, base_channels=base_channels, lr=lr, spatial_dims=spatial_dims,
            source_domain=source_domain, target_domain=target_domain, n_res_blocks=self.n_res_blocks,
            lambda_cyc=check_float("lambda_cyc", lambda_cyc, minimum=0.0, inclusive=True),
            lambda_id=check_float("lambda_id", lambda_id, minimum=0.0, inclusive=True),
            min_structure=min_structure,
        )
        del self.hyperparams["latent_dim"]  # no latent code; type(model)(**hyperparams) must rebuild it
        self._domain_data: np.ndarray | None = None
        self._pools: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def direction(self) -> str:
        """``"<source>-><target>"``."""
        return f"{self.hyperparams['source_domain']}->{self.hyperparams['target_domain']}"

    # -- networks ------------------------------------------------------------ #

    def _build_networks(self) -> dict[str, nn.Module]:
        dims = len(self.patch_shape)
        return {
            "g_ab": ResnetTranslator(self.base_channels, self.n_res_blocks, dims),
            "g_ba": ResnetTranslator(self.base_channels, self.n_res_blocks, dims),
            "d_a": PatchDiscriminator(self.base_channels, dims),
            "d_b": PatchDiscriminator(self.base_channels, dims),
        }

    def _build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def adam(*names: str) -> torch.optim.Optimizer:
            params = [p for name in names for p in self.nets[name].parameters()]
            return torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.999))

        return {"generators": adam("g_ab", "g_ba"), "discriminators": adam("d_a", "d_b")}

    # -- training ------------------------------------------------------------ #

    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        """Domain codes: a 1-D integer array of 0 (source) and 1 (target)."""
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError(f"domains must be 1-D, got shape {labels.shape}")
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or not np.isin(labels, (0, 1)).all()):
            raise ValueError("domains must be integer codes 0 (source domain) and 1 (target domain)")
        return labels.astype(np.int64)

    def fit(self, images: np.ndarray, masks: np.ndarray, domains: np.ndarray, **kwargs: Any) -> pd.DataFrame:
        """Train on unpaired patches of both domains; see :meth:`GenerativeModel.fit`.

        Parameters
        ----------
        images, masks
            (N, *S) patches of both domains, as for every model.
        domains
            (N,) domain codes: 0 for ``source_domain``, 1 for ``target_domain``.
            Both must occur. (Takes the place of the class labels: the
            translation is not class-conditional.)
        **kwargs
            ``steps``, ``batch_size`` (patches per domain and step), ``seed``,
            ``device``, ``checkpoint_path`` ... as in :meth:`GenerativeModel.fit`.

        Raises
        ------
        ValueError
            If a domain has no patches or the data are invalid.
        """
        codes = self._check_labels(domains)
        for name, code in DOMAIN_CODES.items():
            if not (codes == code).any():
                domain = self.hyperparams[f"{name}_domain"]
                raise ValueError(f"cyclegan needs patches of both domains; none of the {name} domain {domain!r}")
        images, masks, codes = self._check_data(images, masks, codes)
        self._domain_data = np.asarray(images, np.float32), masks, codes
        self._pools = None
        try:
            return super().fit(images, masks, codes, **kwargs)
        finally:
            self._domain_data, self._pools = None, None

    def _domain_pools(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training patches of each domain as (N_d, 2, *S) tensors in [-1, 1] on the device."""
        if self._pools is None:
            images, masks, codes = self._domain_data
            patches = np.stack([self.intensity.to_unit(images), masks.astype(np.float32) * 2 - 1], axis=1)
            self._pools = tuple(torch.from_numpy(patches[codes == code]).to(self.device) for code in (0, 1))
        return self._pools

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        # The base loop's batch mixes the domains in proportion to their sizes; a
        # scarce domain would starve its discriminator, so draw both sides evenly.
        pool_a, pool_b = self._domain_pools()
        n = len(labels)
        real_a = pool_a[torch.randint(len(pool_a), (n,), generator=self._rng).to(self.device)]
        real_b = pool_b[torch.randint(len(pool_b), (n,), generator=self._rng).to(self.device)]
        mask_a, mask_b = real_a[:, 1:], real_b[:, 1:]
        g_ab, g_ba, d_a, d_b = (self.nets[k] for k in ("g_ab", "g_ba", "d_a", "d_b"))
        hp = self.hyperparams

        def with_mask(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return torch.cat([image, mask], dim=1)

        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        with self._autocast():
            fake_b = g_ab(real_a)
            fake_a = g_ba(real_b)
            adv = ((d_b(with_mask(fake_b, mask_a)).float() - 1).square().mean()
                   + (d_a(with_mask(fake_a, mask_b)).float() - 1).square().mean())
            cycle = ((g_ba(with_mask(fake_b, mask_a)).float() - real_a[:, :1]).abs().mean()
                     + (g_ab(with_mask(fake_a, mask_b)).float() - real_b[:, :1]).abs().mean())
            identity = ((g_ab(real_b).float() - real_b[:, :1]).abs().mean()
                        + (g_ba(real_a).float() - real_a[:, :1]).abs().mean())
            loss_g = adv + hp["lambda_cyc"] * cycle + hp["lambda_id"] * identity
        self._optimize(loss_g, "generators")
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)

        with self._autocast():
            loss_d = 0.5 * sum(
                (disc(real).float() - 1).square().mean() + disc(with_mask(fake.detach(), mask)).float().square().mean()
                for disc, real, fake, mask in ((d_b, real_b, fake_b, mask_a), (d_a, real_a, fake_a, mask_b))
            )
        self._optimize(loss_d, "discriminators")
        terms = {"loss_g": loss_g, "adv_g": adv, "cycle": cycle, "identity": identity, "loss_d": loss_d}
        return {key: float(value.item()) for key, value in terms.items()}

    # -- translation --------------------------------------------------------- #

    def translate(
        self, images: np.ndarray, masks: np.ndarray, *, reverse: bool = False, batch_size: int = 64
    ) -> np.ndarray:
        """Translate image patches from the source to the target domain.

        Deterministic: the generators take no noise, and deterministic algorithms are
        used (:func:`~radaug.generative.device.deterministic`), so the same patch always
        gives the same bytes on one kind of device.

        Parameters
        ----------
        images
            (M, *S) patches of the source domain in physical units.
        masks
            (M, *S) binary ROI masks of those patches (carried over unchanged by
            the caller; the generator uses them as a second input channel).
        reverse
            Translate target → source instead.
        batch_size
            Patches per forward pass.

        Returns
        -------
        numpy.ndarray
            (M, *S) float32 translated images in physical units.

        Raises
        ------
        RuntimeError
            If the model has been neither fitted nor loaded.
        ValueError
            If shapes or masks are invalid.
        """
        if self.intensity is None:
            raise RuntimeError("cyclegan model is not trained; call fit() or load() first")
        batch_size = check_int("batch_size", batch_size, 1)
        images, masks = np.asarray(images), np.asarray(masks)
        if images.ndim != 1 + len(self.patch_shape) or images.shape[1:] != self.patch_shape:
            raise ValueError(f"images must have shape (M, {', '.join(map(str, self.patch_shape))}), "
                             f"got {images.shape}")
        if masks.shape != images.shape or not np.isin(masks, (0, 1)).all():
            raise ValueError(f"masks must be binary with the shape of images {images.shape}, got {masks.shape}")
        patches = np.stack([self.intensity.to_unit(images), masks.astype(np.float32) * 2 - 1], axis=1)
        generator = self.nets["g_ba" if reverse else "g_ab"]
        out = np.empty(images.shape, np.float32)
        was_training = self.nets.training
        self.nets.eval()
        try:
            with torch.inference_mode(), deterministic(self.device), self._autocast():
                for start in range(0, len(images), batch_size):
                    chunk = torch.from_numpy(patches[start:start + batch_size]).to(self.device)
                    out[start:start + batch_size] = generator(chunk)[:, 0].float().cpu().numpy()
        finally:
            self.nets.train(was_training)
        return self.intensity.from_unit(out)


# --------------------------------------------------------------------------- #
# Structure check and the arm's sampling
# --------------------------------------------------------------------------- #


def structure_agreement(
    source: np.ndarray, translated: np.ndarray, mask: np.ndarray, *,
    sigma: float = STRUCTURE_SIGMA, margin: int = STRUCTURE_MARGIN,
) -> float:
    """Pearson correlation of the two images' gradient magnitudes in and around the ROI.

    The region is the ROI dilated by ``margin`` voxels, so the lesion, its
    boundary and its immediate surroundings count. Gradient magnitudes are taken
    at Gaussian scale ``sigma`` (:func:`scipy.ndimage.gaussian_gradient_magnitude`),
    which makes the measure insensitive to voxel noise and to any monotone
    change of contrast that keeps edges where they are, which is what a domain
    translation should do, while an image whose lesion edges moved, vanished or
    were invented scores low. 1 means the same edge pattern up to scale; about
    0 means unrelated images.

    Calibration on the two-scanner phantom (100 lesions, 32-voxel patches centred
    on the lesion, default ``sigma`` and ``margin``): a case against its own
    ground-truth scanner-B image scores 0.92 median, 0.74 at the 1st percentile;
    a case against another case's scanner-B image (also a lesion in the centre)
    scores -0.03 median, 0.56 at the 95th percentile. The default acceptance
    threshold ``min_structure = 0.6`` of :class:`CycleGAN` lies between.

    Parameters
    ----------
    source, translated
        Images of the same shape (2D or 3D).
    mask
        Binary ROI mask of that shape (the parent's, carried over).
    sigma
        Gaussian scale of the gradients, in voxels.
    margin
        Dilation of the ROI in voxels.

    Returns
    -------
    float
        Correlation in [-1, 1]; 0 when either gradient field is constant in the region.
    """
    source, translated = np.asarray(source, np.float64), np.asarray(translated, np.float64)
    if source.shape != translated.shape or np.shape(mask) != source.shape:
        raise ValueError(f"source, translated and mask must share a shape, got {source.shape}, "
                         f"{translated.shape}, {np.shape(mask)}")
    region = np.asarray(mask) > 0
    if margin:
        region = ndimage.binary_dilation(region, iterations=margin)
    a = ndimage.gaussian_gradient_magnitude(source, sigma)[region]
    b = ndimage.gaussian_gradient_magnitude(translated, sigma)[region]
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def domain_training_set(train: pd.DataFrame, source_domain: str, target_domain: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The fold-training cases of the two domains and their domain codes.

    Parameters
    ----------
    train
        The fold's training cases with ``case_id`` and ``domain`` columns.
    source_domain, target_domain
        The domain names (``generative.cyclegan.source_domain`` / ``target_domain``).

    Returns
    -------
    cases, codes
        The rows of ``train`` in either domain (in their order) and their codes
        (0 source, 1 target). Cases of other domains are left out.

    Raises
    ------
    ValueError
        If one of the domains has no training case in the fold.
    """
    if "domain" not in train.columns:
        raise ValueError("cyclegan needs a 'domain' column in the case index; add it to the manifest")
    cases = train[train["domain"].isin([source_domain, target_domain])].reset_index(drop=True)
    for key, name in (("source_domain", source_domain), ("target_domain", target_domain)):
        if not (cases["domain"] == name).any():
            present = sorted(set(train["domain"]))
            raise ValueError(
                f"no training case of domain {name!r} (generative.cyclegan.{key}) in this fold; the fold's "
                f"training cases have domains {present}. Name domains of the manifest's 'domain' column."
            )
    return cases, (cases["domain"] == target_domain).to_numpy().astype(np.int64)


def translate_with_quotas(
    model: CycleGAN,
    quotas: Mapping[str, int],
    candidates: pd.DataFrame,
    images: np.ndarray,
    masks: np.ndarray,
    *,
    seed: int,
    fold: str,
    log: Callable[[str], object] = lambda message: None,
    on_shortfall: str = "stop",
) -> tuple[list[np.ndarray], list[np.ndarray], list[dict], pd.DataFrame]:
    """Fill each class's quota with translations of its source-domain training cases.

    For each class with a positive quota, the parents are the ``candidates`` of
    that class in the model's source domain. They are visited in rounds, each
    round a permutation drawn by ``numpy.random.default_rng(class_seed)``, so
    every parent is used once before any is used twice. Each parent is
    translated once (translation is deterministic) and its
    :func:`structure_agreement` with the translation is measured; parents below
    ``model.hyperparams["min_structure"]`` are rejected and skipped in all rounds.
    The mask of every sample is the parent's mask, unchanged.

    Parameters
    ----------
    model
        A trained :class:`CycleGAN`.
    quotas
        Class → number of samples, in the study's class order (as from
        :func:`radaug.sampling.rebalancing_quotas`); a class's position is part
        of its seed.
    candidates
        The fold's training cases (``case_id``, ``label``, ``domain``), in the
        order of ``images`` and ``masks``.
    images, masks
        The candidates' patches (physical units, binary masks).
    seed
        The study seed; class seeds derive from it, the fold and the class.
    fold
        Fold key (part of the seed derivation and of error messages).
    log
        Receives a progress message per class.
    on_shortfall
        ``sampling.on_shortfall`` (:data:`radaug.sampling.ON_SHORTFALL`): when
        every parent of a class is rejected, ``stop`` raises and ``record``
        leaves the class empty and ``short`` in the sampling record.

    Returns
    -------
    images, masks, records, sampling
        Accepted translated images and their (parent) masks; one record per
        sample with ``label, seed, attempt, roi_voxels, parent_case_id,
        direction, structure_agreement``; the sampling record, one row per
        class (:data:`radaug.sampling.SAMPLING_COLUMNS`; ``rejected`` counts the
        parents whose translation scores below ``min_structure``, each translated once).
        ``seed`` is the class seed of the permutations and ``attempt`` the
        round: a sample with ``attempt > 0`` repeats a parent, and because the
        translation is deterministic its image equals that parent's earlier
        sample (a quota larger than the source-domain parents of a class makes
        translated duplicates, as the ``oversample`` arm makes real ones).

    Raises
    ------
    RuntimeError
        If a class with a positive quota has no source-domain parent.
    SamplingError
        With ``on_shortfall="stop"``, if every parent of a class was rejected.
    """
    from radaug.sampling import LOW_STRUCTURE, check_on_shortfall, class_record, sample_seeds, sampling_table

    check_on_shortfall(on_shortfall)

    source = model.hyperparams["source_domain"]
    threshold = model.hyperparams["min_structure"]
    if len(candidates) != len(images) or masks.shape != images.shape:
        raise ValueError(f"candidates ({len(candidates)}), images {images.shape} and masks {masks.shape} disagree")
    labels = candidates["label"].to_numpy()
    in_source = candidates["domain"].to_numpy() == source
    out_images, out_masks, records, rows = [], [], [], []
    for label_index, (label, quota) in enumerate(quotas.items()):
        if quota <= 0:
            rows.append(class_record(label, quota, 0, {}, ""))
            continue
        parents = np.flatnonzero(in_source & (labels == label))
        if not len(parents):
            raise RuntimeError(
                f"cyclegan in fold {fold}: class {label!r} needs {quota} samples but has no training case of the "
                f"source domain {source!r} (generative.cyclegan.source_domain); choose the scarce domain as target."
            )
        translated = model.translate(images[parents], masks[parents])
        scores = np.array([structure_agreement(images[p], t, masks[p]) for p, t in zip(parents, translated)])
        accepted = scores >= threshold
        rejected = int((~accepted).sum())
        text = (f"{rejected} {LOW_STRUCTURE} of translation (generative.cyclegan.min_structure = {threshold}, "
                f"best {scores.max():.3f})")
        if not accepted.any():
            if on_shortfall == "stop":
                raise SamplingError(
                    f"cyclegan in fold {fold}: all {len(parents)} '{label}' translations score below "
                    f"generative.cyclegan.min_structure = {threshold} (best {scores.max():.3f}); train longer or "
                    "lower the threshold (sampling.on_shortfall: record keeps the other arms running)."
                )
            rows.append(class_record(label, quota, 0, {LOW_STRUCTURE: rejected}, text))
            log(f"cyclegan {fold} {label}: 0 of {quota} samples, all {len(parents)} parents rejected")
            continue
        class_seed = int(sample_seeds(seed, fold, model.name, label_index, 1, 0)[0])
        rng = np.random.default_rng(class_seed)
        usable = np.flatnonzero(accepted)
        need, attempt = quota, 0
        while need > 0:
            for k in rng.permutation(usable)[:need]:
                parent = parents[k]
                out_images.append(translated[k])
                out_masks.append(masks[parent].astype(np.uint8))
                records.append({
                    "label": label, "seed": class_seed, "attempt": attempt,
                    "roi_voxels": int(masks[parent].sum()), "parent_case_id": candidates["case_id"].iloc[parent],
                    "direction": model.direction, "structure_agreement": float(scores[k]),
                })
            need -= min(need, len(usable))
            attempt += 1
        rows.append(class_record(label, quota, quota, {LOW_STRUCTURE: rejected}, text))
        log(f"cyclegan {fold} {label}: {quota} samples from {len(usable)} of {len(parents)} "
            f"{source} parents ({rejected} rejected, min_structure={threshold})")
    return out_images, out_masks, records, sampling_table(rows)

