"""Live adverts from BlueZ through bleak, hardened for long unattended runs.

* **Duplicates**: BlueZ reports a device once unless asked otherwise; active
  scans set the discovery filter ``DuplicateData=True`` (and ``Transport=le``) so
  every repeated advert produces a ``PropertiesChanged`` and reaches us.
* **Passive or active**: passive scanning (no scan requests, less air time and
  power) needs BlueZ's advertisement monitor API (BlueZ ≥ 5.56 started with
  ``--experimental``); it is registered with an or-pattern matching Apple
  iBeacon manufacturer data (``4c 00 02 15``). ``scanning_mode: auto`` tries it
  and falls back to active scanning when BlueZ refuses.
* **Watchdog**: after ``watchdog_s`` without an advert the scanner is stopped
  and started again; after ``restarts_before_reset`` fruitless restarts the
  adapter is power-cycled over D-Bus (``Adapter1.Powered`` off, on). Both are
  counted in ``stats`` and reported in the heartbeat.

bleak and dbus-fast are imported lazily, so the rest of the node (and its
tests) runs where they are absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from edge_node.ble.config import BleakSourceSettings
from edge_node.ble.ibeacon import APPLE_COMPANY_ID
from edge_node.ble.sources import Advert, SourceStats
from edge_node.errors import SourceError

log = logging.getLogger(__name__)

IBEACON_PATTERN = bytes((0x4C, 0x00, 0x02, 0x15))
RSSI_MIN, RSSI_MAX = -127, 20  # dBm a real advert can have (the trace format's range too)
QUEUE_LIMIT = 20_000  # adverts waiting for the loop; beyond it they are dropped and counted
_APPLE_LE = APPLE_COMPANY_ID.to_bytes(2, "little")


async def power_cycle_adapter(adapter: str) -> None:
    """Reset a BlueZ adapter: set ``Powered`` false then true on the system bus."""
    from dbus_fast import BusType, Message, MessageType, Variant
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        for powered in (False, True):
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=f"/org/bluez/{adapter}",
                    interface="org.freedesktop.DBus.Properties",
                    member="Set",
                    signature="ssv",
                    body=["org.bluez.Adapter1", "Powered", Variant("b", powered)],
                )
            )
            if reply is None or reply.message_type == MessageType.ERROR:
                detail = reply.body if reply is not None else "no reply"
                raise SourceError(f"cannot power-cycle {adapter}: {detail}")
    finally:
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


class BleakSource:
    """A ``BeaconSource`` scanning with ``bleak.BleakScanner`` on BlueZ."""

    def __init__(
        self,
        settings: BleakSourceSettings,
        *,
        clock: Callable[[], float] = time.time,
        reset_adapter: Callable[[str], Awaitable[None]] = power_cycle_adapter,
        retry_first_start: bool = False,
    ) -> None:
        self.settings = settings
        # A node keeps trying when the adapter is not there yet (bluetoothd still starting at
        # boot, a USB dongle replugged); `mallnet edge record` fails at once instead.
        self.retry_first_start = retry_first_start
        self.stats = SourceStats(
            extra={"non_apple": 0, "passive_refused": 0, "queue_overflow": 0, "bad_rssi": 0}
        )
        self.mode: str | None = None  # the mode actually in use
        self._clock = clock
        self._reset_adapter = reset_adapter
        self._queue: asyncio.Queue[Advert] | None = None

    def now(self) -> float:
        return self._clock()

    def _on_advert(self, device: Any, data: Any) -> None:
        payload = data.manufacturer_data.get(APPLE_COMPANY_ID)
        if payload is None:
            self.stats.extra["non_apple"] += 1
            return
        assert self._queue is not None
        rssi = int(data.rssi)
        if not RSSI_MIN <= rssi <= RSSI_MAX:  # 127 is HCI's "not available": never a distance
            self.stats.extra["bad_rssi"] += 1
            return
        advert = Advert(
            self._clock(), device.address, rssi, _APPLE_LE + bytes(payload), data.tx_power
        )
        try:
            self._queue.put_nowait(advert)
        except asyncio.QueueFull:  # the consumer is stalled: drop, count, keep scanning
            self.stats.extra["queue_overflow"] += 1

    async def _start(self) -> Any:
        try:
            from bleak import BleakScanner
            from bleak.args.bluez import OrPattern
            from bleak.assigned_numbers import AdvertisementDataType
            from bleak.exc import BleakError
        except ImportError as exc:
            raise SourceError(f"bleak is not installed ({exc}); install the 'edge' extra") from exc
        adapter = self.settings.adapter
        mode = self.settings.scanning_mode
        if mode in ("auto", "passive"):
            pattern = OrPattern(
                0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, IBEACON_PATTERN
            )
            scanner = BleakScanner(
                self._on_advert,
                scanning_mode="passive",
                bluez={"adapter": adapter, "or_patterns": [pattern]},
            )
            try:
                await scanner.start()
                self.mode = "passive"
                return scanner
            except OSError as exc:  # no system bus at all (BlueZ/D-Bus not running)
                raise SourceError(f"cannot reach BlueZ for {adapter}: {exc}") from exc
            except BleakError as exc:
                if mode == "passive":
                    raise SourceError(f"passive scanning refused on {adapter}: {exc}") from exc
                self.stats.extra["passive_refused"] += 1
                log.warning("passive scanning refused (%s); scanning actively", exc)
        scanner = BleakScanner(
            self._on_advert,
            scanning_mode="active",
            bluez={
                "adapter": adapter,
                "filters": {"DuplicateData": True, "Transport": "le"},
            },
        )
        try:
            await scanner.start()
        except (BleakError, OSError) as exc:  # OSError: no system bus (BlueZ/D-Bus not running)
            raise SourceError(f"cannot scan on {adapter}: {exc}") from exc
        self.mode = "active"
        return scanner

    async def _stop(self, scanner: Any) -> None:
        if scanner is None:
            return
        try:
            await scanner.stop()
        except Exception as exc:  # the adapter may be gone; the restart decides
            log.warning("stopping the scanner failed: %s", exc)

    async def adverts(self) -> AsyncIterator[Advert]:
        self._queue = asyncio.Queue(maxsize=QUEUE_LIMIT)
        scanner: Any = None
        try:
            scanner = await self._start()
            log.info("scanning on %s (%s)", self.settings.adapter, self.mode)
        except SourceError as exc:
            if not self.retry_first_start:
                raise
            log.error("cannot start scanning (%s); the watchdog keeps trying", exc)
        fruitless = 0
        try:
            while True:
                self.stats.beat = time.monotonic()  # a hung D-Bus call stops these
                try:
                    advert = await asyncio.wait_for(self._queue.get(), self.settings.watchdog_s)
                except TimeoutError:
                    await self._stop(scanner)
                    fruitless += 1
                    if fruitless > self.settings.restarts_before_reset:
                        fruitless = 0
                        self.stats.adapter_resets += 1
                        log.warning(
                            "no adverts after restarts: resetting %s", self.settings.adapter
                        )
                        try:
                            await self._reset_adapter(self.settings.adapter)
                        except Exception as exc:
                            log.error("adapter reset failed: %s", exc)
                    self.stats.scanner_restarts += 1
                    log.warning(
                        "no adverts for %.0fs: restarting the scanner (%d so far)",
                        self.settings.watchdog_s,
                        self.stats.scanner_restarts,
                    )
                    try:
                        scanner = await self._start()
                        log.info("scanning on %s (%s)", self.settings.adapter, self.mode)
                    except SourceError as exc:  # try again at the next watchdog period
                        scanner = None
                        log.error("scanner restart failed: %s", exc)
                    continue
                fruitless = 0
                self.stats.adverts += 1
                yield advert
        finally:
            await self._stop(scanner)
