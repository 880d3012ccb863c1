# Stage 0: the cohort. Fetches the example data if needed and writes the validated
# cohort table (one row per case, absolute paths, file hashes). Nothing is written
# for a manifest that fails validation.


rule fetch_br35h:
    output:
        index="resources/br35h/index.csv",
        prov="resources/br35h/provenance.json",
    log:
        "resources/logs/fetch_br35h.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("fetch_br35h"),
        wheel_dir="resources/wheels",
    resources:
        mem_mb=1000,
        runtime=20,
    script:
        "../scripts/fetch_br35h.py"


rule phantom:
    output:
        cohort=directory(f"{STUDY}/phantom"),
        prov=f"{PROV}/phantom.json",
    log:
        f"{LOGS}/phantom.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("phantom"),
        options=config["data"]["phantom"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/phantom.py"


rule cohort:
    input:
        unpack(cohort_inputs),
    output:
        cohort=f"{STUDY}/cohort/cohort.csv",
        prov=f"{PROV}/cohort.json",
    log:
        f"{LOGS}/cohort.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("cohort"),
        data=config["data"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/cohort.py"
