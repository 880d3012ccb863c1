"""Collect every job's provenance record into the study manifest."""
import logging

from radaug.provenance import write_manifest

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
manifest = write_manifest(snakemake.params.study_dir, snakemake.input.provenance, snakemake.output.manifest)  # noqa: F821
logging.info("study version %s, %d artifacts", manifest["study_version"], len(manifest["artifacts"]))
