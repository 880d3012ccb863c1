# radaug: a radiomics data-augmentation study as one Snakemake workflow.
# Stages (one rule file each): cohort -> preprocess -> split -> generative ->
# features -> validate -> evaluate -> report -> provenance (-> publish, on request). See README.md.

# The default study, unless a study config is given with --configfile: study configs
# replace it rather than merge into it, so no study inherits another's keys.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/generative.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/invariance.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/provenance.smk"
include: "workflow/rules/publish.smk"


rule all:
    default_target: True
    input:
        f"{STUDY}/report.html",
        f"{STUDY}/manifest.json",
