import numpy as np
import pandas as pd
import pytest

from radaug.validate.invariance import (INVARIANCE_COLUMNS, feature_iccs, icc, invariance_table, mean_squares,
                                        perturbation_index, perturbation_sample_id, robust_features)

# Shrout & Fleiss (1979), Table 2: six targets, four judges.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_shrout_fleiss_worked_example():
    ms = mean_squares(SHROUT_FLEISS)
    # Their Table 3: BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02.
    assert [round(float(ms[k]), 2) for k in ("BMS", "WMS", "JMS", "EMS")] == [11.24, 6.26, 32.49, 1.02]
    result = icc(SHROUT_FLEISS)
    assert round(float(result["icc1"]), 2) == 0.17 and round(float(result["icc3"]), 2) == 0.71
    # F-based 95% intervals (the same values pingouin.intraclass_corr reports for this table).
    assert [round(float(result[k]), 2) for k in ("icc1_low", "icc1_high")] == [-0.13, 0.72]
    assert [round(float(result[k]), 2) for k in ("icc3_low", "icc3_high")] == [0.34, 0.95]


def test_vectorised_over_features_and_constant_feature_is_nan():
    stacked = np.stack([SHROUT_FLEISS, np.ones((6, 4))], axis=2)
    result = icc(stacked)
    assert result["icc1"][0] == pytest.approx(float(icc(SHROUT_FLEISS)["icc1"]))
    assert np.isnan(result["icc1"][1])


def test_interval_covers_the_true_icc():
    # One-way model: y = target + noise, true ICC = s_t^2 / (s_t^2 + s_e^2) = 0.8.
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(200):
        y = rng.normal(0, 2, size=(30, 1)) + rng.normal(0, 1, size=(30, 4))
        r = icc(y)
        covered += r["icc1_low"] <= 0.8 <= r["icc1_high"]
    assert 0.9 <= covered / 200 <= 0.99


def _perturbed():
    rng = np.random.default_rng(1)
    rows = []
    for c in range(12):
        target = rng.normal()
        for j in range(4):
            rows.append({"sample_id": perturbation_sample_id(f"case{c}", j), "case_id": f"case{c}",
                         "stable": target + 0.01 * rng.normal(), "noisy": rng.normal(),
                         "gappy": np.nan if (c == 0 and j == 1) else target})
    return pd.DataFrame(rows)


def test_feature_iccs_robust_flags_and_missing_values():
    table = _perturbed()
    table["perturbation"] = perturbation_index(table["sample_id"])
    iccs = feature_iccs(table, ["stable", "noisy", "gappy"])
    by = iccs.set_index("feature")
    assert by.loc["stable", "icc1"] > 0.99 and abs(by.loc["noisy", "icc1"]) < 0.3
    assert by.loc["gappy", "n_cases"] == 11  # the case with a missing value is left out
    assert robust_features(iccs, "icc1_low", 0.9).tolist() == [True, False, True]
    with pytest.raises(ValueError):
        robust_features(iccs, "icc2")


def test_invariance_table_uses_training_cases_only():
    table = _perturbed()
    table["perturbation"] = perturbation_index(table["sample_id"])
    train = [f"case{c}" for c in range(6)]
    out = invariance_table(table, ["stable", "noisy"], train, repeat=0, fold=2)
    assert list(out.columns) == list(INVARIANCE_COLUMNS)
    assert (out["fold"] == 2).all() and out["robust"].dtype == bool
    only_train = feature_iccs(table[table["case_id"].isin(train)], ["stable", "noisy"])
    np.testing.assert_allclose(out["icc1"], only_train["icc1"])


def test_perturbation_ids_round_trip():
    ids = pd.Series([perturbation_sample_id("P1~x", 3), perturbation_sample_id("b", 12)])
    assert perturbation_index(ids).tolist() == [3, 12]
    with pytest.raises(ValueError):
        perturbation_index(pd.Series(["plain"]))


# --- issue 18: bad input is refused with a clear message ------------------------------------

SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_refuses_nan_cells_instead_of_returning_all_nan():
    y = np.array(SHROUT_FLEISS, dtype=float)
    y[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"\[\[2, 1\]\] are NaN or infinite.*drop those targets"):
        icc(y)
    # what the message advises gives the ICC of the remaining targets
    assert np.isfinite(icc(np.delete(y, 2, axis=0))["icc1"])


def test_icc_refuses_1d_input_and_bad_alpha():
    with pytest.raises(ValueError, match=r"got 1-D input of shape \(4,\)"):
        icc([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="alpha"):
        icc(SHROUT_FLEISS, alpha=1.5)


def test_feature_iccs_refuses_empty_tables_missing_columns_and_duplicates():
    table = _perturbed()
    table["perturbation"] = perturbation_index(table["sample_id"])
    with pytest.raises(ValueError, match="has no rows"):
        feature_iccs(table.iloc[:0], ["stable"])
    with pytest.raises(ValueError, match=r"lacks columns \['nope'\]"):
        feature_iccs(table, ["nope"])
    doubled = pd.concat([table, table.iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match=r"pairs \[\('.*', 0\)\] occur more than once"):
        feature_iccs(doubled, ["stable"])
