# Stage 2: patient-grouped, stratified folds; near-duplicates grouped.


rule split:
    input:
        index=rules.case_index.output.index,
    output:
        folds=report(
            f"{STUDY}/splits/folds.csv",
            caption="../report/folds.rst",
            category="Split",
        ),
        duplicates=f"{STUDY}/splits/duplicates.csv",
        prov=f"{PROV}/split.json",
    log:
        f"{LOGS}/split.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("split"),
        options=config["split"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/split.py"
