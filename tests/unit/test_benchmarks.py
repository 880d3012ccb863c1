"""The benchmark harness's contract checks (no benchmark runs here: figures are never timed tests)."""

import json

import pytest

from benchmarks import check_flags, check_rows, format_table, meets, row
from benchmarks.bench_study import jobs_run, study_config
from benchmarks.run import discover


def test_row_ratio_and_target():
    r = row("x", "throughput", 30.0, "cases/s", reference=20.0, target=">= 1.0")
    assert r["ratio"] == pytest.approx(1.5) and meets(r) is True
    assert meets(row("x", "no-op", 12.0, "s", target="< 10")) is False  # no reference: the value is checked
    assert meets(row("x", "info", 1.0, "s")) is None
    assert "| x " in format_table([r])


def test_rows_breaking_the_contract_are_rejected_naming_the_module():
    good = row("x", "f", 1.0, "s")
    with pytest.raises(ValueError, match="bench_bad: a row must have exactly the keys"):
        check_rows([{**good, "extra": 1}], "bench_bad")
    with pytest.raises(ValueError, match="bench_bad: target"):
        check_rows([{**good, "target": "at least 3"}], "bench_bad")
    with pytest.raises(ValueError, match="list of dicts"):
        check_rows(good, "bench_bad")


def test_benchmark_command_lines_are_checked_before_a_run(capsys):
    """A misspelt flag or --help must not start an hour-long benchmark that overwrites its committed results."""
    argv = ["--quick", "--sizes", "10,20"]
    assert check_flags(argv, ("--quick",), ("--sizes",)) is argv
    with pytest.raises(SystemExit, match="unknown argument '--sise'"):
        check_flags(["--sise", "10"], ("--quick",), ("--sizes",))
    with pytest.raises(SystemExit, match="--sizes needs a value"):
        check_flags(["--sizes", "--quick"], ("--quick",), ("--sizes",))
    with pytest.raises(SystemExit, match="unknown argument 'extra'"):
        check_flags(["extra"])
    with pytest.raises(SystemExit) as done:
        check_flags(["--help", "--bogus"], ("--quick",), doc="What the bench measures.")
    assert done.value.code == 0 and "What the bench measures." in capsys.readouterr().out


def test_discover_selects_by_name():
    assert {"features", "study", "plausible_masks"} <= set(discover())
    # research scripts with their own command-line options are not harness benchmarks
    assert not {"holdout_null", "holdout_power", "correlation_null", "pearson_scaling",
                "validation_calibration", "detection_power"} & set(discover())
    assert discover(["feat"]) == ["features"]
    with pytest.raises(SystemExit, match="no benchmark matches"):
        discover(["nonexistent-topic"])


def test_study_benchmark_helpers():
    config = study_config("b", 40, models=[])
    assert config["study"]["name"] == "b" and sum(config["data"]["phantom"]["n_patients"].values()) == 40
    assert config["evaluation"]["arms"] == ["real", "oversample"]
    assert jobs_run("Job stats:\njob    count\n---\nevaluate    3\ntotal    5\n") == 5
    assert jobs_run("Nothing to be done (all requested files are present and up to date).") == 0


def test_dag_benchmark_names_every_arm_the_config_allows():
    from benchmarks.bench_dag import all_arms

    arms = all_arms()
    assert {"real", "oversample", "smote", "classical", "cvae", "dcgan", "lsgan", "wgan_gp"} <= set(arms)


