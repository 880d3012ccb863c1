# Stage 9: the study manifest (every artifact with sha256 and its job record).
# `make verify STUDY=<name>` (radaug verify) re-hashes a study against it.


rule manifest:
    input:
        provenance=study_provenance(),
    output:
        manifest=f"{STUDY}/manifest.json",
    log:
        f"{LOGS}/manifest.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("manifest"),
        study_dir=lambda wildcards, output: Path(output.manifest).parent,
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/manifest.py"
