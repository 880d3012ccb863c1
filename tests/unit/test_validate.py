"""Validation metrics and summaries against ground truths with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from radaug.errors import RadaugError
from radaug.validate import (
    DEFAULT_THRESHOLDS,
    METRICS,
    SUMMARY_COLUMNS,
    correlation_distance,
    distance_to_closest_record,
    frechet_distance,
    frechet_from_moments,
    frechet_means_distance,
    ks_fdr,
    ks_fdr_breakdown,
    memorization_ratio,
    nndr_ratio,
    overall_verdict,
    share_closer_than_holdout,
    validate_arm,
    wasserstein_distance,
)

N_FEATURES = 6
COLUMNS = [f"feat_{i}" for i in range(N_FEATURES)]


def _population_draw(n: int, rng: np.random.Generator) -> np.ndarray:
    """Correlated features, half of them skewed like many radiomics features."""
    mixing = np.array(
        [
            [1.0, 0.8, 0.0, 0.0, 0.3, 0.0],
            [0.0, 0.6, 0.0, 0.5, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.7, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.5, 0.0, 0.4],
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.9],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.4],
        ]
    )
    z = rng.normal(size=(n, N_FEATURES)) @ mixing
    z[:, ::2] = np.exp(z[:, ::2] / 2)
    return z


def _frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=COLUMNS)


@pytest.fixture(scope="module")
def real_sets():
    """Real training and holdout rows and an independent 'good' candidate."""
    rng = np.random.default_rng(20240601)
    return tuple(_frame(_population_draw(n, rng)) for n in (300, 150, 300))


# ---------------------------------------------------------------- declarations


def test_metrics_are_declared_with_direction_and_range():
    for name in ("ks_fdr", "wasserstein_distance", "correlation_distance",
                 "correlation_distance_spearman", "strong_pairs_kept", "frechet_distance",
                 "frechet_means_distance", "precision", "recall", "density", "coverage",
                 "detection_auc", "memorization_ratio", "share_closer_than_holdout", "nndr_ratio",
                 "image_memorization_ratio", "label_disagreement", "implausible_share"):
        assert name in METRICS
    for spec in METRICS.values():
        assert spec.direction in ("minimize", "maximize")
        assert spec.range[0] < spec.range[1] and spec.description
    assert METRICS["memorization_ratio"].direction == "maximize"
    assert METRICS["ks_fdr"].range == (0.0, 1.0)
    assert METRICS["frechet_distance"].range == (0.0, math.inf)
    assert set(DEFAULT_THRESHOLDS) == set(METRICS)
    with pytest.raises(AttributeError):
        METRICS["ks_fdr"].direction = "maximize"


# ---------------------------------------------------------------- KS + BH


def test_ks_share_near_zero_for_same_distribution_and_one_for_shifted():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(2000, 20))
    assert ks_fdr(reference, rng.normal(size=(2000, 20))) <= 0.05
    assert ks_fdr(reference, rng.normal(loc=0.5, size=(2000, 20))) == 1.0


def test_ks_q_values_are_benjamini_hochberg():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(80, 12))
    candidate = rng.normal(loc=np.linspace(0, 0.8, 12), size=(60, 12))
    breakdown = ks_fdr_breakdown(reference, candidate, alpha=0.1)
    table = breakdown.table
    assert list(table.columns) == ["feature", "ks_statistic", "p_value", "q_value", "differs"]
    reject, expected_q, _, _ = multipletests(table["p_value"], alpha=0.1, method="fdr_bh")
    np.testing.assert_allclose(table["q_value"], expected_q, rtol=1e-12)
    np.testing.assert_array_equal(table["differs"], reject)
    assert breakdown.share == pytest.approx(reject.mean())
    assert 0 < breakdown.share < 1


def test_ks_skips_shared_constants_and_drops_non_finite_columns():
    rng = np.random.default_rng(3)
    reference = _frame(rng.normal(size=(50, N_FEATURES)))
    candidate = _frame(rng.normal(loc=3.0, size=(40, N_FEATURES)))
    reference["feat_0"] = candidate["feat_0"] = 7.0  # same constant: no information
    reference["feat_1"], candidate["feat_1"] = 1.0, 2.0  # different constants: differs
    candidate.loc[3, "feat_2"] = np.nan
    reference.loc[0, "feat_3"] = np.inf
    breakdown = ks_fdr_breakdown(reference, candidate)
    assert breakdown.constant == ("feat_0",)
    assert breakdown.non_finite == ("feat_2", "feat_3")
    assert list(breakdown.table["feature"]) == ["feat_1", "feat_4", "feat_5"]
    assert breakdown.share == 1.0


# ---------------------------------------------------------------- correlation


def test_correlation_distance_zero_for_identical_and_large_for_decorrelated():
    rng = np.random.default_rng(4)
    reference = _population_draw(500, rng)
    decorrelated = np.column_stack([rng.permutation(col) for col in reference.T])
    for method in ("pearson", "spearman"):
        assert correlation_distance(reference, reference.copy(), method=method) == 0.0
        assert correlation_distance(reference, decorrelated, method=method) > 0.4


def test_spearman_ignores_monotone_transforms_but_pearson_does_not():
    reference = np.random.default_rng(41).normal(size=(200, 3))
    transformed = np.exp(2 * reference)
    assert correlation_distance(reference, transformed, method="spearman") == 0.0
    assert correlation_distance(reference, transformed, method="pearson") > 0.05


def test_correlation_distance_matches_definition_and_drops_constant_features():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=(40, 3))
    candidate = rng.normal(size=(30, 3))
    expected = np.linalg.norm(
        np.corrcoef(reference, rowvar=False) - np.corrcoef(candidate, rowvar=False)
    ) / np.linalg.norm(np.corrcoef(reference, rowvar=False))
    assert correlation_distance(reference, candidate) == pytest.approx(expected)
    padded_ref = np.column_stack([reference, np.ones(40)])
    padded_cand = np.column_stack([candidate, rng.normal(size=30)])
    assert correlation_distance(padded_ref, padded_cand) == pytest.approx(expected)


def test_correlation_weights_are_the_inverse_sampling_variance_of_a_correlation():
    """``1 / tau2``: (1 - r²)² for normal data, and the Monte Carlo variance of sqrt(n) r for skewed data."""
    from radaug.validate.metrics import correlation_weights

    rng = np.random.default_rng(8)
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 1.0]])
    normal = rng.multivariate_normal(np.zeros(3), cov, size=400_000, method="cholesky")
    expected = (1 - cov**2) ** 2
    upper = np.triu_indices(3, 1)
    assert 1 / correlation_weights(normal)[upper] == pytest.approx(expected[upper], rel=0.03)
    # lognormal features (skewed, heavier tails): tau2 nearly twice the normal value at the same r
    skewed = np.exp(0.5 * rng.multivariate_normal(np.zeros(2), [[1.0, 0.7], [0.7, 1.0]], size=(2_000, 300),
                                            method="cholesky"))
    centred = skewed - skewed.mean(axis=1, keepdims=True)
    r = (centred[..., 0] * centred[..., 1]).sum(1) / np.sqrt((centred**2).sum(1).prod(-1))
    monte_carlo = 300 * r.var()
    estimated = 1 / correlation_weights(skewed.reshape(-1, 2))[0, 1]
    assert estimated == pytest.approx(monte_carlo, rel=0.1)
    assert estimated > 1.5 * (1 - np.corrcoef(skewed.reshape(-1, 2), rowvar=False)[0, 1] ** 2) ** 2


def test_correlation_contrast_is_the_pairs_rms_difference_in_standard_errors():
    """By hand: weights from the two sets each standardised on its own, pooled; about 1 for two real samples."""
    from radaug.validate.metrics import correlation_contrast, correlation_weights

    rng = np.random.default_rng(9)
    reference = np.exp(rng.normal(size=(40, 4)) @ rng.normal(size=(4, 4)))
    candidate = 3.0 + 2.0 * rng.normal(size=(12, 4))  # another location and scale: the weights do not see them
    zscores = [(m - m.mean(0)) / m.std(0, ddof=1) for m in (reference, candidate)]
    weights = correlation_weights(np.concatenate(zscores))
    upper = np.triu_indices(4, 1)
    difference = (np.corrcoef(reference, rowvar=False) - np.corrcoef(candidate, rowvar=False))[upper]
    expected = np.sqrt(np.mean(weights[upper] * difference**2) / (1 / 40 + 1 / 12))
    assert correlation_contrast(reference, candidate) == pytest.approx(expected)
    assert correlation_contrast(reference, reference) == 0.0
    assert correlation_contrast(reference, candidate, weights=np.ones((4, 4))) == pytest.approx(
        np.sqrt(np.mean(difference**2) / (1 / 40 + 1 / 12)))
    # a constant column drops out, and an explicit matrix is indexed by the kept columns' positions
    padded = [np.column_stack([np.ones(len(m)), m]) for m in (reference, candidate)]
    big = np.zeros((5, 5))
    big[1:, 1:] = weights
    assert correlation_contrast(*padded, weights=big) == pytest.approx(expected)
    with pytest.raises(ValueError, match="array inputs"):
        correlation_contrast(*(pd.DataFrame(m, columns=list("abcd")) for m in (reference, candidate)),
                             weights=np.ones((4, 4)))
    # two real samples of one normal population: each pair's difference is about one standard error
    cov = 0.5 + 0.5 * np.eye(6)
    values = [correlation_contrast(*(rng.multivariate_normal(np.zeros(6), cov, size=n, method="cholesky")
                                     for n in (400, 200))) for _ in range(300)]
    assert np.mean(np.square(values)) == pytest.approx(1.0, abs=0.15)


# ---------------------------------------------------------------- Fréchet


def test_frechet_from_moments_matches_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.5])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((sd1 - sd2) ** 2)
    assert frechet_from_moments(mu1, np.diag(sd1**2), mu2, np.diag(sd2**2)) == pytest.approx(
        expected, rel=1e-10
    )
    assert frechet_from_moments(0.0, 4.0, 1.0, 1.0) == pytest.approx(2.0)


def test_frechet_from_moments_matches_commuting_full_covariance_closed_form():
    rotation = np.linalg.qr(np.random.default_rng(6).normal(size=(4, 4)))[0]
    eig1, eig2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 0.5, 9.0])
    sigma1 = rotation @ np.diag(eig1) @ rotation.T
    sigma2 = rotation @ np.diag(eig2) @ rotation.T
    expected = np.sum((np.sqrt(eig1) - np.sqrt(eig2)) ** 2)
    assert frechet_from_moments(np.zeros(4), sigma1, np.zeros(4), sigma2) == pytest.approx(
        expected, rel=1e-8
    )


def test_frechet_from_moments_handles_singular_covariances():
    # Regularizing with eps·I = 1e-6·I costs about 2·F·sqrt(eps) = 0.004 here.
    tolerance = 0.005
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    assert frechet_from_moments(np.zeros(2), singular, np.zeros(2), singular) == pytest.approx(
        0.0, abs=tolerance
    )
    value = frechet_from_moments(np.zeros(2), np.zeros((2, 2)), np.ones(2), np.eye(2))
    assert value == pytest.approx(2.0 + 2.0, abs=tolerance)


def test_frechet_distance_of_sampled_gaussians_matches_closed_form():
    rng = np.random.default_rng(7)
    reference = rng.normal(loc=[0.0, 0.0], scale=[1.0, 1.0], size=(200_000, 2))
    candidate = rng.normal(loc=[1.0, 0.0], scale=[2.0, 1.0], size=(200_000, 2))
    # z-scored by the reference (mean 0, sd 1): candidate N([1, 0], diag(4, 1)).
    assert frechet_distance(reference, candidate) == pytest.approx(1.0 + 1.0, abs=0.03)
    # Standardized with the candidate instead: reference N([-0.5, 0], diag(0.25, 1)).
    assert frechet_distance(reference, candidate, standardize_with=candidate) == pytest.approx(
        0.25 + 0.25, abs=0.01
    )


def test_frechet_distance_is_zero_for_identical_sets():
    x = _population_draw(100, np.random.default_rng(8))
    assert frechet_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-6)
    few = x[:5]  # fewer rows (5) than features (6): the rows' form
    assert frechet_distance(few, few.copy()) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(("n_a", "n_b", "features"),
                         [(32, 32, 93), (12, 40, 30), (40, 12, 30), (5, 200, 6), (30, 60, 30), (31, 60, 30)])
def test_frechet_distance_from_rows_is_the_moments_formula_computed_exactly(n_a, n_b, features):
    """No more rows than features: the value frechet_from_moments gives from the sample moments, to round-off,
    and closer than it to 40-digit arithmetic (its eigh returns the singular covariance's zero eigenvalues as
    round-off, whose square roots add up); the singular values are summed in 40 digits, the mean and trace
    terms in float64 as the code does. At the switch (30 and 31 rows of 30 features) both forms agree."""
    mpmath = pytest.importorskip("mpmath")
    from radaug.validate.metrics import zscore

    rng = np.random.default_rng(n_a + n_b)
    mixing = rng.normal(size=(features, features)) * 0.3
    a = rng.normal(size=(n_a, features)) @ mixing
    b = rng.normal(0.2, 1.5, size=(n_b, features))
    value = frechet_distance(a, b)
    za, zb = zscore([a, b], by=a)
    moments = frechet_from_moments(za.mean(0), np.cov(za, rowvar=False), zb.mean(0), np.cov(zb, rowvar=False))
    assert value == pytest.approx(moments, rel=1e-6)

    mpmath.mp.dps = 40
    ca, cb = za - za.mean(0), zb - zb.mean(0)
    singular = mpmath.svd_r(mpmath.matrix(ca.tolist()) * mpmath.matrix(cb.tolist()).T, compute_uv=False)
    diff = za.mean(0) - zb.mean(0)
    exact = (mpmath.mpf(float(diff @ diff)) + mpmath.mpf(float((ca**2).sum())) / (n_a - 1)
             + mpmath.mpf(float((cb**2).sum())) / (n_b - 1) - 2 * sum(singular) / mpmath.sqrt((n_a - 1) * (n_b - 1)))
    assert abs(value - float(exact)) <= 1e-12 * float(exact)
    if min(n_a, n_b) <= features:  # the rows' form; above it (31 rows of 30 features) both are the moments'
        assert abs(value - float(exact)) <= abs(moments - float(exact))


def test_pooled_normal_scores_are_van_der_waerden_scores_of_the_pooled_ranks_whatever_the_sides():
    """Each feature's scores are Φ⁻¹(rank / (n + 1)) over both sets (ties averaged, as scipy ranks them); a row of
    one pool scores the same on whichever side it is; a row a million SD out takes the pool's extreme score."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    from radaug.validate.metrics import pooled_normal_scores

    rng = np.random.default_rng(12)
    pool = _population_draw(50, rng)
    pool[:, 0] = np.round(pool[:, 0])  # ties
    pool[7] = 1e6
    ref, cand = pooled_normal_scores(pool[:30], pool[30:])
    expected = ndtri(rankdata(pool, axis=0) / 51)
    np.testing.assert_array_equal(np.concatenate([ref, cand]), expected)
    order = rng.permutation(50)
    other_ref, other_cand = pooled_normal_scores(pool[order[:20]], pool[order[20:]])
    np.testing.assert_array_equal(np.concatenate([other_ref, other_cand]), expected[order])
    assert (ref[7] == ndtri(50 / 51)).all()
    assert pooled_normal_scores(pool[:1], pool[1:]) is None
    # a feature constant in the reference up to float32 rounding is dropped, as z-scoring by the reference drops it
    flat = np.column_stack([pool, 1.0 + 1e-9 * rng.normal(size=50)])
    flat[30:, -1] += 1e-7 * rng.normal(size=20)
    flat_ref, flat_cand = pooled_normal_scores(flat[:30], flat[30:])
    np.testing.assert_array_equal(np.concatenate([flat_ref, flat_cand]), expected)
    assert pooled_normal_scores(np.ones((30, 2)), pool[30:, :2]) is None


