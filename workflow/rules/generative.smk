# Stage 3-4: train each generative model on each fold's training cases only, then
# sample synthetic cases with rebalancing quotas; a generator that cannot fill a quota
# records the shortfall (sampling.on_shortfall: record) or stops the study (stop). Training resumes from its last
# checkpoint when a killed job is rerun.

rule train_generator:
    input:
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),
    output:
        checkpoint=f"{STUDY}/models/{{model}}/{{fold}}/checkpoint.pt",
        losses=f"{STUDY}/models/{{model}}/{{fold}}/losses.csv",
        losses_plot=f"{STUDY}/models/{{model}}/{{fold}}/losses.png",
        training_input=f"{STUDY}/models/{{model}}/{{fold}}/training_input.csv",
        prov=f"{PROV}/train_generator/{{model}}/{{fold}}.json",
        # the selection curve (step, metric values), with generative.selection.enabled only
        **({"selection": f"{STUDY}/models/{{model}}/{{fold}}/selection.csv"} if SELECTION else {}),
    log:
        f"{LOGS}/train_generator/{{model}}/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("train_generator"),
        classes=config["data"]["classes"],
        training=generative_training_options(),
        hyperparams=lambda wc: config["generative"][wc.model],
        conditioning=lambda wc: model_conditioning(config["generative"], wc.model),
        seed=SEED,
    threads: config["generative"]["threads"]
    resources:
        mem_mb=config["generative"]["mem_mb"],
        runtime=config["generative"]["runtime"],
        # One GPU per training job when the config asks for CUDA (placed by the SLURM profile).
        gpu=1 if config["generative"]["device"].startswith("cuda") else 0,
    script:
        "../scripts/train_generator.py"


rule sample_synthetic:
    input:
        checkpoint=rules.train_generator.output.checkpoint,
        index=rules.case_index.output.index,
        folds=rules.split.output.folds,
        patches=expand(rules.preprocess.output.patches, batch=BATCHES),  # parents: translation, shape model
    output:
        samples=f"{STUDY}/synthetic/{{model}}/{{fold}}.npz",
        table=f"{STUDY}/synthetic/{{model}}/{{fold}}.csv",
        # per class: requested, accepted, drawn, rejected per reason (radaug.sampling.SAMPLING_COLUMNS)
        sampling=f"{STUDY}/synthetic/{{model}}/sampling/{{fold}}.csv",
        prov=f"{PROV}/sample_synthetic/{{model}}/{{fold}}.json",
    log:
        f"{LOGS}/sample_synthetic/{{model}}/{{fold}}.log",
    conda:
        "../../envs/radaug.yaml"
    params:
        code=code("sample_synthetic"),
        classes=config["data"]["classes"],
        sampling=config["sampling"],
        training=generative_training_options(),
        # masks of mask-conditioned models: the fold's shape model and the classical arm's spatial bounds
        shape_model=config["generative"]["shape_model"],
        augmentation=config["augmentation"],
        seed=SEED,
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../scripts/sample_synthetic.py"