def test_job_overhead_concurrency_splits_wall_time_by_the_cores_running_jobs_hold():
    from benchmarks.bench_job_overhead import concurrency

    # a alone 0-2, a+b 2-3, b alone 3-5, nothing 5-6 and before 0
    spans = [("a", 10.0, 13.0), ("b", 12.0, 15.0)]
    by_level, alone = concurrency(spans, 9.0, 16.0, cores=2)
    assert by_level == {0: 2.0, 1: 4.0, 2: 1.0}
    assert alone == {"a": 2.0, "b": 2.0}
    # c holds both cores 16-20 (two threads): nothing idle beside it; d alone on 4 cores idles 3 of them
    by_level, alone = concurrency(spans + [("c", 16.0, 20.0, 2)], 9.0, 20.0, cores=2)
    assert by_level == {0: 2.0, 1: 4.0, 2: 5.0} and alone == {"a": 2.0, "b": 2.0}
    by_level, alone = concurrency([("d", 0.0, 1.0), ("e", 1.0, 2.0, 8)], 0.0, 2.0, cores=4)
    assert by_level == {0: 0.0, 1: 1.0, 4: 1.0} and alone == {"d": 3.0}


def test_job_spans_read_each_jobs_threads_from_its_record(tmp_path):
    from benchmarks.bench_study import job_spans

    study = "results/s"
    meta = tmp_path / ".snakemake/metadata"
    meta.mkdir(parents=True)
    for i, (rule, wildcard, start, threads) in enumerate([("fold", "r0f0", 1.0, 1), ("fold", "r0f2", 5.0, 2)]):
        for k, end in enumerate((4.0, 4.5)):  # two outputs of one job: one span, from the first start to the last end
            (meta / f"m{i}{k}").write_text(json.dumps({
                "rule": rule, "job_hash": i, "starttime": start + k, "endtime": start + end,
                "log": [f"{study}/logs/{rule}/{wildcard}.log"]}))
        record = tmp_path / study / "provenance" / rule / f"{wildcard}.json"
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"threads": threads}))
    (meta / "nolog").write_text(json.dumps({"rule": "all_done", "job_hash": 9, "starttime": 9.0, "endtime": 9.5}))
    assert job_spans(tmp_path) == [("fold", 1.0, 5.5, 1), ("fold", 5.0, 9.5, 2), ("all_done", 9.0, 9.5, 1)]


def test_job_overhead_maps_rules_to_their_scripts():
    from benchmarks.bench_job_overhead import REPO, rule_scripts, script_imports

    scripts = rule_scripts()
    assert scripts["features_real_table"] == "concat_tables"
    assert scripts["validate_controls_fold"] == "validate_controls_fold"
    assert scripts["validate_controls"] == "validate_controls"
    assert "all" not in scripts  # no script
    assert all((REPO / "workflow/scripts" / f"{s}.py").is_file() for s in scripts.values())
    assert "from radaug.evaluate import" in script_imports(REPO / "workflow/scripts/evaluate.py")


def test_job_overhead_study_is_validated_as_a_user_study_of_its_size():
    import yaml

    from benchmarks.bench_job_overhead import REPO, overhead_study_config
    from radaug.config import validate_config

    user = validate_config(overhead_study_config("null"), base_dir=".")
    default = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()), base_dir=".")
    assert user["validation"]["rule"] == "null"
    assert user["validation"]["min_rows"] == default["validation"]["min_rows"]
    factor = validate_config(overhead_study_config("factor"), base_dir=".")
    assert factor["validation"]["rule"] == "factor"
    assert user["study"]["name"] != factor["study"]["name"]


def test_small_data_settings_name_their_studies_and_change_only_what_they_say():
    """``--steps``/``--conditioning`` of bench_small_data: both variants get the setting, the studies are
    named after it (so several settings share one workdir), and the switches stay the only difference."""
    from benchmarks.bench_small_data import GANS, SWITCHES, configs

    plain = configs(False)
    assert [c["study"]["name"] for c in plain.values()] == ["small_data_default", "small_data_switches"]
    masked = configs(False, conditioning="mask")
    assert [c["study"]["name"] for c in masked.values()] == ["small_data_default_mask_800",
                                                           "small_data_switches_mask_800"]
    assert all(c["generative"]["conditioning"] == "mask" for c in masked.values())
    longer = configs(False, steps=3000)
    assert {c["generative"]["steps"] for c in longer.values()} == {3000}
    default, switched = masked["default"], masked["switches"]
    for gan in GANS:
        assert not set(SWITCHES) & set(default["generative"].get(gan, {}))
        assert {k: switched["generative"][gan][k] for k in SWITCHES} == SWITCHES
    without_gans = [{**c["generative"], **{g: None for g in GANS}} for c in (default, switched)]
    assert without_gans[0] == without_gans[1]
    diffusion = configs(False, steps=4000, conditioning="mask", models=("ddpm",))
    assert list(diffusion) == ["default"]  # no GAN, no switches study
    assert diffusion["default"]["study"]["name"] == "small_data_default_ddpm_mask_4000"
    assert diffusion["default"]["generative"]["models"] == ["ddpm"]
    assert diffusion["default"]["evaluation"]["arms"] == ["real", "ddpm"]