def test_ranked_location_distances_are_the_distances_of_the_pooled_scores_and_bounded_by_far_rows():
    from radaug.validate.metrics import pooled_normal_scores, ranked_location_distances

    rng = np.random.default_rng(13)
    ref, cand = _population_draw(40, rng), _population_draw(40, rng) + 0.5
    ranked = ranked_location_distances(ref, cand)
    scores = pooled_normal_scores(ref, cand)
    assert ranked == {"frechet_distance": frechet_distance(*scores),
                      "frechet_means_distance": frechet_means_distance(*scores),
                      "wasserstein_distance": wasserstein_distance(*scores)}
    far = cand.copy()
    far[0] = 1e4  # one row ten thousand SD out: the value explodes, the ranked distances barely move
    assert frechet_distance(ref, far) > 1e6 * frechet_distance(ref, cand)
    moved = ranked_location_distances(ref, far)
    for name, value in ranked.items():
        assert moved[name] == pytest.approx(value, rel=0.5), name
    assert all(math.isnan(v) for v in ranked_location_distances(ref[:1], cand).values())


# ---------------------------------------------------------------- memorization


def test_memorization_detects_near_copies_of_training_rows():
    rng = np.random.default_rng(9)
    train, holdout = _population_draw(300, rng), _population_draw(150, rng)
    copies = train[rng.integers(0, 300, size=300)] + 1e-3 * rng.normal(size=(300, N_FEATURES))
    assert memorization_ratio(copies, train, holdout) < 0.05
    assert share_closer_than_holdout(copies, train, holdout) == 1.0


