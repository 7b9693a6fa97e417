"""Labelled licence-plate images, generated deterministically from a seed.

Tests, the benchmark and the demo need gate frames with known plates; no data
set may be downloaded, so this module draws them: a plate in one of the
supported national styles (UA/EU with the blue band, US, BR Mercosul), put on
a car-ish scene with perspective, then degraded (blur, noise, night contrast).
Everything is a pure function of a ``numpy.random.Generator``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
Condition = Literal[
    "clear", "perspective", "blur", "noise", "night", "far", "motion", "dirty", "glare", "combined"
]
CONDITIONS: tuple[Condition, ...] = (
    "clear",
    "perspective",
    "blur",
    "noise",
    "night",
    "far",  # the plate only 9–11 % of the frame wide, slightly soft and noisy
    "motion",  # horizontal motion blur of a moving car, and noise
)
# Harder than a gate camera should see; the benchmark reports them apart.
HARD_CONDITIONS: tuple[Condition, ...] = (
    "dirty",  # mud spots over the characters, a monospaced font
    "glare",  # a headlight's reflection washing out part of the plate
    "combined",  # perspective, motion blur, night and noise at once
)
STYLES = ("UA", "FR", "ES", "US", "BR")

_FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",  # fonts-dejavu-core (bootstrap.sh)
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
)
_UA_LETTERS = "ABCEHIKMOPTX"  # Cyrillic letters with Latin look-alikes, as UA plates use
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I/O/Q as in most schemes
_DIGITS = "0123456789"
_FR_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # SIV: no I, O, U


def _f32(points: Any) -> npt.NDArray[np.float32]:
    return np.asarray(points, dtype=np.float32)


@cache
def _font_file(mono: bool) -> str | None:
    for name in _FONT_FILES[1:] if mono else _FONT_FILES:
        if Path(name).exists():
            return name
    log.warning("DejaVu fonts not installed; synthetic plates use Pillow's default font")
    return None


@cache
def plate_font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A bold sans font: DejaVu from the system if there, else Pillow's built-in one."""
    name = _font_file(mono)
    return ImageFont.truetype(name, size) if name else ImageFont.load_default(size)


def random_plate_text(style: str, rng: np.random.Generator) -> str:
    """A random plate number in one national format (normalised: letters and digits)."""

    def pick(alphabet: str, n: int) -> str:
        return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n))

    if style == "UA":
        return pick(_UA_LETTERS, 2) + pick(_DIGITS, 4) + pick(_UA_LETTERS, 2)
    if style == "FR":
        return pick(_FR_LETTERS, 2) + pick(_DIGITS, 3) + pick(_FR_LETTERS, 2)
    if style == "ES":
        return pick(_DIGITS, 4) + pick("BCDFGHJKLMNPRSTVWXYZ", 3)
    if style == "US":
        if rng.random() < 0.5:
            return pick("123456789", 1) + pick(_LETTERS, 3) + pick(_DIGITS, 3)  # CA
        return pick(_LETTERS, 3) + pick(_DIGITS, 4)  # NY, TX, PA
    if style == "BR":
        return pick(_LETTERS, 3) + pick(_DIGITS, 1) + pick(_LETTERS, 1) + pick(_DIGITS, 2)
    raise ValueError(f"unknown plate style {style!r}")


def _display_text(text: str, style: str) -> str:
    if style == "UA":
        return f"{text[:2]} {text[2:6]} {text[6:]}"
    if style == "FR":
        return f"{text[:2]}-{text[2:5]}-{text[5:]}"
    if style == "ES":
        return f"{text[:4]} {text[4:]}"
    if style == "US" and text[0].isdigit():
        return text
    if style == "US":
        return f"{text[:3]} {text[3:]}"
    return text


