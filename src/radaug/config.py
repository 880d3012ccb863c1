"""Study configuration: JSON-Schema validation with defaults, and semantic checks.

``load_config`` is what the Snakefile calls at workflow start: a config that fails
stops the run before any job, with a message naming the key and the fix.
"""

from __future__ import annotations

import copy
import functools
import math
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .data import SOURCE_MODALITIES
from .errors import ConfigError

if TYPE_CHECKING:
    import jsonschema

SCHEMA_FILE = "config.schema.yaml"

TRANSLATORS = ("cyclegan",)
"""Names of the generators that translate between domains instead of sampling a class
(:data:`radaug.generative.TRANSLATION_MODELS`, the Translator protocol). Named here so the
config checks and the workflow's parse need not import torch; ``tests/unit/
test_generative_conformance.py`` checks that the two agree."""


def model_conditioning(generative: dict, model: str) -> str:
    """``generative.conditioning`` of one model: its ``generative.model_conditioning`` entry, else the study's."""
    return generative.get("model_conditioning", {}).get(model, generative["conditioning"])


def schema() -> dict:
    text = resources.files("radaug.schemas").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@functools.cache
def _validator_class():
    """The schema validator that fills defaults; jsonschema is imported here, on first
    validation, not by every job that imports this module for a constant."""
    import jsonschema

    return _fill_defaults(jsonschema.Draft202012Validator)