def test_memorization_ratio_near_one_for_fresh_draws():
    rng = np.random.default_rng(10)
    train, holdout, fresh = (_population_draw(n, rng) for n in (300, 200, 300))
    assert memorization_ratio(fresh, train, holdout) == pytest.approx(1.0, abs=0.15)
    assert share_closer_than_holdout(fresh, train, holdout) < 0.12


def test_distance_to_closest_record_in_train_z_units():
    train = np.array([[0.0, 0.0], [2.0, 2.0]])  # column sd (ddof=1) = sqrt(2)
    d_candidate, d_holdout = distance_to_closest_record(
        np.array([[0.0, 0.0], [2.0, 0.0]]), train, np.array([[1.0, 1.0], [3.0, 2.0]])
    )
    np.testing.assert_allclose(d_candidate, [0.0, 2.0 / math.sqrt(2)])
    np.testing.assert_allclose(d_holdout, [1.0, 1.0 / math.sqrt(2)])


def test_memorization_metrics_on_hand_computed_distances():
    train = np.array([[0.0], [1.0], [2.0]])  # sd 1: z units equal raw units
    candidate = np.array([[0.0], [0.1], [2.45]])  # distances 0, 0.1, 0.45
    holdout = np.array([[0.2], [0.5], [1.1], [3.0]])  # distances 0.2, 0.5, 0.1, 1.0
    assert memorization_ratio(candidate, train, holdout) == pytest.approx(0.1 / 0.35)
    # 5th percentile of the holdout distances is 0.115: distances 0 and 0.1 lie below.
    assert share_closer_than_holdout(candidate, train, holdout) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- shared input rules