def render_plate(text: str, style: str, scale: int = 4, mono: bool = False) -> Image8:
    """A frontal plate image (BGR). ``scale`` sets the resolution (4 ≈ 520×110 px)."""
    w, h = 130 * scale, 28 * scale
    band_w = 0
    img = Image.new("RGB", (w, h), (245, 245, 240))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, w - 1, h - 1), outline=(20, 20, 20), width=max(2, scale))
    top = 0
    if style in ("UA", "FR", "ES"):
        band_w = 11 * scale
        draw.rectangle((2, 2, band_w, h - 3), fill=(0, 51, 153))
        code = {"UA": "UA", "FR": "F", "ES": "E"}[style]
        small = plate_font(7 * scale)
        draw.text((band_w / 2 + 1, h * 0.78), code, font=small, fill=(255, 255, 255), anchor="mm")
    elif style == "BR":
        top = 6 * scale
        draw.rectangle((2, 2, w - 3, top), fill=(0, 51, 153))
        small = plate_font(4 * scale)
        draw.text((w / 2, top / 2 + 1), "BRASIL", font=small, fill=(255, 255, 255), anchor="mm")
    elif style == "US":
        top = 6 * scale
        small = plate_font(5 * scale)
        draw.text(
            (w / 2, top / 2 + scale), "California", font=small, fill=(160, 20, 20), anchor="mm"
        )
    shown = _display_text(text, style)
    font = plate_font(int((h - top) * 0.78), mono)
    # Render wide, then squeeze horizontally to the plate's narrow glyphs.
    left, t, right, b = draw.textbbox((0, 0), shown, font=font)
    glyphs = Image.new("L", (int(right - left) + 4, int(b - t) + 4), 0)
    ImageDraw.Draw(glyphs).text((2 - left, 2 - t), shown, font=font, fill=255)
    room_w, room_h = w - band_w - 8 * scale, int((h - top) * 0.8)
    gw = min(room_w, int(glyphs.width * room_h / glyphs.height * 0.82))
    glyphs = glyphs.resize((gw, room_h), Image.Resampling.LANCZOS)
    x = band_w + (w - band_w - gw) // 2
    y = top + (h - top - room_h) // 2
    color = (20, 20, 90) if style == "US" else (15, 15, 15)
    img.paste(Image.new("RGB", glyphs.size, color), (x, y), glyphs)
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR).astype(np.uint8)


@dataclass(frozen=True)
class Sample:
    """One labelled frame: the image (BGR), the true plate and where it is."""

    image: Image8
    plate: str
    style: str
    condition: Condition
    box: tuple[int, int, int, int]  # x, y, w, h of the plate in the frame


