"""Data sources: the Br35H example set and the seeded digital phantom."""

SOURCE_MODALITIES = {"br35h": "MR", "phantom": "CT"}
"""The modality of each built-in ``data.source``'s images (Br35H: brain MR; the phantom: CT).
A user manifest (``data.source: manifest``) names its own per case (``other`` where it does not).
Read by the cohort job (the modality of cases that name none) and by the config checks
(:func:`radaug.config.study_modality`)."""
