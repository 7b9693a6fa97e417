"""The kiosk's composition root: config in, every part built and wired here, nowhere else.

``KioskRuntime.start`` builds the on-disk queue, the core's HTTP client (the
kiosk's own key), the MQTT link, the view model and the camera thread, and
points every background result (pushed offers, sent check-ins, scanned codes,
HTTP answers) at the UI thread through one ``UiInbox``. ``run`` adds the Kivy
window (full screen unless the config says otherwise) and blocks until it
closes. Tests call ``start``/``drain``/``stop`` without a window.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from typing import Any

from kiosk.camera import ScanThread
from kiosk.checkin_queue import CheckinQueue
from kiosk.config import KioskConfig
from kiosk.core_api import HttpCore
from kiosk.i18n import Translator
from kiosk.link import MqttLink
from kiosk.ports import Offer
from kiosk.ui_bridge import UiInbox
from kiosk.viewmodel import Clock, KioskViewModel, Settings
from mallnet.mqtt import MqttClient
from mallnet.systemd import Notifier, Watchdog
from mallnet.wire.payloads import KioskSettings

log = logging.getLogger(__name__)

#: A camera delivering no frame for this long (hung, unplugged) withholds the watchdog ping.
CAMERA_STALL_S = 60.0


def pushed_settings(own: Settings, pushed: KioskSettings) -> Settings:
    """The kiosk's settings with the core's pushed ones over them: the store always, the
    language, idle timeout and carousel interval where the core sets them."""
    changes: dict[str, Any] = {"store": pushed.store}
    if pushed.language is not None:
        changes["language"] = pushed.language
    if pushed.idle_timeout_s is not None:
        changes["idle_timeout_s"] = pushed.idle_timeout_s
    if pushed.carousel_s is not None:
        changes["carousel_s"] = pushed.carousel_s
    return replace(own, **changes)


class KioskRuntime:
    """One kiosk: its parts, their threads, and the order they start and stop in."""

    def __init__(
        self,
        config: KioskConfig,
        *,
        clock: Clock = time.monotonic,
        notifier: Notifier | None = None,
    ) -> None:
        """``notifier``: systemd's (``Notifier.from_environment()`` at the command line); the
        window's own clock then says READY once shown and pings the watchdog while the camera
        (if any) delivers frames."""
        self.config = config
        self._clock = clock
        self.watchdog = Watchdog(notifier or Notifier(None), [self._camera_check])
        self.inbox = UiInbox()
        self.queue: CheckinQueue | None = None
        self.core: HttpCore | None = None
        self.link: MqttLink | None = None
        self.vm: KioskViewModel | None = None
        self.camera: ScanThread | None = None

    def start(self) -> KioskViewModel:
        config = self.config
        k = config.kiosk
        self.queue = CheckinQueue(config.queue.path, max_rows=config.queue.max_rows)
        self.core = HttpCore(
            str(config.core.url), config.core.resolve_key(), timeout_s=config.core.timeout_s
        )

        def client(**kwargs: Any) -> MqttClient:
            return MqttClient(config.mqtt, k.id, **kwargs)

        self.link = MqttLink(
            client,
            self.queue,
            mall=k.mall,
            kiosk=k.id,
            on_offers=lambda offers: self.inbox.post(lambda: self._offers(offers)),
            on_delivered=lambda ids: self.inbox.post(lambda: self._delivered(ids)),
            on_config=lambda pushed: self.inbox.post(lambda: self._config(pushed)),
        )
        self.own_settings = Settings(
            country_code=k.country_code,
            store=k.store,
            idle_timeout_s=k.idle_timeout_s,
            carousel_s=k.carousel_s,
            message_s=k.message_s,
            expiry_warning_days=k.expiry_warning_days,
        )
        vm = KioskViewModel(
            self.core,
            self.link,
            Translator(),
            settings=self.own_settings,
            clock=self._clock,
            run_io=self.inbox.run_io,
        )
        self.vm = vm
        self.link.start()
        # The retained offers arrive over MQTT; ask the API too, for a kiosk that starts
        # while the broker is away.
        self.inbox.run_io(self.core.offers, self._offers_answer)
        if config.camera is not None:
            from mallnet.frames.sources import open_source

            source = open_source(config.camera, max_sleep_s=0.5)
            self.camera = ScanThread(
                source,
                lambda text: self.inbox.post(lambda: vm.on_code(text)),
                debounce_s=config.scanner.debounce_s,
                max_fps=config.scanner.max_fps,
            )
            self.camera.start()
        log.info("kiosk %s started (mall %s)", k.id, k.mall)
        return vm

    def _offers(self, offers: tuple[Offer, ...]) -> None:
        if self.vm is not None:
            self.vm.set_offers(offers)

    def _offers_answer(self, result: tuple[Offer, ...] | Exception) -> None:
        if isinstance(result, Exception):
            log.warning("offers not available from the API now: %s", result)
        elif self.vm is not None and not self.vm.offers:
            self.vm.set_offers(result)

    def _config(self, pushed: KioskSettings) -> None:
        if self.vm is not None:
            self.vm.configure(pushed_settings(self.own_settings, pushed))

    def _delivered(self, ids: set[str]) -> None:
        if self.vm is not None:
            self.vm.on_delivered(ids)

    def _camera_check(self) -> str | None:
        camera = self.camera
        return camera.problem(CAMERA_STALL_S) if camera is not None else None

    def drain(self) -> int:
        """Run what background threads handed to the UI thread (the window does this itself)."""
        return self.inbox.drain()

    def run(self) -> int:
        """Start everything and show the window until it is closed."""
        # Kivy reads these when first imported: `mallnet` parses its own arguments, and
        # Kivy's records already reach our logging (no second console handler).
        os.environ.setdefault("KIVY_NO_ARGS", "1")
        os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
        from kivy.config import Config

        screen = self.config.screen
        Config.set("graphics", "fullscreen", "auto" if screen.fullscreen else "0")
        Config.set("graphics", "width", str(screen.width))
        Config.set("graphics", "height", str(screen.height))
        Config.set("kivy", "exit_on_escape", "0")
        vm = self.start()
        try:
            from kiosk.ui.app import KioskUi

            KioskUi(vm, self.inbox, watchdog=self.watchdog).run()
        finally:
            self.watchdog.stopping()
            self.stop()
        return 0

    def stop(self) -> None:
        if self.camera is not None:
            self.camera.stop()
        if self.link is not None:
            self.link.stop()
        if self.core is not None:
            self.core.close()
        if self.queue is not None:
            self.queue.close()
        self.inbox.close()
        log.info("kiosk %s stopped", self.config.kiosk.id)
