"""``mallnet demo``: a whole simulated mall on this machine, on embedded defaults.

The demo composes the real parts as separate processes, exactly as a mall runs them,
and talks to them only through their commands, the broker and the HTTP API (never by
importing them):

1. a real Mosquitto from ``mqtt_broker/`` config, with a credential per device;
2. the cloud core (``mallnet core run``) on SQLite, with twelve stores of twelve tenants
   along one corridor (``cast``), a car park and a kiosk;
3. two dozen shoppers registered through the API, each with a rotating beacon key, and
   tenants' campaigns;
4. the period's foot traffic made by ``mallnet edge simulate-mall``: shoppers arrive,
   walk the corridor, browse some stores and glance into others, passers-by walk
   through; every node hears every walk with noise and losses;
5. a store node per store (``mallnet edge run``) replaying what it hears, live;
6. a parking gate (``mallnet edge gate``) reading Ann's plate from generated frames:
   her registered car earns her the entry bonus;
7. a kiosk (``mallnet kiosk run``; in a window when a display is present, offscreen
   otherwise) where Cat holds up her app's QR code and checks in;
8. an inbox watcher that logs each credit notice and offer as it arrives.

The mall stays open until Ctrl-C, ``--duration`` or the end of the simulated hour; then
every device stops and ``verdict`` compares the visit credits with what the shoppers
did: exit 0 only if every browse was credited exactly once and no glance was.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mallnet.demo.processes import DemoError

__all__ = ["DemoError", "run_demo"]


def run_demo(
    workdir: Path | None = None, duration_s: float | None = None, *, quiet: bool = False
) -> int:
    """Run the demo mall; returns a process exit code."""
    from mallnet.demo.scenario import run

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mallnet-demo-")
        workdir = Path(tmp.name)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(workdir, duration_s, quiet=quiet)
    finally:
        if tmp is not None:
            tmp.cleanup()
