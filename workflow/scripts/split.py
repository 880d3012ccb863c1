"""Stratified, patient- and near-duplicate-grouped folds."""

from radaug.io import read_table, write_csv
from radaug.snakemake_adapter import run_job
from radaug.splits import duplicate_audit, make_folds, window_links


def main(smk):
    index = read_table(smk.input.index, "case_index")
    opts = smk.params.options
    # the window rule's search is the split's expensive step: once, for the folds and the audit
    window = window_links(index, opts["verify_bits"], opts["min_similarity"], threads=smk.threads)
    folds = make_folds(index, folds=opts["folds"], repeats=opts["repeats"],
                       near_duplicate_bits=opts["near_duplicate_bits"], verify_bits=opts["verify_bits"],
                       min_similarity=opts["min_similarity"], seed=smk.params.seed,
                       allow_mixed_label_duplicates=opts.get("allow_mixed_label_duplicates", False),
                       window=window)
    write_csv(smk.output.folds, folds)
    write_csv(smk.output.duplicates, duplicate_audit(index, folds, opts["near_duplicate_bits"],
                                                     verify_bits=opts["verify_bits"],
                                                     min_similarity=opts["min_similarity"], window=window))


run_job(snakemake, main)  # noqa: F821
