"""PyRadiomics features of one batch of real cases (each real case is extracted once per study)."""
import pandas as pd

from radaug.features import extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.provenance import run_job


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    meta = pd.DataFrame({"sample_id": cases["case_id"], "case_id": cases["case_id"], "source": "real",
                         "arm": "real", "repeat": pd.NA, "fold": pd.NA, "label": cases["label"]})
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], spacing, meta, threads=smk.threads)
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what="real case(s)",
        fix="Check the listed cases' masks and images (validate the manifest), or raise study.max_failed_samples.",
    )


run_job(snakemake, main)  # noqa: F821
