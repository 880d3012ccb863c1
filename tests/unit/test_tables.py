"""radaug.tables: the contract of the tables between stages, and the one boolean parser."""
import pandas as pd
import pytest

from radaug.io import is_true, read_table, read_tables, truthy, write_csv
from radaug.tables import CONTRACTS, TableError, check_table


def _writer_columns():
    """Each contract's table as its writer names it: the contract must ask for a subset."""
    from radaug.augment.classical import AUGMENTED_COLUMNS
    from radaug.evaluate import PER_FOLD_COLUMNS, PREDICTION_COLUMNS
    from radaug.generative.arm import PROVENANCE_COLUMNS, SAMPLE_COLUMNS
    from radaug.sampling import SAMPLING_COLUMNS
    from radaug.splits import AUDIT_COLUMNS, FOLD_COLUMNS
    from radaug.statistics import EVALUATION_SUMMARY_COLUMNS
    from radaug.validate.verdicts import ARM_VERDICT_COLUMNS, STUDY_SUMMARY_COLUMNS

    return {"folds": FOLD_COLUMNS, "duplicates": AUDIT_COLUMNS, "samples": (*SAMPLE_COLUMNS, *PROVENANCE_COLUMNS),
            "augmented": AUGMENTED_COLUMNS, "sampling": SAMPLING_COLUMNS, "validation_summary": STUDY_SUMMARY_COLUMNS,
            "arm_verdicts": ARM_VERDICT_COLUMNS, "per_fold": PER_FOLD_COLUMNS, "predictions": PREDICTION_COLUMNS,
            "evaluation_summary": EVALUATION_SUMMARY_COLUMNS}


@pytest.mark.parametrize("name, columns", sorted(_writer_columns().items()))
def test_contract_columns_are_written_by_the_writer(name, columns):
    assert set(CONTRACTS[name].columns) <= set(columns), set(CONTRACTS[name].columns) - set(columns)


def _folds():
    return pd.DataFrame({"case_id": ["0012", "c2"], "patient_id": ["p1", "p2"], "group": ["g1", "g2"],
                         "label": ["a", "b"], "repeat": [0, 0], "fold": [0, 1], "role": ["train", "test"]})


def test_reading_with_a_contract_reads_the_same_table(tmp_path):
    write_csv(tmp_path / "folds.csv", _folds())
    plain, checked = read_table(tmp_path / "folds.csv"), read_table(tmp_path / "folds.csv", "folds")
    pd.testing.assert_frame_equal(plain, checked)
    assert checked["case_id"].tolist() == ["0012", "c2"]  # ids stay text
    pd.testing.assert_frame_equal(read_tables([tmp_path / "folds.csv"] * 2, "folds"),
                                  read_tables([tmp_path / "folds.csv"] * 2))


def test_a_missing_column_names_the_file_the_table_and_the_writer(tmp_path):
    write_csv(tmp_path / "folds.csv", _folds().drop(columns="role"))
    with pytest.raises(TableError, match=r"folds.csv: the 'folds' table .* lacks the column\(s\) \['role'\].*"
                                         r"splits.make_folds"):
        read_table(tmp_path / "folds.csv", "folds")


def test_kinds_are_checked():
    with pytest.raises(TableError, match="'repeat' .* whole numbers"):
        check_table(_folds().assign(repeat=["0", "x"]), "folds")
    verdicts = pd.DataFrame({"arm": ["a"], "control": ["False"], "verdict": ["pass"], "n_fail": [0], "n_warn": [0],
                             "evaluate": ["true"], "flagged": [False], "control_ok": [float("nan")]})
    assert check_table(verdicts, "arm_verdicts") is verdicts
    with pytest.raises(TableError, match="'evaluate' .* true/false, got \\['maybe'\\]"):
        check_table(verdicts.assign(evaluate="maybe"), "arm_verdicts")
    check_table(_folds().iloc[:0], "folds")  # no rows: the columns are still there


def test_one_boolean_parser():
    cells = [True, False, "True", "False", "true", "false", " TRUE ", 1, 0, 1.0, "1.0", "yes", "", None,
             float("nan")]
    expected = [True, False, True, False, True, False, True, True, False, True, True, True, False, False, False]
    assert truthy(cells).tolist() == expected
    assert [is_true(c) for c in cells] == expected
    indexed = pd.Series(["true", "false"], index=[5, 9])
    assert truthy(indexed).index.tolist() == [5, 9]  # masks and assigns to its table