def test_job_overhead_prices_the_workers_from_the_folds_of_one_run(tmp_path):
    from benchmarks.bench_job_overhead import worker_cost

    folder = tmp_path / "provenance/validate_controls_fold"
    folder.mkdir(parents=True)
    assert worker_cost(tmp_path) is None
    for fold, threads, cpu, wall in [("r0f0", 1, 20.0, 20.2), ("r0f1", 1, 22.0, 22.1), ("r0f2", 2, 25.0, 14.0),
                                     ("r0f3", None, 21.0, 21.0)]:
        (folder / f"{fold}.json").write_text(json.dumps({"threads": threads, "cpu_seconds": cpu, "seconds": wall}))
    assert worker_cost(tmp_path) == (25.0, 14.0, 2, 21.0, 1)


def test_the_gpu_check_runs_on_cpu_and_reports_a_failed_check(tmp_path, monkeypatch):
    """benchmarks/gpu_check.py (run by hand on a GPU machine) as a dry run on the CPU: its checks pass
    for a sound model and fail, naming it, when its samples are not finite."""
    import numpy as np

    from benchmarks import gpu_check

    out = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--steps", "2", "--models", "cvae", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["dims"], r["condition_on_mask"]) for r in rows] == [(2, False), (2, True), (3, False), (3, True)]
    assert all(r["failures"] == [] and r["cuda_same_seed_same_weights"] for r in rows)
    generate = gpu_check._generate
    monkeypatch.setattr(gpu_check, "_generate", lambda model, data: tuple(
        None if a is None else np.full_like(a, np.nan, dtype=np.float32) for a in generate(model, data)))
    assert gpu_check.main(["--device", "cpu", "--steps", "1", "--models", "cvae", "--out", str(out)]) == 1
    assert "non-finite or misshapen sample" in json.loads(out.read_text())[0]["failures"][0]
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cpu", "--models", "nonexistent"])


