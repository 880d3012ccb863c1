"""Render the report's generators section (losses, selection curves, sample grids, sampling counts) as an HTML fragment.

Which model and fold each input file belongs to comes from the rule's params (runs,
selection_runs, shown), in the order of the input lists; paths are never parsed.
"""
from radaug.io import load_arrays, read_table, read_tables, write_text
from radaug.preprocess import load_patches
from radaug.report import render_generators, report_classes
from radaug.snakemake_adapter import run_job
from radaug.standardise import fold_standardisations


def main(smk):
    inp, params = smk.input, smk.params
    losses = {tuple(run): read_table(path) for run, path in zip(params.runs, inp.losses, strict=True)}
    # generative.selection.enabled: the selection curve per (model, fold)
    selection = {tuple(run): read_table(path) for run, path in zip(params.selection_runs, inp.selection, strict=True)}
    synthetic = {}  # the first fold's samples per arm: generators, then classical
    archives, tables = [*inp.samples, *inp.augmented], [*inp.shown_tables, *inp.augmented_tables]
    for arm, path, table_path in zip(params.shown, archives, tables, strict=True):
        arrays = load_arrays(path)
        synthetic[arm] = (arrays["image"], arrays["mask"], read_table(table_path))
    cohort, folds = read_table(inp.index), read_table(inp.folds)
    # The samples shown are the first fold's; with per-fold standardisation (nyul) the real patches
    # beside them are in that fold's intensities too.
    standardisation = fold_standardisations(cohort, folds)[0][2]
    html = render_generators(losses, load_patches(inp.patches, standardisation=standardisation), synthetic, read_tables(inp.sample_tables),
                             cohort, folds, report_classes(smk.params.classes, cohort),
                             sampling=read_tables(inp.sampling), selection=selection)
    write_text(smk.output.html, html)


run_job(snakemake, main)  # noqa: F821
