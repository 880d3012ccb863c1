# Stage 6: validation of each arm that adds data, per fold and class, against
# real-vs-real baselines from two halves of the fold's real training cases
# (distribution, correlation structure, Frechet, PRDC coverage, detection AUC,
# memorization in feature and image space, label consistency, plausibility),
# plus control arms that every gate must pass (held-out real) or fail (noise,
# copies, other-class copies, voxel-shuffled real cases), scored one job per fold
# (validate_controls_fold) and joined by validate_controls. The per-arm verdicts
# (arm_verdicts.csv) tell evaluation and report which arms failed, and which could not
# generate (a generator short of a quota in some fold: synthetic/<model>/sampling/). Each validate
# job also writes details/<arm>/ks.csv, correlation.npz, dcr.csv (per-feature KS
# tests, correlation differences, distances to the closest training row) for the
# report's KS heat map, correlation-difference maps and DCR histograms.


rule validate:
    input:
        unpack(arm_samples),
        real=rules.features_real_table.output.features,
        folds=rules.split.output.folds,
        index=rules.case_index.output.index,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
        arm=arm_features,
        sampling=arm_sampling_records,
        # the control jobs' split nulls and power per cell: an arm's cells are theirs (same real rows and
        # sizes), found there instead of computed again (radaug.validate.summary.shared_split_nulls)
        split_nulls=control_split_nulls,
    output:
        table=f"{STUDY}/validation/arms/{{arm}}.csv",
        ks=f"{STUDY}/validation/details/{{arm}}/ks.csv",
        correlation=f"{STUDY}/validation/details/{{arm}}/correlation.npz",
        dcr=f"{STUDY}/validation/details/{{arm}}/dcr.csv",
        prov=f"{PROV}/validate/{{arm}}.json",
    log:
        f"{LOGS}/validate/{{arm}}.log",
    conda:
        "../../envs/radaug.yaml"
    # the null draws run on forked workers of the job's threads (radaug.parallel; the same values on any
    # number), the arms of a last partial round sharing the cores (validation_threads; one thread on a
    # cluster run without --cores). mem_mb holds up to 4 workers: a Br35H control fold peaked at 445 MiB
    # in the caller and 321 MiB (resident, much of it shared) in a worker.
    threads: lambda wildcards: validation_threads(VALIDATED_ARMS.index(wildcards.arm), len(VALIDATED_ARMS))
    params:
        code=code("validate"),
        options=config["validation"],
        target_ratio=config["sampling"]["target_ratio"],
        cap_per_case=config["sampling"]["cap_per_case"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/validate.py"


rule validate_controls_fold:
    # The control arms of one fold: their work spreads over the cores (one job per fold
    # instead of one for the study, which ran alone for minutes at the end of small
    # studies). Per fold, not per control arm: the null rule's real-vs-real split null and power
    # of a cell are shared by its control arms in one process and written to split_nulls.npz, where
    # every validate job finds its cells' (radaug.validate.summary.shared_split_nulls).
    # Correlation differences stay float64 here; validate_controls averages them.
    input:
        real=rules.features_real_table.output.features,
        folds=rules.split.output.folds,
        index=rules.case_index.output.index,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
        shuffled=expand(rules.features_shuffled_control.output.features, batch=BATCHES),
    output:
        table=f"{STUDY}/validation/controls/{{fold}}/summary.csv",
        ks=f"{STUDY}/validation/controls/{{fold}}/ks.csv",
        correlation=f"{STUDY}/validation/controls/{{fold}}/correlation.npz",
        dcr=f"{STUDY}/validation/controls/{{fold}}/dcr.csv",
        split_nulls=f"{STUDY}/validation/controls/{{fold}}/split_nulls.npz",
        prov=f"{PROV}/validate_controls_fold/{{fold}}.json",
    log:
        f"{LOGS}/validate_controls_fold/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    # Started as soon as the real features are ready: every validate job waits for all of
    # them (split_nulls), and one left for the end ran alone for a minute of the default study.
    priority: 10
    threads: lambda wildcards: validation_threads(FOLDS.index(wildcards.fold), len(FOLDS))  # as in validate
    params:
        code=code("validate_controls_fold"),
        options=config["validation"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/validate_controls_fold.py"


rule validate_controls:
    # The per-fold control tables joined in fold order: byte for byte what one job over
    # every fold writes (radaug.io.concat_csv_text, radaug.validate.details.fold_means).
    input:
        table=expand(rules.validate_controls_fold.output.table, fold=FOLDS),
        ks=expand(rules.validate_controls_fold.output.ks, fold=FOLDS),
        correlation=expand(rules.validate_controls_fold.output.correlation, fold=FOLDS),
        dcr=expand(rules.validate_controls_fold.output.dcr, fold=FOLDS),
    output:
        table=f"{STUDY}/validation/arms/controls.csv",
        ks=f"{STUDY}/validation/details/controls/ks.csv",
        correlation=f"{STUDY}/validation/details/controls/correlation.npz",
        dcr=f"{STUDY}/validation/details/controls/dcr.csv",
        prov=f"{PROV}/validate_controls.json",
    log:
        f"{LOGS}/validate_controls.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("validate_controls"),
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/validate_controls.py"


rule validation_summary:
    input:
        tables=validation_tables,
        sampling=sampling_records,
    output:
        summary=report(
            f"{STUDY}/validation/summary.csv",
            caption="../report/validation.rst",
            category="Validation",
        ),
        arm_verdicts=f"{STUDY}/validation/arm_verdicts.csv",
        prov=f"{PROV}/validation_summary.json",
    log:
        f"{LOGS}/validation_summary.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("validation_summary"),
        evaluate_failing_arms=config["validation"]["evaluate_failing_arms"],
        level=config["validation"]["level"],
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/validation_summary.py"
