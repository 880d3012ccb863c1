"""Sample one fold's synthetic set from a trained model, with rebalancing quotas.

Besides the samples and their table, writes the fold's sampling record
(radaug.sampling.SAMPLING_COLUMNS: per class requested, accepted, drawn, rejected
per reason). With sampling.on_shortfall: record a generator that cannot fill a
quota keeps what it has and the record says so; stop raises SamplingError.
"""
import numpy as np
import pandas as pd
import torch

from radaug.features import parse_spacing
from radaug.generative import TRANSLATION_MODELS, load_model
from radaug.generative.cyclegan import translate_with_quotas
from radaug.generative.training import generator_config_sha256
from radaug.io import read_table, save_arrays, sha256_file, write_csv
from radaug.preprocess import load_patches, normalise_patch
from radaug.snakemake_adapter import log, run_job
from radaug.sampling import rebalancing_quotas, sample_with_quotas
from radaug.shape import ORIGIN_COLUMNS, check_mask_parents, fit_in_fold, shape_model_options
from radaug.splits import fold_cases, parse_fold_key
from radaug.standardise import for_fold


def main(smk):
    # The rule's thread count (1): torch would otherwise start one thread per core in each of the
    # sampling jobs Snakemake runs in parallel, and CPU results would depend on the machine.
    torch.set_num_threads(smk.threads)
    repeat, fold = parse_fold_key(smk.wildcards.fold)
    opts, classes = smk.params.sampling, smk.params.classes
    index = read_table(smk.input.index).set_index("case_id")
    folds = read_table(smk.input.folds)
    train = fold_cases(folds, repeat, fold, "train")
    counts = train["label"].value_counts().reindex(classes, fill_value=0).to_dict()
    quotas = rebalancing_quotas(counts, opts["target_ratio"], opts["cap_per_case"])
    roi = index.loc[train["case_id"], "roi_voxels"].astype(int).groupby(train["label"].to_numpy())
    slack = 1 + opts["roi_size_slack"]
    roi_ranges = {c: (roi.min()[c] / slack, roi.max()[c] * slack) for c in classes if c in roi.min()}
    model = load_model(smk.input.checkpoint)
    columns = ["label", "seed", "attempt", "roi_voxels"]
    if smk.wildcards.model in TRANSLATION_MODELS:
        # Translate fold-train cases of the source domain; each sample keeps its parent's mask and case_id.
        candidates = train.assign(domain=index.loc[train["case_id"], "domain"].to_numpy())
        _, real_images, real_masks = load_patches(smk.input.patches, list(candidates["case_id"]),
                                                  standardisation=for_fold(index.reset_index(), folds, repeat, fold))
        images, masks, records, sampling = translate_with_quotas(
            model, quotas, candidates, real_images, real_masks, seed=smk.params.seed, fold=smk.wildcards.fold,
            log=log.info, on_shortfall=opts["on_shortfall"])
        columns += ["parent_case_id", "direction", "structure_agreement"]
    else:
        shapes = fold_shape_model(smk, index, folds, train, repeat, fold) if model.condition_on_mask else None
        images, masks, records, sampling = sample_with_quotas(
            model, quotas, classes, roi_ranges, seed=smk.params.seed, fold=smk.wildcards.fold,
            model_name=smk.wildcards.model, max_attempts=opts["max_attempts"], shapes=shapes,
            on_shortfall=opts["on_shortfall"])
        if shapes is not None:
            columns += list(ORIGIN_COLUMNS)
            check_mask_parents([r["parent_case_id"] for r in records], train["case_id"], repeat, fold)
    rejected = sampling.set_index("label")["rejected"].to_dict()
    log.info("quotas %s, rejected %s", quotas, rejected)
    for row in sampling[sampling["short"]].itertuples():
        log.warning("%s %s: only %d of %d plausible '%s' samples (%s); the arm is reported as could not generate "
                    "(sampling.on_shortfall: record)", smk.wildcards.model, smk.wildcards.fold, row.accepted,
                    row.requested, row.label, row.reasons)
    # The same intensity representation as the real patches (roi_zscore: z-scored within the ROI).
    normalisation = index["normalisation"].mode().iloc[0]
    images = [normalise_patch(image, mask, normalisation) for image, mask in zip(images, masks)]
    model_sha = sha256_file(smk.input.checkpoint)
    config_sha = generator_config_sha256(model.name, model.hyperparams, dict(smk.params.training))
    table = pd.DataFrame.from_records(records, columns=columns)
    n = len(table)
    table.insert(0, "sample_id", [f"{smk.wildcards.model}-{smk.wildcards.fold}-{i:05d}" for i in range(n)])
    table = table.assign(model=smk.wildcards.model, model_sha256=model_sha, checkpoint_step=model.step,
                         generator_config_sha256=config_sha,
                         repeat=repeat, fold=fold, quota=table["label"].map(quotas),
                         rejected_in_class=table["label"].map(rejected))
    if model.selection is not None:  # in-fold selection: the step whose weights drew the samples
        table["selected_step"] = model.selected_step
    sampling.insert(0, "fold", smk.wildcards.fold)
    sampling.insert(0, "model", smk.wildcards.model)
    save_arrays(smk.output.samples,
                sample_id=table["sample_id"].to_numpy(dtype=str) if n else np.zeros(0, dtype="<U1"),
                image=np.stack(images) if n else np.zeros(0, np.float32),
                mask=np.stack(masks) if n else np.zeros(0, np.uint8))
    write_csv(smk.output.table, table)
    write_csv(smk.output.sampling, sampling)


def fold_shape_model(smk, index, folds, train, repeat, fold):
    """The shape model of the fold's training masks (refused if a case is not a training case)."""
    ids, _, train_masks = load_patches(smk.input.patches, list(train["case_id"]))
    shapes = fit_in_fold(folds=folds, cases=index.reset_index(), repeat=repeat, fold=fold, case_ids=ids,
                         masks=train_masks, labels=list(train.set_index("case_id").loc[ids, "label"]),
                         spacing=parse_spacing(index["spacing"].iloc[0]),
                         **shape_model_options(smk.params.shape_model, smk.params.augmentation))
    log.info("shape model %s: %s", shapes.sha256[:12], {
        label: f"{len(s.case_ids)} masks, {len(s.sd)} modes" for label, s in shapes.shapes.items()})
    return shapes


run_job(snakemake, main)  # noqa: F821
