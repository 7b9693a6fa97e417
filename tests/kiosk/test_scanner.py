"""The kiosk's code reader, on QR codes made here, through the real libzbar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageFilter

from kiosk.errors import ImageError
from kiosk.scanner import load_image, scan

TOKEN = "mallnet:c:7f3a9b"


def _qr(tmp_path, text, name="code.png", scale=8, border=4):
    path = tmp_path / name
    segno.make_qr(text).save(str(path), scale=scale, border=border)
    return path


def test_reads_a_wallet_qr_code(tmp_path):
    [code] = scan(load_image(_qr(tmp_path, TOKEN)))
    assert (code.kind, code.text) == ("QRCODE", TOKEN)
    assert code.box[2] > 100 and code.box[3] > 100


def test_reads_a_photographed_code_blurred_on_a_grey_background(tmp_path):
    qr = Image.open(_qr(tmp_path, TOKEN, scale=6)).convert("L")
    photo = Image.new("L", (900, 700), 140)
    photo.paste(qr.rotate(8, expand=True, fillcolor=255), (300, 180))
    photo = photo.filter(ImageFilter.GaussianBlur(1.2))
    [code] = scan(photo)
    assert code.text == TOKEN


def test_two_codes_are_read_top_first_and_an_empty_image_has_none(tmp_path):
    top = Image.open(_qr(tmp_path, "first", "a.png")).convert("L")
    bottom = Image.open(_qr(tmp_path, "second", "b.png")).convert("L")
    sheet = Image.new("L", (top.width + 40, top.height * 2 + 80), 255)
    sheet.paste(bottom, (20, top.height + 60))
    sheet.paste(top, (20, 20))
    assert [c.text for c in scan(sheet)] == ["first", "second"]
    assert scan(Image.new("L", (200, 200), 255)) == []


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n garbage", b"not an image at all"])
def test_unreadable_images_are_one_clear_error(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(path)


def test_scan_command_prints_one_json_line_per_image(tmp_path):
    good = _qr(tmp_path, TOKEN)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff truncated")
    missing = tmp_path / "missing.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mallnet.cli",
            "kiosk",
            "scan",
            str(good),
            str(broken),
            str(missing),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0  # one image was readable
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(good), str(broken), str(missing)]
    assert lines[0]["codes"][0]["text"] == TOKEN
    assert "not a readable image" in lines[1]["error"]
    assert "no such file" in lines[2]["error"]
    assert "Traceback" not in result.stderr


def test_scan_command_fails_when_no_image_is_readable(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "kiosk", "scan", str(tmp_path / "nope.png")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1


def test_scan_command_without_libzbar_is_one_error_line(tmp_path):
    """The real `mallnet` command on a machine whose libzbar cannot be found.

    A ``sitecustomize`` on the child's PYTHONPATH hides the library from ctypes' lookup
    (what pyzbar asks); production code has no hook for this.
    """
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import ctypes.util\n"
        "_find = ctypes.util.find_library\n"
        "ctypes.util.find_library = lambda name: None if name == 'zbar' else _find(name)\n"
    )
    image = _qr(tmp_path, TOKEN)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mallnet")), "kiosk", "scan", str(image)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(hide)},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot load the zbar library" in lines[0] and "libzbar0" in lines[0]
