"""Tests of radaug.validate.details: per-feature KS, correlation differences and DCR behind the summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control, ks_2samp

from radaug.errors import RadaugError
from radaug.io import concat_csv_text, load_arrays, save_arrays, sha256_file, write_csv, write_text
from radaug.validate.details import (
    DCR_COLUMNS,
    KS_COLUMNS,
    collect_details,
    concat_details,
    correlation_arrays,
    correlation_from_arrays,
    fold_means,
    read_details,
    set_details,
)
from radaug.validate.metrics import correlation_breakdown, correlation_distance, ks_fdr
from radaug.validate.plots import arm_order, correlation_maps, dcr_histograms, ks_heatmap
from radaug.validate.study import validate_controls, validate_study_arm

FEATURES = ["original_firstorder_Mean", "original_firstorder_Range", "original_glcm_Contrast",
            "original_glcm_Correlation", "original_glrlm_RunEntropy"]


def table(rng, n, shift=0.0, label="a"):
    """``n`` rows of correlated features (the two glcm ones strongly), shifted by ``shift`` SD."""
    base = rng.normal(size=(n, len(FEATURES)))
    base[:, 3] = 0.9 * base[:, 2] + 0.3 * base[:, 3]
    frame = pd.DataFrame(base + shift, columns=FEATURES)
    frame.insert(0, "label", label)
    return frame


def test_ks_table_equals_scipy_per_feature_and_its_share_equals_ks_fdr():
    rng = np.random.default_rng(0)
    train, holdout = table(rng, 40), table(rng, 15)
    candidate = table(rng, 30)
    candidate[FEATURES[:2]] += 1.5  # two features clearly shifted
    ks = set_details(train, holdout, candidate, feature_columns=FEATURES, alpha=0.05).ks
    assert ks["feature"].tolist() == FEATURES
    expected = [ks_2samp(train[f], candidate[f]) for f in FEATURES]
    np.testing.assert_allclose(ks["ks_statistic"], [r.statistic for r in expected])
    np.testing.assert_allclose(ks["p_value"], [r.pvalue for r in expected])
    np.testing.assert_allclose(ks["q_value"], false_discovery_control([r.pvalue for r in expected], method="bh"))
    assert ks["differs"].tolist() == (ks["q_value"] <= 0.05).tolist()
    assert ks["differs"][:2].all()
    assert ks["differs"].mean() == ks_fdr(train[FEATURES], candidate[FEATURES], 0.05)


def test_correlation_difference_is_zero_for_identical_tables_and_candidate_minus_real_otherwise():
    rng = np.random.default_rng(1)
    train = table(rng, 50)
    same = set_details(train, train, train.copy(), feature_columns=FEATURES).correlation_difference
    assert list(same.index) == FEATURES and list(same.columns) == FEATURES
    assert np.abs(same.to_numpy()).max() == 0.0
    shuffled = train.copy()
    shuffled[FEATURES[3]] = rng.permutation(shuffled[FEATURES[3]].to_numpy())  # breaks the glcm pair
    difference = set_details(train, train, shuffled, feature_columns=FEATURES).correlation_difference
    expected = np.corrcoef(shuffled[FEATURES], rowvar=False) - np.corrcoef(train[FEATURES], rowvar=False)
    np.testing.assert_allclose(difference.to_numpy(), expected, atol=1e-12)
    assert difference.iloc[2, 3] < -0.5
    np.testing.assert_allclose(difference.to_numpy(), difference.to_numpy().T)


def test_correlation_distance_is_the_breakdowns_distance_and_drops_constant_features():
    rng = np.random.default_rng(2)
    reference, candidate = table(rng, 30)[FEATURES], table(rng, 30)[FEATURES]
    candidate[FEATURES[0]] = 1.0  # constant: undefined correlation, dropped
    breakdown = correlation_breakdown(reference, candidate)
    assert list(breakdown.difference.index) == FEATURES[1:]
    c_ref = np.corrcoef(reference[FEATURES[1:]], rowvar=False)
    c_cand = np.corrcoef(candidate[FEATURES[1:]], rowvar=False)
    expected = np.linalg.norm(c_cand - c_ref) / np.linalg.norm(c_ref)
    assert breakdown.distance == pytest.approx(expected)
    assert correlation_distance(reference, candidate) == breakdown.distance
    empty = correlation_breakdown(reference.iloc[:1], candidate)
    assert np.isnan(empty.distance) and empty.difference.empty


def test_dcr_of_copies_is_zero_and_holdout_dcr_is_the_z_scored_nearest_distance():
    rng = np.random.default_rng(3)
    train, holdout = table(rng, 30), table(rng, 12)
    dcr = set_details(train, holdout, train.iloc[::2].copy(), feature_columns=FEATURES).dcr
    candidate = dcr[dcr["set"] == "candidate"]["distance"].to_numpy()
    assert len(candidate) == 15 and np.allclose(candidate, 0.0, atol=1e-6)  # k-NN round-off
    values = train[FEATURES].to_numpy()
    z = lambda m: (m - values.mean(axis=0)) / values.std(axis=0, ddof=1)  # noqa: E731
    brute = np.sqrt(((z(holdout[FEATURES].to_numpy())[:, None] - z(values)[None]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(dcr[dcr["set"] == "holdout"]["distance"], brute)


def test_set_details_names_missing_columns_and_tolerates_too_few_rows():
    rng = np.random.default_rng(4)
    train = table(rng, 10)
    with pytest.raises(RadaugError, match="candidate lacks feature columns"):
        set_details(train, train, train.drop(columns=FEATURES[1]), feature_columns=FEATURES)
    with pytest.raises(RadaugError, match="feature_columns is empty"):
        set_details(train, train, train, feature_columns=[])
    one = set_details(train, train, train.iloc[:1], feature_columns=FEATURES)
    assert one.ks.empty and one.dcr.empty and one.correlation_difference.empty


def test_collect_averages_correlation_over_the_folds_where_it_is_defined():
    rng = np.random.default_rng(5)
    train = table(rng, 40)
    broken = train.copy()
    broken[FEATURES[3]] = rng.permutation(broken[FEATURES[3]].to_numpy())
    constant = broken.copy()
    constant[FEATURES[4]] = 2.0
    one = set_details(train, train, broken, feature_columns=FEATURES)
    two = set_details(train, train, constant, feature_columns=FEATURES)
    details = collect_details([("r0f0", "gan", "a", one), ("r0f1", "gan", "a", two)], FEATURES)
    matrix = details.correlation[("gan", "a")]
    assert list(matrix.index) == FEATURES
    mean = (one.correlation_difference.iloc[2, 3] + two.correlation_difference.iloc[2, 3]) / 2
    assert matrix.iloc[2, 3] == pytest.approx(mean)
    # feature 4 is constant in the second fold: its pairs average the first fold only
    assert matrix.iloc[0, 4] == pytest.approx(one.correlation_difference.iloc[0, 4])
    assert details.ks.columns.tolist() == KS_COLUMNS and details.dcr.columns.tolist() == DCR_COLUMNS
    assert details.ks["fold"].tolist() == ["r0f0"] * 5 + ["r0f1"] * 5
    assert details.ks["differs"].iloc[-1]  # constant in the candidate only: still tested, and differs
    assert set(details.dcr["arm"]) == {"gan"} and set(details.dcr["class"]) == {"a"}
    empty = collect_details([], FEATURES)
    assert empty.ks.empty and empty.dcr.empty and empty.correlation == {}
    assert empty.ks.columns.tolist() == KS_COLUMNS


def test_detail_files_round_trip(tmp_path):
    rng = np.random.default_rng(6)
    train, holdout = table(rng, 30), table(rng, 10)
    sets = [("r0f0", "gan", label, set_details(train, holdout, table(rng, 20, 0.5), feature_columns=FEATURES))
            for label in ("a", "b")]
    details = collect_details(sets, FEATURES)
    write_csv(tmp_path / "ks.csv", details.ks)
    save_arrays(tmp_path / "correlation.npz", **correlation_arrays(details.correlation))
    write_csv(tmp_path / "dcr.csv", details.dcr)
    back = read_details(tmp_path / "ks.csv", tmp_path / "correlation.npz", tmp_path / "dcr.csv")
    pd.testing.assert_frame_equal(back.ks, details.ks, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(back.dcr, details.dcr, check_exact=False, rtol=1e-9)
    assert list(back.correlation) == [("gan", "a"), ("gan", "b")]
    for key, matrix in details.correlation.items():
        np.testing.assert_allclose(back.correlation[key], matrix, atol=1e-6)
    both = concat_details([details, back])
    assert len(both.ks) == 2 * len(details.ks)
    assert correlation_from_arrays(correlation_arrays({})) == {}
    with pytest.raises(RadaugError, match="lack"):
        correlation_from_arrays({"feature": np.array(["x"])})


@pytest.fixture(scope="module")
def study():
    """A two-class, two-fold study of real feature rows, its folds and one arm's candidate rows."""
    rng = np.random.default_rng(7)
    real = pd.concat([table(rng, 40, 0.0, "a"), table(rng, 40, 1.0, "b")], ignore_index=True)
    real.insert(0, "case_id", [f"c{i:02d}" for i in range(len(real))])
    folds = pd.concat([real[["case_id", "label"]].assign(repeat=0, fold=k, role=np.where(
        np.arange(len(real)) % 2 == k, "test", "train")) for k in (0, 1)], ignore_index=True)
    candidates = pd.concat([table(rng, 10, 0.3, label).assign(repeat=0, fold=k)
                            for k in (0, 1) for label in ("a", "b")], ignore_index=True)
    return real, folds, candidates


