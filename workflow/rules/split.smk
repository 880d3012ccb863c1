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
    # the window rule's verification runs on the job's threads (same folds on any number); the split
    # is the DAG's narrow waist, so nothing else is ready to use the cores meanwhile. Snakemake caps
    # threads at --cores on a workstation; on SLURM this is the index group's cpus-per-task.
    threads: 4
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/split.py"