@pytest.mark.parametrize(
    "metric",
    [
        lambda ref, cand, hold: ks_fdr(ref, cand),
        lambda ref, cand, hold: correlation_distance(ref, cand),
        lambda ref, cand, hold: frechet_distance(ref, cand),
        lambda ref, cand, hold: memorization_ratio(cand, ref, hold),
        lambda ref, cand, hold: share_closer_than_holdout(cand, ref, hold),
        lambda ref, cand, hold: wasserstein_distance(ref, cand),
        lambda ref, cand, hold: frechet_means_distance(ref, cand),
        lambda ref, cand, hold: correlation_distance(ref, cand, "spearman"),
        lambda ref, cand, hold: nndr_ratio(cand, ref, hold),
    ],
    ids=["ks_fdr", "correlation_distance", "frechet_distance", "memorization_ratio",
         "share_closer_than_holdout", "wasserstein_distance", "frechet_means_distance",
         "correlation_distance_spearman", "nndr_ratio"],
)
def test_metrics_drop_non_finite_columns_and_need_two_rows(metric):
    rng = np.random.default_rng(11)
    ref, cand, hold = (_frame(_population_draw(n, rng)) for n in (60, 50, 40))
    clean = metric(*(t.drop(columns="feat_1") for t in (ref, cand, hold)))
    dirty = cand.copy()
    dirty.loc[5, "feat_1"] = np.nan
    assert metric(ref, dirty, hold) == pytest.approx(clean)
    assert math.isnan(metric(ref, cand.iloc[:1], hold))
    assert math.isnan(metric(ref.iloc[:1], cand, hold))


