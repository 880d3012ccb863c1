# Configuration (validated once, at workflow start), paths and helpers shared by all rules.
import re
import sys
from pathlib import Path

from radaug.arms import CLASSICAL_ARM, REFERENCE_ARM, arm_components, data_components, generator_components
from radaug.config import TRANSLATORS, model_conditioning, resolve_params_file, validate_config
from radaug.errors import RadaugError
from radaug.manifest import read_manifest_table
from radaug.parallel import share_of_cores
from radaug.provenance import code_version
from radaug.splits import fold_key

try:
    _validated = validate_config(config, base_dir=".")
    RADIOMICS_PARAMS = str(resolve_params_file(_validated, Path(workflow.basedir) / "workflow"))
except RadaugError as _exc:
    sys.stderr.write(f"radaug: invalid configuration:\n{_exc}\n")
    sys.exit(1)
config.clear()
config.update(_validated)

STUDY = f"results/{config['study']['name']}"
LOGS = f"{STUDY}/logs"
PROV = f"{STUDY}/provenance"
SEED = config["study"]["seed"]
BATCHES = list(range(config["preprocess"]["batches"]))
FOLDS = [
    fold_key(r, k)
    for r in range(config["split"]["repeats"])
    for k in range(config["split"]["folds"])
]
MODELS = config["generative"]["models"]
ARMS = config["evaluation"]["arms"]
VALIDATED_ARMS = [a for a in ARMS if a != REFERENCE_ARM]  # oversample: the copying negative control
CLASSICAL_USED = any(CLASSICAL_ARM in arm_components(arm) for arm in ARMS)  # alone or in a combined arm


wildcard_constraints:
    batch=r"\d+",
    fold=r"r\d+f\d+",
    model="|".join(MODELS) or "none",
    arm="|".join(map(re.escape, ARMS)),


def validation_threads(index, jobs):
    """Threads for validation job ``index`` of ``jobs`` jobs of about equal cost (control folds, arms):
    their null draws run on forked workers of the job's threads (radaug.parallel), and the jobs of a
    last partial round share the run's cores (radaug.parallel.share_of_cores: three control folds on
    two cores get 1, 1, 2). Under ``validation.rule: factor`` (no null draws; a control fold of the
    101-case study is 2 s) one thread: there forking cost 1.5x the job's CPU and a 2-thread job
    waited for both cores (the study took 1.14x as long). Without --cores (a cluster executor)
    the core count is unknown (``workflow.cores`` would raise): one thread, as before.
    """
    if config["validation"]["rule"] != "null":
        return 1
    return share_of_cores(index, jobs, workflow.resource_settings.cores)


def code(name):
    """Version of a script and the radaug code it imports: a params entry, so library changes rerun the rule."""
    return code_version(Path(workflow.basedir) / "workflow" / "scripts" / f"{name}.py")


def cohort_inputs(wildcards):
    source = config["data"]["source"]
    if source == "br35h":
        return {"br35h_index": rules.fetch_br35h.output.index}
    if source == "phantom":
        return {"phantom": rules.phantom.output.cohort}
    return {"manifest": config["data"]["manifest"], "images": manifest_files(config["data"]["manifest"])}


def manifest_files(manifest):
    """Existing image and mask paths of a user manifest: inputs, so a changed image reruns the study.

    Missing files are left out here; the cohort job reports them, naming the case.
    """
    table = read_manifest_table(manifest)
    paths = (Path(manifest).parent / p for p in [*table["image"], *table["mask"]] if p)
    return sorted({str(p) for p in paths if p.exists()})


def standardisation_inputs(wildcards):
    """Case index and folds for jobs that measure every real case, only with per-fold histogram
    standardisation (preprocess.normalisation: nyul, radaug.standardise): other studies' real
    features do not depend on the split and are extracted before it."""
    if config["preprocess"]["normalisation"] == "nyul":
        return {"index": rules.case_index.output.index, "folds": rules.split.output.folds}
    return {}


def arm_features(wildcards):
    """Feature tables of an arm's file-backed parts (generators, classical), all folds; [] for built-ins.

    A combined arm (``classical+cvae``) gets the union of its parts' tables. Which parts are
    file-backed is radaug.arms' vocabulary (data_components); the paths are this workflow's.
    """
    parts = data_components(wildcards.arm)
    return [path for p in parts for path in expand(f"{STUDY}/features/{p}/{{fold}}.csv", fold=FOLDS)]


def arm_sampling_records(wildcards):
    """Sampling records (every fold) of an arm's generators: whether the arm could generate (radaug.sampling)."""
    models = generator_components(wildcards.arm)
    return expand(f"{STUDY}/synthetic/{{model}}/sampling/{{fold}}.csv", model=models, fold=FOLDS)


def sampling_records(wildcards):
    """Sampling records of every generator and fold."""
    return expand(f"{STUDY}/synthetic/{{model}}/sampling/{{fold}}.csv", model=MODELS, fold=FOLDS)


