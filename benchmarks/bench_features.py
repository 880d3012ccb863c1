"""Feature extraction throughput: radaug's extraction stage vs PyRadiomics' own batch command line.

Both sides extract the same phantom patches with the same parameter file
(``workflow/resources/radiomics_2d_ct.yaml``) on 1 and 2 cores:

* **radaug**: the work of the ``features_real`` job — a fresh Python process per
  batch that loads the batch's patch arrays, extracts in memory and writes the CSV;
  on ``c`` cores the cases are split into ``c`` batches run as parallel processes
  (as Snakemake runs the batch jobs). Process start and imports are included.
* **reference**: ``pyradiomics cases.csv --jobs c``, PyRadiomics' batch command line.
  It reads images from files, so the cases are first written as NRRD image/mask
  pairs; that writing is timed and counted in the reference (it is the I/O the
  reference needs), and reported separately in the notes.

Figures: throughput ratio radaug / reference per core count (target >= 1.0),
radaug's parallel efficiency ``T1 / (2 T2)`` from 1 to 2 cores (target >= 0.85),
and the largest relative difference between the two sides' feature values (the
same features must come out).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import load_average, row, standalone, stopwatch

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "workflow/resources/radiomics_2d_ct.yaml"
SPACING = (1.0, 1.0)
BENCH = "features"


def phantom_patches(n: int, size: int = 64, seed: int = 5) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` 2D phantom images and lesion masks (alternating classes) and their labels."""
    from radaug.data.phantom import phantom_case

    rng = np.random.default_rng(seed)
    images, masks, labels = [], [], []
    for i in range(n):
        label = ("benign", "malignant")[i % 2]
        image, mask = phantom_case(rng, label, ("fine", "coarse")[(i // 2) % 2], dim=2, size=size)
        images.append(image.astype(np.float32))
        masks.append((mask > 0).astype(np.uint8))
        labels.append(label)
    return np.stack(images), np.stack(masks), labels


def _worker(patches: str, out_csv: str) -> None:
    """The features_real job's work on one batch (run in a fresh process)."""
    import pandas as pd

    from radaug.features import extract_patches, make_extractor
    from radaug.io import load_arrays, write_csv

    arrays = load_arrays(patches)
    n = len(arrays["image"])
    ids = [f"C{i:05d}" for i in arrays["index"]]
    meta = pd.DataFrame({"sample_id": ids, "case_id": ids, "source": "real", "arm": "real", "repeat": pd.NA,
                         "fold": pd.NA, "label": ["x"] * n})
    features, failures = extract_patches(make_extractor(PARAMS), arrays["image"], arrays["mask"], SPACING, meta)
    if len(failures):
        raise SystemExit(f"extraction failed: {failures.to_dict('records')[:3]}")
    write_csv(out_csv, features)


def run_radaug(images, masks, cores: int, tmp: Path):
    """Wall and CPU seconds of ``cores`` parallel batch processes over all patches, and the merged features."""
    import pandas as pd

    from radaug.io import save_arrays

    index = np.arange(len(images))
    jobs = []
    for b, part in enumerate(np.array_split(index, cores)):
        path = tmp / f"batch_{cores}_{b}.npz"
        save_arrays(path, image=images[part], mask=masks[part], index=part)
        jobs.append((str(path), str(tmp / f"batch_{cores}_{b}.csv")))
    with stopwatch() as t:
        procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_features", "--worker", p, o], cwd=REPO)
                 for p, o in jobs]
        codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"radaug extraction worker failed with exit codes {codes}")
    return t.seconds, t.cpu, pd.concat([pd.read_csv(o) for _, o in jobs], ignore_index=True)


def write_reference_inputs(images, masks, folder: Path) -> Path:
    """NRRD image/mask pairs and the ``Image,Mask`` CSV that ``pyradiomics`` batch mode reads."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    lines = ["ID,Image,Mask"]
    for i, (image, mask) in enumerate(zip(images, masks)):
        img = sitk.GetImageFromArray(image)
        img.SetSpacing(SPACING)
        msk = sitk.GetImageFromArray(mask)
        msk.CopyInformation(img)
        ip, mp = folder / f"C{i:05d}_image.nrrd", folder / f"C{i:05d}_mask.nrrd"
        sitk.WriteImage(img, str(ip))
        sitk.WriteImage(msk, str(mp))
        lines.append(f"C{i:05d},{ip},{mp}")
    cases = folder / "cases.csv"
    cases.write_text("\n".join(lines) + "\n")
    return cases


def run_reference(images, masks, cores: int, tmp: Path):
    """Wall seconds to write the reference's inputs and of ``pyradiomics --jobs cores``, CPU seconds of both, its table."""
    import pandas as pd

    write_cpu = time.process_time()
    with stopwatch() as write:
        cases = write_reference_inputs(images, masks, tmp / f"ref_{cores}")
    write_cpu = time.process_time() - write_cpu
    out = tmp / f"ref_{cores}.csv"
    cmd = [sys.executable, "-c", "import sys; from radiomics.scripts import parse_args; sys.exit(parse_args())",
           str(cases), "--param", str(PARAMS), "--jobs", str(cores), "--out", str(out), "--format", "csv",
           "--verbosity", "1"]
    with stopwatch() as extract:
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pyradiomics batch command failed: {proc.stderr[-2000:]}")
    return write.seconds, extract.seconds, write_cpu + extract.cpu, pd.read_csv(out)


def max_relative_difference(radaug_table, reference_table) -> float:
    """Largest |a - b| / max(|b|, 1e-12) over every original_* feature of every case."""
    ours = radaug_table.set_index("sample_id").sort_index()
    ref = reference_table.set_index("ID").sort_index()
    columns = [c for c in ours.columns if c.startswith("original_")]
    missing = [c for c in columns if c not in ref.columns]
    if missing or len(ours) != len(ref):
        raise RuntimeError(f"radaug and pyradiomics tables differ in shape: missing {missing[:5]}, "
                           f"{len(ours)} vs {len(ref)} rows")
    a = ours[columns].to_numpy(float)
    b = ref.loc[ours.index, columns].to_numpy(float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def run(quick: bool = False) -> list[dict]:
    n = 60 if quick else 400
    images, masks, _ = phantom_patches(n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seconds, cpu = {}, {}
        for cores in (1, 2):
            ours, ours_cpu, table = run_radaug(images, masks, cores, tmp)
            write, extract, ref_cpu, ref_table = run_reference(images, masks, cores, tmp)
            seconds[cores] = ours
            cpu[cores] = ours_cpu
            diff = max_relative_difference(table, ref_table)
            rows.append(row(BENCH, f"throughput radaug/pyradiomics, {cores} core(s)", n / ours, "cases/s",
                            reference=n / (write + extract), target=">= 1.0",
                            notes=f"{n} 64x64 phantom cases; radaug {ours:.2f} s, pyradiomics {extract:.2f} s "
                                  f"+ {write:.2f} s writing NRRD inputs; max rel. feature difference "
                                  f"{diff:.1e}; {load_average()}"))
            rows.append(row(BENCH, f"CPU time per case radaug, {cores} core(s)", 1000 * ours_cpu / n, "ms/case",
                            reference=1000 * ref_cpu / n, ratio=ref_cpu / ours_cpu,
                            target=">= 1.0",
                            notes="ratio = pyradiomics CPU (incl. writing inputs) / radaug CPU: >= 1 means radaug "
                                  "is no costlier; CPU time is robust to other load on the machine"))
            rows.append(row(BENCH, f"max relative feature difference vs pyradiomics, {cores} core(s)", diff, "",
                            target="<= 1e-6", notes="same cases, same parameter file"))
        rows.append(row(BENCH, "radaug parallel efficiency 1 -> 2 cores", seconds[1] / (2 * seconds[2]), "",
                        target=">= 0.85",
                        notes=f"T1 {seconds[1]:.2f} s, T2 {seconds[2]:.2f} s; {load_average()} "
                              "(other processes on the machine lower this figure)"))
        rows.append(row(BENCH, "radaug CPU efficiency 1 -> 2 cores", cpu[1] / cpu[2], "", target=">= 0.85",
                        notes=f"CPU {cpu[1]:.2f} s on 1 core, {cpu[2]:.2f} s in 2 parallel jobs: the extra work of "
                              "splitting (a second process start and import), free of other load's wall-time effect"))
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker(*sys.argv[2:4])
    else:
        standalone(run)
