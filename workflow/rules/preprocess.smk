# Stage 1: preprocess real cases into patches, in batches (not one job per case).


rule preprocess:
    input:
        cohort=rules.cohort.output.cohort,
    output:
        patches=f"{STUDY}/cases/batch_{{batch}}.npz",
        table=f"{STUDY}/cases/batch_{{batch}}.csv",
        prov=f"{PROV}/preprocess/batch_{{batch}}.json",
    log:
        f"{LOGS}/preprocess/batch_{{batch}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("preprocess"),
        n_batches=len(BATCHES),
        options=config["preprocess"],
        mask_label=config["data"]["mask_label"],
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/preprocess.py"


rule case_index:
    input:
        tables=expand(rules.preprocess.output.table, batch=BATCHES),
    output:
        index=f"{STUDY}/cases/index.csv",
        prov=f"{PROV}/case_index.json",
    log:
        f"{LOGS}/case_index.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("case_index"),
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/case_index.py"
