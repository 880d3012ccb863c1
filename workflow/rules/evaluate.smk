# Stage 7: downstream classifier per arm, trained on fold-train real (+ arm data),
# scored on fold-test real data only.


rule evaluate:
    input:
        real=rules.features_real_table.output.features,
        folds=rules.split.output.folds,
        arm=arm_features,
        invariance=invariance_tables,
        sampling=arm_sampling_records,
    output:
        per_fold=f"{STUDY}/evaluation/per_fold/{{arm}}.csv",
        predictions=f"{STUDY}/evaluation/predictions/{{arm}}.csv",
        prov=f"{PROV}/evaluate/{{arm}}.json",
    log:
        f"{LOGS}/evaluate/{{arm}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("evaluate"),
        positive_class=config["data"]["classes"][1],
        classes=config["data"]["classes"],
        classifier=config["evaluation"]["classifier"],
        target_ratio=config["sampling"]["target_ratio"],
        cap_per_case=config["sampling"]["cap_per_case"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/evaluate.py"


rule evaluation_summary:
    input:
        per_fold=expand(rules.evaluate.output.per_fold, arm=ARMS),
        predictions=expand(rules.evaluate.output.predictions, arm=ARMS),
        arm_verdicts=validation_verdicts,
    output:
        summary=report(
            f"{STUDY}/evaluation/summary.csv",
            caption="../report/evaluation.rst",
            category="Evaluation",
        ),
        prov=f"{PROV}/evaluation_summary.json",
    log:
        f"{LOGS}/evaluation_summary.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("evaluation_summary"),
        arms=ARMS,
        n_bootstrap=config["evaluation"]["bootstrap"],
        alpha=config["evaluation"]["alpha"],
        seed=SEED,
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/evaluation_summary.py"
