"""The study bundle and the HTML report of the smoke study, end to end.

Reuses the session's smoke study (copies only): builds bundle.zip with the publish
rule, checks it is deterministic and verifies an unpacked copy in another folder;
renders report.html in headless Chromium and checks every section and the pixels.
"""
import html
import json
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from radaug.io import sha256_file
from radaug.provenance import verify_study
from radaug.report import SECTIONS

from ..conftest import REPO
from .conftest import SNAKEMAKE

CONFIG = REPO / "config/smoke.yaml"


def build_bundle(workdir) -> str:
    """Run the workflow up to results/smoke/bundle.zip in ``workdir``; return its output."""
    # the target goes before --configfile, which takes every following word as a config file
    cmd = [*SNAKEMAKE, "results/smoke/bundle.zip", "--directory", str(workdir), "--configfile", str(CONFIG)]
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def published(smoke, tmp_path_factory):
    """A copy of the smoke study's working directory with results/smoke/bundle.zip built."""
    workdir = tmp_path_factory.mktemp("publish") / "work"
    shutil.copytree(smoke.parents[1], workdir, symlinks=True)
    output = build_bundle(workdir)
    ran = set(re.findall(r"rule (\w+):", output))
    return workdir / "results/smoke", ran


def test_publish_builds_only_the_bundle_and_the_study_still_verifies(published):
    study, ran = published
    assert ran == {"publish"}, ran  # a finished study: nothing else reruns
    assert (study / "bundle.zip").is_file()
    assert verify_study(study) == []  # bundle.zip and publish/ are not study artifacts


def test_bundle_is_reproducible_and_verifies_elsewhere(published, tmp_path):
    study, _ = published
    first = sha256_file(study / "bundle.zip")
    (study / "bundle.zip").unlink()
    build_bundle(study.parents[1])
    assert sha256_file(study / "bundle.zip") == first  # same study, same bytes
    unpacked = tmp_path / "another" / "machine"
    with zipfile.ZipFile(study / "bundle.zip") as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    for rel in ("ro-crate-metadata.json", "manifest.json", "bundle/config.yaml", "bundle/environment.json",
                "bundle/code.json", "evaluation/summary.csv", "validation/summary.csv", "report.html"):
        assert rel in names, rel
    assert not any(n.startswith(("models/", "synthetic/")) for n in names)  # referenced by sha256 only
    proc = subprocess.run([str(REPO / ".venv/bin/radaug"), "verify", str(unpacked)],
                          capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    target = unpacked / "evaluation/summary.csv"
    data = bytearray(target.read_bytes())
    data[5] ^= 1
    target.write_bytes(bytes(data))
    (unpacked / "report.html").unlink()
    (unpacked / "notes.txt").write_text("added\n")
    assert verify_study(unpacked) == [
        "changed: evaluation/summary.csv (sha256 differs from the manifest)",
        "missing: report.html",
        "unexpected: notes.txt (not in the manifest)",
    ]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian 'chromium' is not installed (make test installs it via "
                                             "tests/system/install-packages.sh when run as root)")
def test_report_renders_in_headless_chromium(smoke, tmp_path):
    report = tmp_path / "report.html"
    shutil.copy(smoke / "report.html", report)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()],
                         capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for key in SECTIONS:  # every section rendered, with its heading
        assert re.search(f'<section id="{key}">\\s*<h2>', dom.stdout), key
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', dom.stdout)
    assert len(images) >= 5
    assert "http://" not in dom.stdout.replace("http://www.w3.org", "") and "https://" not in dom.stdout
    shot = tmp_path / "shot.png"
    proc = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,4000", report.as_uri()],
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=180)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    # non-blank: in each quarter of the page's height some rows carry text or figures
    dark = (pixels.mean(axis=2) < 0.6).mean(axis=1)
    for quarter in np.array_split(dark, 4):
        assert (quarter > 0.005).sum() > 20
    assert pixels.std() > 0.05


_PROBE = """<script>addEventListener('load', () => {
  const page = document.documentElement, summary = document.getElementById('summary').getBoundingClientRect();
  const wide = [...document.querySelectorAll('table, img, pre, figure, p')]
    .filter(e => e.getBoundingClientRect().right > innerWidth + 1).map(e => e.tagName);
  document.body.setAttribute('data-probe', JSON.stringify({scrollWidth: page.scrollWidth, width: innerWidth,
    height: innerHeight, summaryTop: summary.top, wide: wide.slice(0, 5)}));
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian 'chromium' is not installed")
@pytest.mark.parametrize("width", [1024, 1600])
def test_report_summary_is_on_the_first_screen_and_nothing_overflows(smoke, tmp_path, width):
    """At 1024 and 1600 px the page is no wider than the window and the summary starts on the first screen."""
    page = (smoke / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", f"--window-size={width},800"]
    dom = subprocess.run([*flags, "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, "the probe script did not run"
    probe = json.loads(html.unescape(found.group(1)))
    assert probe["width"] == width
    assert probe["scrollWidth"] <= width and not probe["wide"], probe
    assert probe["summaryTop"] < probe["height"] / 2, probe
    shot = tmp_path / f"first-screen-{width}.png"
    proc = subprocess.run([*flags, f"--screenshot={shot}", (smoke / "report.html").as_uri()],
                          capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=180)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (800, width) and pixels.std() > 0.05  # the first screen shows content
