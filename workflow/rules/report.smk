# Stage 8: the standalone HTML study report. The validation and generators sections
# are rendered by jobs of their own, so a change to the classifier (or anything else
# downstream of validation) only redraws the evaluation figures and reassembles the page.


rule report_validation:
    input:
        index=rules.case_index.output.index,
        validation=rules.validation_summary.output.summary,
        validation_ks=validation_details("ks"),
        validation_correlation=validation_details("correlation"),
        validation_dcr=validation_details("dcr"),
    output:
        html=f"{STUDY}/report/validation.html",
        prov=f"{PROV}/report_validation.json",
    log:
        f"{LOGS}/report_validation.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("report_validation"),
        classes=config["data"]["classes"],
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/report_validation.py"


rule report_generators:
    input:
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
        # per (model, fold) of params.runs / params.selection_runs, in that order
        losses=per_run(rules.train_generator.output.losses, GENERATOR_RUNS),
        selection=per_run(rules.train_generator.output.selection, SELECTION_RUNS) if SELECTION else [],
        # the first fold's samples and their tables, per arm of params.shown, in that order
        samples=expand(rules.sample_synthetic.output.samples, model=MODELS, fold=FOLDS[:1]),
        shown_tables=expand(rules.sample_synthetic.output.table, model=MODELS, fold=FOLDS[:1]),
        augmented=expand(rules.augment_classical.output.samples, fold=FOLDS[:1]) if CLASSICAL_USED else [],
        augmented_tables=expand(rules.augment_classical.output.table, fold=FOLDS[:1]) if CLASSICAL_USED else [],
        sample_tables=expand(rules.sample_synthetic.output.table, model=MODELS, fold=FOLDS),
        sampling=sampling_records,
    output:
        html=f"{STUDY}/report/generators.html",
        prov=f"{PROV}/report_generators.json",
    log:
        f"{LOGS}/report_generators.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("report_generators"),
        classes=config["data"]["classes"],
        runs=GENERATOR_RUNS,
        selection_runs=SELECTION_RUNS if SELECTION else [],
        shown=[*MODELS, *([CLASSICAL_ARM] if CLASSICAL_USED else [])],
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/report_generators.py"


rule report:
    input:
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        duplicates=rules.split.output.duplicates,
        evaluation=rules.evaluation_summary.output.summary,
        validation=rules.validation_summary.output.summary,
        arm_verdicts=rules.validation_summary.output.arm_verdicts,
        predictions=expand(rules.evaluate.output.predictions, arm=ARMS),
        per_fold=expand(rules.evaluate.output.per_fold, arm=ARMS),
        failures=expand(rules.features_synthetic.output.failures, model=MODELS, fold=FOLDS),
        validation_html=rules.report_validation.output.html,
        generators_html=rules.report_generators.output.html,
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
