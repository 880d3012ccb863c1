"""Injected faults on the real workflow: SIGKILL, disk full, read-only results, a failing case;
tampering with every kind of artifact; what a different seed changes.

Most tests start from a copy of the session's finished smoke study (``smoke``
fixture, read-only) and rerun only what the fault concerns, so each stays short.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from radaug.generative.loop import read_checkpoint
from radaug.io import load_arrays, read_json, save_arrays, sha256_file
from radaug.provenance import build_manifest, verify_study

from ..conftest import REPO
from ..mounts import remount_read_only, tmpfs
from .conftest import SNAKEMAKE, run_snakemake
from .test_bad_inputs_workflow import _study, user_cohort  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

SMOKE = REPO / "config/smoke.yaml"


def _copy_workdir(study: Path, dest: Path) -> Path:
    """Copy a finished smoke working directory (results and .snakemake metadata); return the copy's study."""
    shutil.copytree(study.parents[1], dest, symlinks=True, dirs_exist_ok=True)
    return dest / "results" / study.name


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and "logs" not in p.relative_to(folder).parts}


def _data_hashes(manifest: dict) -> dict[str, str]:
    return {a["path"]: a["sha256"] for a in manifest["artifacts"] if a["kind"] == "data"}


def _config(tmp_path: Path, name: str = "changed.yaml", **changes) -> Path:
    """The smoke config with ``section__key=value`` changes, written to tmp_path."""
    config = yaml.safe_load(SMOKE.read_text())
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def _recorded_outputs_intact(study: Path) -> None:
    """Every job that finished (has a record) still has exactly the outputs it recorded."""
    build_manifest(study, sorted((study / "provenance").rglob("*.json")))  # raises VerifyError on a change


# --- SIGKILL -------------------------------------------------------------------------------

def test_sigkill_mid_training_then_rerun_equals_an_uninterrupted_run(smoke, tmp_path):
    """Kill the whole Snakemake process group while a generator trains (after its first
    checkpoint, before its last step); the rerun resumes from that checkpoint, and every
    artifact up to and including the trained generators is byte-identical to the
    uninterrupted run of the same config (``smoke``), artifact by artifact.

    The run stops at training (``--until train_generator``): what follows training reads
    only the models and earlier artifacts compared here, and the same config's downstream
    jobs in another folder are compared with ``smoke`` by the SLURM test. This is also the
    suite's same-config-same-hashes check for the cohort, cases, split and models: this
    run is a second, independent run of config/smoke.yaml in another folder."""
    workdir = tmp_path / "killed"
    workdir.mkdir()
    until = ("--until", "train_generator")
    cmd = SNAKEMAKE + ["--directory", str(workdir), "--configfile", str(SMOKE), *until]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    models = workdir / "results/smoke/models"
    deadline = time.monotonic() + 400
    try:
        while not list(models.glob("*/*/checkpoint.partial.pt")):
            assert proc.poll() is None, "the run ended before any training checkpoint was written"
            assert time.monotonic() < deadline, "no training checkpoint within 400 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    study = workdir / "results/smoke"
    partial = {p.parent.relative_to(models): read_checkpoint(p)["step"]
               for p in models.glob("*/*/checkpoint.partial.pt")}
    steps = yaml.safe_load(SMOKE.read_text())["generative"]["steps"]
    assert partial and all(0 < step < steps for step in partial.values()), partial  # killed mid-training
    _recorded_outputs_intact(study)  # nothing half-written carries a record
    for record in (study / "provenance").rglob("*.json"):
        read_json(record)  # records are written atomically: each parses

    # A killed Snakemake leaves its lock; the user unlocks, then reruns (profiles/default has rerun-incomplete).
    run_snakemake(workdir, SMOKE, "--unlock")
    run_snakemake(workdir, SMOKE, "--rerun-incomplete", *until)
    # each killed training resumed from its last checkpoint: at most one checkpoint interval lost
    for job, step in partial.items():
        log = (study / "logs/train_generator" / job).with_suffix(".log").read_text()
        assert f"from step {step}" in log, (job, step, log[-2000:])
    assert not list(models.glob("*/*/checkpoint.partial.pt"))
    _recorded_outputs_intact(study)
    # every artifact of the uninterrupted run up to training (every fold's generators included)
    # was made here with the same bytes
    upstream = {"phantom", "cohort", "cases", "splits", "models"}
    clean = {p: h for p, h in _data_hashes(read_json(smoke / "manifest.json")).items()
             if p.split("/")[0] in upstream}
    assert sum(p.endswith("/checkpoint.pt") for p in clean) == len(list((smoke / "models").glob("*/*/")))
    made = _hashes(study)
    assert {p: made.get(p) for p in clean} == clean


# --- storage faults -------------------------------------------------------------------------
# The results folder is a real tmpfs mounted at <workdir>/results (Snakemake's own metadata
# stays on the normal disk); the study is a tiny user-manifest study.

def test_disk_full_gives_a_clear_error_and_keeps_earlier_outputs(user_cohort, tmp_path):
    """The disk fills after the cohort stage: preprocessing stops naming the file and the fix,
    the cohort stage's outputs are untouched, nothing half-written is left; after freeing
    space the rerun completes."""
    workdir, config = _study(tmp_path, user_cohort)
    with tmpfs(workdir / "results", size="4m") as results:
        run_snakemake(workdir, config, "--until", "cohort")
        study = results / "user"
        earlier = _hashes(study)
        ballast = results / "ballast"
        fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):  # fill the file system to the last byte
            while True:
                os.write(fd, b"\0" * 4096)
        os.close(fd)
        out = run_snakemake(workdir, config, "--until", "split", check=False)
        assert "StorageError" in out and "No space left on device" in out and "free space" in out, out[-3000:]
        now = _hashes(study)
        assert {p: now.get(p) for p in earlier} == earlier
        assert not [p for p in now if p not in earlier], "a failed job left files behind"
        ballast.unlink()
        run_snakemake(workdir, config, "--until", "split")
        _recorded_outputs_intact(study)
        assert (study / "splits/folds.csv").is_file()


