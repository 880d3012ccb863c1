"""Seeded digital phantom cohort: CT-like 2D/3D lesions with known class, shape and texture.

The phantom is the ground truth of the test-suite and a study data source whose
answer is known in advance.

Image content (Hounsfield units, float32):

* **Air** outside an elliptical body, exactly :data:`AIR_HU` (-1000 HU).
* **Body** tissue around :data:`TISSUE_HU` (40 HU) with a spatially correlated
  noise texture; the body's semi-axes, mean HU and noise level are a per-patient
  :class:`Body`, shared by all lesions of the patient.
* **One lesion** per case, fully inside the body (so never touching the field of
  view's edge); the mask is uint8 with 1 = lesion and is never empty.

Classes (:data:`LABELS`) differ in shape and texture by an amount set by
``separation`` in [0, 1]. Every class-dependent parameter is
``benign value + m * (malignant shift)`` with ``m = 0`` for benign and
``m = separation`` for malignant, so ``separation = 0`` makes the label invisible
(same random state gives the same arrays for both labels) and ``separation = 1``
gives a strong effect; per-case random variation makes the classes overlap.
The third class, ``"borderline"`` (for studies with more than two classes), has
the benign shape and its own texture effect ``h = separation``: lesion mean about
``LESION_HU - 20 h`` HU and ``sd`` about ``10 * exp(-0.5 h)`` HU, so borderline
lesions are darker and more homogeneous than benign ones (malignant: brighter and
more heterogeneous); ``separation = 0`` makes it identical to benign too.

* **Shape**: the lesion radius along direction ``u`` is
  ``r0 * (1 + sum_j a_j cos(k_j * angle(u, v_j)))`` (four harmonics, ``k_j`` in
  2..7, random axes ``v_j``), then the lesion is stretched along random axes.
  The total harmonic amplitude ``sum_j a_j`` is about ``0.05 + 0.2 m``: benign
  lesions are smooth ellipses/ellipsoids, malignant ones lobulated.
* **Texture**: lesion HU is ``mean + sd * noise`` with ``mean`` about
  ``LESION_HU + 15 m`` HU and ``sd`` about ``10 * exp(0.5 m)`` HU, so malignant
  lesions are brighter and more heterogeneous.

Texture subtypes (:data:`SUBTYPES`), independent of class:

* ``"fine"``: short correlation length (Gaussian sigma 0.7 voxel).
* ``"coarse"``: long correlation length (sigma 2 voxels).
* ``"rare"``: fine texture plus 1-3 dense calcified foci (+400 to +800 HU), a
  mode that a generator may drop; drawn with probability ``rare_fraction``.

Imaging domains (off by default, ``domains=True`` in :func:`make_phantom_cohort`):
each patient is scanned on one of two simulated scanners (:data:`DOMAINS`),
drawn independently of class and anatomy with probability ``domain_b_fraction``
for ``"scanner_b"``. ``"scanner_a"`` images are the phantom as above;
``"scanner_b"`` images are the same kind of anatomy seen through
:func:`scanner_b_appearance`: Gaussian blur (sigma :data:`SCANNER_B_BLUR`
voxels), a smooth non-linear intensity transfer ``c + o + w tanh((x - c) / w)``
(centre ``c`` = :data:`TISSUE_HU`, width :data:`SCANNER_B_WIDTH_HU`, offset
:data:`SCANNER_B_OFFSET_HU`) that compresses air and calcifications, and extra
white noise (sd :data:`SCANNER_B_NOISE_HU`). Masks are unchanged. The scanner
draw has its own random stream, so turning domains on changes no scanner-A
image, and the manifest's ``domain`` column names each case's scanner ("" when
domains are off).

Lesion size and the body are defined in voxels; ``spacing`` is only metadata.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from radaug.errors import ConfigError
from radaug.io import atomic_path, write_csv
from radaug.seeds import stream_key, stream_rng

LABELS = ("benign", "malignant", "borderline")
"""Phantom classes; the third is appended so a two-class cohort keeps its seeds and patient numbers."""
SUBTYPES = ("fine", "coarse", "rare")
RARE_SUBTYPE = "rare"
IMAGE_FORMATS = ("nii.gz", "nii", "nrrd", "mha")
MANIFEST_COLUMNS = ("case_id", "patient_id", "image", "mask", "label", "modality", "subtype", "domain")
DOMAINS = ("scanner_a", "scanner_b")

AIR_HU = -1000.0
TISSUE_HU = 40.0
LESION_HU = 60.0
MIN_SIZE = 16

SCANNER_B_BLUR = 1.0
SCANNER_B_WIDTH_HU = 150.0
SCANNER_B_OFFSET_HU = 30.0
SCANNER_B_NOISE_HU = 12.0

_TEXTURE_SIGMA = {"fine": 0.7, "coarse": 2.0, "rare": 0.7}
_N_HARMONICS = 4


@dataclass(frozen=True)
class Body:
    """The patient's body: an ellipse (2D) or ellipsoid (3D) centred in the field of view.

    Attributes
    ----------
    semi_axes : tuple of float
        Semi-axis per array axis, as a fraction of half the field of view; at most
        0.95 so the body never touches the image edge.
    tissue_hu : float
        Mean HU of body tissue.
    noise_hu : float
        Standard deviation (HU) of the correlated tissue noise.
    """

    semi_axes: tuple[float, ...]
    tissue_hu: float
    noise_hu: float


def random_body(rng: np.random.Generator, dim: int) -> Body:
    """Draw a patient's body.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    dim : {2, 3}
        Number of image dimensions.

    Returns
    -------
    Body
        Semi-axes in [0.8, 0.95], tissue mean about :data:`TISSUE_HU` (sd 2 HU),
        noise 8-15 HU.
    """
    _check_dim(dim)
    return Body(
        semi_axes=tuple(float(a) for a in rng.uniform(0.8, 0.95, size=dim)),
        tissue_hu=float(TISSUE_HU + rng.normal(0.0, 2.0)),
        noise_hu=float(rng.uniform(8.0, 15.0)),
    )


def phantom_case(
    rng: np.random.Generator,
    label: str,
    subtype: str,
    *,
    dim: int = 2,
    size: int = 64,
    separation: float = 0.6,
    body: Body | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one phantom image and its lesion mask.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness; the same state and arguments give identical arrays.
    label : {"benign", "malignant", "borderline"}
        Lesion class.
    subtype : {"fine", "coarse", "rare"}
        Lesion texture subtype.
    dim : {2, 3}
        Number of image dimensions.
    size : int
        Edge length of the square/cubic field of view in voxels (at least 16).
    separation : float
        Class separation in [0, 1]; 0 makes ``label`` have no effect.
    body : Body, optional
        The patient's body (share it between a patient's lesions); drawn from
        ``rng`` when omitted.

    Returns
    -------
    image : numpy.ndarray
        float32 HU, shape ``(size,) * dim`` indexed (y, x) or (z, y, x).
    mask : numpy.ndarray
        uint8 of the same shape, 1 inside the lesion; never empty.
    """
    _check_case_args(label, subtype, dim, size, separation)
    if body is None:
        body = random_body(rng, dim)
    elif len(body.semi_axes) != dim:
        raise ConfigError(f"body has {len(body.semi_axes)} semi-axes but dim={dim}; pass a Body made for dim={dim}")
    m = separation if label == "malignant" else 0.0
    hypodense = separation if label == "borderline" else 0.0
    shape = (size,) * dim

    inside_body = _body_mask(body, shape)
    tissue = body.tissue_hu + body.noise_hu * _unit_noise(rng, shape, sigma=1.0)
    lesion = _lesion_mask(rng, inside_body, m)
    lesion_hu = _lesion_texture(rng, lesion, subtype, m, hypodense)

    image = np.full(shape, AIR_HU, dtype=np.float32)
    image[inside_body] = tissue[inside_body]
    image[lesion] = lesion_hu[lesion]
    return image, lesion.astype(np.uint8)


