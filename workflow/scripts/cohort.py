"""Build and validate the study cohort: example draw, phantom, or user manifest."""
from pathlib import Path


from radaug.data import SOURCE_MODALITIES, br35h
from radaug.io import read_table, write_csv
from radaug.manifest import read_manifest_table, validate_manifest
from radaug.snakemake_adapter import run_job


def main(smk):
    data = smk.params.data
    source = data["source"]
    if source == "br35h":
        images_dir = Path(smk.input.br35h_index).parent
        table = br35h.draw_cohort(read_table(smk.input.br35h_index), images_dir.resolve(),
                                  data["br35h"]["n_per_class"], seed=smk.params.seed)
        base_dir, origin = images_dir, f"Br35H draw (seed {smk.params.seed})"
    elif source == "phantom":
        base_dir = Path(smk.input.phantom)
        table = read_manifest_table(base_dir / "manifest.csv")
        origin = f"phantom (seed {smk.params.seed})"
    else:
        base_dir, origin = Path(smk.input.manifest).parent, smk.input.manifest
        table = read_manifest_table(smk.input.manifest)
    cohort = validate_manifest(
        table, base_dir=base_dir, classes=data["classes"],
        allow_mixed_patient_labels=data["allow_mixed_patient_labels"], mask_label=data["mask_label"],
        default_modality=SOURCE_MODALITIES.get(source, "other"), source=origin, relative_to=Path.cwd(),
        data_root=data["data_root"],
    )
    write_csv(smk.output.cohort, cohort)


run_job(snakemake, main)  # noqa: F821
