"""Render the report's generators section (losses, sample grids, sampling counts) as an HTML fragment."""
from radaug.io import load_arrays, read_table, read_tables, write_text
from radaug.preprocess import load_patches
from radaug.provenance import run_job
from radaug.report import render_generators, report_classes


def main(smk):
    inp = smk.input
    losses = {}
    for path in inp.losses:
        model, fold = path.split("/")[-3:-1]
        losses[(model, fold)] = read_table(path)
    synthetic = {}
    for path in [*inp.samples, *inp.augmented]:  # synthetic/<model>/<fold>.npz, augmented/classical/<fold>.npz
        model = path.split("/")[-2]
        arrays = load_arrays(path)
        table = read_table(path.removesuffix(".npz") + ".csv")
        synthetic[model] = (arrays["image"], arrays["mask"], table)
    cohort, folds = read_table(inp.index), read_table(inp.folds)
    html = render_generators(losses, load_patches(inp.patches), synthetic, read_tables(inp.sample_tables),
                             cohort, folds, report_classes(smk.params.classes, cohort),
                             sampling=read_tables(inp.sampling))
    write_text(smk.output.html, html)


run_job(snakemake, main)  # noqa: F821
