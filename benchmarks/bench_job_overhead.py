"""Where a small study's job time goes: per rule, start-up, imports, work, hashing; and idle cores.

Two parts, both on the code of this checkout (``src/`` of the repository this file is in):

* **imports per job** (no study): for every workflow script, the CPU time of a fresh
  Python process that only runs the script's top-level imports, minus that of an empty
  one (``python -c pass``), median of three (quick: one); plus the interpreter start and the import
  of ``snakemake.script`` that Snakemake's script preamble does in every job. With
  ``RADAUG_BASELINE_SRC`` set to another checkout's ``src`` (e.g. ``main``), each script's
  imports are timed there too, interleaved in the same run, and rows give the ratio.
* **per-rule breakdown** of a phantom study of about 100 cases (64 patients, the quick
  study settings without generators as in ``bench_study``; 2 cores). For every rule: its
  jobs, mean job span (Snakemake's start/end times), of which the job's own work (the
  provenance record's ``seconds``), the hashing for the record (its inputs' and outputs'
  sha256, timed again here on warm files), interpreter + Snakemake preamble + the script's
  imports (first part), and the rest (Snakemake's job setup and teardown, reading the
  pickled job, logging, writing the record). Idle core time is split into time with no job
  running (Snakemake's start-up, DAG build, scheduling between jobs) and cores that no
  running job holds while some job runs (a job holds its threads; the rules beside which
  cores idled are named). Utilisation counts the jobs' CPU seconds, which include the
  worker processes a validation job forks for its null draws (their extra CPU against a
  one-thread fold has its own row). The study is validated as a user's
  study of this size is, by the default null rule; the same study under the factor rule
  (the smoke study's, and the default before 2026-12-02) gives its totals beside it.

Import figures are CPU seconds (robust to other load); the study's spans are wall seconds
from Snakemake's and the records' clocks, so on a shared machine they include waiting for a
core; the notes carry the load average. The per-rule split charges each job the import CPU
of its script, a lower bound of the wall time the imports take in the job.
"""

from __future__ import annotations

import ast
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import load_average, row, standalone, stopwatch
from benchmarks.bench_study import CORES, compute_seconds, job_spans, study_config

REPO = Path(__file__).resolve().parents[1]
BENCH = "job_overhead"
STUDY_PATIENTS = 64  # about 100 cases (the quick study's largest cohort)
REPEATS = 3  # per import figure (median); quick: 1


