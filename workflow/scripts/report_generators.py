"""Render the report's generators section (losses, selection curves, sample grids, sampling counts) as an HTML fragment."""
from radaug.io import load_arrays, read_table, read_tables, write_text
from radaug.preprocess import load_patches
from radaug.snakemake_adapter import run_job
from radaug.report import render_generators, report_classes
from radaug.standardise import fold_standardisations


def main(smk):
    inp = smk.input
    losses = {}
    for path in inp.losses:
        model, fold = path.split("/")[-3:-1]
        losses[(model, fold)] = read_table(path)
    selection = {}  # generative.selection.enabled: the selection curve per (model, fold)
    for path in inp.selection:
        model, fold = path.split("/")[-3:-1]
        selection[(model, fold)] = read_table(path)
    synthetic = {}
    pairs = [(path, path.removesuffix(".npz") + ".csv") for path in inp.samples]  # tables among inp.sample_tables
    pairs += zip(inp.augmented, inp.augmented_tables)  # augmented/classical/<fold>.npz and .csv
    for path, table_path in pairs:
        model = path.split("/")[-2]
        arrays = load_arrays(path)
        table = read_table(table_path)
        synthetic[model] = (arrays["image"], arrays["mask"], table)
    cohort, folds = read_table(inp.index), read_table(inp.folds)
    # The samples shown are the first fold's; with per-fold standardisation (nyul) the real patches
    # beside them are in that fold's intensities too.
    standardisation = fold_standardisations(cohort, folds)[0][2]
    html = render_generators(losses, load_patches(inp.patches, standardisation=standardisation), synthetic, read_tables(inp.sample_tables),
                             cohort, folds, report_classes(smk.params.classes, cohort),
                             sampling=read_tables(inp.sampling), selection=selection)
    write_text(smk.output.html, html)


run_job(snakemake, main)  # noqa: F821
