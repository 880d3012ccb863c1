# Robustness of features (Zwanenburg et al. 2019): every real case is perturbed n times
# (sub-voxel translation, ROI growth/shrinkage, contour randomisation, noise) once per
# study, in batches; per fold, ICCs are computed from the fold's training cases only.
# Runs when perturbation.enabled is true.


rule perturb_features:
    input:
        unpack(standardisation_inputs),
        patches=rules.preprocess.output.patches,
        table=rules.preprocess.output.table,
        params_file=RADIOMICS_PARAMS,
    output:
        features=f"{STUDY}/invariance/perturbed/batch_{{batch}}.csv",
        failures=f"{STUDY}/invariance/perturbed/batch_{{batch}}.failures.csv",
        prov=f"{PROV}/perturb_features/batch_{{batch}}.json",
    log:
        f"{LOGS}/perturb_features/batch_{{batch}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("perturb_features"),
        options=config["perturbation"],
        max_failed=config["study"]["max_failed_samples"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/perturb_features.py"


rule invariance:
    input:
        perturbed=expand(rules.perturb_features.output.features, batch=BATCHES),
        folds=rules.split.output.folds,
    output:
        table=f"{STUDY}/invariance/{{fold}}.csv",
        prov=f"{PROV}/invariance/{{fold}}.json",
    log:
        f"{LOGS}/invariance/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("invariance"),
        icc=config["perturbation"]["icc"],
        threshold=config["perturbation"]["threshold"],
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/invariance.py"
