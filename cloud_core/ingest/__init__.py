"""The core's MQTT ingest: consumer (network), applier (one transaction per batch),
notice outbox, dead letters, node rows and periodic jobs. See docs/architecture.md."""

from cloud_core.ingest.applier import Applier
from cloud_core.ingest.consumer import Consumer, subscriptions

__all__ = ["Applier", "Consumer", "subscriptions"]
