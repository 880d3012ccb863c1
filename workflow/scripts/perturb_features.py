"""Features of n perturbations of every real case of one batch (robustness analysis)."""
import pandas as pd

from radaug.augment import build_perturbation, perturb_case, perturbation_seed
from radaug.errors import RadaugError
from radaug.features import extract_patches, make_extractor, parse_spacing, write_extraction
from radaug.io import load_arrays, read_table
from radaug.provenance import log, run_job
from radaug.validate.invariance import perturbation_sample_id


def main(smk):
    cases = read_table(smk.input.table)
    arrays = load_arrays(smk.input.patches)
    opts = smk.params.options
    spacing = parse_spacing(cases["spacing"].iloc[0]) if len(cases) else ()
    images, masks, meta = [], [], []
    for i, case in enumerate(cases.itertuples(index=False)):
        chain = build_perturbation(opts, case.modality, case.normalisation)
        try:
            results = perturb_case(chain, arrays["image"][i], arrays["mask"][i], spacing, n=opts["n"],
                                   seed=perturbation_seed(smk.params.seed, case.case_id))
        except (RuntimeError, ValueError) as exc:
            raise RadaugError(f"case '{case.case_id}': perturbation failed: {exc}") from exc
        for j, result in enumerate(results):
            images.append(result.image)
            masks.append(result.mask)
            meta.append({"sample_id": perturbation_sample_id(case.case_id, j), "case_id": case.case_id,
                         "source": "perturbed", "arm": "perturbation", "repeat": pd.NA, "fold": pd.NA,
                         "label": case.label})
    log.info("%d cases x %d perturbations", len(cases), opts["n"])
    features, failures = extract_patches(make_extractor(smk.input.params_file), images, masks, spacing,
                                         pd.DataFrame(meta))
    write_extraction(
        features, failures, features_path=smk.output.features, failures_path=smk.output.failures,
        max_failed=smk.params.max_failed,
        what="perturbed sample(s)",
        fix="Raise study.max_failed_samples to tolerate them, or narrow the perturbation ranges (perturbation.*).",
    )


run_job(snakemake, main)  # noqa: F821
