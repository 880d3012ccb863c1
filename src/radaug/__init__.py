"""radaug: reproducible radiomics data-augmentation studies.

The library owns the science (data, splits, generators, features, validation,
evaluation, provenance); the Snakemake workflow in ``workflow/`` owns the DAG.
Every module is usable without Snakemake.
"""

__version__ = "0.1.0"
