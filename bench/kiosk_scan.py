"""Kiosk QR scanning: decode ms per 640×480 frame, pyzbar beside OpenCV's own QR detector,
and the kiosk app's frames per second while its camera thread scans.

Frames are generated here (segno QR codes of the kiosk's own formats on a grey
background, seed 2026) in seven conditions — clear, rotated 12°, blurred,
noisy, small (2 px modules), low contrast, and no code at all — 20 frames each;
generation is not timed. Each decoder runs over the same greyscale frames:

* pyzbar (libzbar), QR only — what the kiosk uses (``kiosk.scanner.scan_qr``);
* baseline: ``cv2.QRCodeDetector().detectAndDecode`` on the same frames.

Then the real Kivy app runs offscreen (``SDL_VIDEODRIVER=offscreen``, llvmpipe:
no GPU here) for a few seconds without a camera and again while ``ScanThread``
decodes a looping video of those frames at the kiosk's default 10 frames/s and
flat out: rendered frames per second come from Kivy's clock. Wall time is
``time.perf_counter``; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
if "KIVY_HOME" not in os.environ:
    os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
    atexit.register(shutil.rmtree, os.environ["KIVY_HOME"], True)
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import segno  # noqa: E402

W, H = 640, 480
CONDITIONS = ("clear", "rotated", "blurred", "noisy", "small", "low-contrast", "none")
TARGET_MS = 20.0


def make_frame(text: str | None, condition: str, rng: random.Random) -> np.ndarray:
    frame: np.ndarray = np.full((H, W), 150, np.uint8)
    if text is None:
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, frame.shape)
        return np.clip(frame + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    segno.make_qr(text).save(buffer, kind="png", scale=2 if condition == "small" else 5, border=3)
    code = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert code is not None
    if condition == "low-contrast":
        code = (90 + code.astype(np.float32) * (80 / 255)).astype(np.uint8)
    h, w = code.shape
    y, x = rng.randrange(10, H - h - 10), rng.randrange(10, W - w - 10)
    frame[y : y + h, x : x + w] = code
    if condition == "rotated":
        matrix = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), 12, 1.0)
        frame = cv2.warpAffine(frame, matrix, (W, H), borderValue=150)
    if condition == "blurred":
        frame = cv2.GaussianBlur(frame, (5, 5), 1.3)
    if condition == "noisy":
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 18, frame.shape)
        frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
    return frame


def make_set(per_condition: int, seed: int) -> list[tuple[str, str | None, np.ndarray]]:
    rng = random.Random(seed)
    frames = []
    for condition in CONDITIONS:
        for i in range(per_condition):
            if condition == "none":
                text = None
            elif i % 2:
                text = f"mallnet:customer:c{rng.randrange(16**24):024x}"
            else:
                text = f"FISCAL;{rng.randrange(10**9)};{rng.randrange(100, 99999) / 100:.2f}"
            frames.append((condition, text, make_frame(text, condition, rng)))
    return frames


def time_decoder(name: str, decode: Any, frames: list[tuple[str, str | None, np.ndarray]]):
    times, right, wrong = [], 0, 0
    by_condition: dict[str, list[int]] = {c: [0, 0] for c in CONDITIONS}
    for condition, text, gray in frames:
        started = time.perf_counter()
        found = decode(gray)
        times.append((time.perf_counter() - started) * 1000)
        ok = (text in found) if text is not None else not found
        right += ok
        wrong += bool(found) and text not in found
        by_condition[condition][0] += ok
        by_condition[condition][1] += 1
    times.sort()
    return {
        "decoder": name,
        "frames": len(frames),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
        "max_ms": round(times[-1], 2),
        "correct": round(right / len(frames), 4),
        "misreads": wrong,
        "by_condition": {c: f"{ok}/{n}" for c, (ok, n) in by_condition.items()},
    }


def pyzbar_decode(gray: np.ndarray) -> list[str]:
    from kiosk.scanner import scan_qr

    return scan_qr(gray)


def opencv_decoder() -> Any:
    detector = cv2.QRCodeDetector()

    def decode(gray: np.ndarray) -> list[str]:
        text, _points, _straight = detector.detectAndDecode(gray)
        return [text] if text else []

    return decode


def app_fps(frames: list[tuple[str, str | None, np.ndarray]], seconds: float) -> dict[str, Any]:
    """Kivy's rendered frames per second: idle, scanning at 10 fps, and scanning flat out."""
    from kivy.base import EventLoop
    from kivy.clock import Clock
    from kivy.config import Config

    Config.set("graphics", "width", "1280")
    Config.set("graphics", "height", "800")
    from kiosk.camera import ScanThread
    from kiosk.i18n import Translator
    from kiosk.ports import Offer, Submitted, Wallet, run_inline
    from kiosk.ui.app import KioskUi
    from kiosk.ui_bridge import UiInbox
    from kiosk.viewmodel import KioskViewModel, Settings
    from mallnet.frames.config import FileCamera
    from mallnet.frames.sources import open_source

    class Core:
        def find_customer(self, e164: str) -> str | None:
            return None

        def wallet(self, customer: str) -> Wallet:
            return Wallet(customer, ())

        def offers(self) -> tuple[Offer, ...]:
            return ()

    class Sink:
        online = True
        waiting = 0

        def submit(self, token: str, store: str | None) -> Submitted:
            return Submitted("0190a000-0000-7000-8000-000000000000", True)

    folder = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    atexit.register(shutil.rmtree, folder, True)
    video = folder / "codes.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (W, H))
    for _, _, gray in frames:
        writer.write(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    writer.release()

    inbox = UiInbox()
    vm = KioskViewModel(
        Core(),
        Sink(),
        Translator(),
        settings=Settings(carousel_s=0.5),
        clock=time.monotonic,
        run_io=run_inline,
    )
    ui = KioskUi(vm, inbox)
    ui._run_prepare()

    def measure(scan_fps: float | None) -> dict[str, float]:
        thread = None
        if scan_fps is not None:
            source = open_source(FileCamera(type="file", path=video, loop=True))
            # As in the app: codes reach the view model on the UI thread, through the inbox.
            thread = ScanThread(
                source,
                lambda text: inbox.post(lambda: vm.on_code(text)),
                debounce_s=1e9,
                max_fps=scan_fps,
            )
            thread.start()
        rendered = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            EventLoop.idle()
            vm.tick()
            rendered += 1
        elapsed = time.perf_counter() - started
        out = {"ui_fps": round(rendered / elapsed, 1), "kivy_clock_fps": round(Clock.get_fps(), 1)}
        if thread is not None:
            thread.stop()
            out["scan_fps"] = round(thread.frames / elapsed, 1)
            out["decode_ms_mean"] = round(1000 * thread.decode_s / max(1, thread.frames), 2)
        return out

    result = {"idle": measure(None), "scan_10fps": measure(10.0), "scan_flat_out": measure(1000)}
    ui.stop()
    inbox.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-condition", type=int, default=20, help="frames per condition")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--app-seconds", type=float, default=5.0, help="per app-fps variant")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    frames = make_set(args.per_condition, args.seed)
    cv2.setNumThreads(1)
    results = [
        time_decoder("pyzbar (QR only)", pyzbar_decode, frames),
        time_decoder("baseline: cv2.QRCodeDetector", opencv_decoder(), frames),
    ]
    print(f"QR decoding per {W}x{H} greyscale frame, {len(frames)} frames, seed {args.seed}")
    print(f"{'decoder':<32}{'median':>9}{'p95':>9}{'max':>9}{'correct':>9}{'misreads':>9}")
    for r in results:
        print(
            f"{r['decoder']:<32}{r['median_ms']:>7.2f}ms{r['p95_ms']:>7.2f}ms{r['max_ms']:>7.2f}ms"
            f"{r['correct']:>9.1%}{r['misreads']:>9}"
        )
        print("  " + ", ".join(f"{c} {v}" for c, v in r["by_condition"].items()))
    fps = app_fps(frames, args.app_seconds)
    print("kiosk app (Kivy offscreen, llvmpipe), rendered frames per second:")
    for name, row in fps.items():
        print(f"  {name:<14} " + ", ".join(f"{k} {v}" for k, v in row.items()))
    pyzbar = results[0]
    print(
        f"target: pyzbar p95 {pyzbar['p95_ms']:.1f} ms (≤ {TARGET_MS:.0f} ms: "
        f"{'met' if pyzbar['p95_ms'] <= TARGET_MS else 'missed'}); "
        f"run took {time.perf_counter() - started:.0f} s"
    )
    summary = {
        "bench": "kiosk_scan",
        "machine": platform.machine(),
        "frame": f"{W}x{H}",
        "decoders": results,
        "app": fps,
        "target_ms": TARGET_MS,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