def test_metrics_align_dataframe_columns_by_name():
    rng = np.random.default_rng(12)
    a, b = _frame(_population_draw(60, rng)), _frame(_population_draw(50, rng))
    shuffled = b[COLUMNS[::-1]]
    assert frechet_distance(a, shuffled) == pytest.approx(frechet_distance(a, b))
    assert frechet_distance(a, b.to_numpy()) == pytest.approx(frechet_distance(a, b))
    with pytest.raises(RadaugError, match="feat_0"):
        frechet_distance(a, b.drop(columns="feat_0"))
    with pytest.raises(RadaugError, match="numbers of columns"):
        frechet_distance(a.to_numpy(), b.to_numpy()[:, :3])


# ---------------------------------------------------------------- summary


def test_validate_arm_passes_independent_real_like_draws(real_sets):
    train, holdout, good = real_sets
    summary = validate_arm(train, holdout, good, feature_columns=COLUMNS)
    assert list(summary.columns) == SUMMARY_COLUMNS
    without_images_or_other_classes = [
        m for m in METRICS if m not in ("image_memorization_ratio", "label_disagreement", "implausible_share")]
    assert list(summary["metric"]) == without_images_or_other_classes
    assert (summary["verdict"] == "pass").all(), summary
    assert summary[["n_reference", "n_candidate", "n_holdout"]].iloc[0].tolist() == [300, 300, 150]
    baseline = summary.set_index("metric")["baseline"]
    assert baseline["memorization_ratio"] == pytest.approx(1.0, abs=0.25)
    assert overall_verdict(summary["verdict"]) == "pass"


