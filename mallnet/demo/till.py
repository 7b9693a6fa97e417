"""A sale at Bean Bar's till (the ``terminal`` API), as its seller rings it up.

The seller finds Ann by phone, quotes a 2 € order, is refused more coalition points than
Bean Bar's 15 % cap, reserves and commits the capped share of Ann's parking bonus,
registers the purchase (10 % cashback) and reads the settlement report: the mall owes
Bean Bar what Ann's points paid (docs/core.md "Terminal").
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mallnet.demo import cast
from mallnet.demo.processes import Api

log = logging.getLogger(__name__)

TILL_STORE = cast.STORES[0]  # Bean Bar
ORDER_CENTS = 200


def spending_rules() -> dict[str, Any]:
    """The tenants' till rules in the core config: Bean Bar and Pizza Piazza take points."""
    rule = {"coalition_cap_pct": 15, "cashback_pct": 10}
    return {"partners": {TILL_STORE.business: rule, "pizza-piazza": rule}}


def till_sale(core_dir: Path, admin: Api, driver_phone: str) -> bool:
    """Ann pays part of a 2 € order at Bean Bar with her parking bonus, capped at 15 %."""
    key = (core_dir / f"terminal-{TILL_STORE.id}.key").read_text().strip()
    till = Api(admin.port, key)
    who = till.call("POST", "/terminal/identify", {"phone": driver_phone})
    order = {"customer": who["customer"], "receipt": "DEMO-0001", "order_cents": ORDER_CENTS}
    quote = till.call("POST", "/terminal/quote", order)
    mall = next(p for p in who["pockets"] if p["pocket"] == "mall")["available"]
    status, over = till.answer(
        "POST",
        "/terminal/holds",
        order | {"coalition_points": quote["cap_points"] + 1},
        idempotency_key="demo-hold-over-cap",
        refused=(409,),
    )
    log.info(
        "till: %s's 2 € order at %s: cap %d points (15 %%), asking %d → %d %s",
        cast.DRIVER,
        TILL_STORE.name,
        quote["cap_points"],
        quote["cap_points"] + 1,
        status,
        over.get("type", ""),
    )
    points = min(mall, quote["cap_left"])
    hold = till.call(
        "POST",
        "/terminal/holds",
        order | {"coalition_points": points},
        idempotency_key="demo-hold-1",
    )
    till.call("POST", f"/terminal/holds/{hold['id']}/commit", idempotency_key="demo-commit-1")
    bought = till.call(
        "POST",
        "/terminal/purchases",
        {"customer": who["customer"], "receipt": "DEMO-0001", "amount_cents": ORDER_CENTS - points},
        idempotency_key="demo-purchase-1",
    )
    period = datetime.now(UTC).strftime("%Y-%m")
    report = admin.call("GET", f"/settlements/{period}")
    owed = sum(
        line["amount_cents"]
        for line in report["lines"]
        if (line["payer"], line["payee"]) == ("mall", TILL_STORE.business)
    )
    log.info(
        "till: %d points paid (of %d cents), %d points cashback; settlement: the mall owes "
        "%s %d cents",
        points,
        ORDER_CENTS,
        bought["cashback_points"],
        TILL_STORE.business,
        owed,
    )
    return status == 409 and points == quote["cap_points"] and owed == points
