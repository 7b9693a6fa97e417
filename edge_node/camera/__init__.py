"""The parking gate: frames, motion gating, plate reading, voted parking events.

See docs/parking.md.
"""
