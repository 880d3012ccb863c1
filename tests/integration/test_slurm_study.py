"""The smoke study on a real single-node SLURM cluster through profiles/slurm.

Starts munged, MariaDB, slurmdbd, slurmctld and slurmd (tests/slurm/cluster.py), runs
config/smoke.yaml with ``--profile profiles/slurm`` (GPU request and memory adapted to
this node, partition and account of the test cluster) up to one generator arm's
validation and evaluation and the feature robustness of every fold (:data:`TARGETS`:
every kind of job and group job but the control validation and the closing
summary/report group, at about half the cost of the whole study), kills one generator-training job (SIGKILL to its processes, as an OOM killer
would), and checks that

- Snakemake reports that job as failed with its SLURM state,
- rerunning the same command completes the targets,
- every job went through SLURM: accounting lists each job of the plan COMPLETED once,
  and nothing else but the one killed job,
- every data artifact it made hashes exactly like the local run of the same config.

Skipped only where the Debian packages are missing (``make system-packages`` installs
them as root) or, when not root, where the daemons cannot start.
"""
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from radaug.io import read_json, sha256_file
from radaug.splits import fold_key

from ..conftest import REPO
from ..slurm.cluster import ACCOUNT, PARTITION, ClusterError, SlurmCluster, missing_programs

pytestmark = pytest.mark.integration

# One SLURM job per job or group job of config/smoke.yaml under profiles/slurm; the
# plugin's job comment is rule_<rule, or group and its sorted rules>[_wildcards_<values>].
SMOKE = yaml.safe_load((REPO / "config/smoke.yaml").read_text())
N_FOLDS, N_BATCHES = SMOKE["split"]["folds"], SMOKE["preprocess"]["batches"]
assert "classical" in SMOKE["evaluation"]["arms"] and SMOKE["perturbation"]["enabled"]
# One arm that combines a generator with classical augmentation, validated and evaluated.
ARM = "classical+cvae"
assert ARM in SMOKE["evaluation"]["arms"]
TARGETS = [f"results/smoke/validation/arms/{ARM}.csv", f"results/smoke/evaluation/per_fold/{ARM}.csv",
           *(f"results/smoke/invariance/{fold_key(0, fold)}.csv" for fold in range(N_FOLDS))]
EXPECTED_JOBS = Counter({
    "phantom": 1, "cohort": 1,
    "batch_features_real_perturb_features_preprocess": N_BATCHES,
    "index_case_index_split": 1, "features_real_table": 1, "train_generator": N_FOLDS,
    "synthetic_features_synthetic_sample_synthetic": N_FOLDS,
    "classical_augment_classical_features_classical": N_FOLDS, "invariance": N_FOLDS,
    "validate": 1, "evaluate": 1,
})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_programs()
    if missing:
        pytest.skip(f"SLURM test cluster needs {', '.join(missing)}: run `make system-packages` as root "
                    "(Debian packages slurm-wlm slurmdbd munge mariadb-server)")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except ClusterError as exc:
        cluster.stop()
        if os.geteuid() != 0:
            pytest.skip(f"SLURM daemons cannot start without root here: {exc}")
        raise
    yield cluster
    cluster.stop()


def test_profile_site_settings_are_left_to_the_site():
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert not {"slurm_partition", "slurm_account"} & set(profile["default-resources"])
    assert profile["set-resources"]["train_generator"]["gpu"] == 1


def slurm_test_profile(tmp_path):
    """profiles/slurm as a site would adapt it to this CPU-only node (returns its folder)."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"].update(slurm_partition=PARTITION, slurm_account=ACCOUNT)
    training = profile["set-resources"]["train_generator"]
    training.update(gpu=0, mem_mb=3000, runtime=30)  # no GPU here; generative.device auto -> CPU
    training.pop("cpus_per_gpu")
    profile.update({"slurm-init-seconds-before-status-checks": 5, "seconds-between-status-checks": 5,
                    "latency-wait": 5, "jobs": 8})
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def snakemake_on_slurm(cluster, workdir, profile, log):
    """Start Snakemake on the cluster in the background, its output going to ``log``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(REPO / "config/smoke.yaml"), "--profile", str(profile), *TARGETS]
    with open(log, "w") as out:
        return subprocess.Popen(cmd, env=cluster.env, stdout=out, stderr=subprocess.STDOUT)


def finish(proc, log, timeout):
    """Wait for a Snakemake process; return its exit status and output."""
    proc.wait(timeout=timeout)
    return proc.returncode, log.read_text()


def kill_first_training_job(cluster, proc, timeout=900):
    """Kill the work of the first running train_generator job, as an OOM killer would; return its id.

    SIGKILL goes to the processes of the job's step 0 (the rule, started by srun; ids from
    ``scontrol listpids``), so the job script exits non-zero and SLURM records the job
    FAILED. (``scancel``, even ``--signal=KILL``, leaves it ``CANCELLED by <uid>`` in
    sacct, a state snakemake-executor-plugin-slurm 2.8.0 does not recognise: Snakemake
    then waits for that job forever.)
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        queue = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], env=cluster.env,
                               capture_output=True, text=True, encoding="utf-8", errors="replace").stdout
        for line in queue.splitlines():
            job_id, _, comment = line.partition(" ")
            if not comment.startswith("rule_train_generator"):
                continue
            listing = subprocess.run(["scontrol", "listpids", job_id], env=cluster.env, capture_output=True,
                                     text=True).stdout
            step = [int(row.split()[0]) for row in listing.splitlines()[1:] if row.split()[2:3] == ["0"]]
            if step:
                for pid in step:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                return job_id
        time.sleep(1)
    pytest.fail("no train_generator job ran on SLURM before Snakemake ended")


def test_smoke_study_on_slurm_matches_local_run(cluster, smoke, tmp_path):
    profile = slurm_test_profile(tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()

    first = snakemake_on_slurm(cluster, workdir, profile, tmp_path / "first.log")
    killed = kill_first_training_job(cluster, first)
    returncode, out = finish(first, tmp_path / "first.log", timeout=1800)
    assert returncode != 0, out[-3000:]
    assert re.search(rf"SLURM-job '{killed}' failed, SLURM status is: 'FAILED'", out), out[-4000:]
    assert "Error in rule train_generator" in out

    second = snakemake_on_slurm(cluster, workdir, profile, tmp_path / "second.log")
    returncode, out = finish(second, tmp_path / "second.log", timeout=2400)
    assert returncode == 0, out[-5000:] + cluster.log("slurmctld.log")[-2000:]

    jobs = cluster.sacct("JobID", "JobName", "Comment", "State")
    assert [j["JobID"] for j in jobs if j["State"] != "COMPLETED"] == [killed], jobs
    done = Counter(re.sub(r"^rule_|_wildcards_.*$", "", j["Comment"]) for j in jobs if j["State"] == "COMPLETED")
    assert done == EXPECTED_JOBS, jobs
    run_ids = {j["JobName"] for j in jobs}
    assert len(run_ids) == 2, run_ids  # the plugin names every job of one snakemake run by its run id

    local = {a["path"]: a["sha256"] for a in read_json(smoke / "manifest.json")["artifacts"]
             if a["kind"] == "data"}
    on_slurm = workdir / "results/smoke"
    made = {path: sha256_file(on_slurm / path) for path in local if (on_slurm / path).is_file()}
    assert {f"validation/arms/{ARM}.csv", f"evaluation/per_fold/{ARM}.csv", "features/real.csv",
            "splits/folds.csv"} <= set(made)
    assert sum(p.startswith("models/cvae/") for p in made) >= N_FOLDS
    assert made == {path: local[path] for path in made}
