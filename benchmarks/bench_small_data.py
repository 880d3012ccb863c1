"""Do the small-data GAN switches (issue 20) make better synthetic data? A controlled experiment.

The 2D phantom study (``config/phantom.yaml``: 80 patients, 60 benign : 20
malignant, 5 folds, 800 generator steps) is run twice in one temporary folder with
the same seed, data, folds and budget, once with the GANs as configured by default
and once with every small-data switch on (``diffaugment: color,translation,cutout``,
``r1_gamma: 10``, ``ema_beta: 0.999``; the papers' settings). Only the generator
arms are built (validation and evaluation of ``dcgan`` and ``lsgan``, plus ``real``
for the Δ, and ``cvae`` as a reference: it has no switches, so its rows must come out
equal in both runs, which checks that the two runs differ only by the switches). Rows, per GAN and variant, medians over folds of the minority class
(``malignant``), the class a rebalancing study depends on:

* coverage, density, detection AUC, Fréchet radiomics distance (fidelity and
  diversity; the real-vs-real baseline of each is in the notes),
* memorization ratio (about 1 if nothing is copied),
* cells failing validation (fold x class, any gate),
* ΔAUC vs real (pooled over folds, from ``evaluation/summary.csv``),
* training CPU seconds per fold (the provenance record of ``train_generator``; CPU, not wall,
  so a loaded machine does not inflate it).

``ratio`` of a switch row is its value over the default row of the same GAN, measured in
the same run. No target is asserted: this is an experiment, run with
``python -m benchmarks.bench_small_data`` (``--quick``: 3 folds, 300 steps, 40 patients).
``RADAUG_BENCH_WORKDIR=DIR`` keeps the two studies in ``DIR`` (default: a temporary folder).
``--steps N`` trains every generator for N steps instead of the config's; ``--conditioning
mask`` makes every generator mask-conditioned (``generative.conditioning``: given a mask
from the fold's shape model, it synthesises the image only; joint is the 2D default). Either
one names the studies after it (``small_data_<variant>_<conditioning>_<steps>``), so runs of
several settings can share one ``RADAUG_BENCH_WORKDIR`` and its preprocessing.
``--models a,b`` runs these generators instead of cvae, dcgan and lsgan (e.g. ``ddpm``, which
has no small-data switches: without dcgan or lsgan only the default variant is run) and names the
studies after them too (``small_data_<variant>_<models>_<conditioning>_<steps>``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from benchmarks import check_flags, row, standalone
from benchmarks.bench_study import REPO, snakemake

BENCH = "small_data"
GANS = ("dcgan", "lsgan")
REFERENCE = "cvae"  # no switches: equal rows in both runs
MODELS = (REFERENCE, *GANS)
SWITCHES = {"diffaugment": "color,translation,cutout", "r1_gamma": 10.0, "ema_beta": 0.999}
METRICS = ("coverage", "density", "recall", "detection_auc", "frechet_distance", "memorization_ratio")


def configs(quick: bool, steps: int | None = None, conditioning: str | None = None,
            models: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The study configs: ``default`` and ``switches``, equal but for the GANs' switches.

    ``steps`` and ``conditioning`` (``generative.steps`` and ``generative.conditioning``) apply
    to both, and name the studies when given; ``models`` (default :data:`MODELS`) too, and
    without dcgan or lsgan (:data:`GANS`) among them there is no ``switches`` study.
    """
    chosen = tuple(models or MODELS)
    base = yaml.safe_load((REPO / "config/phantom.yaml").read_text())
    base["generative"]["models"] = list(chosen)
    base["evaluation"]["arms"] = ["real", *chosen]
    base["perturbation"]["enabled"] = False
    if quick:
        base["split"]["folds"] = 3
        base["generative"]["steps"] = 300
        base["data"]["phantom"]["n_patients"] = {"benign": 30, "malignant": 10}
    suffix = f"_{'+'.join(chosen)}" if models else ""
    if steps is not None or conditioning is not None or models:
        base["generative"]["steps"] = steps or base["generative"]["steps"]
        base["generative"]["conditioning"] = conditioning or base["generative"].get("conditioning", "auto")
        suffix += f"_{base['generative']['conditioning']}_{base['generative']['steps']}"
    out = {}
    for variant in ("default", "switches") if set(chosen) & set(GANS) else ("default",):
        config = copy.deepcopy(base)
        config["study"]["name"] = f"small_data_{variant}{suffix}"
        if variant == "switches":
            for gan in [g for g in GANS if g in chosen]:
                config["generative"][gan] = {**config["generative"].get(gan, {}), **SWITCHES}
        out[variant] = config
    return out


def targets(config: dict) -> list[str]:
    study = f"results/{config['study']['name']}"
    return [f"{study}/validation/summary.csv", f"{study}/evaluation/summary.csv"]