def _fill_defaults(validator_class):
    """Extend a validator so it fills ``default`` values while validating (jsonschema FAQ recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    import jsonschema

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _schema_error_message(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        hint = f" Allowed keys: {', '.join(allowed)}." if allowed else ""
        return f"unknown config key(s) {', '.join(map(repr, extra))} {where}: remove or correct them.{hint}"
    if error.validator == "required":
        return f"config key '{key}' is missing a required entry: {error.message}; add it (see config/README.md)."
    desc = error.schema.get("description")
    hint = f" ({desc})" if desc else ""
    return f"config key '{key}': {error.message}.{hint} Correct the value (allowed values: config/README.md)."


def validate_config(config: dict, *, base_dir: str | Path = ".") -> dict:
    """Validate a study config, fill defaults and run semantic checks.

    Parameters
    ----------
    config
        The parsed YAML (left unchanged; a completed copy is returned).
    base_dir
        Folder against which relative paths in the config (manifest, params) resolve.

    Returns
    -------
    dict
        The config with every default filled in.

    Raises
    ------
    ConfigError
        Naming the offending key and the fix.
    """
    config = copy.deepcopy(config) if config is not None else {}
    errors = sorted(_validator_class()(schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("\n".join(_schema_error_message(e) for e in errors))
    _check_semantics(config, Path(base_dir))
    return _sorted_keys(config)


def _sorted_keys(node):
    """The config with mapping keys sorted at every level (lists keep their order).

    Snakemake compares rule params order-sensitively; sorting makes a reordering of
    keys in a config file rerun nothing.
    """
    if isinstance(node, dict):
        return {k: _sorted_keys(node[k]) for k in sorted(node)}
    if isinstance(node, list):
        return [_sorted_keys(v) for v in node]
    return node


def load_config(path: str | Path, *, base_dir: str | Path = ".") -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: check the --configfile path.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 (byte {exc.start}): save it as UTF-8.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}\nFix the syntax at the line shown.") from None
    return validate_config(raw, base_dir=base_dir)


def _check_split(split: dict) -> None:
    """The window rule's radius must reach beyond the plain hash rule's, or be off."""
    verify, plain = split["verify_bits"], split["near_duplicate_bits"]
    if 0 < verify <= plain:
        raise ConfigError(
            f"config key 'split.verify_bits' = {verify} is not above 'split.near_duplicate_bits' = {plain}: "
            "the window rule would only re-check pairs already grouped. Set it above, or to 0 to turn it off."
        )


def _check_semantics(config: dict, base_dir: Path) -> None:
    data, classes = config["data"], config["data"]["classes"]
    models = config["generative"]["models"]
    from .arms import check_arms  # here: the arms' module loads pandas, which the config's constants do not need

    check_arms(config["evaluation"]["arms"], models)

    source = data["source"]
    if source in ("br35h", "phantom"):
        key = "n_per_class" if source == "br35h" else "n_patients"
        counts = data[source][key]
        if sorted(counts) != sorted(classes):
            raise ConfigError(
                f"config key 'data.{source}.{key}' has classes {sorted(counts)} but 'data.classes' is {classes}: "
                "use the same class names in both."
            )
        patients = dict(counts)
    else:
        patients = _manifest_patients_per_class(data, classes, base_dir)

    _check_preprocess(config)
    if source == "phantom" and config["preprocess"]["patch_mode"] == "crop":
        if max(_patch_sizes(config["preprocess"]["patch_size"])) > data["phantom"]["size"]:
            raise ConfigError(
                "config key 'preprocess.patch_size' is larger than 'data.phantom.size': "
                "choose a patch no larger than the phantom field of view."
            )

    if "cyclegan" in models:
        _check_cyclegan_domains(config, base_dir)
    if "ddpm" in models:
        _check_ddpm(config["generative"]["ddpm"])
    _check_shape_model(config)

    _check_split(config["split"])
    folds = config["split"]["folds"]
    for name, n in patients.items():
        if n < 2:
            raise ConfigError(
                f"config key 'split.folds' = {folds} is impossible: class '{name}' has only {n} patient(s), and "
                "cross-validation needs at least 2 folds (the schema's minimum), each testing at least one patient "
                f"of every class. Add patients so that class '{name}' has at least {folds} (at least 2 for "
                "split.folds: 2), or leave the class out of data.classes."
            )
        if n < folds:
            raise ConfigError(
                f"config key 'split.folds' = {folds} is impossible: class '{name}' has only {n} patient(s), "
                f"and every test fold needs at least one patient of each class. Use at most {n} folds "
                "or add patients."
            )

    from .validate.thresholds import merge_thresholds

    merge_thresholds(config["validation"]["thresholds"])  # raises ConfigError naming the metric and key

    modality = study_modality(config)
    if modality is not None:  # else the manifest decides, and the augment job checks (same message)
        from .augment.classical import photometric_settings

        photometric_settings(config["augmentation"]["photometric"], modality)  # names the invalid key

    _check_data_root(data, base_dir)
    _check_params_file(config["features"]["params"], base_dir)


def _patch_sizes(patch_size) -> list[int]:
    return [patch_size] if isinstance(patch_size, int) else list(patch_size)


def _check_preprocess(config: dict) -> None:
    """Patch sizes the generators can use, ordered ranges, patches that fit in memory."""
    pre = config["preprocess"]
    sizes = _patch_sizes(pre["patch_size"])
    models = config["generative"]["models"]
    cubic_power_of_two = len(set(sizes)) == 1 and sizes[0] >= 16 and not sizes[0] & (sizes[0] - 1)
    if models and not cubic_power_of_two:
        raise ConfigError(
            f"config key 'preprocess.patch_size' = {pre['patch_size']}: the generators {models} need a square or "
            "cubic patch whose side is a power of two of at least 16 (16, 32, 64, 128): use such a size, or "
            "remove the generators ('generative.models: []' and their arms) to keep per-axis patches."
        )
    if isinstance(pre["spacing"], list) and isinstance(pre["patch_size"], list) \
            and len(pre["spacing"]) != len(pre["patch_size"]):
        raise ConfigError(
            f"config keys 'preprocess.spacing' {pre['spacing']} and 'preprocess.patch_size' {pre['patch_size']} "
            "give different numbers of axes: give both per axis (x, y[, z]) for the same dimension."
        )
    # one size: the dimension is known for the phantom and Br35H (2D); a manifest's cases are checked when patched
    dim = {"phantom": config["data"]["phantom"]["dim"], "br35h": 2}.get(config["data"]["source"])
    voxels = math.prod(sizes) if len(sizes) > 1 else sizes[0] ** dim if dim else 0
    from .preprocess import MAX_PATCH_VOXELS

    if voxels > MAX_PATCH_VOXELS:
        raise ConfigError(
            f"config key 'preprocess.patch_size' = {pre['patch_size']}: {voxels:,} voxels per patch "
            f"({voxels * 5 / 2**20:.0f} MiB with its mask) exceed the limit of {MAX_PATCH_VOXELS:,} voxels; "
            "every batch job holds many patches in memory. Use a smaller patch (or a coarser preprocess.spacing "
            "so the ROI fits a smaller one)."
        )
    if pre["normalisation"] == "nyul" and study_modality(config) == "CT":
        raise ConfigError(
            "config key 'preprocess.normalisation' = nyul: histogram standardisation is for images in arbitrary "
            "units such as MR, but the study's modality is CT (preprocess.modality, or the phantom's CT under "
            "auto), whose Hounsfield units are already a standard scale. Use normalisation none (or auto) for "
            "CT, or set preprocess.modality: MR for MR images."
        )
    for key in ("percentiles", "resegment_range"):
        bounds = pre[key]
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ConfigError(f"config key 'preprocess.{key}' = {bounds}: the first value must be below the "
                              "second ([lo, hi]).")


def _check_data_root(data: dict, base_dir: Path) -> None:
    root = data["data_root"]
    if root is None:
        return
    if data["source"] != "manifest":
        raise ConfigError(
            f"config key 'data.data_root' applies to data.source 'manifest' only (source is '{data['source']}'): "
            "remove the key."
        )
    if not (base_dir / root).is_dir():
        raise ConfigError(
            f"config key 'data.data_root': folder {root} does not exist (relative to {base_dir}): give the folder "
            "that holds the study's images and masks."
        )


def _check_params_file(params: str | None, base_dir: Path) -> None:
    """The configured PyRadiomics parameter file exists and PyRadiomics accepts it (its own schema)."""
    if params is None:
        return
    path = base_dir / params
    if not path.is_file():
        raise ConfigError(
            f"config key 'features.params': file {params} does not exist (relative to {base_dir}): correct the "
            "path or use one of workflow/resources/radiomics_*.yaml."
        )
    from .features import make_extractor

    try:
        extractor = make_extractor(path)
    except ConfigError as exc:
        raise ConfigError(
            f"{exc}\nFix the file (keys and types: PyRadiomics documentation, 'Parameter File') or start from "
            "one of workflow/resources/radiomics_*.yaml."
        ) from None
    done_in_preprocessing = {
        "normalize": "preprocess.normalisation: image_zscore",
        "resampledPixelSpacing": "preprocess.spacing",
    }
    for setting, key in done_in_preprocessing.items():
        if extractor.settings.get(setting):
            raise ConfigError(
                f"config key 'features.params': {params} sets PyRadiomics' '{setting}', but radaug extracts "
                f"features from patches that preprocessing already made (it would be applied twice, and to "
                f"synthetic patches too). Remove '{setting}' from the file and set {key} instead: the patches "
                "then equal what PyRadiomics computes with that setting on the original image."
            )


def _check_ddpm(ddpm: dict) -> None:
    """Settings of the diffusion arm that only make sense together (else every training job would fail)."""
    if ddpm["sample_steps"] > ddpm["diffusion_steps"]:
        raise ConfigError(
            f"config key 'generative.ddpm.sample_steps' = {ddpm['sample_steps']} exceeds "
            f"'generative.ddpm.diffusion_steps' = {ddpm['diffusion_steps']}: DDIM samples on a subset of the "
            "training schedule's steps; lower sample_steps or raise diffusion_steps.")
    if ddpm["guidance_scale"] > 0 and ddpm["label_dropout"] == 0:
        raise ConfigError(
            "config key 'generative.ddpm.guidance_scale' > 0 needs 'generative.ddpm.label_dropout' > 0: without "
            "label dropout the model never learns the unconditional prediction that guidance extrapolates from; "
            "set label_dropout (0.1 usual) or guidance_scale: 0.")


def _check_shape_model(config: dict) -> None:
    """A mask-conditioned study's shape model must do more than copy training masks."""
    generative, augmentation = config["generative"], config["augmentation"]
    noise_models = [m for m in generative["models"]
                    if m not in TRANSLATORS and model_conditioning(generative, m) != "joint"]
    if not noise_models:
        return
    deforms = augmentation["affine"]["enabled"] or augmentation["elastic"]["enabled"]
    if generative["shape_model"]["ssm_share"] == 0 and not deforms:
        dims = {"phantom": config["data"]["phantom"]["dim"], "br35h": 2}.get(config["data"]["source"])
        if any(model_conditioning(generative, m) == "mask" for m in noise_models) or dims in (3, None):
            raise ConfigError(
                f"config key 'generative.shape_model.ssm_share' is 0 and both 'augmentation.affine.enabled' and "
                f"'augmentation.elastic.enabled' are false: the mask-conditioned generators {noise_models} would be "
                "given unaltered copies of training masks. Raise ssm_share, enable a spatial transform, or set "
                "'generative.conditioning: joint'."
            )