def scanner_b_appearance(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The phantom image as the simulated second scanner would show it.

    ``c + o + w * tanh((blur(x) - c) / w) + noise``, with ``blur`` a Gaussian of
    sigma :data:`SCANNER_B_BLUR` voxels, ``c`` = :data:`TISSUE_HU`,
    ``w`` = :data:`SCANNER_B_WIDTH_HU`, ``o`` = :data:`SCANNER_B_OFFSET_HU` and
    white noise of sd :data:`SCANNER_B_NOISE_HU` drawn from ``rng``. Near tissue
    values the transfer has slope 1 (plus the offset); air (-1000 HU) maps to
    about ``c + o - w`` and dense calcifications are compressed likewise.

    Parameters
    ----------
    image : numpy.ndarray
        Scanner-A image in HU (2D or 3D).
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        float32 image of the same shape.
    """
    blurred = ndimage.gaussian_filter(np.asarray(image, np.float64), SCANNER_B_BLUR)
    compressed = SCANNER_B_WIDTH_HU * np.tanh((blurred - TISSUE_HU) / SCANNER_B_WIDTH_HU)
    transfer = TISSUE_HU + SCANNER_B_OFFSET_HU + compressed
    return (transfer + rng.normal(0.0, SCANNER_B_NOISE_HU, image.shape)).astype(np.float32)


def make_phantom_cohort(
    out_dir: str | os.PathLike,
    *,
    n_patients: Mapping[str, int] | None = None,
    dim: int = 2,
    size: int = 64,
    spacing: float = 1.0,
    rare_fraction: float = 0.05,
    multi_lesion_fraction: float = 0.3,
    separation: float = 0.6,
    seed: int = 0,
    image_format: str = "nii.gz",
    domains: bool = False,
    domain_b_fraction: float = 0.5,
) -> pd.DataFrame:
    """Write a phantom cohort (one image and one mask file per lesion) and its manifest.

    Patients are numbered ``P0000, P0001, ...`` class by class in :data:`LABELS`
    order; a patient has one lesion, or with probability ``multi_lesion_fraction``
    two or three, all sharing the patient's label and :class:`Body`. Each patient's
    random stream is the ``k``-th spawn of its class's stream of
    ``SeedSequence(seed)``, so adding patients to a class leaves the images of all
    existing patients unchanged (patient numbers of later classes shift).

    Parameters
    ----------
    out_dir : path
        Destination; files go to ``images/`` and ``masks/`` and the manifest to
        ``manifest.csv``.
    n_patients : mapping of str to int, optional
        Patients per class; default ``{"benign": 30, "malignant": 10}``.
    dim : {2, 3}
        Number of image dimensions.
    size : int
        Edge length of the field of view in voxels (at least 16).
    spacing : float
        Isotropic voxel spacing in mm written to the files.
    rare_fraction : float
        Probability that a lesion has the ``"rare"`` subtype; the rest are
        ``"fine"`` or ``"coarse"`` with equal probability.
    multi_lesion_fraction : float
        Probability that a patient has more than one lesion.
    separation : float
        Class separation in [0, 1], see :func:`phantom_case`.
    seed : int
        Root seed.
    image_format : {"nii.gz", "nii", "nrrd", "mha"}
        File extension; SimpleITK picks the format from it.
    domains : bool
        Scan each patient on one of two simulated scanners (:data:`DOMAINS`);
        see the module docstring.
    domain_b_fraction : float
        Probability that a patient is scanned on ``"scanner_b"`` (with ``domains``).

    Returns
    -------
    pandas.DataFrame
        The manifest: columns ``case_id, patient_id, image, mask, label, modality,
        subtype, domain`` with ``image``/``mask`` relative to ``out_dir``, sorted
        by ``case_id``; ``domain`` is "" unless ``domains``.
    """
    n_patients = {"benign": 30, "malignant": 10} if n_patients is None else dict(n_patients)
    _check_cohort_args(n_patients, dim, size, spacing, rare_fraction, multi_lesion_fraction, separation, image_format)
    if not isinstance(domains, (bool, np.bool_)):
        raise ConfigError(f"domains={domains!r}; use true or false")
    _check_unit_interval("domain_b_fraction", domain_b_fraction)
    out_dir = Path(out_dir)

    rows = []
    patient_number = 0
    class_streams = np.random.SeedSequence(stream_key("study", seed)).spawn(len(LABELS))
    for class_index, (label, class_stream) in enumerate(zip(LABELS, class_streams)):
        for k, patient_stream in enumerate(class_stream.spawn(n_patients.get(label, 0))):
            patient_id = f"P{patient_number:04d}"
            patient_number += 1
            patient_rng = np.random.default_rng(patient_stream)
            scanner_rng = stream_rng("phantom_domain", seed, class_index=class_index, k=k)
            domain = ""
            if domains:
                domain = DOMAINS[1] if scanner_rng.random() < domain_b_fraction else DOMAINS[0]
            body = random_body(patient_rng, dim)
            n_lesions = 1 if patient_rng.random() >= multi_lesion_fraction else int(patient_rng.integers(2, 4))
            for lesion_number, lesion_stream in enumerate(patient_stream.spawn(n_lesions), start=1):
                rng = np.random.default_rng(lesion_stream)
                subtype = _draw_subtype(rng, rare_fraction)
                image, mask = phantom_case(
                    rng, label, subtype, dim=dim, size=size, separation=separation, body=body
                )
                if domain == DOMAINS[1]:
                    image = scanner_b_appearance(image, scanner_rng)
                case_id = f"{patient_id}_L{lesion_number}"
                image_rel = f"images/{case_id}.{image_format}"
                mask_rel = f"masks/{case_id}.{image_format}"
                _write_image(image, out_dir / image_rel, spacing)
                _write_image(mask, out_dir / mask_rel, spacing)
                rows.append((case_id, patient_id, image_rel, mask_rel, label, "CT", subtype, domain))

    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).sort_values("case_id", ignore_index=True)
    write_csv(out_dir / "manifest.csv", manifest)
    return manifest


def _body_mask(body: Body, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the body ellipse/ellipsoid centred in the field of view."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - (n - 1) / 2) / (a * n / 2)) ** 2 for g, n, a in zip(grids, shape, body.semi_axes))
    return r2 <= 1.0


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-correlated noise with zero mean and unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    field -= field.mean()
    return field / field.std()


def _lesion_mask(rng: np.random.Generator, inside_body: np.ndarray, m: float) -> np.ndarray:
    """A star-shaped lesion whose boundary irregularity grows with ``m``, inside the body."""
    dim, size = inside_body.ndim, inside_body.shape[0]
    r0 = size * rng.uniform(0.10, 0.17)
    amplitude = (0.05 + 0.2 * m) * rng.uniform(0.7, 1.3)
    weights = rng.uniform(0.2, 1.0, size=_N_HARMONICS)
    harmonic_amplitudes = amplitude * weights / weights.sum()
    harmonic_orders = rng.integers(2, 8, size=_N_HARMONICS)
    harmonic_axes = _unit_vectors(rng, _N_HARMONICS, dim)
    rotation = _random_rotation(rng, dim)
    stretch = rng.uniform(0.7, 1.0, size=dim)

    # Every lesion voxel lies within r_max of the centre; keep it off the body edge.
    r_max = r0 * (1.0 + amplitude) * stretch.max()
    candidates = np.argwhere(ndimage.distance_transform_edt(inside_body) > r_max + 1.0)
    centre = candidates[rng.integers(len(candidates))]

    offsets = np.indices(inside_body.shape).reshape(dim, -1).T - centre
    local = offsets @ rotation / stretch
    rho = np.linalg.norm(local, axis=1)
    directions = local / np.maximum(rho, 1e-12)[:, None]
    angles = np.arccos(np.clip(directions @ harmonic_axes.T, -1.0, 1.0))
    radius = r0 * (1.0 + np.cos(angles * harmonic_orders) @ harmonic_amplitudes)
    lesion = (rho <= radius).reshape(inside_body.shape)

    # Voxelisation can cut off thin lobes; keep the part connected to the centre.
    components, _ = ndimage.label(lesion)
    return components == components[tuple(centre)]


def _lesion_texture(rng: np.random.Generator, lesion: np.ndarray, subtype: str, m: float,
                    hypodense: float = 0.0) -> np.ndarray:
    """Lesion HU over the whole grid (only values inside ``lesion`` are used).

    ``m`` is the malignant shift (brighter, more heterogeneous), ``hypodense`` the
    borderline one (darker, more homogeneous); at most one of them is non-zero.
    """
    if hypodense:
        mean = LESION_HU - 20.0 * hypodense + rng.normal(0.0, 10.0)
        sd = 10.0 * np.exp(-0.5 * hypodense + rng.normal(0.0, 0.3))
    else:
        mean = LESION_HU + 15.0 * m + rng.normal(0.0, 10.0)
        sd = 10.0 * np.exp(0.5 * m + rng.normal(0.0, 0.3))
    hu = mean + sd * _unit_noise(rng, lesion.shape, _TEXTURE_SIGMA[subtype])
    if subtype == RARE_SUBTYPE:
        hu += _calcifications(rng, lesion)
    return hu


def _calcifications(rng: np.random.Generator, lesion: np.ndarray) -> np.ndarray:
    """One to three dense foci (peak +400 to +800 HU) centred on lesion voxels."""
    voxels = np.argwhere(lesion)
    foci = voxels[rng.choice(len(voxels), size=int(rng.integers(1, 4)))]
    spots = np.zeros(lesion.shape)
    spots[tuple(foci.T)] = 1.0
    blobs = ndimage.gaussian_filter(spots, sigma=0.8)
    return rng.uniform(400.0, 800.0) * blobs / blobs.max()


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """``n`` directions uniform on the circle/sphere, shape (n, dim)."""
    v = rng.standard_normal((n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _random_rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    """A Haar-distributed orthogonal matrix (columns are the lesion's own axes)."""
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _draw_subtype(rng: np.random.Generator, rare_fraction: float) -> str:
    u = rng.random()
    if u < rare_fraction:
        return RARE_SUBTYPE
    return "fine" if (u - rare_fraction) < (1.0 - rare_fraction) / 2 else "coarse"


def _write_image(array: np.ndarray, path: Path, spacing: float) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((float(spacing),) * array.ndim)
    image.SetOrigin((0.0,) * array.ndim)
    image.SetDirection(np.eye(array.ndim).ravel().tolist())
    with atomic_path(path, keep_extension=True) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=True)


def _check_dim(dim: int) -> None:
    if dim not in (2, 3):
        raise ConfigError(f"dim={dim!r} is not supported; use 2 or 3")


def _check_grid(dim: int, size: int) -> None:
    _check_dim(dim)
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ConfigError(f"size={size!r} is too small for a phantom; use an integer >= {MIN_SIZE}")


def _check_unit_interval(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={value!r} is outside [0, 1]; pass a value between 0 and 1")


def _check_case_args(label: str, subtype: str, dim: int, size: int, separation: float) -> None:
    if label not in LABELS:
        raise ConfigError(f"label={label!r} is unknown; use one of {LABELS}")
    if subtype not in SUBTYPES:
        raise ConfigError(f"subtype={subtype!r} is unknown; use one of {SUBTYPES}")
    _check_grid(dim, size)
    _check_unit_interval("separation", separation)


def _check_cohort_args(
    n_patients: dict[str, int],
    dim: int,
    size: int,
    spacing: float,
    rare_fraction: float,
    multi_lesion_fraction: float,
    separation: float,
    image_format: str,
) -> None:
    unknown = sorted(set(n_patients) - set(LABELS))
    if unknown:
        raise ConfigError(f"n_patients has unknown classes {unknown}; use keys from {LABELS}")
    for label, n in n_patients.items():
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"n_patients[{label!r}]={n!r}; use a non-negative integer")
    if sum(n_patients.values()) == 0:
        raise ConfigError("n_patients asks for no patients; give at least one class a positive count")
    _check_grid(dim, size)
    if not spacing > 0:
        raise ConfigError(f"spacing={spacing!r} mm; use a positive voxel spacing")
    _check_unit_interval("separation", separation)
    _check_unit_interval("rare_fraction", rare_fraction)
    _check_unit_interval("multi_lesion_fraction", multi_lesion_fraction)
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(f"image_format={image_format!r} is not supported; use one of {IMAGE_FORMATS}")
