# Stage 6: validation of each arm that adds data, per fold and class, against
# real-vs-real baselines (distribution, correlation structure, Frechet distance,
# memorization). The oversample arm copies training cases: a negative control
# whose memorization verdict must fail.


rule validate:
    input:
        real=rules.features_real_table.output.features,
        folds=rules.split.output.folds,
        arm=arm_features,
    output:
        table=f"{STUDY}/validation/arms/{{arm}}.csv",
        prov=f"{PROV}/validate/{{arm}}.json",
    log:
        f"{LOGS}/validate/{{arm}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("validate"),
        options=config["validation"],
        target_ratio=config["sampling"]["target_ratio"],
        cap_per_case=config["sampling"]["cap_per_case"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/validate.py"


rule validation_summary:
    input:
        tables=expand(rules.validate.output.table, arm=VALIDATED_ARMS),
    output:
        summary=report(
            f"{STUDY}/validation/summary.csv",
            caption="../report/validation.rst",
            category="Validation",
        ),
        prov=f"{PROV}/validation_summary.json",
    log:
        f"{LOGS}/validation_summary.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("concat_tables"),
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"
