"""ANPR benchmark: plate reading per frame, on one core, beside a whole-frame OCR baseline.

Usage: ``uv run python bench/anpr.py [--frames N] [--baseline-frames N] [--seed S]``

Each variant runs in its own process pinned to one CPU (so peak RSS is its
own): the labelled set is generated there frame by frame from the seed
(generation is not timed), each frame is read once, and the process reports
per-frame times, accuracy (exact, and after folding confusables such as
O/0, I/1, B/8) per capture condition, and its peak resident memory.

* ``pipeline``: what the gate runs — localise, OCR the crop, formats, with
  the detector only as a fallback (``edge_node.camera.reader.read_frame``).
* ``baseline``: rapidocr out of the box on the whole frame (its detector at
  its default size, then the recogniser on every line), the best valid
  format fit among the lines — no localisation.

The set: five plate styles × the seven gate conditions of ``synth.CONDITIONS`` and
the three harder ``synth.HARD_CONDITIONS`` (reported apart). Also timed: the
motion gate on an idle frame (what an idle gate costs).
Targets (issue 5): ≥ 95 % exact on clear frames, ≤ 150 ms median per frame on
one core, < 400 MB resident. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _pin_one_core() -> str:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return f"cpu {cpus[-1]}"
    except (AttributeError, OSError):
        return "not pinned"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def glare_passes(read: Any, seed: int, count: int) -> dict[str, int]:
    """Passes of five glare frames of one car (the reflection moves between frames), read one
    by one and voted, as a gate lane does; only for the pipeline (the baseline is too slow)."""
    from edge_node.camera.reader import vote
    from edge_node.camera.synth import STYLES, make_sample

    passes = {"n": 0, "frames": 0, "frame_exact": 0, "voted_exact": 0}
    for k in range(count):
        style = STYLES[k % len(STYLES)]
        plate = make_sample(seed * 31 + k, style).plate
        reads = []
        for f in range(5):
            sample = make_sample(seed * 1_000 + k * 10 + f, style, "glare", plate=plate)
            found = read(sample.image)
            passes["frames"] += 1
            passes["frame_exact"] += found is not None and found.plate == plate
            if found is not None:
                reads.append(found)
        voted = vote(reads)
        passes["n"] += 1
        passes["voted_exact"] += voted is not None and voted.plate == plate
    return passes


def run_variant(
    variant: str, frames: int, seed: int, spread: bool = False, passes_n: int = 8
) -> dict[str, Any]:
    """Runs inside the child process."""
    pinned = _pin_one_core()
    import cv2

    cv2.setNumThreads(1)
    from edge_node.camera.config import ReaderSettings
    from edge_node.camera.formats import fold, formats_for
    from edge_node.camera.gate import MotionGate
    from edge_node.camera.ocr import RapidOcrReader
    from edge_node.camera.reader import _read_with_detector, read_frame
    from edge_node.camera.synth import CONDITIONS, HARD_CONDITIONS, STYLES, make_sample

    formats = formats_for(["EU", "US", "BR"])
    settings = ReaderSettings()
    if variant == "pipeline":
        reader = RapidOcrReader(threads=1)

        def read(image: Any) -> Any:
            return read_frame(image, reader, formats, settings)

    else:
        reader = RapidOcrReader(threads=1, det_max_side=None)

        def read(image: Any) -> Any:
            found = _read_with_detector(image, reader, formats, settings, fallback_width=10_000)
            return found if found is not None and found.confidence >= 0.5 else None

    conditions = CONDITIONS + HARD_CONDITIONS
    warm = make_sample(seed * 7919 + 999_999, "UA", "clear")
    read(warm.image)  # load the models outside the timings (and trigger lazy loads)
    times: list[float] = []
    per: dict[str, dict[str, int]] = {}
    misses: list[str] = []
    # ``spread``: frame k is the k-th condition in the k-th style, so a few frames cover all.
    n = len(STYLES)
    indices = [n * k + k % n for k in range(frames)] if spread else range(frames)
    for i in indices:
        style = STYLES[i % len(STYLES)]
        condition = conditions[(i // len(STYLES)) % len(conditions)]
        sample = make_sample(seed * 100_003 + i, style, condition)
        start = time.perf_counter()
        result = read(sample.image)
        times.append((time.perf_counter() - start) * 1000)
        plate = result.plate if result is not None else None
        row = per.setdefault(condition, {"n": 0, "exact": 0, "folded": 0})
        row["n"] += 1
        row["exact"] += plate == sample.plate
        row["folded"] += plate is not None and fold(plate) == fold(sample.plate)
        if plate != sample.plate and len(misses) < 12:
            misses.append(f"{condition}/{style}: {sample.plate} → {plate}")
    passes = glare_passes(read, seed, passes_n if variant == "pipeline" else 0)
    gate = MotionGate()
    idle = warm.image
    gate.update(idle)
    start = time.perf_counter()
    for _ in range(200):
        gate.update(idle)
    idle_ms = (time.perf_counter() - start) * 1000 / 200
    total = {k: sum(r[k] for r in per.values()) for k in ("n", "exact", "folded")}
    usual = {k: sum(r[k] for c, r in per.items() if c in CONDITIONS) for k in ("n", "exact")}
    hard = {k: sum(r[k] for c, r in per.items() if c in HARD_CONDITIONS) for k in ("n", "exact")}
    return {
        "variant": variant,
        "pinned": pinned,
        "frames": frames,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(_percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "exact": round(total["exact"] / total["n"], 4),
        "exact_gate_conditions": round(usual["exact"] / usual["n"], 4) if usual["n"] else None,
        "exact_hard_conditions": round(hard["exact"] / hard["n"], 4) if hard["n"] else None,
        "folded": round(total["folded"] / total["n"], 4),
        "by_condition": {
            c: {"n": r["n"], "exact": r["exact"], "folded": r["folded"]} for c, r in per.items()
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "idle_gate_ms": round(idle_ms, 3),
        "misses": misses,
        "glare_passes": passes,
    }


def _child(variant: str, frames: int, seed: int, spread: bool = False) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--frames", str(frames)]
    command += ["--seed", str(seed)] + (["--spread"] if spread else [])
    out = subprocess.run(
        command,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=150, help="labelled frames for the pipeline")
    parser.add_argument(
        "--baseline-frames",
        type=int,
        default=10,
        help="frames for the (slow) whole-frame baseline, spread evenly over the same set",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spread", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_variant(args.child, args.frames, args.seed, args.spread)))
        return 0

    started = time.perf_counter()
    pipe = _child("pipeline", args.frames, args.seed)
    base = _child("baseline", args.baseline_frames, args.seed, spread=True)
    print(f"ANPR on generated 1280x720 gate frames, one core ({pipe['pinned']}), seed {args.seed}")
    print(
        f"{'variant':<34}{'frames':>7}{'median':>9}{'p95':>9}{'exact':>8}{'folded':>8}{'RSS MB':>8}"
    )
    for r, label in (
        (pipe, "pipeline (localise → OCR crop)"),
        (base, "baseline (whole-frame OCR)"),
    ):
        print(
            f"{label:<34}{r['frames']:>7}{r['median_ms']:>7.1f}ms{r['p95_ms']:>7.1f}ms"
            f"{r['exact']:>8.1%}{r['folded']:>8.1%}{r['peak_rss_mb']:>8.0f}"
        )
    gate_exact, hard_exact = pipe["exact_gate_conditions"], pipe["exact_hard_conditions"]
    if gate_exact is not None and hard_exact is not None:
        print(
            f"pipeline exact: {gate_exact:.1%} on the seven gate conditions, "
            f"{hard_exact:.1%} on the three hard ones (mud, glare, all at once)"
        )
    print("pipeline by condition (exact / folded / frames):")
    for condition, row in pipe["by_condition"].items():
        print(f"  {condition:<12} {row['exact']:>3} / {row['folded']:>3} / {row['n']}")
    for miss in pipe["misses"]:
        print(f"  miss {miss}")
    glare = pipe["glare_passes"]
    if glare["n"]:
        print(
            f"glare passes (5 frames each, voted): {glare['voted_exact']}/{glare['n']} passes "
            f"exact; {glare['frame_exact']}/{glare['frames']} frames exact one by one"
        )
    print(f"idle gate (motion check only): {pipe['idle_gate_ms']:.3f} ms a frame")
    clear = pipe["by_condition"].get("clear", {"n": 0, "exact": 0})
    clear_acc = clear["exact"] / clear["n"] if clear["n"] else 0.0
    speedup = base["median_ms"] / pipe["median_ms"] if pipe["median_ms"] else 0.0
    print(
        f"targets: clear exact {clear_acc:.1%} (≥ 95 %), median {pipe['median_ms']:.0f} ms "
        f"(≤ 150), peak RSS {pipe['peak_rss_mb']:.0f} MB (< 400); "
        f"{speedup:.1f}x faster than the baseline; run took {time.perf_counter() - started:.0f} s"
    )
    summary = {
        "bench": "anpr",
        "pipeline": {k: v for k, v in pipe.items() if k != "misses"},
        "baseline": {k: v for k, v in base.items() if k != "misses"},
        "clear_exact": round(clear_acc, 4),
        "speedup": round(speedup, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
