"""PyRadiomics features of one batch of real cases (each real case is extracted once per study)."""
import pandas as pd

from radaug.errors import RadaugError
from radaug.features import extract_patches, make_extractor, parse_spacing
from radaug.io import load_arrays, read_table, write_csv
from radaug.provenance import run_job


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    meta = pd.DataFrame({"sample_id": cases["case_id"], "case_id": cases["case_id"], "source": "real",
                         "arm": "real", "repeat": pd.NA, "fold": pd.NA, "label": cases["label"]})
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    features, failures = extract_patches(make_extractor(smk.input.params_file), arrays["image"],
                                         arrays["mask"], spacing, meta, threads=smk.threads)
    write_csv(smk.output.failures, failures)
    if len(failures) > smk.params.max_failed:
        raise RadaugError(f"feature extraction failed for real case(s): {failures.head(5).to_dict('records')}; "
                          f"see {smk.output.failures}")
    write_csv(smk.output.features, features)


run_job(snakemake, main)  # noqa: F821
