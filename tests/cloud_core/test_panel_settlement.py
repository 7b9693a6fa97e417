"""The panel's settlement page over real uvicorn and HTTP: the office sees every line of a
month, a tenant only its own, and the CSV it downloads is the API's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.terminal_helpers import grant, serve_terminal
from tests.cloud_core.test_settlements import redeem


@contextlib.contextmanager
def signed_in(client: httpx.Client, key: str) -> Iterator[httpx.Client]:
    base = str(client.base_url).rstrip("/")
    with httpx.Client(base_url=base, headers={"Origin": base}, timeout=10) as panel:
        assert panel.post("/panel/login", data={"key": key}).status_code == 303
        yield panel


def test_the_office_sees_every_line_a_tenant_its_own_and_the_csv_is_the_apis(tmp_path):
    with serve_terminal(tmp_path) as (client, app):
        r = client.post("/customers", json={"phone": "07911 123456"}, headers=h("kiosk"))
        ann = r.json()["id"]
        grant(app, ann, "mall", 500)
        redeem(client, ann, "P-1", 4000, 450)  # the mall's points, spent at the pizzeria
        redeem(client, ann, "B-1", 2000, 40, till="bean")  # and at Bean Bar
        with signed_in(client, KEYS["admin"]) as office:
            page = office.get("/panel/settlement", params={"period": "2026-11"})
            assert page.status_code == 200
            assert "pizzeria" in page.text and "bean-bar" in page.text and "4.50" in page.text
            csv = office.get("/panel/settlement.csv", params={"period": "2026-11"})
            api_csv = client.get("/settlements/2026-11/csv", headers=h("admin"))
            assert csv.text == api_csv.text and "pizzeria" in csv.text
            assert office.get("/panel/settlement", params={"period": "2026-13"}).status_code == 400
        # the pizzeria's tenant key (terminal_helpers: "pizza-tenant") sees its own line only
        with signed_in(client, KEYS["shoe"]) as pizzeria:
            page = pizzeria.get("/panel/settlement", params={"period": "2026-11"})
            assert "4.50" in page.text and "bean-bar" not in page.text
            csv = pizzeria.get("/panel/settlement.csv", params={"period": "2026-11"})
            assert "bean-bar" not in csv.text
        with signed_in(client, KEYS["bean"]) as bean:
            page = bean.get("/panel/settlement", params={"period": "2026-11"})
            assert "0.40" in page.text and "pizzeria" not in page.text
        # without a session: the sign-in page, no figures
        with httpx.Client(base_url=str(client.base_url)) as stranger:
            anon = stranger.get("/panel/settlement", follow_redirects=False)
            assert anon.status_code in (303, 307) and "pizzeria" not in anon.text
