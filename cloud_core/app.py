"""The composition root: builds the core's parts from its config and runs them.

``CoreApp`` is what ``mallnet core run`` starts and what tests start in-process: the
MQTT consumer (``Consumer`` around ``Applier``) and the HTTP API (uvicorn in a thread),
each with its own database connection, sharing one injected clock. Nothing is built at
import time.

The consuming connection carries the core's retained status (``CORE_STATUS``, entity
``ingest.client_id``): ``online`` on every connect, ``offline`` as its Last Will and on a
clean stop. Each connection is its own broker client, bound to its client id
(``CoreConfig.connection``): ingest ``{client_id}``, publisher ``{client_id}-out``, the
API-only status watch ``{client_id}-api``. The API's ``/ready`` checks the database and
this process's ingest connections; an API running apart (``--only api``) reads the
workers' retained status.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

import uvicorn

from cloud_core.api import create_app
from cloud_core.api.auth import ApiContext, KeyRing, load_api_keys
from cloud_core.config import CoreConfig
from cloud_core.errors import CoreError
from cloud_core.ingest import Applier, Consumer, subscriptions
from cloud_core.mail_dispatch import Dispatcher
from cloud_core.metrics import WorkerCollector
from cloud_core.readiness import CoreStatusWatch, readiness
from cloud_core.store import Store, connect_store, open_store
from cloud_core.telemetry import TelemetrySink, make_sink
from mallnet import __version__
from mallnet.dynsec import CORE_API, CORE_OUT
from mallnet.mqtt import Inbound, MqttClient, Will
from mallnet.wire import encode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import CORE_STATUS

log = logging.getLogger(__name__)

Only = Literal["api", "ingest"] | None
#: Longer than any batch may take (a locked database fails in seconds and is retried).
INGEST_STALL_S = 120.0


class CoreApp:
    def __init__(
        self,
        config: CoreConfig,
        *,
        only: Only = None,
        clock: Callable[[], float] = time.time,
        after_commit: Callable[[int], None] | None = None,
    ) -> None:
        """``after_commit``: called by the consumer after each committed batch, before its
        acks (batches committed so far); the tests' crash point, unset in production."""
        self.config = config
        self.after_commit = after_commit
        self.only = only
        self.clock = clock
        self.consumer: Consumer | None = None
        self.telemetry: TelemetrySink | None = None
        self.server: uvicorn.Server | None = None
        self.status_watch: CoreStatusWatch | None = None
        self.dispatcher: Dispatcher | None = None
        self._stores: list[Store] = []
        self._server_thread: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Open the database (migrating it), then start the consumer and/or the API."""
        ingest_store = open_store(self.config.database)
        self._stores.append(ingest_store)
        if self.only != "api":
            self.telemetry = make_sink(self.config.telemetry)
            self.consumer = self._build_consumer(ingest_store, self.telemetry)
            self.consumer.start()
        if self.only != "ingest":
            keys = KeyRing(load_api_keys(self.config.api))
            api_store = connect_store(self.config.database)
            self._stores.append(api_store)
            connections: dict[str, MqttClient] = {}
            consumer = self.consumer
            if consumer is not None:
                connections["ingest"] = consumer.client
                connections["ingest publisher"] = consumer.publisher
            else:
                settings, client_id = self.config.connection(CORE_API)
                self.status_watch = CoreStatusWatch(settings, self.config.mall, client_id)
            checks = readiness(self.config.database, connections, self.status_watch)

            def ready() -> list[str]:
                # a batch that could not commit (e.g. disk full) first, then the live checks
                storage = consumer.storage_problem if consumer is not None else None
                return [storage, *checks()] if storage else checks()

            ctx = ApiContext(self.config, api_store, keys, self.clock, ready=ready)
            if consumer is not None:  # this worker's counters on this API's /metrics
                ctx.metrics.register(WorkerCollector(consumer))
            app = create_app(ctx)
            server_config = uvicorn.Config(
                app,
                host=self.config.api.host,
                port=self.config.api.port,
                log_config=None,
                lifespan="off",
                access_log=False,
            )
            self.server = uvicorn.Server(server_config)
            self._server_thread = threading.Thread(
                target=self._serve, args=(self.server,), name="core-api", daemon=True
            )
            self._server_thread.start()
            deadline = time.monotonic() + timeout
            while not self.server.started:
                if not self._server_thread.is_alive() or time.monotonic() > deadline:
                    self.stop()
                    raise CoreError(
                        f"the API did not start on {self.config.api.host}:{self.config.api.port}"
                        " (port in use?)"
                    )
                time.sleep(0.01)  # polling a condition, not a fixed wait
            log.info("API on http://%s:%s", self.config.api.host, self.config.api.port)
            if self.config.mailings is not None:
                # mailings and the weekly digest (cloud_core/mail_dispatch.py)
                dispatch_store = connect_store(self.config.database)
                self._stores.insert(0, dispatch_store)  # the API's stays last
                self.dispatcher = Dispatcher(self.config, dispatch_store, self.clock)
                self.dispatcher.start()

    @staticmethod
    def _serve(server: uvicorn.Server) -> None:
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind; start() reports it
            log.error("the API server stopped at start")

    def _build_consumer(self, store: Store, telemetry: TelemetrySink) -> Consumer:
        applier = Applier(self.config, store, self.clock)
        ingest = self.config.ingest
        mall, worker = self.config.mall, ingest.client_id
        since = datetime.now(UTC)

        def status(state: Literal["online", "offline"]) -> Will:
            payload = DeviceStatus(state=state, device=worker, since=since, software=__version__)
            return Will(CORE_STATUS.topic(mall, worker), encode(payload))

        ingest_settings, ingest_id = self.config.connection()

        def client_factory(on_message: Callable[[Inbound], None]) -> MqttClient:
            return MqttClient(
                ingest_settings,
                ingest_id,
                subscriptions=subscriptions(self.config),
                on_message=on_message,
                manual_ack=True,
                persistent_session=True,
                receive_maximum=ingest.receive_maximum,
                will=status("offline"),
                birth=status("online"),
            )

        publisher = MqttClient(*self.config.connection(CORE_OUT))
        return Consumer(
            applier,
            client_factory,
            telemetry,
            publisher=publisher,
            batch_max=ingest.batch_max,
            batch_wait_s=ingest.batch_wait_ms / 1000,
            expiry_interval_s=ingest.expiry_interval_s,
            kiosk_offers_interval_s=ingest.kiosk_offers_interval_s,
            offline=status("offline"),
            after_commit=self.after_commit,
        )

    def health_problems(self) -> list[str]:
        """What keeps this process from working (the systemd watchdog withholds its ping):
        a dead or stuck ingest worker, a dead API server. A broker or database outage is not
        one: the process rides those out itself (``/ready`` reports them)."""
        problems = []
        consumer = self.consumer
        if consumer is not None:
            stuck = time.monotonic() - consumer.turned_at
            if not consumer.alive:
                problems.append("the ingest worker stopped")
            elif stuck > INGEST_STALL_S:
                problems.append(f"the ingest worker has not turned for {stuck:.0f} s")
        thread = self._server_thread
        if self.only != "ingest" and (thread is None or not thread.is_alive()):
            problems.append("the API server stopped")
        return problems

    def stop(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self.server is not None:
            self.server.should_exit = True
            if self._server_thread is not None:
                self._server_thread.join(10)
        if self.consumer is not None:
            self.consumer.stop()
            log.info("ingest totals: %s", json.dumps(self.consumer.stats(), sort_keys=True))
        if self.status_watch is not None:
            self.status_watch.stop()
        if self.telemetry is not None:
            self.telemetry.close()
        for store in self._stores:
            store.close()
        self._stores.clear()
