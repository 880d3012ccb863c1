"""Across-fold statistics per arm and metric: corrected tests, effect sizes, pooled bootstrap vs real.

Arms that failed validation are summarised and flagged, or left out when
validation.evaluate_failing_arms is false (validation/arm_verdicts.csv decides).
Arms left out, and arms that could not generate, keep rows with empty statistics
and a note saying why (radaug.evaluate.summary_with_verdicts).
"""

from radaug.arms import REFERENCE_ARM
from radaug.evaluate import gate_by_validation, summary_with_verdicts
from radaug.io import read_table, read_tables, write_csv
from radaug.snakemake_adapter import log, run_job
from radaug.statistics import inference_notes, summarise


def main(smk):
    per_fold = read_tables(smk.input.per_fold)
    predictions = read_tables(smk.input.predictions)
    verdicts = read_table(smk.input.arm_verdicts) if smk.input.get("arm_verdicts") else None
    per_fold, predictions, gate = gate_by_validation(per_fold, predictions, verdicts, arms=smk.params.arms)
    for row in gate[~gate["evaluated"]].itertuples():
        log.warning("arm %s is not evaluated: %s", row.arm, row.note)
    summary = summarise(per_fold, predictions, reference_arm=REFERENCE_ARM, alpha=smk.params.alpha,
                        n_bootstrap=smk.params.n_bootstrap, seed=smk.params.seed)
    for note in inference_notes(summary, per_fold=per_fold):
        log.warning("%s", note)
    write_csv(smk.output.summary, summary_with_verdicts(summary, gate))


run_job(snakemake, main)  # noqa: F821
