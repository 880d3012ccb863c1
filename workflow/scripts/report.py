"""Render the standalone HTML study report."""
import pandas as pd

from radaug.io import load_arrays, read_json, read_table, write_text
from radaug.preprocess import load_patches
from radaug.provenance import run_job
from radaug.report import build_report
from radaug.validate.details import concat_details, read_details


def _concat(paths, **kwargs):
    frames = [read_table(p) for p in paths]
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def main(smk):
    inp = smk.input
    losses = {}
    for path in inp.losses:
        model, fold = path.split("/")[-3:-1]
        losses[(model, fold)] = read_table(path)
    synthetic = {}
    for path in inp.samples:
        model = path.split("/")[-2]
        arrays = load_arrays(path)
        table = read_table(path.removesuffix(".npz") + ".csv")
        synthetic[model] = (arrays["image"], arrays["mask"], table)
    html = build_report(
        config=smk.params.config,
        cohort=read_table(inp.index),
        folds=read_table(inp.folds),
        validation=read_table(inp.validation),
        evaluation=read_table(inp.evaluation),
        predictions=_concat(inp.predictions, dtype={"case_id": str}),
        losses=losses,
        real_patches=load_patches(inp.patches),
        synthetic=synthetic,
        sample_tables=_concat(inp.sample_tables, dtype={"sample_id": str}),
        failures=_concat(inp.failures),
        provenance=[read_json(p) for p in inp.provenance],
        validation_details=concat_details(
            read_details(*paths) for paths in zip(inp.validation_ks, inp.validation_correlation, inp.validation_dcr)),
    )
    write_text(smk.output.html, html)


run_job(snakemake, main)  # noqa: F821