def test_validate_arm_fails_shifted_negative_control(real_sets):
    train, holdout, good = real_sets
    shifted = good + 0.75 * train.std()
    verdicts = validate_arm(train, holdout, shifted, feature_columns=COLUMNS).set_index(
        "metric"
    )["verdict"]
    assert verdicts["ks_fdr"] == "fail"
    assert verdicts["frechet_distance"] == "fail"
    assert overall_verdict(verdicts) == "fail"


def test_validate_arm_fails_decorrelated_negative_control(real_sets):
    train, holdout, good = real_sets
    rng = np.random.default_rng(13)
    shuffled = good.apply(lambda col: rng.permutation(col.to_numpy()))
    verdicts = validate_arm(train, holdout, shuffled, feature_columns=COLUMNS).set_index(
        "metric"
    )["verdict"]
    assert verdicts["correlation_distance"] == "fail"
    assert verdicts["frechet_distance"] == "fail"
    assert verdicts["ks_fdr"] == "pass"  # marginals are untouched


def test_validate_arm_fails_memorized_candidate(real_sets):
    train, holdout, _ = real_sets
    rng = np.random.default_rng(14)
    noise = 1e-3 * train.std().to_numpy() * rng.normal(size=train.shape)
    copies = train + noise
    summary = validate_arm(train, holdout, copies, feature_columns=COLUMNS).set_index("metric")
    assert summary.loc["memorization_ratio", "value"] < 0.05
    assert summary.loc["memorization_ratio", "verdict"] == "fail"
    assert summary.loc["share_closer_than_holdout", "verdict"] == "fail"


def test_validate_arm_ignores_non_feature_columns_and_drops_nan_features(real_sets):
    train, holdout, good = (t.copy() for t in real_sets)
    good["feat_2"] = np.nan
    train["site"] = "x"
    summary = validate_arm(train, holdout, good, feature_columns=COLUMNS)
    assert summary["value"].notna().all()
    assert (summary["verdict"] == "pass").all(), summary


def test_validate_arm_reports_insufficient_for_tiny_sets(real_sets):
    train, holdout, good = real_sets
    tiny_candidate = validate_arm(train, holdout, good.iloc[:1], feature_columns=COLUMNS)
    assert (tiny_candidate["verdict"] == "insufficient").all()
    assert tiny_candidate["value"].isna().all()
    # One holdout row: memorization cannot be judged, distribution metrics can.
    one_holdout = validate_arm(train, holdout.iloc[:1], good, feature_columns=COLUMNS).set_index("metric")
    assert one_holdout.loc["memorization_ratio", "verdict"] == "insufficient"
    assert one_holdout.loc["ks_fdr", "verdict"] == "pass"
    # Three training rows: halves of 1 and 2 rows give no real-vs-real baseline.
    small_train = validate_arm(train.iloc[:3], holdout, good, feature_columns=COLUMNS).set_index("metric")
    assert small_train.loc["frechet_distance", "verdict"] == "insufficient"
    assert math.isnan(small_train.loc["frechet_distance", "baseline"])


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass", "warn", "fail", "insufficient"], "fail"),
        (["pass", "warn", "insufficient"], "warn"),
        (["pass", "insufficient"], "pass"),
        (["insufficient", "insufficient"], "insufficient"),
        ([], "insufficient"),
    ],
)
def test_overall_verdict_takes_the_worst(verdicts, expected):
    assert overall_verdict(verdicts) == expected


def test_overall_verdict_rejects_unknown_verdicts():
    with pytest.raises(ValueError, match="ok"):
        overall_verdict(["pass", "ok"])


def test_features_constant_up_to_float32_rounding_are_ignored():
    """A z-scored ROI has first-order mean 0 by construction; rounding noise must not be scaled up."""
    from radaug.validate.metrics import frechet_distance, memorization_ratio

    rng = np.random.default_rng(0)
    informative = rng.normal(size=(60, 3))
    rounding = rng.normal(scale=1e-7, size=(60, 1))  # float32 noise around a constant
    reference = np.hstack([informative, rounding])
    candidate = np.hstack([rng.normal(size=(60, 3)), np.full((60, 1), 0.3)])
    holdout = np.hstack([rng.normal(size=(30, 3)), rng.normal(scale=1e-7, size=(30, 1))])
    assert frechet_distance(reference, candidate) == pytest.approx(
        frechet_distance(informative, candidate[:, :3]))
    assert memorization_ratio(candidate, reference, holdout) < 3


