"""Stage reruns on a finished smoke study: exactly the jobs a change or a target needs.

Each test copies the session's finished smoke study (with its ``.snakemake`` metadata,
which holds the params and code fingerprints behind Snakemake's rerun triggers) and
counts, in a dry run, which jobs Snakemake would run.
"""
import re
import shutil

import pytest
import yaml

from radaug.io import read_json

from ..conftest import REPO
from .conftest import run_snakemake

pytestmark = pytest.mark.integration

SMOKE = REPO / "config/smoke.yaml"
CONFIG = yaml.safe_load(SMOKE.read_text())
N_FOLDS, N_BATCHES = CONFIG["split"]["folds"], CONFIG["preprocess"]["batches"]
MODELS, ARMS = CONFIG["generative"]["models"], CONFIG["evaluation"]["arms"]
N_MODELS, N_ARMS, N_VALIDATED = len(MODELS), len(ARMS), len(ARMS) - 1  # every arm but real is validated
N_GENERATED = sum(any(part in MODELS for part in arm.split("+")) for arm in ARMS)  # arms built on a generator
assert "classical" in ARMS  # the expectations below count the classical arm's jobs
FINISH = {"report": 1, "manifest": 1, "all": 1}
SECTIONS = {"report_validation": 1, "report_generators": 1}  # the report's pre-rendered sections


def planned_jobs(workdir, configfile, *args):
    """Rule -> job count of a dry run (empty when there is nothing to do)."""
    out = run_snakemake(workdir, configfile, "-n", *args)
    if "Job stats:" not in out:
        assert "Nothing to be done" in out, out[-3000:]
        return {}
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    stats.pop("total")
    return {rule: int(n) for rule, n in stats.items()}


@pytest.fixture(scope="module")
def study(smoke, tmp_path_factory):
    """A private copy of a finished smoke study's working directory."""
    workdir = tmp_path_factory.mktemp("reruns") / "work"
    shutil.copytree(smoke.parents[1], workdir, symlinks=True)
    return workdir


def changed_config(tmp_path, section, key, value):
    config = yaml.safe_load(SMOKE.read_text())
    config.setdefault(section, {})[key] = value
    path = tmp_path / f"{section}-{key}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_forcerun_reruns_the_stage_and_downstream_only(study):
    jobs = planned_jobs(study, SMOKE, "--forcerun", "sample_synthetic")
    per_fold = N_MODELS * N_FOLDS
    assert jobs == {"sample_synthetic": per_fold, "features_synthetic": per_fold, "validate": N_GENERATED,
                    "evaluate": N_GENERATED, "validation_summary": 1, "evaluation_summary": 1, **SECTIONS,
                    **FINISH}


def test_until_stops_at_the_named_rule(study):
    jobs = planned_jobs(study, SMOKE, "--forcerun", "preprocess", "--until", "features_real_table")
    assert jobs == {"preprocess": N_BATCHES, "features_real": N_BATCHES, "features_real_table": 1}


def test_one_fold_of_one_generator(study):
    target = "results/smoke/features/dcgan/r0f1.csv"
    jobs = planned_jobs(study, SMOKE, "--forcerun", "train_generator", "--until", target)
    assert jobs == {"train_generator": 1, "sample_synthetic": 1, "features_synthetic": 1}


def test_one_arm_is_rerun_for_real_and_reproduces_its_bytes(study, tmp_path):
    before = read_json(study / "results/smoke/manifest.json")
    target = "results/smoke/evaluation/per_fold/cvae.csv"
    assert planned_jobs(study, SMOKE, "--force", target) == {"evaluate": 1}
    run_snakemake(study, SMOKE, "--force", target)
    # The arm's tables came out byte-identical, so Snakemake (which compares checksums of
    # small inputs whose mtime changed) leaves evaluation_summary alone; only the job's
    # provenance record (start and end times) is new, so report and manifest rerun.
    assert planned_jobs(study, SMOKE) == FINISH
    run_snakemake(study, SMOKE)
    after = read_json(study / "results/smoke/manifest.json")
    data = lambda m: {a["path"]: a["sha256"] for a in m["artifacts"] if a["kind"] == "data"}
    assert data(after) == data(before)
    assert after["study_version"] == before["study_version"]


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        # classifier only: the evaluation of every arm and what summarises it; the report's
        # validation and generator sections are not redrawn
        ("evaluation", "classifier", {"k_features": 5},
         {"evaluate": N_ARMS, "evaluation_summary": 1, **FINISH}),
        # validation: every validated arm and the controls; the evaluation summary reads the verdicts
        ("validation", "alpha", 0.01,
         {"validate": N_VALIDATED, "validate_controls_fold": N_FOLDS, "validate_controls": 1,
          "validation_summary": 1, "evaluation_summary": 1, "report_validation": 1, **FINISH}),
        # sampling quotas: synthetic draws, classical augmentation, and every arm's validation and evaluation
        ("sampling", "cap_per_case", 3,
         {"sample_synthetic": N_MODELS * N_FOLDS, "features_synthetic": N_MODELS * N_FOLDS,
          "augment_classical": N_FOLDS, "features_classical": N_FOLDS, "validate": N_VALIDATED,
          "evaluate": N_ARMS, "validation_summary": 1, "evaluation_summary": 1, **SECTIONS, **FINISH}),
        # training: every generator of every fold and the arms built on them, not the real features
        ("generative", "steps", 80,
         {"train_generator": N_MODELS * N_FOLDS, "sample_synthetic": N_MODELS * N_FOLDS,
          "features_synthetic": N_MODELS * N_FOLDS, "validate": N_GENERATED, "evaluate": N_GENERATED,
          "validation_summary": 1, "evaluation_summary": 1, **SECTIONS, **FINISH}),
    ],
)
def test_config_change_reruns_exactly_what_depends_on_it(study, tmp_path, section, key, value, expected):
    assert planned_jobs(study, changed_config(tmp_path, section, key, value)) == expected
