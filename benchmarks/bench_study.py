"""Pipeline overhead on whole studies: utilisation, incremental reruns, scaling in cases.

A phantom study (the seeded digital phantom, so no download) runs in a temporary
folder with ``snakemake --cores 2``, as ``make study`` runs one. Figures:

* **utilisation**: compute time / (wall time x cores), where compute is the sum of
  the per-job times in the provenance records (``seconds``: the job's own work).
  The rest is split into *job overhead* (Snakemake's per-job start/end times from
  ``.snakemake/metadata`` minus compute: process start, imports, hashing for the
  record) and *idle cores* (wall x cores minus job spans: Snakemake's DAG build,
  scheduling, and too few ready jobs to fill the cores).
* **no-op rerun**: the same command again (nothing to do); target under 10 s.
* **classifier-only rerun**: ``evaluation.classifier.k_features`` changed; rerun
  time / full study time, target <= 0.05.
* **scaling in cases**: study wall time at growing phantom cohorts (full: 100, 300,
  1,000 patients; quick: fewer), seconds per case, and the marginal cost per case
  of the last size step over the first (roughly constant: target <= 1.5).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from benchmarks import check_flags, load_average, row, standalone, stopwatch

REPO = Path(__file__).resolve().parents[1]
CORES = 2
BENCH = "study"


def study_config(name: str, patients: int, *, base: str = "config/smoke.yaml", models=None, steps=None) -> dict:
    """A phantom study config: ``base`` with ``patients`` patients (3 benign : 1 malignant) and a new name."""
    config = yaml.safe_load((REPO / base).read_text())
    config["study"]["name"] = name
    malignant = max(patients // 4, 4)
    config["data"]["phantom"]["n_patients"] = {"benign": patients - malignant, "malignant": malignant}
    if models is not None:
        config["generative"]["models"] = list(models)
        config["evaluation"]["arms"] = ["real", "oversample", *models]
    if steps is not None:
        config["generative"]["steps"] = steps
        config["generative"]["checkpoint_every"] = steps
    return config


def snakemake(workdir: Path, config: dict, *extra: str) -> tuple[float, float, str]:
    """Run the workflow on ``config`` in ``workdir``; wall and CPU seconds (all processes), output.

    Raises on failure.
    """
    path = workdir / ".snakemake" / "bench-study.yaml"  # Snakemake's own folder: nothing left in a repository
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # extra (targets, options) before --configfile, which would swallow trailing targets as config files
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(CORES),
           "--directory", str(workdir), *extra, "--configfile", str(path)]
    with stopwatch() as t:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{output[-3000:]}")
    return t.seconds, t.cpu, output


def job_spans(workdir: Path) -> list[tuple[str, float, float, int]]:
    """(rule, start, end, threads) of every job of the last run, from Snakemake's per-output metadata; a job's
    threads from its provenance record (its log ``<study>/logs/<rule>/<x>.log`` and its record
    ``<study>/provenance/<rule>/<x>.json`` name it alike; 1 where no record is found)."""
    jobs = {}  # one metadata file per output; a job's outputs share its job_hash
    for f in (workdir / ".snakemake/metadata").iterdir():
        meta = json.loads(f.read_text())
        if meta.get("starttime") is None or meta.get("endtime") is None:
            continue
        threads = 1
        if meta.get("log"):
            record = workdir / re.sub(r"\.log$", ".json", meta["log"][0].replace("/logs/", "/provenance/", 1))
            if record.is_file():
                threads = json.loads(record.read_text()).get("threads") or 1
        rule, start, end, n = jobs.get(meta["job_hash"], (meta["rule"], meta["starttime"], meta["endtime"], threads))
        jobs[meta["job_hash"]] = (rule, min(start, meta["starttime"]), max(end, meta["endtime"]), max(n, threads))
    return sorted(jobs.values(), key=lambda j: j[1])


def compute_seconds(study_dir: Path) -> tuple[float, float, int]:
    """Sums of the provenance records' job wall seconds and CPU seconds, and the number of records."""
    records = [json.loads(p.read_text()) for p in (study_dir / "provenance").rglob("*.json")]
    return (sum(r["seconds"] for r in records), sum(r.get("cpu_seconds") or 0.0 for r in records), len(records))