def test_read_only_results_folder_fails_cleanly_and_changes_nothing(user_cohort, tmp_path):
    """Root ignores chmod, so the results folder is a read-only mount: the run stops with
    an error naming the read-only file system, and not one byte of the finished stage changes."""
    workdir, config = _study(tmp_path, user_cohort)
    with tmpfs(workdir / "results", size="4m") as results:
        run_snakemake(workdir, config, "--until", "cohort")
        before = _hashes(results)
        remount_read_only(results)
        out = run_snakemake(workdir, config, "--until", "split", check=False)
        assert "Read-only file system" in out, out[-3000:]
        assert _hashes(results) == before
        _recorded_outputs_intact(results / "user")


# --- a failing case -------------------------------------------------------------------------

def test_failing_synthetic_case_is_recorded_tolerated_and_reported(smoke, tmp_path):
    """One synthetic sample gets an empty mask (PyRadiomics cannot extract it). With
    study.max_failed_samples = 0 the features job stops, naming the sample, the reason and
    the key, and earlier outputs stay; with the smoke study's 5 the case is recorded as failed
    with its reason, the study continues and the report says so."""
    study = _copy_workdir(smoke, tmp_path / "w")
    samples = study / "synthetic/cvae/r0f0.npz"
    arrays = load_arrays(samples)
    arrays["mask"][0] = 0
    save_arrays(samples, **arrays)
    sample_id = pd.read_csv(study / "synthetic/cvae/r0f0.csv", dtype=str)["sample_id"].iloc[0]
    earlier = {p: h for p, h in _hashes(study).items() if p.startswith(("synthetic", "models", "features/real"))}

    strict = _config(tmp_path, "strict.yaml", study__max_failed_samples=0)
    # "--" ends --configfile's list of files: what follows is the target
    out = run_snakemake(tmp_path / "w", strict, "--", "results/smoke/features/cvae/r0f0.csv", check=False)
    assert "more than study.max_failed_samples = 0" in out and sample_id in out, out[-3000:]
    assert "Raise study.max_failed_samples" in out
    assert not (study / "features/cvae/r0f0.csv").exists()
    now = _hashes(study)
    assert {p: now.get(p) for p in earlier} == earlier

    run_snakemake(tmp_path / "w", SMOKE, "--", "results/smoke/report.html")
    failures = pd.read_csv(study / "features/cvae/r0f0.failures.csv", dtype=str)
    assert failures["sample_id"].tolist() == [sample_id] and failures["reason"].str.len().gt(0).all()
    features = pd.read_csv(study / "features/cvae/r0f0.csv", dtype=str)
    assert sample_id not in set(features["sample_id"])
    report = (study / "report.html").read_text(encoding="utf-8")
    section = report.rsplit("Feature-extraction failures", 1)[1][:3000]
    assert "cvae" in section and failures["reason"].iloc[0].split(":")[0] in section


# --- tampering --------------------------------------------------------------------------------

def test_verify_detects_a_flipped_byte_in_every_kind_of_artifact(smoke, tmp_path):
    study = tmp_path / "smoke"
    shutil.copytree(smoke, study)
    files = sorted(p for p in study.rglob("*") if p.is_file() and p.name != "manifest.json"
                   and "logs" not in p.relative_to(study).parts)
    rng = np.random.default_rng(20261123)
    kinds = {}
    for path in files:
        kinds.setdefault("".join(path.suffixes[-1:]), []).append(path)
    assert {".csv", ".npz", ".pt", ".json", ".html"} <= set(kinds)
    for suffix in (".csv", ".npz", ".pt", ".json", ".html"):
        target = kinds[suffix][rng.integers(len(kinds[suffix]))]
        original = target.read_bytes()
        data = bytearray(original)
        position = int(rng.integers(len(data)))
        data[position] ^= 0x01
        target.write_bytes(bytes(data))
        rel = str(target.relative_to(study))
        assert verify_study(study) == [f"changed: {rel} (sha256 differs from the manifest)"], (rel, position)
        target.write_bytes(original)
    assert verify_study(study) == []


def test_verify_detects_deletion_addition_and_an_edited_manifest(smoke, tmp_path):
    study = tmp_path / "smoke"
    shutil.copytree(smoke, study)
    (study / "splits/folds.csv").rename(tmp_path / "folds.csv")
    (study / "features/extra.csv").write_text("a\n1\n")
    problems = verify_study(study)
    assert any("missing" in p and "splits/folds.csv" in p for p in problems), problems
    assert any("unexpected" in p and "features/extra.csv" in p for p in problems), problems
    (tmp_path / "folds.csv").rename(study / "splits/folds.csv")
    (study / "features/extra.csv").unlink()
    assert verify_study(study) == []
    manifest = read_json(study / "manifest.json")
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (study / "manifest.json").write_text(__import__("json").dumps(manifest))
    assert verify_study(study) != []


# --- bad config over a finished study -------------------------------------------------------

def test_invalid_config_stops_before_any_job_and_keeps_the_study(smoke, tmp_path):
    study = _copy_workdir(smoke, tmp_path / "w")
    before = _hashes(study)
    out = run_snakemake(tmp_path / "w", _config(tmp_path, split__folds=9), check=False)
    assert "invalid configuration" in out and "split.folds" in out and "Use at most 8 folds" in out, out[-2000:]
    assert _hashes(study) == before
