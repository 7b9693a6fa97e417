"""What every part of mallnet speaks: the wire contract, identities, config, logging, MQTT."""

__version__ = "0.1.0"
