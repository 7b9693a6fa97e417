"""The store node: beacon sources → iBeacon parser → RSSI filters → presence → pipeline, its
config and its composition root (``app``)."""
