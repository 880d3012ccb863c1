"""PyRadiomics features of 2D phantom lesions, shared by the evaluation ground-truth tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def phantom_lesion_features(labels: list[str], seed: int) -> pd.DataFrame:
    """Real-feature rows of one 48 x 48 phantom lesion per label (one rng per case: ``[seed, i]``)."""
    from radaug.data.phantom import phantom_case
    from radaug.features import META_COLUMNS, extract_patches, make_extractor

    images, masks = [], []
    for i, label in enumerate(labels):
        image, mask = phantom_case(np.random.default_rng([seed, i]), label, "fine", dim=2, size=48)
        images.append(image)
        masks.append(mask)
    ids = [f"p{i:03d}" for i in range(len(labels))]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "real", "arm": "real",
                         "repeat": np.nan, "fold": np.nan, "label": labels})[list(META_COLUMNS)]
    extractor = make_extractor(REPO / "workflow/resources/radiomics_2d_ct.yaml")
    features, failures = extract_patches(extractor, np.stack(images), np.stack(masks).astype(np.uint8), (1.0, 1.0), meta)
    assert failures.empty
    return features