def _check_cyclegan_domains(config: dict, base_dir: Path) -> None:
    """The cyclegan arm needs a domain column holding both its source and target domain."""
    data, options = config["data"], config["generative"]["cyclegan"]
    wanted = [options["source_domain"], options["target_domain"]]
    if wanted[0] == wanted[1]:
        raise ConfigError(
            f"config keys 'generative.cyclegan.source_domain' and 'target_domain' are both {wanted[0]!r}: "
            "name two different domains."
        )
    if data["source"] == "phantom":
        from .data.phantom import DOMAINS

        if not data["phantom"]["domains"]:
            raise ConfigError(
                "generative model 'cyclegan' translates between two domains, but 'data.phantom.domains' is false: "
                "set it to true (domains scanner_a and scanner_b) or remove cyclegan from 'generative.models'."
            )
        present = set(DOMAINS)
    elif data["source"] == "manifest":
        from .manifest import read_manifest_table

        table = read_manifest_table(base_dir / data["manifest"])
        present = set(table.loc[table["label"].isin(data["classes"]), "domain"]) - {""}
    else:
        present = set()
    missing = [d for d in wanted if d not in present]
    if missing:
        raise ConfigError(
            f"config key 'generative.cyclegan': domain(s) {missing} do not occur in the data's 'domain' column "
            f"(found {sorted(present) or 'no domains'} for data.source {data['source']!r}). Set "
            "'generative.cyclegan.source_domain'/'target_domain' to domains of the manifest, or remove cyclegan "
            "from 'generative.models'."
        )


