# Stage 9: the study manifest (every artifact with sha256 and its job record).
# `make verify STUDY=<name>` (radaug verify) re-hashes a study against it.


def study_provenance(include_report=True):
    """Provenance records of every job of the study's DAG."""
    records = [rules.phantom.output.prov] if config["data"]["source"] == "phantom" else []
    records += [
        rules.cohort.output.prov,
        rules.case_index.output.prov,
        rules.split.output.prov,
        rules.features_real_table.output.prov,
        rules.validation_summary.output.prov,
        rules.evaluation_summary.output.prov,
    ]
    records += expand(rules.preprocess.output.prov, batch=BATCHES)
    records += expand(rules.features_real.output.prov, batch=BATCHES)
    for rule_name in ("train_generator", "sample_synthetic", "features_synthetic"):
        records += expand(getattr(rules, rule_name).output.prov, model=MODELS, fold=FOLDS)
    records += expand(rules.validate.output.prov, arm=VALIDATED_ARMS)
    records += expand(rules.evaluate.output.prov, arm=ARMS)
    if include_report:
        records.append(rules.report.output.prov)
    return records


rule manifest:
    input:
        provenance=study_provenance(),
    output:
        manifest=f"{STUDY}/manifest.json",
    log:
        f"{LOGS}/manifest.log",
    params:
        study_dir=STUDY,
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/manifest.py"
