# Stage 8: the standalone HTML study report.


rule report:
    input:
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
        validation=rules.validation_summary.output.summary,
        validation_ks=validation_details("ks"),
        validation_correlation=validation_details("correlation"),
        validation_dcr=validation_details("dcr"),
        evaluation=rules.evaluation_summary.output.summary,
        predictions=expand(rules.evaluate.output.predictions, arm=ARMS),
        losses=expand(rules.train_generator.output.losses, model=MODELS, fold=FOLDS),
        samples=expand(rules.sample_synthetic.output.samples, model=MODELS, fold=FOLDS[:1]),
        sample_tables=expand(rules.sample_synthetic.output.table, model=MODELS, fold=FOLDS),
        failures=expand(rules.features_synthetic.output.failures, model=MODELS, fold=FOLDS),
        provenance=lambda wc: study_provenance(include_report=False),
    output:
        html=report(
            f"{STUDY}/report.html",
            caption="../report/report.rst",
            category="Report",
        ),
        prov=f"{PROV}/report.json",
    log:
        f"{LOGS}/report.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("report"),
        config=config,
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/report.py"