def test_study_details_leave_the_summary_unchanged(study):
    real, folds, candidates = study
    options = {"detection": False, "null_splits": 19, "power_repeats": 2}  # p-values and power, few draws
    summary = validate_study_arm(real, folds, candidates, arm="gan", feature_columns=FEATURES, options=options)
    again, details = validate_study_arm(real, folds, candidates, arm="gan", feature_columns=FEATURES,
                                        options=options, return_details=True)
    pd.testing.assert_frame_equal(again, summary)
    assert sorted(set(zip(details.ks["fold"], details.ks["class"]))) == [
        ("r0f0", "a"), ("r0f0", "b"), ("r0f1", "a"), ("r0f1", "b")]
    counts = details.dcr.groupby(["fold", "class", "set"]).size()
    assert (counts.xs("candidate", level="set") == 10).all() and (counts.xs("holdout", level="set") == 20).all()


def test_control_details_show_what_failing_looks_like(study):
    real, folds, _ = study
    options = {"detection": False, "null_splits": 0}  # the details do not depend on the null
    _, details = validate_controls(real, folds, feature_columns=FEATURES, options=options, seed=3,
                                   return_details=True)
    dcr = details.dcr[details.dcr["set"] == "candidate"]
    assert (dcr.loc[dcr["arm"] == "control_negative_copy", "distance"] < 1e-6).all()
    assert (dcr.loc[dcr["arm"] == "control_negative_noise", "distance"] > 0).all()
    share = details.ks.groupby("arm")["differs"].mean()
    assert share["control_negative_copy"] == 0.0  # copies match every marginal
    assert share["control_negative_noise"] > max(0.2, share["control_positive"])
    copy = details.correlation[("control_negative_copy", "a")].to_numpy()
    assert np.nanmax(np.abs(copy)) < 1e-12
    # the figures draw every arm, controls last
    assert arm_order(details.ks["arm"])[0] == "control_positive"
    heatmap = ks_heatmap(details.ks)
    shown = [t.get_text() for t in heatmap.axes[0].get_yticklabels()]
    assert len(shown) == len(FEATURES) and not any(s.startswith("original_") for s in shown)
    assert correlation_maps(details.correlation, ["a", "b"]) is not None
    assert dcr_histograms(details.dcr) is not None


