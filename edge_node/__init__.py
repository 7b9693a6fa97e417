"""The edge nodes: this package's top level is what every node shares (``uplink``, outbox,
publisher, health, config sections, CLI); ``ble/`` is the store node, ``camera/`` the gate node."""
