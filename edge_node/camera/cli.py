"""The camera's ``mallnet edge`` subcommands: ``read-plate`` and ``gate``.

``mallnet edge read-plate IMAGE… [--json]`` reads the plate of each image,
for operators checking a camera's placement. With ``--json`` it writes one
object per image per line::

    {"image": "gate.jpg", "plate": "AB1234CE", "confidence": 0.97,
     "country": "UA", "box": [x, y, w, h]}

``plate`` is null when nothing valid was read (``box`` then shows the most
plate-like region, if any); an unreadable image gives
``{"image": …, "error": "…"}``. The exit status is 1 when every image failed
to load, 2 when the OCR engine is not installed, else 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from mallnet.errors import FrameError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


def _needs_camera_extra(handler: Handler) -> Handler:
    """Exit 2 with a hint, not a traceback, where the ``camera`` extra is not installed
    (a store Pi has only ``edge``: no OpenCV, numpy or OCR engine)."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ImportError as exc:
            log.error(
                "`mallnet edge %s` needs the camera extra (pip install 'mallnet[camera]'): %s",
                args.edge_command,
                exc,
            )
            return 2

    return run


DEFAULT_COUNTRIES = ("EU", "US", "BR")


def _roi(text: str) -> tuple[float, float, float, float]:
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("ROI is x,y,w,h as fractions of the frame") from None
    if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1):
        raise argparse.ArgumentTypeError("ROI values are fractions between 0 and 1")
    return (x, y, w, h)


def add_camera_commands(edge_subparsers: Any) -> None:
    """Add the camera commands to the ``mallnet edge`` sub-parser group."""
    read = edge_subparsers.add_parser(
        "read-plate", help="read licence plates from image files (check a camera's placement)"
    )
    read.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG …)")
    read.add_argument("--json", action="store_true", help="one JSON object per image per line")
    read.add_argument(
        "--country",
        action="append",
        default=None,
        help="plate formats to prefer: a country (UA, FR, IT, ES, PL, DE, GB, IN, US, BR) or "
        "EU; repeat for several, in priority order (default: EU, US, BR); a plate of no listed "
        "format is still read, less surely",
    )
    read.add_argument("--roi", type=_roi, default=None, help="only look at x,y,w,h (fractions)")
    read.add_argument(
        "--no-fallback",
        action="store_true",
        help="never escalate to the larger detector input (faster, misses small plates)",
    )
    read.add_argument("--threads", type=int, default=1, help="OCR threads (default 1)")
    read.set_defaults(handler=_needs_camera_extra(_read_plate))

    frames = edge_subparsers.add_parser(
        "synth-frames", help="write a synthetic vehicle pass (JPEG frames) for a demo or a test"
    )
    frames.add_argument("--out", required=True, help="folder for the frames (created)")
    frames.add_argument("--plate", required=True, help="the plate, e.g. KA7777TX")
    frames.add_argument(
        "--style", default="UA", choices=["UA", "FR", "ES", "US", "BR"], help="plate style"
    )
    frames.add_argument("--seed", type=int, default=0, help="scene seed")
    frames.set_defaults(handler=_needs_camera_extra(_synth_frames))

    gate = edge_subparsers.add_parser(
        "gate", help="run a parking-gate node (cameras → plates → parking events)"
    )
    gate.add_argument("--config", required=True, help="the gate's YAML config")
    gate.add_argument(
        "--validate-config", action="store_true", help="check the config, print problems, exit"
    )
    gate.set_defaults(handler=_needs_camera_extra(_gate))


def _synth_frames(args: argparse.Namespace) -> int:
    from pathlib import Path

    import cv2

    from edge_node.camera.formats import formats_for, match_format, normalise
    from edge_node.camera.synth import pass_frames

    plate = normalise(args.plate)
    fitted = match_format(plate, formats_for([args.style]), max_fixes=0, max_dropped=0)
    if fitted is None or fitted.plate != plate:
        log.error("%r is not a %s plate (a gate would never read it)", args.plate, args.style)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = pass_frames(plate, args.style, args.seed)
    for index, frame in enumerate(frames):
        cv2.imwrite(str(out / f"{index:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    log.info("wrote %d frames of a vehicle pass to %s", len(frames), out)
    return 0


def _gate(args: argparse.Namespace) -> int:
    from edge_node.camera.config import load_gate_config
    from edge_node.config_check import load_or_report, report_valid

    config = load_or_report(load_gate_config, args.config)
    if config is None:
        return 2
    if args.validate_config:
        lanes = ", ".join(f"{lane.gate}/{lane.direction}" for lane in config.lanes)
        return report_valid(args.config, config.mqtt, f"gate node {config.node.id}: {lanes}")
    from edge_node.camera.app import GateApp
    from mallnet.systemd import Notifier

    return GateApp(config, notifier=Notifier.from_environment()).run()  # systemd's Type=notify


def _read_plate(args: argparse.Namespace) -> int:
    from edge_node.camera.config import ReaderSettings
    from edge_node.camera.errors import CameraError
    from edge_node.camera.formats import formats_for
    from edge_node.camera.gate import FULL_FRAME, cut_roi
    from edge_node.camera.localize import LocalizerSettings, find_candidates
    from edge_node.camera.ocr import RapidOcrReader
    from edge_node.camera.reader import read_frame
    from mallnet.frames.sources import load_image

    try:
        formats = formats_for(args.country or DEFAULT_COUNTRIES)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    settings = ReaderSettings(fallback=not args.no_fallback)  # --no-fallback: no escalation
    try:
        reader = RapidOcrReader(threads=args.threads)
    except CameraError as exc:
        log.error("%s", exc)
        return 2
    roi = args.roi or FULL_FRAME
    loaded = 0
    for path in args.images:
        result: dict[str, Any] = {"image": path}
        try:
            image = load_image(path)
        except FrameError as exc:
            result["error"] = str(exc)
            _emit(result, args.json)
            continue
        loaded += 1
        region, (ox, oy) = cut_roi(image, roi)
        try:
            read = read_frame(region, reader, formats, settings)
        except CameraError as exc:
            result["error"] = str(exc)
            _emit(result, args.json)
            continue
        if read is not None:
            x, y, w, h = read.box
            result.update(
                plate=read.plate,
                confidence=read.confidence,
                country=read.country,
                box=[x + ox, y + oy, w, h],
            )
        else:
            candidates = find_candidates(region, LocalizerSettings())
            box = None
            if candidates:
                x, y, w, h = candidates[0].box
                box = [x + ox, y + oy, w, h]
            result.update(plate=None, confidence=0.0, country=None, box=box)
        _emit(result, args.json)
    return 0 if loaded else 1


def _emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    elif "error" in result:
        sys.stdout.write(f"{result['image']}: error: {result['error']}\n")
    elif result["plate"] is None:
        where = f" (plate-like region at {result['box']})" if result["box"] else ""
        sys.stdout.write(f"{result['image']}: no plate read{where}\n")
    else:
        sys.stdout.write(
            f"{result['image']}: {result['plate']} ({result['country'] or 'no listed format'}, "
            f"confidence {result['confidence']:.2f}) at {result['box']}\n"
        )
    sys.stdout.flush()