def write_control_files(folder, table, details, dtype=np.float32):
    folder.mkdir()
    write_csv(folder / "summary.csv", table)
    write_csv(folder / "ks.csv", details.ks)
    save_arrays(folder / "correlation.npz", **correlation_arrays(details.correlation, dtype))
    write_csv(folder / "dcr.csv", details.dcr)


def test_controls_per_fold_join_to_the_files_of_one_call_over_every_fold(study, tmp_path):
    """What validate_controls_fold and validate_controls write: the bytes of one job over every fold."""
    real, folds, _ = study
    # a feature constant in one fold's class: its correlations are undefined there, the mean takes the other fold
    real = real.assign(**{FEATURES[4]: np.where(real["case_id"].isin(
        folds.loc[(folds["fold"] == 1) & (folds["role"] == "train"), "case_id"]) & (real["label"] == "a"),
        1.0, real[FEATURES[4]])})
    options = {"detection": False, "null_splits": 0}
    kwargs = dict(feature_columns=FEATURES, options=options, seed=3, return_details=True)
    write_control_files(tmp_path / "whole", *validate_controls(real, folds, **kwargs))
    keys = ["r0f0", "r0f1"]
    for key in keys:
        write_control_files(tmp_path / key, *validate_controls(real, folds, fold=key, **kwargs), np.float64)
    joined = tmp_path / "joined"
    joined.mkdir()
    for name in ("summary.csv", "ks.csv", "dcr.csv"):
        write_text(joined / name, concat_csv_text([tmp_path / key / name for key in keys]))
    parts = [correlation_from_arrays(load_arrays(tmp_path / key / "correlation.npz")) for key in keys]
    save_arrays(joined / "correlation.npz", **correlation_arrays(fold_means(parts, FEATURES)))
    for name in ("summary.csv", "ks.csv", "dcr.csv", "correlation.npz"):
        assert sha256_file(joined / name) == sha256_file(tmp_path / "whole" / name), name
    with pytest.raises(RadaugError, match="fold 'r0f7' is not in the folds table .*r0f0, r0f1"):
        validate_controls(real, folds, fold="r0f7", **kwargs)