def test_the_duplicate_audit_score_finds_same_slice_pairs_split_apart(tmp_path):
    """Four images, three audited same-slice pairs: one linked, one joined through its group, one apart
    (straddling); an audited image missing from the study is left out, and a grey-zone pair counts apart."""
    import pandas as pd

    from benchmarks.bench_duplicate_audit import score

    (tmp_path / "cohort").mkdir()
    (tmp_path / "splits").mkdir()
    cases = ["1", "2", "c", "d"]  # ids that look like numbers stay text
    pd.DataFrame({"case_id": cases, "image_sha256": ["sa", "sb", "sc", "sd"]}).to_csv(tmp_path / "cohort/cohort.csv")
    folds = pd.DataFrame({"case_id": cases * 2, "group": ["g1", "g1", "g1", "g2"] * 2, "repeat": 0,
                          "fold": [0] * 4 + [1] * 4, "role": ["train", "train", "train", "test"] * 2})
    folds.to_csv(tmp_path / "splits/folds.csv", index=False)
    pd.DataFrame({"case_a": ["1", "2"], "case_b": ["2", "c"], "linked": [True, True]}).to_csv(
        tmp_path / "splits/duplicates.csv", index=False)
    audit = tmp_path / "audit.csv"
    pd.DataFrame({"sha256_a": ["sa", "sa", "sc", "sx", "sa"], "sha256_b": ["sb", "sc", "sd", "sa", "sd"],
                  "inliers": [300, 120, 80, 60, 20], "verdict": ["same_slice"] * 4 + ["grey_zone"]}).to_csv(
        audit, index=False)
    got = score(tmp_path, audit)
    assert (got["pairs"], got["audited"], got["linked_directly"], got["straddle"]) == (3, 4, 1, 1)
    assert got["apart"] == [("c", "d", 80, True)]
    assert got["linked_directly"] == 1  # 1 - 2, read as text on both sides
    assert score(tmp_path, audit, verdict="grey_zone")["apart"] == [("1", "d", 20, True)]
    assert got["unlisted"] == [("2", "c")] and got["links"] == 2  # the audit does not list 2 - c
    with pytest.raises(ValueError, match="verdict 'same'"):
        score(tmp_path, audit, verdict="same")
    pd.DataFrame({"sha256_a": ["sx"], "sha256_b": ["sy"], "inliers": [90], "verdict": ["same_slice"]}).to_csv(
        audit, index=False)
    with pytest.raises(ValueError, match="no same_slice pair of audit.csv has both images in the study"):
        score(tmp_path, audit)  # an audit of other images measures nothing: not a pass
    pd.DataFrame({"case_id": cases, "image_sha256": ["sa", "sa", "sc", "sd"]}).to_csv(tmp_path / "cohort/cohort.csv")
    with pytest.raises(ValueError, match="appear twice"):
        score(tmp_path, audit)
    (tmp_path / "splits/duplicates.csv").unlink()
    with pytest.raises(ValueError, match="missing .*duplicates.csv"):
        score(tmp_path, audit)


def test_the_3d_duplicate_benchmarks_copies_are_what_they_say():
    """A reoriented copy reads back (LPS) as the same voxels, a mirror as the mirrored ones; restacking
    leaves out end slices only, at most 15 % a side; resampling changes the spacing, not the physical
    extent; the combined copy cuts slices, not the in-plane axes."""
    import numpy as np
    import SimpleITK as sitk

    from benchmarks.bench_duplicates import _volume_copy
    from radaug.duplicates import canonical_array

    volume = np.random.default_rng(0).normal(size=(20, 16, 12)).astype(np.float32)
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.8, 0.8, 2.5))
    rng = np.random.default_rng(1)
    directions = set()
    for _ in range(4):
        copy = _volume_copy(image, "reorient", rng)
        directions.add(copy.GetDirection())
        np.testing.assert_array_equal(canonical_array(copy), canonical_array(image))
    assert len(directions - {image.GetDirection()}) >= 2  # stored in other axis orders and directions
    np.testing.assert_array_equal(canonical_array(_volume_copy(image, "flip_lr", rng)), canonical_array(image)[:, :, ::-1])
    for _ in range(4):  # slices left out at the ends only, at most 15 % a side
        restacked = sitk.GetArrayFromImage(_volume_copy(image, "restack", rng))
        k0 = next(k for k in range(4) if np.array_equal(volume[k], restacked[0]))
        np.testing.assert_array_equal(restacked, volume[k0:k0 + len(restacked)])
        assert k0 <= 3 and len(volume) - k0 - len(restacked) <= 3
    extent = np.array(image.GetSize()) * image.GetSpacing()
    for _ in range(6):  # combined: reoriented last, so the restack cuts slices and keeps the in-plane extent
        combined = sitk.DICOMOrient(_volume_copy(image, "combined", rng), "LPS")
        got = np.array(combined.GetSize()) * combined.GetSpacing()
        np.testing.assert_allclose(got[:2], extent[:2], rtol=0.1)
        assert got[2] <= extent[2] * 1.1
    resampled = _volume_copy(image, "resample", rng)
    extent = np.array(resampled.GetSize()) * resampled.GetSpacing()
    np.testing.assert_allclose(extent, np.array(image.GetSize()) * image.GetSpacing(), rtol=0.1)
    assert resampled.GetSpacing() != image.GetSpacing()
