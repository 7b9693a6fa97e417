"""The real ``BleakScanner`` against a mock BlueZ (python-dbusmock) on a private D-Bus.

What runs for real: bleak's BlueZ backend and dbus-fast, a real ``dbus-daemon``
acting as the system bus, and dbusmock's ``bluez5`` template serving
``org.bluez`` (adapter, devices, advertisement-monitor manager). Adverts are
made by changing a device's ``RSSI`` / ``ManufacturerData`` properties, which is
what BlueZ does when it hears one. What a mock cannot show: the kernel's and the
controller's own duplicate filtering and radio behaviour — those need the
opt-in real-radio test at the end (``--ble-adapter hci0``).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dbus
import pytest

from edge_node.ble.bleak_source import BleakSource, power_cycle_adapter
from edge_node.ble.config import BleakSourceSettings
from edge_node.ble.ibeacon import IBeaconParser
from edge_node.ble.sources import Advert
from tests.edge_node.helpers import PREFIX, key

# Never skipped: the README's test command installs dbus (apt) and python-dbusmock with
# dbus-python (dev extra), so a missing piece is a broken set-up to fix, not less testing.
assert shutil.which("dbus-daemon"), "needs dbus-daemon (scripts/bootstrap.sh installs `dbus`)"

MOCK_IFACE = "org.bluez.Mock"
DEVICE_IFACE = "org.bluez.Device1"
ADDRESS = "C4:7C:8D:6A:11:02"


@dataclass
class BlueZ:
    mock: Any
    bus: Any
    log: Path

    def adapter(self, name: str = "hci0") -> Any:
        return self.bus.get_object("org.bluez", f"/org/bluez/{name}")

    def calls(self, method: str, adapter: str = "hci0") -> list[Any]:
        obj = self.adapter(adapter)
        return list(obj.GetMethodCalls(method, dbus_interface="org.freedesktop.DBus.Mock"))

    def add_device(self, address: str = ADDRESS, adapter: str = "hci0") -> Any:
        path = self.mock.AddDevice(adapter, address, "tag", dbus_interface=MOCK_IFACE)
        device = self.bus.get_object("org.bluez", path)
        # dbusmock's bluez5 template types ManufacturerData and ServiceData as arrays of
        # dicts (aa{qv}, aa{sv}); BlueZ's are dicts. Give the device BlueZ's types first.
        device.UpdateProperties(
            DEVICE_IFACE,
            {
                "ManufacturerData": dbus.Dictionary({}, signature="qv"),
                "ServiceData": dbus.Dictionary({}, signature="sv"),
            },
            dbus_interface="org.freedesktop.DBus.Mock",
        )
        return device

    def advertise(self, device: Any, mfr: dict[int, bytes], rssi: int) -> None:
        data = dbus.Dictionary(
            {
                dbus.UInt16(company): dbus.Array(payload, signature="y", variant_level=1)
                for company, payload in mfr.items()
            },
            signature="qv",
        )
        device.UpdateProperties(
            DEVICE_IFACE,
            {"RSSI": dbus.Int16(rssi), "ManufacturerData": data},
            dbus_interface="org.freedesktop.DBus.Mock",
        )


def _start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monitor_api: bool) -> Iterator[BlueZ]:
    from dbusmock.testcase import BusType, PrivateDBus, SpawnedMock

    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)  # restored afterwards
    log = tmp_path / "bluez-mock.log"
    with PrivateDBus(BusType.SYSTEM) as private, log.open("w") as out:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", private.address)
        mock = SpawnedMock.spawn_with_template(
            "bluez5", {"enable_monitor_api": monitor_api}, stdout=out, stderr=out
        )
        try:
            mock.obj.AddAdapter("hci0", "store-a", dbus_interface=MOCK_IFACE)
            bus = dbus.bus.BusConnection(private.address)
            yield BlueZ(mock.obj, bus, log)
            bus.close()
        finally:
            mock.terminate()


@pytest.fixture
def bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueZ]:
    """BlueZ without the (experimental) advertisement monitor API."""
    yield from _start(tmp_path, monkeypatch, monitor_api=False)


@pytest.fixture
def bluez_experimental(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlueZ]:
    """BlueZ started with --experimental: advertisement monitors available."""
    yield from _start(tmp_path, monkeypatch, monitor_api=True)


def _frame() -> bytes:
    from edge_node.ble.ibeacon import build_frame
    from mallnet import identity

    f = identity.beacon_frame(PREFIX, key(5), 1)
    return build_frame(f.uuid, f.major, f.minor, -59)


async def _until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - counters of the source, no event to await
            await asyncio.sleep(0.01)  # polling a condition, not waiting a fixed time


async def _take(source: BleakSource, bluez: BlueZ, repeats: int) -> list[Advert]:
    device = bluez.add_device()
    stream = aiter(source.adverts())
    got: list[Advert] = []
    try:
        first = asyncio.ensure_future(anext(stream))
        await _until(lambda: source.mode is not None)
        frame = _frame()
        # The same frame over and over: duplicates must keep arriving (RSSI varies a little).
        bluez.advertise(device, {0x004C: frame[2:], 0x0059: b"\x01\x02"}, -60)
        got.append(await asyncio.wait_for(first, 10))
        for i in range(1, repeats):
            bluez.advertise(device, {0x004C: frame[2:]}, -60 - (i % 2))
            got.append(await asyncio.wait_for(anext(stream), 10))
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return got


def test_active_scan_with_duplicate_data_when_bluez_has_no_monitor_api(bluez: BlueZ) -> None:
    source = BleakSource(BleakSourceSettings(type="bleak", adapter="hci0", watchdog_s=30))
    adverts = asyncio.run(_take(source, bluez, repeats=5))
    assert source.mode == "active"
    assert source.stats.extra["passive_refused"] == 1
    assert len(adverts) == 5 and all(a.address == ADDRESS for a in adverts)
    assert adverts[0].mfr == _frame() and adverts[0].rssi == -60
    sighting = IBeaconParser(PREFIX).sighting(adverts[0].mfr)
    assert sighting is not None and sighting.measured_power == -59
    filter_call = bluez.calls("SetDiscoveryFilter")[0]  # (bleak clears it again on stop)
    filters = dict(filter_call[1][0])
    assert filters["DuplicateData"] is True or filters["DuplicateData"] == 1
    assert str(filters["Transport"]) == "le"
    assert bluez.calls("StartDiscovery") and bluez.calls("StopDiscovery")


def test_an_advert_without_a_real_rssi_is_counted_not_yielded(bluez: BlueZ) -> None:
    """HCI's 127 ("RSSI not available") would read as a tag touching the node: a false enter."""
    source = BleakSource(BleakSourceSettings(type="bleak", watchdog_s=30))

    async def scenario() -> Advert:
        device = bluez.add_device()
        stream = aiter(source.adverts())
        first = asyncio.ensure_future(anext(stream))
        try:
            await _until(lambda: source.mode is not None)
            bluez.advertise(device, {0x004C: _frame()[2:]}, 127)
            await _until(lambda: source.stats.extra["bad_rssi"] >= 1)
            bluez.advertise(device, {0x004C: _frame()[2:]}, -71)
            return await asyncio.wait_for(first, 10)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()).rssi == -71
    assert source.stats.extra["bad_rssi"] == 1 and source.stats.adverts == 1