def case_count(study_dir: Path) -> int:
    import pandas as pd

    return len(pd.read_csv(study_dir / "cases/index.csv"))


def jobs_run(output: str) -> int:
    """The job count of Snakemake's 'Job stats' table in a run's output (0 when nothing ran)."""
    match = re.search(r"^total\s+(\d+)", output, re.M)
    return int(match.group(1)) if match else 0


def breakdown(workdir: Path, study: str, wall: float, cpu: float) -> dict:
    """Compute, job overhead and idle core-seconds of the study run just finished in ``workdir``.

    ``cpu`` is the CPU time of the whole run (Snakemake and every job process).
    """
    compute, compute_cpu, n_records = compute_seconds(workdir / "results" / study)
    spans = job_spans(workdir)
    span_total = sum(end - start for _, start, end, _ in spans)
    by_rule = {}
    for rule, start, end, _ in spans:
        by_rule[rule] = by_rule.get(rule, 0.0) + end - start
    return {"compute": compute, "compute_cpu": compute_cpu, "cpu": cpu, "jobs": len(spans), "records": n_records, "job_overhead": span_total - compute,
            "idle": wall * CORES - span_total, "by_rule": dict(sorted(by_rule.items(), key=lambda kv: -kv[1]))}


OVERHEAD_PATIENTS = 32


def overhead_rows(config: dict, workdir: Path, setting: str) -> tuple[list[dict], tuple]:
    """Utilisation and rerun rows of the study ``config`` run in ``workdir``; and its (cases, wall, cpu, load)."""
    name = config["study"]["name"]
    workdir.mkdir(parents=True, exist_ok=True)
    load = load_average()
    full, full_cpu, _ = snakemake(workdir, config)
    b = breakdown(workdir, name, full, full_cpu)
    point = (case_count(workdir / "results" / name), full, full_cpu, load)
    noop, noop_cpu, out = snakemake(workdir, config)
    if "Nothing to be done" not in out:
        raise RuntimeError(f"the no-op rerun did work:\n{out[-2000:]}")
    changed = copy.deepcopy(config)
    changed["evaluation"]["classifier"]["k_features"] = config["evaluation"]["classifier"].get("k_features", 20) - 2
    rerun, rerun_cpu, out = snakemake(workdir, changed)
    rerun_jobs = jobs_run(out)
    snakemake(workdir, config)  # back to the configured classifier: the outputs match the config again
    capacity = full * CORES
    top = ", ".join(f"{k} {v:.1f} s" for k, v in list(b["by_rule"].items())[:4])
    setting = f"{setting}, {CORES} cores, {load}"
    rows = [
        row(BENCH, "utilisation: compute / (wall x cores)", b["compute"] / capacity, "", target=">= 0.8",
            notes=f"{setting}; wall {full:.1f} s, {b['jobs']} jobs, compute {b['compute']:.1f} s, "
                  f"job overhead {b['job_overhead']:.1f} s (process start, imports, record hashing), "
                  f"idle cores {b['idle']:.1f} s (DAG build, scheduling, too few ready jobs); "
                  f"largest job time by rule: {top}"),
        row(BENCH, "share of core time in job overhead", b["job_overhead"] / capacity, "",
            notes="process start + imports + provenance hashing, summed over jobs"),
        row(BENCH, "share of core time idle", b["idle"] / capacity, "",
            notes="Snakemake start-up/DAG/scheduling and cores without a ready job"),
        row(BENCH, "CPU share of the jobs' own work", b["compute_cpu"] / b["cpu"], "", target=">= 0.8",
            notes=f"sum of the records' cpu_seconds {b['compute_cpu']:.1f} s over the CPU time of the whole run "
                  f"{b['cpu']:.1f} s (Snakemake and all job processes); robust to other load on the machine"),
        row(BENCH, "no-op rerun", noop, "s", target="< 10",
            notes=f"{setting}; 'Nothing to be done'; {noop_cpu:.1f} s CPU"),
        row(BENCH, "classifier-only rerun / full study", rerun, "s", reference=full, target="<= 0.05",
            notes=f"evaluation.classifier.k_features changed; {rerun_jobs} jobs reran; full study {full:.1f} s"),
        row(BENCH, "classifier-only rerun / full study, CPU", rerun_cpu, "s", reference=full_cpu, target="<= 0.05",
            notes="CPU seconds of the rerun over those of the full study (robust to other load)"),
    ]
    return rows, point


