"""PyRadiomics features of one fold's synthetic set."""

from radaug.errors import RadaugError
from radaug.features import META_COLUMNS, extract_patches, make_extractor, parse_spacing
from radaug.io import load_arrays, read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    samples = read_table(smk.input.table)
    arrays = load_arrays(smk.input.samples)
    index = read_table(smk.input.index)
    # A translated sample names its parent case, so the evaluation's leakage checks see it.
    parents = samples["parent_case_id"].fillna("") if "parent_case_id" in samples else ""
    meta = samples[["sample_id", "repeat", "fold", "label"]].assign(
        case_id=parents, source="synthetic", arm=smk.wildcards.model)[list(META_COLUMNS)]
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], parse_spacing(index["spacing"].iloc[0]), meta,
                                         threads=smk.threads)
    write_csv(smk.output.failures, failures)
    if len(failures) > smk.params.max_failed:
        # The reasons go into the message: Snakemake removes a failed job's outputs, failures table included.
        reasons = "; ".join(f"{r.sample_id}: {r.reason}" for r in failures.head(5).itertuples())
        raise RadaugError(
            f"feature extraction failed for {len(failures)} synthetic sample(s) of {smk.wildcards.model} "
            f"{smk.wildcards.fold}, more than study.max_failed_samples = {smk.params.max_failed} "
            f"(first reasons: {reasons}). Raise study.max_failed_samples to tolerate them, or check the "
            "generator's samples (degenerate masks)."
        )
    write_csv(smk.output.features, features)


run_job(snakemake, main)  # noqa: F821
