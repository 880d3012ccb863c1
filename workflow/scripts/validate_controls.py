"""Join the per-fold control tables (rule validate_controls_fold), in fold order, into
validation/arms/controls.csv and validation/details/controls/: the bytes one job over every
fold writes. CSVs are joined as text (radaug.io.concat_csv_text); the fold-averaged correlation
differences are averaged here from the folds' float64 matrices (radaug.validate.details.fold_means)
and stored in float32, as in every details file.
"""
from radaug.io import concat_csv_text, load_arrays, save_arrays, write_text
from radaug.snakemake_adapter import run_job
from radaug.validate.details import correlation_arrays, correlation_from_arrays, fold_means


def main(smk):
    for name in ("table", "ks", "dcr"):
        write_text(getattr(smk.output, name), concat_csv_text(getattr(smk.input, name)))
    arrays = [load_arrays(path) for path in smk.input.correlation]
    features = next(([str(f) for f in a["feature"]] for a in arrays if len(a["feature"])), [])
    correlation = fold_means([correlation_from_arrays(a) for a in arrays], features)
    save_arrays(smk.output.correlation, **correlation_arrays(correlation))


run_job(snakemake, main)  # noqa: F821
