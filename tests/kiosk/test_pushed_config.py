"""The core's settings for a kiosk over the retained ``…/kiosks/{id}/config`` topic: the real
core publishes them from its `kiosks` config, the real kiosk applies them; a malformed or an
older one changes nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_core.app import CoreApp
from kiosk.app import KioskRuntime, pushed_settings
from kiosk.checkin_queue import CheckinQueue
from kiosk.config import load_kiosk_config
from kiosk.viewmodel import Settings
from mallnet.wire.codec import encode
from mallnet.wire.payloads import KioskSettings
from mallnet.wire.topics import KIOSK_CONFIG
from tests.cloud_core.helpers import api_config, core_mqtt
from tests.conftest import MALL, wait_until
from tests.kiosk.fakes import ManualClock
from tests.kiosk.test_end_to_end import KEYS, KIOSK, STORE, write_config
from tests.kiosk.test_link import make_link


@pytest.fixture
def core_app(tmp_path, broker) -> Iterator[CoreApp]:
    (tmp_path / "core").mkdir()
    kiosk = {"id": KIOSK, "store": STORE, "language": "uk", "idle_timeout_s": 7, "carousel_s": 3}
    config = api_config(
        tmp_path / "core",
        KEYS,
        core_mqtt(broker),
        kiosks=[kiosk],
        ingest={"batch_wait_ms": 1, "expiry_interval_s": 3600},
    )
    app = CoreApp(config)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def test_the_core_pushes_a_kiosks_settings_and_the_kiosk_applies_them(
    broker, core_app, tmp_path
) -> None:
    api_url = f"http://127.0.0.1:{core_app.config.api.port}"
    config = load_kiosk_config(write_config(tmp_path, broker, api_url, None))
    assert config.kiosk.idle_timeout_s == 60  # the kiosk's own setting
    clock = ManualClock()
    runtime = KioskRuntime(config, clock=clock)
    vm = runtime.start()
    try:

        def applied() -> bool:
            runtime.drain()
            return vm.settings.idle_timeout_s == 7

        wait_until(applied, what="the core's settings at the kiosk")
        assert (vm.settings.language, vm.settings.carousel_s) == ("uk", 3)
        assert vm.settings.store == STORE and vm.t.language == "uk"  # idle: now in Ukrainian
        vm.start()
        clock.advance(7)  # the pushed idle timeout, not the kiosk's own 60 s
        vm.tick()
        assert vm.screen == "idle"
    finally:
        runtime.stop()


def test_a_malformed_or_older_config_is_rejected_and_changes_nothing(
    broker, connect, tmp_path
) -> None:
    core = connect("core")
    topic = KIOSK_CONFIG.topic(MALL, KIOSK)
    core.publish(topic, encode(KioskSettings(revision=5, idle_timeout_s=30)), 1, retain=True).wait(
        5
    )
    applied: list[KioskSettings] = []
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    link = make_link(broker, queue, on_config=applied.append)
    link.start()
    try:
        wait_until(lambda: len(applied) == 1, what="the retained config")
        for bad in (
            b'{"v": 1, "revision": 6, "idle_timeout_s": 1}',  # out of range
            b'{"v": 1, "revision": 6, "volume": 11}',  # unknown field
            b"not json",
        ):
            core.publish(topic, bad, 1).wait(5)
        wait_until(lambda: link.configs_rejected == 3, what="three rejected configs")
        core.publish(topic, encode(KioskSettings(revision=4, idle_timeout_s=90)), 1).wait(5)
        core.publish(topic, encode(KioskSettings(revision=6, carousel_s=4)), 1).wait(5)
        wait_until(lambda: len(applied) == 2, what="the newer config")
        assert [(s.revision, s.idle_timeout_s, s.carousel_s) for s in applied] == [
            (5, 30, None),
            (6, None, 4),
        ]
    finally:
        link.stop()
        queue.close()


def test_pushed_settings_override_only_what_the_core_sets() -> None:
    own = Settings(store="atrium", idle_timeout_s=60, carousel_s=8, language="en")
    merged = pushed_settings(own, KioskSettings(revision=1, idle_timeout_s=20))
    assert merged == Settings(store=None, idle_timeout_s=20, carousel_s=8, language="en")
    merged = pushed_settings(
        own, KioskSettings(revision=2, store="cafe", language="ru", carousel_s=2)
    )
    assert (merged.store, merged.language, merged.carousel_s, merged.idle_timeout_s) == (
        "cafe",
        "ru",
        2,
        60,
    )
