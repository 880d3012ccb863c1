"""The table contract: which columns, of which kind, the tables that stages hand each other carry.

Every table the workflow passes between jobs is a CSV written by
:func:`radaug.io.write_csv` and read back by :func:`radaug.io.read_table`. Given a
contract name (``read_table(path, contract="folds")``) the reader checks the file
against :data:`CONTRACTS` before any job computes with it, so a table from an
older radaug, a hand-edited file or a stage that wrote the wrong thing stops the job
with the file, the table and the missing or malformed column named, instead of a
``KeyError`` or a silently wrong comparison three modules later.

A contract lists the columns readers rely on (a writer may add more: a sample table's
model-specific columns, the per-metric columns of ``per_fold``), each with its kind:

``text``
    An identifier or a name. Columns of :data:`radaug.io.TEXT_COLUMNS` are read as
    text whatever they hold (a case id ``0012`` stays ``0012``; empty cells are "").
``int``
    Whole numbers (``repeat``, ``fold``, counts): no empty cell.
``float``
    Numbers; empty cells are NaN.
``flag``
    A boolean, written by pandas as ``True``/``False`` or by the validation
    verdicts as ``true``/``false``. Read back it stays as read; every reader
    parses it with :func:`radaug.io.truthy` (a column) or :func:`radaug.io.is_true`
    (a cell), the one boolean parser; never ``astype(bool)`` (the text ``"False"``
    is true).

Checking never changes what is read, so a table read with or without its
contract is the same DataFrame, and every output stays byte for byte what it was.

To change a table's columns: its writer (named in :attr:`Contract.writer`), this
contract, and the readers the test suite points at (``tests/unit/test_tables.py``
checks the smoke-size tables the library writes against their contracts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from radaug.errors import RadaugError

KINDS = ("text", "int", "float", "flag")

#: Texts a flag cell may hold (any case): the true ones of :data:`radaug.io.TRUE_TEXTS` and these.
FALSE_TEXTS = ("false", "0", "0.0", "no", "", "nan")


class TableError(RadaugError):
    """A table between stages does not have the columns its contract names."""


@dataclass(frozen=True)
class Contract:
    """The columns (name -> kind) a table between stages must have, where it lives and who writes it."""

    name: str
    path: str
    writer: str
    columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        bad = {c: k for c, k in self.columns.items() if k not in KINDS}
        if bad:
            raise ValueError(f"contract '{self.name}': unknown column kinds {bad}; use one of {KINDS}")


_FOLD = {"repeat": "int", "fold": "int"}

CONTRACTS: dict[str, Contract] = {c.name: c for c in (
    Contract("folds", "splits/folds.csv", "splits.make_folds (FOLD_COLUMNS)",
             {"case_id": "text", "patient_id": "text", "group": "text", "label": "text", **_FOLD, "role": "text"}),
    Contract("case_index", "cases/index.csv", "preprocess (one row per case, joined by the case_index job)",
             {"case_id": "text", "patient_id": "text", "label": "text", "modality": "text", "spacing": "text",
              "roi_voxels": "int"}),
    Contract("duplicates", "splits/duplicates.csv", "splits.duplicate_audit (AUDIT_COLUMNS)",
             {"case_a": "text", "case_b": "text", "linked": "flag", "grouped": "flag"}),
    Contract("samples", "synthetic/<model>/<fold>.csv", "generative.arm.sample_fold (SAMPLE_COLUMNS, PROVENANCE_COLUMNS)",
             {"sample_id": "text", "label": "text", "seed": "int", "attempt": "int", "roi_voxels": "int",
              "model": "text", "model_sha256": "text", **_FOLD}),
    Contract("augmented", "augmented/classical/<fold>.csv", "augment.classical.augment_fold (AUGMENTED_COLUMNS)",
             {"sample_id": "text", "case_id": "text", "label": "text", **_FOLD, "seed": "int", "roi_voxels": "int",
              "chain": "text"}),
    Contract("sampling", "synthetic/<model>/sampling/<fold>.csv", "sampling.sampling_record (SAMPLING_COLUMNS)",
             {"label": "text", "requested": "int", "accepted": "int", "drawn": "int", "short": "flag"}),
    Contract("validation_summary", "validation/summary.csv", "validate.verdicts (STUDY_SUMMARY_COLUMNS)",
             {"fold": "text", "arm": "text", "class": "text", "metric": "text", "value": "float",
              "baseline": "float", "direction": "text", "verdict": "text"}),
    Contract("arm_verdicts", "validation/arm_verdicts.csv", "validate.verdicts.arm_verdicts (ARM_VERDICT_COLUMNS)",
             {"arm": "text", "control": "flag", "verdict": "text", "n_fail": "int", "n_warn": "int",
              "evaluate": "flag", "flagged": "flag", "control_ok": "flag"}),
    Contract("invariance", "invariance/<fold>.csv", "validate.invariance",
             {"feature": "text", **_FOLD, "robust": "flag"}),
    Contract("per_fold", "evaluation/per_fold/<arm>.csv", "evaluate.evaluate_arm (PER_FOLD_COLUMNS)",
             {"arm": "text", **_FOLD, "n_train_real": "int", "n_train_added": "int", "n_test": "int"}),
    Contract("predictions", "evaluation/predictions/<arm>.csv", "evaluate.evaluate_arm (PREDICTION_COLUMNS)",
             {"arm": "text", **_FOLD, "case_id": "text", "label": "text", "y_true": "int", "score": "float"}),
    Contract("evaluation_summary", "evaluation/summary.csv", "statistics.summarise, evaluate.summary_with_verdicts",
             {"arm": "text", "metric": "text", "mean": "float", "ci_low": "float", "ci_high": "float",
              # float: an arm left out of evaluation (could not generate, failed validation) has a row
              # per metric with empty statistics, n_folds included (evaluate.summary_with_verdicts)
              "n_folds": "float", "holm_significant": "flag"}),
)}


def check_table(table, contract: str | Contract, source: str = "table"):
    """Raise :class:`TableError` unless ``table`` has ``contract``'s columns, each of its kind; return ``table``.

    ``source`` names the file in the message. A table without rows passes the
    kind checks (its columns are still required).
    """
    import pandas as pd

    from radaug.io import TRUE_TEXTS

    spec = CONTRACTS[contract] if isinstance(contract, str) else contract
    fix = f"it is written by {spec.writer}: rerun that stage, or fix the file"
    missing = [c for c in spec.columns if c not in table.columns]
    if missing:
        raise TableError(f"{source}: the '{spec.name}' table ({spec.path}) lacks the column(s) {missing}; {fix}")
    for column, kind in spec.columns.items():
        values = table[column]
        if kind == "int" and len(values) and not pd.api.types.is_integer_dtype(values):
            raise TableError(f"{source}: column '{column}' of the '{spec.name}' table must hold whole numbers "
                             f"without empty cells, got {values.dtype} ({values.iloc[:3].tolist()}); {fix}")
        if kind == "float" and not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
            raise TableError(f"{source}: column '{column}' of the '{spec.name}' table must hold numbers, "
                             f"got {values.iloc[:3].tolist()}; {fix}")
        if kind == "flag":
            texts = {"" if pd.isna(v) else str(v).strip().lower() for v in values.unique()}
            odd = sorted(texts - set(TRUE_TEXTS) - set(FALSE_TEXTS))
            if odd:
                raise TableError(f"{source}: column '{column}' of the '{spec.name}' table must hold true/false, "
                                 f"got {odd[:3]}; {fix}")
    return table
