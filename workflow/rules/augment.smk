# Stage 3b: the classical arm. Per fold, the fold's training cases are augmented with
# physically plausible transforms (radaug.augment) up to the same rebalancing quotas as
# the generative arms; every sample records its parent case, seed and transform chain.


rule augment_classical:
    input:
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
    output:
        samples=f"{STUDY}/augmented/classical/{{fold}}.npz",
        table=f"{STUDY}/augmented/classical/{{fold}}.csv",
        prov=f"{PROV}/augment_classical/{{fold}}.json",
    log:
        f"{LOGS}/augment_classical/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("augment_classical"),
        options=config["augmentation"],
        sampling=config["sampling"],
        classes=config["data"]["classes"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/augment_classical.py"


rule features_classical:
    input:
        samples=rules.augment_classical.output.samples,
        table=rules.augment_classical.output.table,
        index=rules.case_index.output.index,
        params_file=RADIOMICS_PARAMS,
    output:
        features=f"{STUDY}/features/classical/{{fold}}.csv",
        failures=f"{STUDY}/features/classical/{{fold}}.failures.csv",
        prov=f"{PROV}/features_classical/{{fold}}.json",
    log:
        f"{LOGS}/features_classical/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("features_classical"),
        max_failed=config["study"]["max_failed_samples"],
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/features_classical.py"