def _manifest_patients_per_class(data: dict, classes: list[str], base_dir: Path) -> dict[str, int]:
    """Count patients per class in a user manifest (cheap: reads the CSV only)."""
    from .manifest import read_manifest_table

    if not data["manifest"]:
        raise ConfigError("config key 'data.manifest' is required when data.source is 'manifest': give the CSV path.")
    table = read_manifest_table(base_dir / data["manifest"])
    table = table[table["label"].isin(classes)]
    counts = table.groupby("label")["patient_id"].nunique()
    return {c: int(counts.get(c, 0)) for c in classes}


def study_modality(config: dict) -> str | None:
    """The modality that decides intensity handling and default feature parameters, if known."""
    configured = config["preprocess"]["modality"]
    if configured != "auto":
        return configured
    return SOURCE_MODALITIES.get(config["data"]["source"])


def resolve_params_file(config: dict, workflow_dir: str | Path) -> Path:
    """The PyRadiomics parameter file of a study: the configured one or the shipped default.

    Defaults (``workflow/resources/radiomics_{2d,3d}_{ct,mr,nyul}.yaml``) exist for the
    example and phantom sources; a user manifest must name its file, because the
    right bin width depends on the modality and intensity range of the data
    (``nyul``: the histogram-standardised scale, 0-100 over the 1st-99th percentile).
    """
    if config["features"]["params"]:
        return Path(config["features"]["params"])
    source = config["data"]["source"]
    if source == "manifest":
        raise ConfigError(
            "config key 'features.params' is required for data.source 'manifest': choose a PyRadiomics "
            "parameter file for your modality and dimensionality, e.g. one of workflow/resources/radiomics_*.yaml."
        )
    dim = config["data"]["phantom"]["dim"] if source == "phantom" else 2
    modality = "ct" if study_modality(config) == "CT" else "mr"
    if config["preprocess"]["normalisation"] == "nyul":
        modality = "nyul"
    return Path(workflow_dir) / "resources" / f"radiomics_{dim}d_{modality}.yaml"


def schema_markdown() -> str:
    """Every config key with its type, default and description, as Markdown (config/README.md)."""
    lines = ["# Study configuration keys", "",
             "Generated from `src/radaug/schemas/config.schema.yaml` by `radaug config-doc`; "
             "a test keeps the two identical.", "",
             "| key | type | default | description |", "|---|---|---|---|"]

    def walk(node: dict, prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            kind = sub.get("type", "enum" if "enum" in sub else "")
            kind = " or ".join(kind) if isinstance(kind, list) else kind
            if "enum" in sub:
                kind = " / ".join("null" if v is None else str(v) for v in sub["enum"])
            if "anyOf" in sub:
                kind = " or ".join(alt.get("type", str(alt.get("const"))) for alt in sub["anyOf"])
            default = "" if "default" not in sub or sub["default"] == {} else f"`{sub['default']}`"
            required = " (required)" if name in node.get("required", []) else ""
            desc = sub.get("description", "").replace("|", "\\|")
            if sub.get("type") != "object" or "properties" not in sub:
                lines.append(f"| `{key}`{required} | {kind} | {default} | {desc} |")
            walk(sub, f"{key}.")

    walk(schema(), "")
    return "\n".join(lines) + "\n"
