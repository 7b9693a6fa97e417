"""Frames from cameras and files behind one seam, shared by the parking gate and the kiosk.

``mallnet.frames.config`` (camera config models) needs only pydantic;
``mallnet.frames.sources`` needs numpy and OpenCV (the ``camera`` extra).
"""
