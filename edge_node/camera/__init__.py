"""The parking gate node: frames, motion gating, plate reading, voted parking events, its config
and its composition root (``app``).

See docs/parking.md.
"""