def test_figures_order_features_and_arms_and_skip_empty_inputs():
    ks = pd.DataFrame({
        "fold": "r0f0", "arm": ["gan", "gan", "control_negative_noise", "control_negative_noise", "cvae", "cvae"],
        "class": "a", "feature": ["original_glcm_A", "original_glcm_B"] * 3,
        "ks_statistic": [0.1, 0.9, 1.0, 1.0, 0.2, 0.8], "p_value": 0.5, "q_value": 0.5,
        "differs": [False, True, True, True, False, True],
    })
    heatmap = ks_heatmap(ks, top=1)
    assert [t.get_text() for t in heatmap.axes[0].get_yticklabels()] == ["glcm_B"]
    assert [t.get_text() for t in heatmap.axes[0].get_xticklabels()] == ["cvae", "gan", "control_negative_noise"]
    assert arm_order(["z", "control_other", "control_negative_copy", "a"]) == [
        "a", "z", "control_negative_copy", "control_other"]
    assert ks_heatmap(ks.iloc[:0]) is None
    assert dcr_histograms(pd.DataFrame(columns=DCR_COLUMNS)) is None
    assert correlation_maps({("gan", "a"): pd.DataFrame(np.nan, index=["x"], columns=["x"])}) is None


def test_an_arm_finds_its_cells_in_the_control_jobs_split_nulls(study, monkeypatch):
    """What the validate jobs read (validation/controls/<fold>/split_nulls.npz): an arm with as many candidate
    rows as training rows per class computes none of its cells' split nulls again, and its table is the one it
    computes alone; an arm with fewer candidate rows than training rows computes its own."""
    import radaug.validate.summary as summary

    real, folds, small = study
    folds, small = folds[folds["fold"] == 0], small[small["fold"] == 0]
    rng = np.random.default_rng(11)
    candidates = pd.concat([table(rng, 30, 0.3, label).assign(repeat=0, fold=0) for label in ("a", "b")],
                           ignore_index=True)
    options = {"detection": True, "null_splits": 20, "power_repeats": 3, "null_detection_splits": 3}
    with summary.shared_split_nulls() as shared:
        validate_controls(real, folds, feature_columns=FEATURES, options=options, seed=3, fold="r0f0")
    arrays = summary.split_null_arrays(shared)
    summary.clear_caches()
    alone = validate_study_arm(real, folds, candidates, arm="gan", feature_columns=FEATURES, options=options, seed=3)
    assert alone.loc[alone["metric"] == "detection_auc", "min_detectable"].str.startswith(
        ("a mean shift", "none up to a mean shift")).all()
    summary.clear_caches()
    computed = []
    compute = summary._split_null_and_power
    monkeypatch.setattr(summary, "_split_null_and_power", lambda *a, **k: computed.append(1) or compute(*a, **k))
    with summary.shared_split_nulls(arrays):
        found = validate_study_arm(real, folds, candidates, arm="gan", feature_columns=FEATURES, options=options,
                                   seed=3)
        assert not computed
        validate_study_arm(real, folds, small, arm="gan", feature_columns=FEATURES, options=options, seed=3)
    pd.testing.assert_frame_equal(found, alone, check_exact=True)
    assert len(computed) == 2  # 10 candidate rows of 20 training rows: a size of its own in each class