def scaling_rows(quick: bool, tmp: Path, known: dict) -> list[dict]:
    """Rows of study time at growing cohorts; ``known`` maps patients to (cases, wall, cpu, load) already run.

    Without generators: their training costs per step, not per case (``bench_generator``), and
    would hide the per-case cost of the pipeline this measures.
    """
    sizes = (16, OVERHEAD_PATIENTS, 64) if quick else (100, 300, 1000)
    base = "config/smoke.yaml" if quick else "config/phantom.yaml"
    points = []
    for patients in sizes:
        if patients in known:
            points.append((patients, *known[patients]))
            continue
        name = f"bench_scale_{patients}"
        workdir = tmp / name
        workdir.mkdir()
        config = study_config(name, patients, base=base, models=[])
        wall, cpu, _ = snakemake(workdir, config)
        points.append((patients, case_count(workdir / "results" / name), wall, cpu, load_average()))
    rows = []
    for patients, cases, wall, cpu, load in points:
        rows.append(row(BENCH, f"study wall time, {cases} cases ({patients} patients)", wall, "s",
                        notes=f"{wall / cases:.3f} s/case, {cpu:.1f} s CPU ({cpu / cases:.3f} s/case); {base} "
                              f"settings without generators; {load}"))
    # marginal CPU per case: robust to other load; wall time is in the rows above
    marginal = [((c1, c2), (u2 - u1) / (c2 - c1))
                for (_, c1, _, u1, _), (_, c2, _, u2, _) in zip(points, points[1:])]
    for (c1, c2), m in marginal:
        rows.append(row(BENCH, f"marginal CPU per case, {c1} -> {c2} cases", m, "s/case",
                        notes="(CPU of the larger study - CPU of the smaller) / added cases"))
    if len(marginal) > 1:
        rows.append(row(BENCH, "marginal CPU per case, last step / first step", marginal[-1][1], "",
                        reference=marginal[0][1], target="<= 1.5",
                        notes="about 1 when the cost per case is constant; above when it grows with the cohort"))
    return rows


def run(quick: bool = False, workdir: Path | None = None) -> list[dict]:
    """All rows. Quick: the smoke study without generators for the overhead figures, small cohorts.
    Full: the default study (``config.yaml``, Br35H, generators) for the overhead figures, in
    ``workdir`` if given (e.g. the repository, as ``make study`` runs it; a temporary folder
    otherwise), and phantom cohorts of 100, 300 and 1,000 patients for the scaling."""
    with tempfile.TemporaryDirectory(prefix="radaug-bench-") as tmp:
        tmp = Path(tmp)
        known = {}
        if quick:
            config = study_config("bench_overhead", OVERHEAD_PATIENTS, models=[])
            rows, point = overhead_rows(config, tmp / "bench_overhead", "phantom smoke study without generators")
            known[OVERHEAD_PATIENTS] = point
        else:
            config = yaml.safe_load((REPO / "config.yaml").read_text())
            rows, _ = overhead_rows(config, workdir or tmp / "default", "default study (config.yaml)")
        return rows + scaling_rows(quick, tmp, known)


if __name__ == "__main__":
    check_flags(sys.argv[1:], ("--quick",), ("--workdir",))
    if "--workdir" in sys.argv:
        workdir = Path(sys.argv[sys.argv.index("--workdir") + 1]).resolve()
        standalone(lambda quick: run(quick, workdir), options=("--workdir",))
    else:
        standalone(run)