def test_value_and_baseline_are_compared_at_the_same_sample_size():
    """A large candidate must not look better than real data just because it is large.

    Review scenario: 20 features, 64 training rows, 16 holdout rows, 256 candidate rows.
    Without size matching a 1-SD shift with doubled SD only warned on Frechet, and fresh
    draws from the real distribution scored far below the real-vs-real baseline.
    """
    rng = np.random.default_rng(5)
    columns = [f"f{i}" for i in range(20)]
    real = lambda n: pd.DataFrame(rng.normal(size=(n, 20)), columns=columns)
    train, holdout = real(64), real(16)
    shifted = pd.DataFrame(rng.normal(1.0, 2.0, size=(256, 20)), columns=columns)
    bad = validate_arm(train, holdout, shifted, feature_columns=columns).set_index("metric")
    assert bad.loc["frechet_distance", "verdict"] == "fail"
    good = validate_arm(train, holdout, real(256), feature_columns=columns).set_index("metric")
    ratio = good.loc["frechet_distance", "value"] / good.loc["frechet_distance", "baseline"]
    assert 0.5 < ratio < 2.0 and good.loc["frechet_distance", "verdict"] == "pass"


def test_near_duplicates_straddling_the_halves_no_longer_flatter_the_baseline():
    """Found on Br35H: near-duplicate pairs split across the real halves made the baseline
    of two "independent" real samples look far closer than held-out real data, so the
    positive control failed Frechet at 5x the baseline. Halves now keep groups whole."""
    rng = np.random.default_rng(21)
    columns = [f"f{i}" for i in range(15)]
    originals = rng.normal(size=(60, 15))
    # Every training case has a near-duplicate (same slice, slightly different contrast).
    train = pd.DataFrame(np.vstack([originals, originals + rng.normal(scale=0.02, size=originals.shape)]),
                         columns=columns)
    train["group"] = [f"g{i}" for i in range(60)] * 2
    holdout = pd.DataFrame(rng.normal(size=(30, 15)), columns=columns)
    fresh = pd.DataFrame(rng.normal(size=(60, 15)), columns=columns)

    def frechet(group_column):
        summary = validate_arm(train, holdout, fresh, feature_columns=columns, group_column=group_column,
                               detection=False).set_index("metric")
        return summary.loc[["frechet_distance", "memorization_ratio"]]

    leaky, grouped = frechet(None), frechet("group")
    # Leaky halves share near-copies: two real halves look like copies of each other,
    # and far closer in distribution than a fresh real sample is.
    assert leaky.loc["memorization_ratio", "baseline"] < 0.2
    assert leaky.loc["frechet_distance", "baseline"] < 0.6 * grouped.loc["frechet_distance", "baseline"]
    assert grouped.loc["frechet_distance", "verdict"] == "pass"
    assert grouped.loc["memorization_ratio", "baseline"] == pytest.approx(1.0, abs=0.3)


def test_cells_smaller_than_min_rows_get_no_verdict(real_sets):
    train, holdout, good = real_sets
    small = validate_arm(train, holdout.iloc[:8], good.iloc[:8], feature_columns=COLUMNS, detection=False)
    assert (small["verdict"] == "insufficient").all(), small
    assert small["value"].notna().any()  # values are still reported
    judged = validate_arm(train, holdout.iloc[:8], good.iloc[:8], feature_columns=COLUMNS, detection=False,
                          min_rows=8)
    assert (judged["verdict"] != "insufficient").sum() >= 10
    # Enough candidate rows but a small holdout: only the memorization gates abstain.
    mixed = validate_arm(train, holdout.iloc[:8], good, feature_columns=COLUMNS, detection=False).set_index("metric")
    assert mixed.loc["memorization_ratio", "verdict"] == "insufficient"
    assert mixed.loc["frechet_distance", "verdict"] == "pass"