def _car_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Image8, tuple[int, int]]:
    """A gate scene: ground, wall, a car front; returns it and the bumper centre."""
    fw, fh = size
    img = np.zeros((fh, fw, 3), np.uint8)
    sky = rng.integers(90, 170)
    img[:] = (sky, sky, sky)
    ground_y = int(fh * rng.uniform(0.55, 0.65))
    img[ground_y:] = rng.integers(50, 90)
    # Texture: stripes and blobs so the background is not flat.
    for _ in range(12):
        x0, y0 = int(rng.integers(0, fw)), int(rng.integers(0, fh))
        colour = tuple(int(c) for c in rng.integers(30, 200, 3))
        cv2.line(img, (x0, y0), (x0 + int(rng.integers(-300, 300)), y0), colour, 3)
    cx = int(fw * rng.uniform(0.4, 0.6))
    car_w = int(fw * rng.uniform(0.5, 0.62))
    car_top, car_bottom = int(fh * rng.uniform(0.18, 0.26)), int(fh * rng.uniform(0.86, 0.94))
    body = tuple(int(c) for c in rng.integers(20, 230, 3))
    x0, x1 = cx - car_w // 2, cx + car_w // 2
    cv2.rectangle(img, (x0, car_top + (car_bottom - car_top) // 3), (x1, car_bottom), body, -1)
    roof = np.array(
        [
            (x0 + car_w // 8, car_top + (car_bottom - car_top) // 3),
            (x0 + car_w // 4, car_top),
            (x1 - car_w // 4, car_top),
            (x1 - car_w // 8, car_top + (car_bottom - car_top) // 3),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [roof], body)
    glass = roof.copy()
    glass[:, 1] = np.clip(glass[:, 1] + [-6, 10, 10, -6], 0, fh)
    glass[0, 0] += 15
    glass[3, 0] -= 15
    cv2.fillPoly(img, [glass], (60, 50, 40))
    lamp_y = car_top + (car_bottom - car_top) // 2
    for lx in (x0 + car_w // 10, x1 - car_w // 10):
        cv2.ellipse(img, (lx, lamp_y), (car_w // 14, car_w // 30), 0, 0, 360, (230, 230, 210), -1)
    grille_y = lamp_y + (car_bottom - car_top) // 12
    cv2.rectangle(
        img, (cx - car_w // 6, grille_y), (cx + car_w // 6, grille_y + 18), (25, 25, 25), -1
    )
    bumper_y = car_bottom - (car_bottom - car_top) // 5
    cv2.rectangle(img, (x0, bumper_y - 6), (x1, bumper_y + 4), (35, 35, 35), -1)
    for wx in (x0 + car_w // 7, x1 - car_w // 7):
        cv2.rectangle(
            img,
            (wx - car_w // 12, car_bottom - 4),
            (wx + car_w // 12, car_bottom + 26),
            (15, 15, 15),
            -1,
        )
    return img, (cx, bumper_y - (car_bottom - car_top) // 9)


def make_sample(
    seed: int,
    style: str | None = None,
    condition: Condition = "clear",
    size: tuple[int, int] = (1280, 720),
    plate: str | None = None,
) -> Sample:
    """One whole-scene gate frame with a plate, fully determined by its arguments."""
    rng = np.random.default_rng(seed)
    style = style or STYLES[int(rng.integers(0, len(STYLES)))]
    text = plate or random_plate_text(style, rng)
    frame, (cx, cy) = _car_scene(rng, size)
    plate_img = render_plate(text, style, mono=condition == "dirty")
    if condition == "dirty":
        plate_img = _mud(plate_img, rng)
    ph, pw = plate_img.shape[:2]
    low, high = (0.09, 0.11) if condition == "far" else (0.15, 0.2)
    target_w = rng.uniform(low, high) * size[0]
    sx = target_w / pw
    tw, th = target_w, ph * sx
    src = _f32([(0, 0), (pw, 0), (pw, ph), (0, ph)])
    if condition in ("perspective", "combined"):
        skew = rng.uniform(-0.25, 0.25) * th
        squeeze = rng.uniform(0.78, 0.92)
        rot = rng.uniform(-0.1, 0.1)
        corners = _f32(
            [
                (-tw / 2, -th / 2 + skew),
                (tw / 2 * squeeze, -th / 2 - skew),
                (tw / 2 * squeeze, th / 2 - skew),
                (-tw / 2, th / 2 + skew),
            ]
        )
        c, s = np.cos(rot), np.sin(rot)
        corners = corners @ _f32([[c, s], [-s, c]])
    else:
        tilt = rng.uniform(-0.03, 0.03)
        corners = _f32(
            [
                (-tw / 2, -th / 2 + tilt * tw),
                (tw / 2, -th / 2 - tilt * tw),
                (tw / 2, th / 2 - tilt * tw),
                (-tw / 2, th / 2 + tilt * tw),
            ]
        )
    dst = corners + _f32([cx, cy])
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    x, y, w, h = cv2.boundingRect(dst.astype(np.int32).reshape(-1, 1, 2))
    x0, y0 = max(0, x - 2), max(0, y - 2)
    x1, y1 = min(size[0], x + w + 2), min(size[1], y + h + 2)
    # Warp the plate into its bounding region only, then blend it onto the car.
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], np.float64)
    local = shift @ matrix
    region = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(plate_img, local, region, flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(
        np.full((ph, pw), 255, np.uint8), local, region, flags=cv2.INTER_AREA
    )
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (patch * (1 - alpha) + warped * alpha).astype(np.uint8)
    if condition == "glare":
        _glare(frame, (x, y, w, h), rng)
    frame = degrade(frame, condition, rng)
    return Sample(frame, text, style, condition, (int(x), int(y), int(w), int(h)))


def _mud(plate: Image8, rng: np.random.Generator) -> Image8:
    """Dark, semi-transparent spots over a plate."""
    h, w = plate.shape[:2]
    out = plate.astype(np.float32)
    for _ in range(int(rng.integers(3, 7))):
        spot = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(h // 8, h // 3)), int(rng.integers(h // 10, h // 4)))
        cv2.ellipse(spot, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        spot = cast(npt.NDArray[np.float32], cv2.GaussianBlur(spot, (0, 0), h / 25))
        strength = float(rng.uniform(0.5, 0.8))
        out *= (1 - strength * spot)[:, :, None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _glare(frame: Image8, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A bright reflection over part of the plate (in place)."""
    x, y, w, h = box
    cx = x + float(rng.uniform(0.2, 0.8)) * w
    cy = y + float(rng.uniform(0.3, 0.7)) * h
    radius = float(rng.uniform(0.5, 0.9)) * h
    x0, x1 = max(0, int(cx - 3 * radius)), min(frame.shape[1], int(cx + 3 * radius))
    y0, y1 = max(0, int(cy - 3 * radius)), min(frame.shape[0], int(cy + 3 * radius))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    light = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2)) * rng.uniform(180, 255)
    region = frame[y0:y1, x0:x1].astype(np.float32) + light[:, :, None]
    frame[y0:y1, x0:x1] = np.clip(region, 0, 255).astype(np.uint8)


def _noise(image: Image8, sigma: float, rng: np.random.Generator) -> Image8:
    noise = np.empty(image.shape, np.int16)
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))  # OpenCV's generator is fast; seed it from ours
    channels = image.shape[2] if image.ndim == 3 else 1
    cv2.randn(noise, np.zeros(channels), np.full(channels, float(sigma)))
    noisy = image.astype(np.int16)
    noisy += noise
    np.clip(noisy, 0, 255, out=noisy)
    return noisy.astype(np.uint8)


def degrade(image: Image8, condition: Condition, rng: np.random.Generator) -> Image8:
    """Apply one capture condition: blur, sensor noise or night contrast (clear: a little noise)."""
    if condition == "blur":
        k = int(rng.choice([3, 5]))
        blurred = cast(Image8, cv2.GaussianBlur(image, (k, k), rng.uniform(0.9, 1.4)))
        return _noise(blurred, 2, rng)
    if condition == "noise":
        return _noise(image, rng.uniform(10, 16), rng)
    if condition == "far":
        soft = cast(Image8, cv2.GaussianBlur(image, (3, 3), 0.8))
        return _noise(soft, 6, rng)
    if condition == "combined":
        kernel = np.zeros((5, 5), np.float32)
        kernel[2, :] = 0.2
        smeared = cast(Image8, cv2.filter2D(image, -1, kernel))
        lut = 255 * (np.arange(256) / 255) ** 1.6 * 0.6
        return _noise(cast(Image8, cv2.LUT(smeared, lut.astype(np.uint8))), 7, rng)
    if condition == "motion":
        length = int(rng.integers(7, 12))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        smeared = cast(Image8, cv2.filter2D(image, -1, kernel))
        return _noise(smeared, 5, rng)
    if condition == "night":
        gamma = rng.uniform(1.8, 2.4)
        lut = 255 * (np.arange(256) / 255) ** gamma * rng.uniform(0.35, 0.5)
        dark = cast(Image8, cv2.LUT(image, lut.astype(np.uint8)))
        return _noise(dark, 4, rng)
    return _noise(image, 2, rng)


def labelled_set(
    count: int, seed: int = 0, conditions: tuple[Condition, ...] = CONDITIONS
) -> list[Sample]:
    """``count`` samples cycling through styles and conditions, reproducible from ``seed``."""
    samples = []
    for i in range(count):
        style = STYLES[i % len(STYLES)]
        condition = conditions[(i // len(STYLES)) % len(conditions)]
        samples.append(make_sample(seed * 100_003 + i, style, condition))
    return samples


def empty_lane(seed: int, size: tuple[int, int] = (1280, 720)) -> Image8:
    """The gate's view with no car: wall, ground and a few static stripes."""
    rng = np.random.default_rng(seed)
    fw, fh = size
    frame = np.zeros((fh, fw, 3), np.uint8)
    frame[:] = int(rng.integers(90, 170))
    frame[int(fh * 0.6) :] = int(rng.integers(50, 90))
    for _ in range(12):
        x0, y0 = int(rng.integers(0, fw)), int(rng.integers(0, fh))
        colour = tuple(int(c) for c in rng.integers(30, 200, 3))
        cv2.line(frame, (x0, y0), (x0 + int(rng.integers(-300, 300)), y0), colour, 3)
    return frame


def pass_frames(plate: str, style: str, seed: int = 0, idle: int = 3, car: int = 4) -> list[Image8]:
    """One vehicle pass as a gate camera sees it: empty lane, the car, empty lane."""
    lane = empty_lane(seed)
    vehicle = make_sample(seed, style, "clear", plate=plate).image
    return [lane] * idle + [vehicle] * car + [lane] * idle
