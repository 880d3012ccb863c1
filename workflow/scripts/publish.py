"""Pack the finished study into results/<study>/bundle.zip (a deterministic RO-Crate)."""
import logging
from pathlib import Path

from radaug.bundle import code_identity, write_bundle
from radaug.snakemake_adapter import run_job


def main(smk):
    study_dir = Path(smk.input.manifest).parent
    result = write_bundle(study_dir, smk.output.bundle, config=smk.params.config,
                          include_intermediates=smk.params.include_intermediates,
                          code=code_identity(Path(smk.scriptdir).parents[1]))
    logging.getLogger("radaug").info("bundle %s: %d files, %d artifacts referenced by sha256, sha256 %s",
                                     result["path"], result["files"], result["referenced"], result["sha256"])


run_job(snakemake, main)  # noqa: F821