def figures(study: Path, minority: str, models=MODELS) -> dict[str, dict[str, float]]:
    """Per model: median over folds of each metric in the minority class, failing cells, ΔAUC, train CPU s/fold."""
    summary = pd.read_csv(study / "validation/summary.csv")
    evaluation = pd.read_csv(study / "evaluation/summary.csv")
    out: dict[str, dict[str, float]] = {}
    for gan in models:
        arm = summary[summary["arm"] == gan]
        cells = arm[arm["class"] == minority]
        fig = {m: float(cells.loc[cells["metric"] == m, "value"].median()) for m in METRICS}
        fig.update({f"baseline_{m}": float(cells.loc[cells["metric"] == m, "baseline"].median()) for m in METRICS})
        # an arm that could not generate has no validation rows: no cells, NaN figures (notes say why)
        failing = arm.groupby(["fold", "class"])["verdict"].apply(lambda v: bool((v == "fail").any()))
        fig["failing_cells"] = float(failing.astype(int).sum()) if len(failing) else float("nan")
        fig["cells"] = float(len(failing))
        auc = evaluation[(evaluation["arm"] == gan) & (evaluation["metric"] == "auc")]
        # empty where the arm was not evaluated (it failed validation; evaluation_summary says why)
        fig["delta_auc"] = float(pd.to_numeric(auc["delta_vs_real"], errors="coerce").iloc[0]) if len(auc) else float("nan")
        records = [json.loads(p.read_text()) for p in (study / "provenance").rglob("*.json")]
        train = [r["cpu_seconds"] for r in records if r.get("rule") == "train_generator"
                 and r.get("wildcards", {}).get("model") == gan]
        fig["train_cpu_seconds_per_fold"] = float(pd.Series(train).median()) if train else float("nan")
        verdicts = pd.read_csv(study / "validation/arm_verdicts.csv")
        fig["verdict"] = str(verdicts.loc[verdicts["arm"] == gan, "verdict"].squeeze())
        out[gan] = fig
    return out


def run(quick: bool = False, steps: int | None = None, conditioning: str | None = None,
        models: tuple[str, ...] | None = None) -> list[dict]:
    rows = []
    studies = configs(quick, steps, conditioning, models)
    chosen = tuple(studies["default"]["generative"]["models"])
    keep = os.environ.get("RADAUG_BENCH_WORKDIR")
    with tempfile.TemporaryDirectory(prefix="radaug-small-data-") as tmp:
        workdir = Path(keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {}
        for variant, config in studies.items():
            wall, _, _ = snakemake(workdir, config, *targets(config))
            results[variant] = figures(workdir / "results" / config["study"]["name"], minority="malignant",
                                       models=chosen)
            results[variant]["_wall"] = wall
        for gan in chosen:
            plain, switched = results["default"][gan], results.get("switches", {}).get(gan)
            for key in (*METRICS, "failing_cells", "delta_auc", "train_cpu_seconds_per_fold"):
                notes = ""
                if key in METRICS:
                    notes = f"real-vs-real baseline {plain[f'baseline_{key}']:.3g}; malignant class, median over folds"
                if key == "failing_cells":
                    notes = f"of {plain['cells']:.0f} fold x class cells"
                unit = "s" if key.endswith("seconds_per_fold") else ("cells" if key == "failing_cells" else "")
                rows.append(row(BENCH, f"{gan}/default/{key}", plain[key], unit, notes=notes))
                if switched is None:
                    continue
                rows.append(row(BENCH, f"{gan}/switches/{key}", switched[key], unit, reference=plain[key],
                                notes=notes + ("; " if notes else "") + (
                                    "no switches: must equal the default row" if gan not in GANS
                                    else ", ".join(f"{k}={v}" for k, v in SWITCHES.items()))))
    return rows


if __name__ == "__main__":
    # flags checked first: a missing value or a misspelt option is named before anything runs
    argv = check_flags(sys.argv[1:], ("--quick",), ("--steps", "--conditioning", "--models"))
    steps = argv[argv.index("--steps") + 1] if "--steps" in argv else None
    conditioning = argv[argv.index("--conditioning") + 1] if "--conditioning" in argv else None
    if conditioning not in (None, "joint", "mask", "auto"):
        raise SystemExit(f"--conditioning must be joint, mask or auto, not {conditioning!r}")
    models = tuple(argv[argv.index("--models") + 1].split(",")) if "--models" in argv else None
    from radaug.generative import MODELS as KNOWN

    if models and (not set(models) <= set(KNOWN) or len(set(models)) < len(models)):
        raise SystemExit(f"--models must name distinct models of {sorted(KNOWN)}, not {','.join(models)}")
    standalone(lambda quick: run(quick, int(steps) if steps else None, conditioning, models),
               options=("--steps", "--conditioning", "--models"))