def script_imports(script: Path) -> str:
    """The top-level import statements of a workflow script, as one block of code."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def rule_scripts(repo: Path = REPO) -> dict[str, str]:
    """Rule name -> workflow script stem, from the ``script:`` directives of ``workflow/rules/*.smk``."""
    out = {}
    for smk in sorted((repo / "workflow/rules").glob("*.smk")):
        for match in re.finditer(r"^rule (\w+):(.*?)(?=^rule |\Z)", smk.read_text(), re.S | re.M):
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", match.group(2))
            if script:
                out[match.group(1)] = Path(script.group(1)).stem
    return out


def process_seconds(code: str, src: Path) -> float:
    """CPU seconds (user + system) of ``python -c code`` with ``src`` first on the path.

    CPU, not wall: on a shared machine a process's wall time is mostly waiting for a core,
    while its CPU time is what the job costs the study's cores.
    """
    env = {**os.environ, "PYTHONPATH": str(src)}
    with stopwatch() as t:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"python -c failed with PYTHONPATH={src}:\n{code}\n{proc.stderr[-1500:]}")
    return t.cpu


def import_seconds(srcs: list[Path], repeats: int = REPEATS) -> tuple[float, float, dict[str, list[float]]]:
    """Interpreter start, Snakemake preamble import, and each script's import seconds per tree in ``srcs``
    (each tree's own version of the script).

    Runs are interleaved (script by script, tree by tree, ``repeats`` times) so that load on the
    machine falls on the trees alike; each figure is a median.
    """
    scripts = sorted((REPO / "workflow/scripts").glob("*.py"))
    empty = [process_seconds("pass", srcs[0]) for _ in range(max(repeats, 3))]
    start = statistics.median(empty)
    preamble = statistics.median(process_seconds("from snakemake import script", srcs[0])
                                 for _ in range(max(repeats, 3))) - start
    times: dict[str, list[list[float]]] = {s.stem: [[] for _ in srcs] for s in scripts}
    for _ in range(repeats):
        for s in scripts:
            for i, src in enumerate(srcs):
                # each tree's own script (a script whose imports moved between trees is timed as each has it);
                # a script the other tree lacks is timed there with this tree's imports
                own = src.parent / "workflow/scripts" / s.name
                code = script_imports(own if own.is_file() else s)
                times[s.stem][i].append(process_seconds(code, src) - start)
    return start, preamble, {k: [statistics.median(v) for v in per_tree] for k, per_tree in times.items()}


def record_hash_seconds(study_dir: Path) -> dict[str, tuple[int, float]]:
    """Per rule: number of records and the seconds to re-hash the files they list (warm cache)."""
    from radaug.io import sha256_file

    out: dict[str, tuple[int, float]] = {}
    for path in (study_dir / "provenance").rglob("*.json"):
        record = json.loads(path.read_text())
        files = [e["path"] for e in record["inputs"] + record["outputs"]]
        start = time.perf_counter()
        for f in files:
            if Path(f).is_file():
                sha256_file(f)
        n, seconds = out.get(record["rule"], (0, 0.0))
        out[record["rule"]] = (n + 1, seconds + time.perf_counter() - start)
    return out


def record_compute(study_dir: Path) -> dict[str, float]:
    """Per rule: sum of the records' job seconds (the job's own work)."""
    out: dict[str, float] = {}
    for path in (study_dir / "provenance").rglob("*.json"):
        record = json.loads(path.read_text())
        out[record["rule"]] = out.get(record["rule"], 0.0) + record["seconds"]
    return out


def concurrency(spans, start: float, end: float, cores: int = CORES):
    """Idle core-seconds of ``[start, end]`` by how many cores the running jobs held, and per rule the
    core-seconds left idle beside it while it ran with idle cores.

    ``spans``: (rule, start, end) or (rule, start, end, threads); a job holds ``threads`` cores
    (default 1), as Snakemake counts them. ``by_level[h]``: wall seconds during which the running
    jobs held ``h`` cores (capped at ``cores``); ``alone[rule]``: the idle core-seconds beside
    ``rule``'s jobs while they were the only ones running.
    """
    spans = [(span[0], span[1], span[2], span[3] if len(span) > 3 else 1) for span in spans]
    events = sorted([(s, 1, r, n) for r, s, _, n in spans] + [(e, -1, r, n) for r, _, e, n in spans])
    by_level: dict[int, float] = {}
    alone: dict[str, float] = {}
    running: list[tuple[str, int]] = []
    t = start
    for when, step, rule, threads in events:
        held = min(sum(n for _, n in running), cores)
        by_level[held] = by_level.get(held, 0.0) + max(when - t, 0.0)
        if len(running) == 1 and held < cores:
            alone[running[0][0]] = alone.get(running[0][0], 0.0) + max(when - t, 0.0) * (cores - held)
        t = max(t, when)
        if step > 0:
            running.append((rule, threads))
        else:
            running.remove((rule, threads))
    by_level[0] = by_level.get(0, 0.0) + max(end - t, 0.0)
    return by_level, alone


def worker_cost(study_dir: Path) -> tuple[float, float, int, float, int] | None:
    """The control folds' CPU on worker processes against one thread, from one run's records:
    (mean CPU of the folds on several workers, their mean wall, their workers, mean CPU of the one-thread
    folds, how many); None without both kinds. The folds of a study are of about the same size
    (``validation_threads`` in ``workflow/rules/common.smk`` gives those of a last partial round more
    threads), so the difference is what forking costs."""
    records = [json.loads(p.read_text()) for p in (study_dir / "provenance/validate_controls_fold").glob("*.json")]
    records = [r for r in records if r.get("cpu_seconds")]
    one = [r["cpu_seconds"] for r in records if (r.get("threads") or 1) == 1]
    more = [r for r in records if (r.get("threads") or 1) > 1]
    if not one or not more:
        return None
    return (statistics.mean(r["cpu_seconds"] for r in more), statistics.mean(r["seconds"] for r in more),
            max(r["threads"] for r in more), statistics.mean(one), len(more))


def run_study(workdir: Path, config: dict, repo: Path = REPO) -> tuple[float, float, float]:
    """Run the workflow of ``repo`` once on ``config`` in ``workdir``; (start epoch, end epoch, CPU seconds)."""
    path = workdir / ".snakemake" / "bench-overhead.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", str(CORES),
           "--directory", str(workdir), "--configfile", str(path)]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    began = time.time()
    with stopwatch() as t:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return began, began + t.seconds, t.cpu


def import_rows(srcs: list[Path], repeats: int) -> tuple[list[dict], float, float, dict[str, float]]:
    start, preamble, times = import_seconds(srcs, repeats)
    load = load_average()
    rows = [
        row(BENCH, "interpreter start (python -c pass)", start, "s", notes=load),
        row(BENCH, "Snakemake script preamble import", preamble, "s",
            notes="'from snakemake import script', done by every script job before the script runs"),
    ]
    for stem, per_tree in times.items():
        if len(srcs) > 1:
            rows.append(row(BENCH, f"imports of {stem}", per_tree[0], "s", reference=per_tree[1],
                            notes=f"this tree {per_tree[0]:.2f} s vs {srcs[1]} {per_tree[1]:.2f} s; "
                                  f"median of {repeats}, interleaved"))
        else:
            rows.append(row(BENCH, f"imports of {stem}", per_tree[0], "s", notes=f"median of {repeats}"))
    return rows, start, preamble, {k: v[0] for k, v in times.items()}


def overhead_study_config(rule: str) -> dict:
    """The ~100-case study: the quick study settings without generators, validated by ``rule``.

    ``null`` is what a user's study of this size gets (the default rule, set
    explicitly for a baseline tree of another default; ``min_rows`` at its
    default); ``factor`` is the smoke study's own rule,
    kept for comparison with the figures measured before the null rule became
    the default (2026-12-02): a fifth of the validation work.
    """
    config = study_config(f"bench_job_overhead_{rule}", STUDY_PATIENTS, models=[])
    config["validation"]["rule"] = rule  # explicit: a baseline tree may have another default
    if rule == "null":
        config["validation"].pop("min_rows", None)
    return config


def breakdown_rows(workdir: Path, start: float, preamble: float, imports: dict[str, float],
                   baseline: Path | None = None, rule: str = "null") -> list[dict]:
    config = overhead_study_config(rule)
    name = config["study"]["name"]
    study = "100-case study" if rule == "null" else f"100-case study, {rule} rule"
    workdir.mkdir(parents=True, exist_ok=True)
    load = load_average()
    began, ended, cpu = run_study(workdir, config)
    wall = ended - began
    rows = []
    if baseline is not None:  # the same study on the baseline tree, right after: same machine, same load
        base_dir = workdir.parent / f"baseline_{rule}"
        base_dir.mkdir()
        b_began, b_ended, b_cpu = run_study(base_dir, config, baseline.parent)
        rows += [
            row(BENCH, f"{study}: wall time vs baseline", wall, "s", reference=b_ended - b_began,
                notes=f"this tree {wall:.1f} s, {baseline} {b_ended - b_began:.1f} s, one after the other; {load}"),
            row(BENCH, f"{study}: CPU time vs baseline", cpu, "s", reference=b_cpu,
                notes="CPU seconds of Snakemake and all jobs (robust to other load)"),
        ]
    study_dir = workdir / "results" / name
    spans = job_spans(workdir)
    compute = record_compute(study_dir)
    hashing = record_hash_seconds(study_dir)
    scripts = rule_scripts()
    cases = sum(1 for _ in open(study_dir / "cases/index.csv")) - 1
    totals = {"span": 0.0, "compute": 0.0, "hash": 0.0, "start": 0.0}
    by_rule: dict[str, list[float]] = {}
    for rule_name, s, e, _ in spans:
        by_rule.setdefault(rule_name, []).append(e - s)
    for rule_name, durations in sorted(by_rule.items(), key=lambda kv: -sum(kv[1])):
        n = len(durations)
        span = sum(durations)
        work = compute.get(rule_name, 0.0)
        hashed = hashing.get(rule_name, (0, 0.0))[1]
        script = scripts.get(rule_name)
        boot = n * (start + preamble + imports.get(script, 0.0)) if script else 0.0
        rest = span - work - hashed - boot
        for k, v in (("span", span), ("compute", work), ("hash", hashed), ("start", boot)):
            totals[k] += v
        if rule == "null":  # per rule for the user's study only; the comparison study gives its totals
            rows.append(row(BENCH, f"rule {rule_name}: job overhead share", span - work, "s", reference=span,
                            notes=f"{n} job(s), mean span {span / n:.2f} s: work {work / n:.2f} s, interpreter + "
                                  f"preamble + imports {boot / n:.2f} s, record hashing {hashed / n:.3f} s, "
                                  f"rest {rest / n:.2f} s (Snakemake job setup/teardown, logging, record)"))
    capacity = wall * CORES
    _, work_cpu, _ = compute_seconds(study_dir)
    by_level, alone = concurrency(spans, began, ended)
    alone_top = ", ".join(f"{r} {v:.1f} s" for r, v in sorted(alone.items(), key=lambda kv: -kv[1])[:5])
    setting = (f"{cases} cases, phantom quick settings without generators, validation.rule {rule}, "
               f"{CORES} cores, {load}")
    overhead = totals["span"] - totals["compute"]

    def target(value: str) -> str | None:  # the targets are for the user's study, not the comparison
        return value if rule == "null" else None

    idle_beside = sum(seconds * (CORES - held) for held, seconds in by_level.items() if 0 < held < CORES)
    workers = worker_cost(study_dir)
    extra = 0.0 if workers is None else workers[4] * (workers[0] - workers[3])
    rows += [
        row(BENCH, f"{study}: utilisation", work_cpu, "s", reference=capacity, target=target(">= 0.7"),
            notes=f"{setting}; wall {wall:.1f} s, {len(spans)} jobs, CPU of the run {cpu:.1f} s; the jobs' work "
                  "counted as their CPU seconds (records' cpu_seconds, with the worker processes a job forks): a "
                  "job that uses its threads (the split's verification, the validation jobs' null draws) counts "
                  f"each core it keeps busy; the workers' extra CPU ({extra:.1f} s, row below) counted as work"),
        row(BENCH, f"{study}: utilisation, the workers' extra CPU not counted", work_cpu - extra, "s",
            reference=capacity, notes="the control folds on worker processes counted at the CPU of a one-thread fold"),
        row(BENCH, f"{study}: utilisation, work as wall seconds", totals["compute"], "s", reference=capacity,
            notes="a job's work counted as its wall seconds, whatever its threads (the figure before "
                  "2026-12-04: it counts the second core of a 2-thread job as idle)"),
        row(BENCH, f"{study}: job overhead / core time", overhead, "s", reference=capacity, target=target("<= 0.08"),
            notes=f"job spans {totals['span']:.1f} s - work {totals['compute']:.1f} s; of the overhead: "
                  f"interpreter + preamble + imports {totals['start']:.1f} s, record hashing {totals['hash']:.1f} s, "
                  f"rest {overhead - totals['start'] - totals['hash']:.1f} s"),
        row(BENCH, f"{study}: idle core time, no job running", by_level.get(0, 0.0) * CORES, "s",
            reference=capacity, notes="Snakemake start-up, DAG build, end of run, scheduling gaps"),
        row(BENCH, f"{study}: idle core time beside running jobs", idle_beside, "s", reference=capacity,
            notes="cores no running job holds (a job holds its threads) while some job runs; idle core-seconds "
                  f"beside a job running alone: {alone_top}"),
    ]
    if workers is not None:
        cpu_more, wall_more, threads, cpu_one, n_more = workers
        rows.append(row(BENCH, f"{study}: control fold CPU on worker processes vs one thread", cpu_more, "s",
                        reference=cpu_one, notes=f"{n_more} fold job(s) on up to {threads} workers (wall "
                                                 f"{wall_more:.1f} s) vs the folds on one thread (wall = CPU); folds "
                                                 "of about the same size, not the same job"))
    return rows


def run(quick: bool = False) -> list[dict]:
    """Import rows (with a baseline tree when ``RADAUG_BASELINE_SRC`` is set) and the ~100-case breakdown,
    under the default validation rule (per rule and in total) and the factor rule (in total).

    ``quick`` times each script's imports once instead of ``REPEATS`` times; the study is the
    same (it is already the small one this benchmark is about).
    """
    srcs = [REPO / "src"]
    if os.environ.get("RADAUG_BASELINE_SRC"):
        srcs.append(Path(os.environ["RADAUG_BASELINE_SRC"]).resolve())
    rows, start, preamble, imports = import_rows(srcs, 1 if quick else REPEATS)
    with tempfile.TemporaryDirectory(prefix="radaug-bench-") as tmp:
        for rule in ("null", "factor"):
            rows += breakdown_rows(Path(tmp) / f"study_{rule}", start, preamble, imports,
                                   srcs[1] if len(srcs) > 1 else None, rule=rule)
    return rows


if __name__ == "__main__":
    standalone(run)