def test_passive_scan_with_an_ibeacon_or_pattern_when_bluez_allows(
    bluez_experimental: BlueZ,
) -> None:
    source = BleakSource(BleakSourceSettings(type="bleak", adapter="hci0", scanning_mode="auto"))
    adverts = asyncio.run(_take(source, bluez_experimental, repeats=3))
    assert source.mode == "passive" and source.stats.extra["passive_refused"] == 0
    assert len(adverts) == 3
    (register,) = bluez_experimental.calls("RegisterMonitor")
    assert str(register[1][0]).startswith("/org/bleak/")
    assert not bluez_experimental.calls("StartDiscovery")  # no active scanning at all


def test_forced_passive_scan_fails_clearly_without_monitor_api(bluez: BlueZ) -> None:
    from edge_node.errors import SourceError

    source = BleakSource(BleakSourceSettings(type="bleak", scanning_mode="passive"))

    async def start() -> None:
        await anext(aiter(source.adverts()))

    with pytest.raises(SourceError, match="passive scanning refused"):
        asyncio.run(start())


def test_watchdog_restarts_the_scanner_then_resets_the_adapter(bluez: BlueZ) -> None:
    resets: list[str] = []

    async def reset(adapter: str) -> None:
        resets.append(adapter)
        await power_cycle_adapter(adapter)  # the real D-Bus call, against the mock

    settings = BleakSourceSettings(type="bleak", watchdog_s=0.2, restarts_before_reset=2)
    source = BleakSource(settings, reset_adapter=reset)

    async def scenario() -> Advert:
        device = bluez.add_device()
        stream = aiter(source.adverts())
        pending = asyncio.ensure_future(anext(stream))
        try:
            await _until(lambda: source.stats.adapter_resets >= 1)
            # A beacon keeps advertising; one advert may fall between a stop and a restart.
            async with asyncio.timeout(10):
                while True:
                    bluez.advertise(device, {0x004C: _frame()[2:]}, -70)
                    done, _ = await asyncio.wait({pending}, timeout=0.5)
                    if done:
                        return pending.result()
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    advert = asyncio.run(scenario())
    assert advert.rssi == -70
    assert resets == ["hci0"]
    assert source.stats.scanner_restarts >= 3  # two fruitless restarts, then reset + restart
    assert len(bluez.calls("StartDiscovery")) == source.stats.scanner_restarts + 1
    log = bluez.log.read_text()
    powered = [line for line in log.splitlines() if "Adapter1.Powered" in line and "Set" in line]
    assert len(powered) == 2 and "False" in powered[0] and "True" in powered[1]