def test_null_rule_judges_cells_down_to_nearest_k_plus_one(real_sets):
    """Under the null rule a cell needs nearest_k + 1 rows by default (the factor rules' 10 left the default
    study's tumour positive control, 8 held-out cases a side, without a verdict); below that it abstains."""
    from radaug.validate.summary import FACTOR_MIN_ROWS, default_min_rows

    assert default_min_rows("factor", 5) == FACTOR_MIN_ROWS == 10
    assert default_min_rows("null", 5) == 6 and default_min_rows("null", 3) == 4
    train, holdout, good = real_sets
    options = {"feature_columns": COLUMNS, "detection": False, "rule": "null", "null_splits": 39,
               "power_repeats": 4}
    small = validate_arm(train, holdout.iloc[:8], good.iloc[:8], **options)
    assert (small["verdict"] != "insufficient").all(), small
    assert small["p_adjusted"].notna().all() and small["min_detectable"].str.len().gt(0).all()
    assert (small["verdict_rule"] == "null").all()
    tiny = validate_arm(train, holdout.iloc[:5], good.iloc[:5], **options)
    assert (tiny["verdict"] == "insufficient").all(), tiny
    assert tiny["p_adjusted"].isna().all() and tiny["value"].notna().any()
    assert (validate_arm(train, holdout.iloc[:5], good.iloc[:5], nearest_k=3, **options)["verdict"]
            != "insufficient").all()
    factor = validate_arm(train, holdout.iloc[:8], good.iloc[:8], feature_columns=COLUMNS, detection=False,
                          rule="factor")
    assert (factor["verdict"] == "insufficient").all()  # the factor rules keep their 10 rows


def test_null_rule_abstains_where_whole_groups_leave_most_draws_undefined(real_sets):
    """A 6-row candidate among training groups of 14 rows: a permuted side of whole groups is mostly empty,
    so most draws of a gate are undefined; the rule abstains, saying why, instead of reading a null
    conditioned on the draws' sizes (or letting the factor rules judge 6 rows)."""
    from radaug.validate.summary import MIN_DEFINED_DRAWS

    train, holdout, good = real_sets
    train = train.iloc[:56].assign(group=[f"g{i // 14}" for i in range(56)])
    candidate = good.iloc[:6].assign(group="c")
    hold = holdout.iloc[:6].assign(group="h")
    table = validate_arm(train, hold, candidate, feature_columns=COLUMNS, detection=False, rule="null",
                         null_splits=39, power_repeats=0, group_column="group").set_index("metric")
    abstained = table[table["verdict_rule"].str.contains("null draws defined")]
    assert len(abstained) >= 10, table[["verdict", "n_null", "verdict_rule"]]
    assert (abstained["verdict"] == "insufficient").all()
    assert (abstained["n_null"] < MIN_DEFINED_DRAWS * 39).all()
    judged = table[table["verdict"] != "insufficient"]
    assert (judged["n_null"] >= MIN_DEFINED_DRAWS * 39).all() and (judged["verdict_rule"] == "null").all()


@pytest.mark.parametrize("n1, n2", [(12, 7), (40, 40), (25, 60), (10_001, 9)])
def test_ks_columns_equal_scipy(n1, n2):
    """ks_2samp_columns gives scipy's ks_2samp(axis=0) bit for bit: ties, constants, exact and asymptotic
    p-values, and permuted draws of the same sizes (its cache of scipy's results)."""
    from scipy.stats import ks_2samp

    from radaug.validate.metrics import ks_2samp_columns

    rng = np.random.default_rng([n1, n2])
    ref = np.column_stack([rng.normal(size=n1), rng.integers(0, 3, n1), np.ones(n1), rng.normal(size=n1),
                           rng.normal(size=n1), rng.exponential(size=n1)] + [rng.normal(size=n1)] * 3)
    cand = np.column_stack([rng.normal(0.5, size=n2), rng.integers(0, 4, n2), np.zeros(n2), rng.normal(size=n2),
                            rng.normal(size=n2), rng.exponential(size=n2)] + [rng.normal(size=n2)] * 3)
    cand[:, 4] = ref[:n2, 4] if n2 <= n1 else cand[:, 4]  # shared values: ties across the sets
    for draw in range(3):  # the second and third draws of these sizes read scipy's results from the cache
        statistic, p_value = ks_2samp_columns(ref, cand)
        expected = ks_2samp(ref, cand, axis=0)
        assert np.array_equal(statistic, expected.statistic) and np.array_equal(p_value, expected.pvalue)
        pooled = rng.permutation(np.concatenate([ref, cand]))
        ref, cand = pooled[:n1], pooled[n1:]


def test_ks_columns_refuse_non_finite_values_and_keep_the_cache_clean():
    """A NaN column must not leave scipy's NaN result in the cache for later finite columns of its sizes."""
    from scipy.stats import ks_2samp

    from radaug.validate.metrics import ks_2samp_columns

    with pytest.raises(ValueError, match="NaN or infinite"):
        ks_2samp_columns(np.array([[0.0], [1.0], [np.nan]]), np.array([[5.0], [6.0], [7.0]]))
    ref, cand = np.array([[0.0], [1.0], [6.5]]), np.array([[5.0], [6.0], [7.0]])
    assert ks_2samp_columns(ref, cand)[1][0] == ks_2samp(ref[:, 0], cand[:, 0]).pvalue
