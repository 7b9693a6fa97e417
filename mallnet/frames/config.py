"""Camera config: one model per source type, picked by ``type`` (a discriminated union).

This module imports neither numpy nor OpenCV, so any part can validate a
config that names a camera without the ``camera`` extra installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from mallnet.config import ConfigModel


class FileCamera(ConfigModel):
    """Frames from a video file, one image, or a folder of images (tests, the demo, replays)."""

    type: Literal["file"] = Field(description="Read frames from files.")
    path: Path = Field(description="A video file, an image file, or a folder of images.")
    fps: float = Field(
        default=10.0, gt=0, le=240, description="Frame rate for timestamps of image folders."
    )
    loop: bool = Field(default=False, description="Start again at the end instead of stopping.")


class OpenCVCamera(ConfigModel):
    """A USB camera (device index) or a network stream (RTSP/HTTP URL) through OpenCV."""

    type: Literal["opencv"] = Field(description="Read frames through cv2.VideoCapture.")
    device: int | str = Field(
        description="Device index (0 for /dev/video0), a device path, or an rtsp:// URL."
    )
    width: int | None = Field(default=None, gt=0, description="Requested frame width.")
    height: int | None = Field(default=None, gt=0, description="Requested frame height.")
    fps: float | None = Field(default=None, gt=0, description="Requested frame rate.")
    reconnect_min_s: float = Field(
        default=0.5, gt=0, description="First delay before reopening a lost camera."
    )
    reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Ceiling of the doubling reconnect delay."
    )
    read_failures: int = Field(
        default=3, ge=1, description="Failed reads in a row that count as a lost camera."
    )
    timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Longest wait to open a stream or read a frame before it counts as failed "
        "(a stalled RTSP stream must not hang the gate).",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> OpenCVCamera:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class Picamera2Camera(ConfigModel):
    """A Raspberry Pi camera module through picamera2 (only on a Pi)."""

    type: Literal["picamera2"] = Field(description="Read frames through picamera2.")
    width: int = Field(default=1280, gt=0, description="Frame width.")
    height: int = Field(default=720, gt=0, description="Frame height.")
    camera_index: int = Field(default=0, ge=0, description="Which camera, on boards with two.")


CameraConfig = Annotated[FileCamera | OpenCVCamera | Picamera2Camera, Field(discriminator="type")]
