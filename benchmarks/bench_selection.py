"""Does in-fold model selection (issue 20, item 3) choose a better checkpoint than the last step?

On the 2D phantom study (``config/phantom.yaml``: 80 patients, 60 benign : 20
malignant, 5 folds, 800 generator steps) the cases, patches and split are built by the
workflow; then, for three folds (``r0f0``-``r0f2``; ``--quick``: one) and each of
``cvae`` and ``dcgan`` (default hyperparameters, one thread), four generators of
:func:`radaug.generative.training.fit_in_fold`:

* ``plain``: selection off, all the fold's training cases, the last step (the study today);
* ``chosen``: selection on (holdout 0.2, every 50 steps, metric Fréchet), patience large
  enough never to stop: the best step over the whole run;
* ``last``: the same run's last step (its training checkpoint), fitted on 80% of the cases;
* ``early``: selection with the default ``patience: 5``: training stops after five
  evaluations without improvement and samples the best step up to there (the same run
  as ``chosen`` when it would not have stopped).

Each checkpoint draws as many samples per class as the fold has training cases of that
class (the study's quota at ``target_ratio`` 1 is of that order), masks binarised at 0.5,
empty ROIs dropped and intensities normalised as ``sample_synthetic`` does; their
PyRadiomics features (the study's parameter file) are compared with the real features
of the fold's training cases, as the validation does: coverage (k = 5, z-scored by the
real rows), detection AUC (random forest, 5-fold) and Fréchet radiomics distance, per
class. ``baseline`` rows compare the fold's test cases with its training cases (a real
sample of about a quarter of the size: the noise floor of each metric at that size).

Also timed: the cheap features of a selection evaluation's samples against PyRadiomics on
the same patches (why the selection does not run PyRadiomics every N steps).

Run with ``python -m benchmarks.bench_selection`` (``--quick``: 300 steps, every 25).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from benchmarks import row, standalone
from benchmarks.bench_study import REPO, snakemake

BENCH = "selection"
MODELS = ("cvae", "dcgan")
FOLDS = ((0, 0), (0, 1), (0, 2))


def _config(quick: bool) -> dict:
    config = yaml.safe_load((REPO / "config/phantom.yaml").read_text())
    config["study"]["name"] = "selection_bench"
    config["generative"]["models"] = list(MODELS)
    config["evaluation"]["arms"] = ["real"]
    config["perturbation"]["enabled"] = False
    if quick:
        config["generative"]["steps"] = 300
    return config


def _features(extractor, images, masks, spacing, label_names, prefix):
    from radaug.features import META_COLUMNS, extract_patches, feature_columns

    ids = [f"{prefix}{i:04d}" for i in range(len(images))]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "bench", "arm": prefix, "repeat": 0, "fold": 0,
                         "label": list(label_names)})[list(META_COLUMNS)]
    table, _ = extract_patches(extractor, np.asarray(images, np.float32), np.asarray(masks, np.uint8), spacing, meta)
    return table, feature_columns(table)


def _compare(reference: pd.DataFrame, candidate: pd.DataFrame, columns, label) -> dict[str, float]:
    from radaug.validate.detection import detection_auc
    from radaug.validate.metrics import frechet_distance
    from radaug.validate.manifold import prdc_zscored

    ref = reference.loc[reference["label"] == label, columns]
    cand = candidate.loc[candidate["label"] == label, columns]
    return {"coverage": prdc_zscored(ref, cand, 5)["coverage"],
            "detection_auc": detection_auc(ref, cand, seed=0),
            "frechet": frechet_distance(ref, cand, standardize_with=ref),
            "n": float(len(cand))}


def _samples(model, counts: dict[int, int], classes, normalisation, seed=0):
    from radaug.preprocess import normalise_patch

    labels = np.concatenate([np.full(n, c, np.int64) for c, n in counts.items()])
    images, mask_prob = model.sample(labels, seed=seed)
    masks = (mask_prob > 0.5).astype(np.uint8)
    keep = masks.reshape(len(masks), -1).sum(1) >= 4
    images = [normalise_patch(i, m, normalisation) for i, m in zip(images[keep], masks[keep])]
    return np.stack(images), masks[keep], [classes[c] for c in labels[keep]]


def run(quick: bool = False, models=MODELS, n_folds: int | None = None, gan_switches: bool = False) -> list[dict]:
    """The benchmark's rows. ``models``, ``n_folds`` (default 3, quick 1) and ``gan_switches``
    (the GANs with the small-data switches of ``bench_small_data``) vary the experiment."""
    from radaug.config import resolve_params_file, validate_config
    from radaug.features import make_extractor, parse_spacing
    from radaug.generative import get_model, load_model
    from radaug.generative.selection import SelectionOptions, cheap_features
    from radaug.generative.training import fit_in_fold, selection_seed, training_seed
    from radaug.io import read_table
    from radaug.preprocess import load_patches
    from radaug.splits import fold_cases

    torch.set_num_threads(1)
    config = _config(quick)
    if gan_switches:
        from benchmarks.bench_small_data import SWITCHES

        for name in models:
            if name in ("dcgan", "lsgan", "wgan_gp"):
                config["generative"][name] = {**config["generative"].get(name, {}), **SWITCHES}
    rows = []
    with tempfile.TemporaryDirectory(prefix="radaug-selection-") as tmp:
        workdir = Path(tmp)
        study = f"results/{config['study']['name']}"
        snakemake(workdir, config, f"{study}/splits/folds.csv", f"{study}/cases/index.csv")
        full = validate_config(config, base_dir=str(workdir))
        steps, every = full["generative"]["steps"], 25 if quick else 50
        index, folds = read_table(workdir / study / "cases/index.csv"), read_table(workdir / study / "splits/folds.csv")
        patches = sorted((workdir / study / "cases").glob("batch_*.npz"))
        classes = full["data"]["classes"]
        spacing = parse_spacing(index["spacing"].iloc[0])
        normalisation = index["normalisation"].mode().iloc[0]
        extractor = make_extractor(resolve_params_file(full, REPO / "workflow"))
        figures: dict[tuple, list[float]] = {}
        for repeat, fold in FOLDS[:n_folds or (1 if quick else len(FOLDS))]:
            key = f"r{repeat}f{fold}"
            train, test = (fold_cases(folds, repeat, fold, role) for role in ("train", "test"))
            ids, images, masks = load_patches(patches, list(train["case_id"]))
            _, test_images, test_masks = load_patches(patches, list(test["case_id"]))
            labels = np.array([classes.index(x) for x in train["label"]])
            real, columns = _features(extractor, images, masks, spacing, train["label"], "real")
            test_real, _ = _features(extractor, test_images, test_masks, spacing, test["label"], "test")
            for label in classes:
                for metric, value in _compare(real, test_real, columns, label).items():
                    figures.setdefault(("baseline", label, metric), []).append(value)
            counts = {c: int((labels == c).sum()) for c in range(len(classes))}
            if (repeat, fold) == FOLDS[0]:  # the cost of scoring one evaluation's samples: cheap vs PyRadiomics
                probe = np.resize(images, (128, *images.shape[1:])), np.resize(masks, (128, *masks.shape[1:]))
                start = time.perf_counter()
                cheap_features(*probe)
                cheap_s = time.perf_counter() - start
                start = time.perf_counter()
                _features(extractor, *probe, spacing, ["benign"] * 128, "probe")
                radiomics_s = time.perf_counter() - start
                rows.append(row(BENCH, "cost/cheap_features_128", cheap_s, "s", notes="128 patches of 32 x 32"))
                rows.append(row(BENCH, "cost/pyradiomics_128", radiomics_s, "s", reference=cheap_s,
                                notes="the same 128 patches, the study's parameter file, one thread; ratio vs cheap"))
            common = dict(folds=folds, cases=index, repeat=repeat, fold=fold, case_ids=ids, images=images, masks=masks,
                          labels=labels, label_names=list(train["label"]), steps=steps,
                          batch_size=full["generative"]["batch_size"],
                          seed=training_seed(full["study"]["seed"], repeat, fold), device="cpu",
                          checkpoint_every=steps, log_every=steps, log=lambda m: None,
                          selection_seed=selection_seed(full["study"]["seed"], repeat, fold))

            def build(name):
                return get_model(name, patch_size=images.shape[-1], n_classes=len(classes), spatial_dims=2,
                                 **full["generative"][name])

            for name in models:
                variants = {}
                plain = build(name)  # the default study's generator: all training cases, last step
                start = time.perf_counter()
                fit_in_fold(plain, **common)
                plain_s = time.perf_counter() - start
                variants["plain"] = plain
                chosen, ckpt = build(name), workdir / f"{name}-{key}.pt"
                start = time.perf_counter()
                fit_in_fold(chosen, **common, checkpoint_path=ckpt,
                            selection=SelectionOptions(every=every, patience=10_000, holdout=0.2))
                chosen_s = time.perf_counter() - start
                variants["last"] = load_model(ckpt)  # the training checkpoint holds the last step's weights
                variants["chosen"] = chosen
                curve = pd.DataFrame(chosen.selection["curve"])
                stop_at = _patience_stop(curve, 5)
                if stop_at < steps:  # the default patience would have stopped early: train that run too
                    early = build(name)
                    fit_in_fold(early, **common, selection=SelectionOptions(every=every, patience=5, holdout=0.2))
                    assert early.step == stop_at
                    variants["early"] = early
                else:
                    variants["early"] = chosen
                rows.append(row(BENCH, f"{name}/{key}/selected_step", chosen.selected_step, "step", notes=(
                    f"of {steps} (holdout 0.2, every {every}); with patience 5 (default) training stops at step "
                    f"{stop_at} and samples step {variants['early'].selected_step}; plain fit {plain_s:.0f} s, "
                    f"fit + {len(curve)} evaluations {chosen_s:.0f} s")))
                for variant, model in variants.items():
                    s_images, s_masks, s_labels = _samples(model, counts, classes, normalisation)
                    synthetic, _ = _features(extractor, s_images, s_masks, spacing, s_labels, f"{name}-{variant}")
                    for label in classes:
                        for metric, value in _compare(real, synthetic, columns, label).items():
                            figures.setdefault((f"{name}/{variant}", label, metric), []).append(value)
        n_folds = len(figures[("baseline", classes[0], "coverage")])
        for (what, label, metric), values in figures.items():
            if metric == "n":
                continue
            rows.append(row(BENCH, f"{what}/{label}/{metric}", float(np.median(values)), "", notes=(
                f"median over {n_folds} fold(s): " + ", ".join(f"{v:.3g}" for v in values))))
    return rows


def _patience_stop(curve: pd.DataFrame, patience: int) -> int:
    """The step at which early stopping with ``patience`` would have ended training (the last step if never)."""
    since = 0
    for step, best in zip(curve["step"], curve["best"]):
        since = 0 if best else since + 1
        if since >= patience:
            return int(step)
    return int(curve["step"].iloc[-1])


if __name__ == "__main__":
    standalone(run)
