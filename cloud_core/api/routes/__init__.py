"""The HTTP API's routers, one per resource. Each handler checks its caller's role and
business (``deps.py``), then reads through ``reports`` or the domain modules, or writes
through them in one ``BEGIN IMMEDIATE`` transaction; no router carries SQL."""

from fastapi import APIRouter

from cloud_core.api.routes import (
    campaigns,
    certificates,
    coupons,
    customers,
    lotteries,
    mailings,
    mall,
    me,
    operations,
    parking,
    promo_codes,
    receipts,
    referrals,
    reviews,
    settlements,
    stats,
    store_qr,
    terminal,
    wallets,
)

#: In the order they are mounted (and listed in the OpenAPI document).
ROUTERS: tuple[APIRouter, ...] = (
    customers.router,
    wallets.router,
    mall.router,
    campaigns.router,
    stats.router,
    operations.router,
    parking.router,  # docs/parking.md
    terminal.router,  # docs/core.md "Terminal"
    settlements.router,
    certificates.router,
    receipts.router,  # docs/core.md "Receipt QR"
    mailings.router,  # docs/core.md "Mailings"
    me.auth,  # the shopper's own API: sign-in, then /me (docs/core.md)
    me.router,
    store_qr.router,  # store QR check-ins, referrals, lotteries: docs/core.md
    referrals.router,
    lotteries.router,
    reviews.router,
    promo_codes.router,  # pools and the gift showcase (docs/core.md "Promo-code pools")
    promo_codes.wallet_router,  # a shopper's codes
    coupons.router,  # coupon series (docs/core.md "Coupons")
    coupons.wallet_router,
    coupons.till_router,
    coupons.me_router,
)
