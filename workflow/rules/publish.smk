# Stage 10: the publishable bundle, an RO-Crate zip of the finished study
# (`make publish CONFIG=...`). It is built from the manifest, so it is not listed in
# it: it carries its own sha256 list (ro-crate-metadata.json), and its job record
# lives in publish/. `radaug verify` accepts the unpacked bundle in any folder.


rule publish:
    input:
        manifest=rules.manifest.output.manifest,
        report=rules.report.output.html,
    output:
        bundle=f"{STUDY}/bundle.zip",
        prov=f"{STUDY}/publish/provenance.json",
    log:
        f"{LOGS}/publish.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("publish"),
        config=config,
        include_intermediates=config["publish"]["include_intermediates"],
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/publish.py"
