"""The wallet screen's texts from a ``Wallet``: balances, points expiring soon, recent credits.

A pure function of the wallet and the time, used by the view model. With the
core's summary (``Wallet.details``) the screen shows per pocket how many points
expire within the core's window and when the first of them do, and the last
credits; without it (an older core) only the next expiry date per pocket, and
it says honestly that recent credits are not shown here.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kiosk.i18n import Translator
from kiosk.ports import Wallet, WalletDetails


def date_text(value: datetime) -> str:
    return value.strftime("%d.%m.%Y")


def pocket_name(t: Translator, pocket: str) -> str:
    return t("wallet.pocket_mall") if pocket == "mall" else pocket


def wallet_texts(
    t: Translator, wallet: Wallet, *, now: datetime, warning_days: int
) -> dict[str, str]:
    """``wallet_lines``, ``wallet_expiring`` and ``wallet_recent`` of a loaded wallet."""
    if not wallet.pockets:
        return {"wallet_lines": t("wallet.empty"), "wallet_expiring": "", "wallet_recent": ""}
    lines = [
        t("wallet.pocket", pocket=pocket_name(t, p.pocket), points=p.available)
        for p in wallet.pockets
    ]
    out = {"wallet_lines": "\n".join(lines)}
    if wallet.details is not None:
        out.update(_details_texts(t, wallet.details))
        return out
    soon = now + timedelta(days=warning_days)
    expiring = [
        t("wallet.expiring", pocket=pocket_name(t, p.pocket), date=date_text(p.next_expiry))
        for p in wallet.pockets
        if p.next_expiry is not None and p.next_expiry <= soon
    ]
    out["wallet_expiring"] = (
        "\n".join(expiring) if expiring else t("wallet.none_expiring", days=warning_days)
    )
    out["wallet_recent"] = t("wallet.recent_unavailable")
    return out


def _details_texts(t: Translator, details: WalletDetails) -> dict[str, str]:
    expiring = [
        t(
            "wallet.expiring_points",
            pocket=pocket_name(t, e.pocket),
            points=e.points,
            date=date_text(e.earliest),
        )
        for e in details.expiring
    ]
    recent = [
        t(
            "wallet.credit",
            date=date_text(c.ts),
            pocket=pocket_name(t, c.pocket),
            points=c.points,
            text=c.text,
        ).strip()
        for c in details.recent
    ]
    return {
        "wallet_expiring": "\n".join(expiring)
        if expiring
        else t("wallet.none_expiring", days=details.expiring_days),
        "wallet_recent": "\n".join(recent) if recent else t("wallet.no_recent"),
    }
