"""DAG scale: how long Snakemake takes to plan a large study (``snakemake -n``).

A study of 1,000 cases x 10 folds x every arm the configuration allows (``real``,
``oversample`` and each generator of ``generative.models``) is planned from a user
manifest of tiny phantom images: the dry run reads the manifest and checks that its
files exist (``manifest_files`` in workflow/rules/common.smk) but processes nothing.
The reference is the dry run of the smoke study (24 patients x 3 folds) measured in the
same run, so the ratio says how planning time grows with the study.

Target (issue 7): the 1,000-case plan is built in under 30 s on the 2-core test machine.

Run alone: ``.venv/bin/python -m benchmarks.bench_dag``.
"""
from __future__ import annotations

import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
N_CASES = 1000
N_FOLDS = 10
N_BATCHES = 20  # 50 cases per preprocess / feature batch


def all_models() -> list[str]:
    """Every generative model the schema knows, but cyclegan (it needs two domains in the manifest)."""
    schema = yaml.safe_load((REPO / "src/radaug/schemas/config.schema.yaml").read_text())
    return [m for m in schema["properties"]["generative"]["properties"]["models"]["items"]["enum"] if m != "cyclegan"]


def all_arms() -> list[str]:
    """Every arm a configuration may name: the built-in arms, classical and each generator."""
    from radaug.arms import BUILTIN_ARMS, CLASSICAL_ARM

    return [*BUILTIN_ARMS, CLASSICAL_ARM, *all_models()]


def write_large_study(folder: Path, n_cases: int = N_CASES) -> Path:
    """A manifest of ``n_cases`` tiny 2D phantom cases and a study config using it; returns the config."""
    from radaug.data.phantom import make_phantom_cohort

    # about 1.45 lesions per patient: enough patients for n_cases lesions, then the first n_cases
    n_patients = {"benign": int(n_cases * 0.55), "malignant": int(n_cases * 0.2)}
    table = make_phantom_cohort(folder / "cohort", n_patients=n_patients, dim=2, size=16, seed=1)
    assert len(table) >= n_cases, f"phantom made {len(table)} cases, fewer than {n_cases}"
    manifest = folder / "cohort/manifest.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[: n_cases + 1]) + "\n")
    arms = all_arms()
    config = {
        "study": {"name": "dagscale", "seed": 1},
        "data": {"source": "manifest", "manifest": str(manifest), "classes": ["benign", "malignant"]},
        "features": {"params": str(REPO / "workflow/resources/radiomics_2d_mr.yaml")},
        "preprocess": {"patch_mode": "crop", "patch_size": 16, "batches": N_BATCHES},
        "split": {"folds": N_FOLDS},
        "generative": {"models": all_models()},
        "evaluation": {"arms": arms},
    }
    path = folder / "dagscale.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(workdir: Path, configfile: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of ``snakemake -n`` (process start to exit) and the number of jobs planned.

    CPU seconds (user + system of the child) hardly depend on other load on the machine.
    """
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "-n", "--quiet",
           "rules", "--directory", str(workdir), "--configfile", str(configfile)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, re.M)
    return seconds, cpu, int(total.group(1)) if total else 0


def run(quick: bool = False) -> list[dict]:
    """Plan the smoke study (reference) and the 1,000-case study; one row each plus the ratio."""
    with tempfile.TemporaryDirectory(prefix="bench_dag_") as tmp:
        tmp = Path(tmp)
        (tmp / "smoke").mkdir()
        ref_seconds, ref_cpu, ref_jobs = dry_run(tmp / "smoke", REPO / "config/smoke.yaml")
        configfile = write_large_study(tmp / "large")
        seconds, cpu, jobs = dry_run(tmp / "large", configfile)
    arms = all_arms()
    study = f"{N_CASES} cases x {N_FOLDS} folds x {len(arms)} arms ({', '.join(arms)}), {N_BATCHES} batches"
    return [
        {"benchmark": "dag", "figure": "dry run of the smoke study (24 patients x 3 folds)",
         "value": round(ref_seconds, 2), "unit": "s", "reference": None, "ratio": None, "target": None,
         "notes": f"{ref_jobs} jobs planned; {ref_cpu:.1f} CPU s"},
        {"benchmark": "dag", "figure": f"dry run of {study}", "value": round(seconds, 2), "unit": "s",
         "reference": None, "ratio": None, "target": "< 30",
         "notes": f"{jobs} jobs planned; {cpu:.1f} CPU s; {seconds / ref_seconds:.2f}x the smoke study's dry run"},
        {"benchmark": "dag", "figure": f"CPU time of the dry run of {study}", "value": round(cpu, 2), "unit": "s",
         "reference": round(ref_cpu, 2), "ratio": round(cpu / ref_cpu, 2), "target": None,
         "notes": "user + system seconds of the snakemake process: robust to other load on the machine"},
    ]


if __name__ == "__main__":
    from benchmarks import check_flags

    for row in run(quick="--quick" in check_flags(sys.argv[1:], ("--quick",))):
        print(row)