def invariance_tables(wildcards):
    """Per-fold invariance tables: an input of evaluation only when it uses the robust feature set."""
    if config["evaluation"]["classifier"]["robust_features"]:
        return expand(f"{STUDY}/invariance/{{fold}}.csv", fold=FOLDS)
    return []


def study_provenance(include_report=True):
    """Provenance records of every job of the study's DAG."""
    records = [rules.phantom.output.prov] if config["data"]["source"] == "phantom" else []
    records += [
        rules.cohort.output.prov,
        rules.case_index.output.prov,
        rules.split.output.prov,
        rules.features_real_table.output.prov,
        rules.validation_summary.output.prov,
        rules.evaluation_summary.output.prov,
    ]
    records += expand(rules.preprocess.output.prov, batch=BATCHES)
    records += expand(rules.features_real.output.prov, batch=BATCHES)
    for rule_name in ("train_generator", "sample_synthetic", "features_synthetic"):
        records += expand(getattr(rules, rule_name).output.prov, model=MODELS, fold=FOLDS)
    if CLASSICAL_USED:
        records += expand(rules.augment_classical.output.prov, fold=FOLDS)
        records += expand(rules.features_classical.output.prov, fold=FOLDS)
    if config["perturbation"]["enabled"]:
        records += expand(rules.perturb_features.output.prov, batch=BATCHES)
        records += expand(rules.invariance.output.prov, fold=FOLDS)
    records += expand(rules.validate.output.prov, arm=VALIDATED_ARMS)
    if config["validation"]["controls"]:
        records += expand(rules.validate_controls_fold.output.prov, fold=FOLDS)
        records.append(rules.validate_controls.output.prov)
        records += expand(rules.features_shuffled_control.output.prov, batch=BATCHES)
    records += expand(rules.evaluate.output.prov, arm=ARMS)
    records += [rules.report_validation.output.prov, rules.report_generators.output.prov]
    if include_report:
        records.append(rules.report.output.prov)
    return records


# The generative options that change what training computes (not scheduler resources).
GENERATIVE_TRAINING_KEYS = ("device", "steps", "batch_size", "checkpoint_every", "log_every", "threads")


# In-fold model selection (generative.selection): each generator also writes its selection curve
# (a translator, radaug.config.TRANSLATORS, is not selected: its curve is empty).
SELECTION = config["generative"]["selection"]["enabled"]
SELECTION_MODELS = [m for m in MODELS if m not in TRANSLATORS]
# (model, fold) of every trained generator, and of those with a selection curve, in the order of
# the input lists made from them by per_run: a script pairs a path with its run, never parses it.
GENERATOR_RUNS = [(m, f) for m in MODELS for f in FOLDS]
SELECTION_RUNS = [(m, f) for m in SELECTION_MODELS for f in FOLDS]


def per_run(pattern, runs):
    """``pattern`` (with ``{model}`` and ``{fold}``) for each (model, fold) of ``runs``, in order."""
    return expand(pattern, zip, model=[m for m, _ in runs], fold=[f for _, f in runs])


def generative_training_options():
    options = {key: config["generative"][key] for key in GENERATIVE_TRAINING_KEYS}
    if SELECTION:  # only when on: a study without selection keeps its generator-config hashes
        options["selection"] = config["generative"]["selection"]
    return options


def arm_samples(wildcards):
    """Patch archives and tables of an arm's generated or augmented parts (image-space checks)."""
    samples, tables = [], []
    if config["validation"]["image_checks"]:
        for part in data_components(wildcards.arm):
            folder = "augmented/classical" if part == CLASSICAL_ARM else f"synthetic/{part}"
            samples += expand(f"{STUDY}/{folder}/{{fold}}.npz", fold=FOLDS)
            tables += expand(f"{STUDY}/{folder}/{{fold}}.csv", fold=FOLDS)
    return {"samples": samples, "sample_tables": tables}


def validation_tables(wildcards):
    tables = expand(rules.validate.output.table, arm=VALIDATED_ARMS)
    if config["validation"]["controls"]:
        tables.append(rules.validate_controls.output.table)
    return tables


def control_split_nulls(wildcards):
    """Input function: the control jobs' split nulls and power (null rule only), which the validate jobs share."""
    if config["validation"]["controls"] and config["validation"]["rule"] == "null":
        return expand(rules.validate_controls_fold.output.split_nulls, fold=FOLDS)
    return []


def validation_details(kind):
    """Input function: the ``kind`` detail tables (ks, correlation, dcr) of every validate job."""

    def tables(wildcards):
        paths = expand(getattr(rules.validate.output, kind), arm=VALIDATED_ARMS)
        if config["validation"]["controls"]:
            paths.append(getattr(rules.validate_controls.output, kind))
        return paths

    return tables


def validation_verdicts(wildcards):
    """Per-arm validation verdicts (flag or leave out failing arms); none when no arm is validated."""
    return rules.validation_summary.output.arm_verdicts if VALIDATED_ARMS else []
