"""Real photographs of cars with plates, for the ANPR benchmark and the reader's tests.

Source: the "Car License Plate Detection" set published by Andrew Maranhão (Kaggle user
andrewmvd) under CC0 1.0, as copied into the public GitHub repository
``yoavmai/Car-license-plate-detection`` at commit ``8c56aa962b50b7e813df9fbc4c9c4de5de826761``
(folders ``images/`` and ``annotations/``; that copy resized every photo to 416×416 and added
two shifted/rotated copies, ``*_aug1.jpg`` and ``*_aug2.jpg``). The set ships plate boxes but
no plate text: the text in ``bench/data/plate_photos.tsv`` was transcribed by eye for this
project (``ok``: legible; ``unsure``: not used for accuracy). Duplicate photos were left out.

``prepare`` turns that checkout into ``var/plate-photos/`` (git-ignored): each photo
resized back to the size its annotation names (undoing the square stretch), plus its two
shifted copies as a three-frame "pass" (``NAME.f1.jpg``, ``NAME.f2.jpg``).
``scripts/fetch-plate-photos.sh`` runs it; nothing is downloaded at run time by the gate.

Usage: ``python bench/plate_photos.py prepare REPO_DIR [--out var/plate-photos]``
"""

from __future__ import annotations

import argparse
import csv
import logging
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = ROOT / "bench" / "data" / "plate_photos.tsv"
DEFAULT_DIR = ROOT / "var" / "plate-photos"
SOURCE_REPO = "https://github.com/yoavmai/Car-license-plate-detection"
SOURCE_COMMIT = "8c56aa962b50b7e813df9fbc4c9c4de5de826761"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Photo:
    """One labelled photo: every plate legible in it (any one is a right read)."""

    name: str
    plates: tuple[str, ...]
    country: str
    legible: bool
    note: str = ""

    def path(self, directory: Path, frame: int = 0) -> Path:
        return directory / (f"{self.name}.jpg" if frame == 0 else f"{self.name}.f{frame}.jpg")


def load_labels(path: Path = LABELS) -> list[Photo]:
    """The label table; ``-`` for no legible plate."""
    photos = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if not row or row[0].startswith("#"):
                continue
            name, plates, country, status, *rest = row + [""] * (5 - len(row))
            texts = tuple(p for p in plates.split("|") if p and p != "-")
            photos.append(Photo(name, texts, country, status == "ok" and bool(texts), rest[0]))
    return photos


def _restore(image_path: Path, xml_path: Path, out: Path) -> None:
    import cv2

    image = cv2.imread(str(image_path))
    if image is None:
        raise ValueError(f"{image_path} is not an image")
    size = ET.parse(xml_path).getroot().find("size")
    width = int(size.findtext("width", "0")) if size is not None else 0
    height = int(size.findtext("height", "0")) if size is not None else 0
    if width > 0 and height > 0:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out), image, [cv2.IMWRITE_JPEG_QUALITY, 92])


def prepare(repo: Path, out: Path, commit: str = SOURCE_COMMIT) -> int:
    """Extract the pinned commit's photos from a checkout (or bare mirror) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.tar"
        subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "archive",
                "-o",
                str(archive),
                commit,
                "images",
                "annotations",
            ],
            check=True,
        )
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp)
        count = 0
        for photo in load_labels():
            xml = src / "annotations" / f"{photo.name}.xml"
            for frame, suffix in enumerate(("", "_aug1", "_aug2")):
                image = src / "images" / f"{photo.name}{suffix}.jpg"
                if image.is_file():
                    _restore(image, xml, photo.path(out, frame))
                    count += 1
    (out / "SOURCE.txt").write_text(
        f"{SOURCE_REPO} @ {commit} (images/, annotations/); CC0 1.0 (Car License Plate "
        "Detection, andrewmvd); labels: bench/data/plate_photos.tsv\n",
        encoding="utf-8",
    )
    return count


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="extract the labelled photos from a checkout")
    prep.add_argument("repo", type=Path, help="a clone (or bare mirror) of the source repository")
    prep.add_argument("--out", type=Path, default=DEFAULT_DIR)
    prep.add_argument("--commit", default=SOURCE_COMMIT)
    args = parser.parse_args()
    written = prepare(args.repo, args.out, args.commit)
    log.info("%d images written to %s", written, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
