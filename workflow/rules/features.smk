# Stage 5: PyRadiomics features. Real cases once per study (in batches), synthetic
# sets per fold and model; the voxel-shuffled negative control of every real case once
# per study (in the same batches), when validation.controls is on. With per-fold
# histogram standardisation (preprocess.normalisation: nyul) real cases and their
# shuffled control are measured once per fold (standardisation_inputs).


rule features_real:
    input:
        unpack(standardisation_inputs),
        patches=rules.preprocess.output.patches,
        table=rules.preprocess.output.table,
        params_file=RADIOMICS_PARAMS,
    output:
        features=f"{STUDY}/features/real/batch_{{batch}}.csv",
        failures=f"{STUDY}/features/real/batch_{{batch}}.failures.csv",
        prov=f"{PROV}/features_real/batch_{{batch}}.json",
    log:
        f"{LOGS}/features_real/batch_{{batch}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("features_real"),
        max_failed=0,
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/features_real.py"


rule features_real_table:
    input:
        features=expand(rules.features_real.output.features, batch=BATCHES),
    output:
        features=f"{STUDY}/features/real.csv",
        prov=f"{PROV}/features_real_table.json",
    log:
        f"{LOGS}/features_real_table.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("concat_tables"),
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/concat_tables.py"


rule features_shuffled_control:
    input:
        unpack(standardisation_inputs),
        patches=rules.preprocess.output.patches,
        table=rules.preprocess.output.table,
        params_file=RADIOMICS_PARAMS,
    output:
        features=f"{STUDY}/features/shuffled_control/batch_{{batch}}.csv",
        failures=f"{STUDY}/features/shuffled_control/batch_{{batch}}.failures.csv",
        prov=f"{PROV}/features_shuffled_control/batch_{{batch}}.json",
    log:
        f"{LOGS}/features_shuffled_control/batch_{{batch}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("features_shuffled_control"),
        max_failed=0,
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/features_shuffled_control.py"


rule features_synthetic:
    input:
        samples=rules.sample_synthetic.output.samples,
        table=rules.sample_synthetic.output.table,
        index=rules.case_index.output.index,
        params_file=RADIOMICS_PARAMS,
    output:
        features=f"{STUDY}/features/{{model}}/{{fold}}.csv",
        failures=f"{STUDY}/features/{{model}}/{{fold}}.failures.csv",
        prov=f"{PROV}/features_synthetic/{{model}}/{{fold}}.json",
    log:
        f"{LOGS}/features_synthetic/{{model}}/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("features_synthetic"),
        max_failed=config["study"]["max_failed_samples"],
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/features_synthetic.py"