def test_a_node_waits_for_an_adapter_that_is_not_there_yet(bluez: BlueZ) -> None:
    """At boot the adapter may come up after the node: the node keeps trying, counted,
    and scans once it appears (`mallnet edge record` fails at once instead)."""
    from edge_node.errors import SourceError

    settings = BleakSourceSettings(type="bleak", adapter="hci1", watchdog_s=0.1)

    async def start_once() -> None:
        await anext(aiter(BleakSource(settings).adverts()))

    with pytest.raises(SourceError):
        asyncio.run(start_once())

    source = BleakSource(settings, reset_adapter=_no_reset, retry_first_start=True)

    async def scenario() -> Advert:
        stream = aiter(source.adverts())
        pending = asyncio.ensure_future(anext(stream))
        try:
            await _until(lambda: source.stats.scanner_restarts >= 2)
            assert source.mode is None and not pending.done()  # still no adapter
            bluez.mock.AddAdapter("hci1", "store-b", dbus_interface=MOCK_IFACE)
            await _until(lambda: source.mode is not None)
            device = bluez.add_device(adapter="hci1")
            async with asyncio.timeout(10):
                while True:
                    bluez.advertise(device, {0x004C: _frame()[2:]}, -65)
                    done, _ = await asyncio.wait({pending}, timeout=0.5)
                    if done:
                        return pending.result()
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    assert asyncio.run(scenario()).rssi == -65
    assert source.mode == "active"


async def _no_reset(_adapter: str) -> None:
    """No adapter to power-cycle yet."""


def test_record_writes_live_adverts_as_a_replayable_trace(bluez: BlueZ, tmp_path: Path) -> None:
    import threading

    from edge_node.ble.sources import advert_from_json
    from mallnet.cli import main

    out = tmp_path / "capture.jsonl"
    device = bluez.add_device()
    argv = [
        "edge",
        "record",
        "--out",
        str(out),
        "--mode",
        "active",
        "--max-adverts",
        "3",
        "--duration",
        "60",
    ]
    codes: list[int] = []
    recorder = threading.Thread(target=lambda: codes.append(main(argv)), daemon=True)
    recorder.start()
    rssi = -65
    while recorder.is_alive():  # a beacon advertising until the recorder has enough
        bluez.advertise(device, {0x004C: _frame()[2:]}, rssi)
        rssi = -65 if rssi == -66 else -66
        recorder.join(0.1)
    assert codes == [0]
    adverts = [advert_from_json(line) for line in out.read_text().splitlines()]
    assert len(adverts) == 3
    assert all(a.mfr == _frame() and a.address == ADDRESS for a in adverts)
    assert [a.t for a in adverts] == sorted(a.t for a in adverts)


@pytest.mark.ble_adapter
def test_real_radio_hears_ibeacons(request: pytest.FixtureRequest) -> None:
    """Opt-in: `pytest --ble-adapter hci0` with at least one iBeacon advertising nearby."""
    adapter = request.config.getoption("--ble-adapter")
    source = BleakSource(BleakSourceSettings(type="bleak", adapter=adapter, watchdog_s=20))

    async def first() -> Advert:
        stream = aiter(source.adverts())
        try:
            return await asyncio.wait_for(anext(stream), 60)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    advert = asyncio.run(first())
    assert advert.mfr[:2] == b"\x4c\x00"
