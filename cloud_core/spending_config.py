"""The core's spending configuration (the ``spending:`` section of the core config).

Kept apart from ``cloud_core.config`` (like ``parking_config``) so the spending rules can
import it without a cycle. Points are worth one cent each: 500 points pay €5.00.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, model_validator

from mallnet.config import ConfigModel
from mallnet.wire.topics import ID_PATTERN

Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class PartnerRules(ConfigModel):
    """How one business earns and takes points at its tills (all optional: the defaults)."""

    coalition_cap_pct: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Most of an order (percent of the receipt's total) payable with coalition "
        "points here, over every redemption on that receipt.",
    )
    cashback_pct: float | None = Field(
        default=None, ge=0, le=100, description="Points back per purchase, percent of the sum."
    )
    cashback_pocket: Literal["store", "coalition"] | None = Field(
        default=None,
        description="Where cashback goes: the business's own pocket (spendable only there) or "
        "the coalition pocket (spendable at every partner; the business funds it).",
    )
    commission_pct: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="The mall's commission on this business's coalition cashback when it is "
        "spent at another partner (percent of the points' value, owed by this business).",
    )
    cashback_expiry_days: int | None = Field(
        default=None, ge=1, le=3650, description="Cashback points expire after this many days."
    )


class GoodsConfig(ConfigModel):
    """A goods account ("5 coffees"): a pocket counting items, not points, of one business."""

    id: Ident = Field(description="The pocket's id (not a business's id, not `mall`/`gift`).")
    business: Ident = Field(description="The business whose tills sell and take the items.")
    name: str = Field(min_length=1, max_length=60, description="Shown to shoppers: `coffee`.")
    expiry_days: int = Field(default=365, ge=1, le=3650, description="Items expire after this.")


class SpendingSettings(ConfigModel):
    """Tills, redemption caps, cashback, holds and settlements (docs/core.md "Terminal")."""

    defaults: PartnerRules = Field(
        default_factory=lambda: PartnerRules(
            coalition_cap_pct=15,
            cashback_pct=0,
            cashback_pocket="store",
            commission_pct=0,
            cashback_expiry_days=365,
        ),
        description="Rules of every business that `partners` does not override.",
    )
    partners: dict[Ident, PartnerRules] = Field(
        default_factory=dict, description="Per business: overrides of `defaults`."
    )
    hold_ttl_s: float = Field(
        default=300,
        ge=5,
        le=86_400,
        description="A reserved redemption neither committed nor released within this time "
        "expires and its points go back to the shopper.",
    )
    expiring_notice_days: int = Field(
        default=3,
        ge=0,
        le=60,
        description="Shoppers get one inbox notice per lot this many days before it expires "
        "(0: none).",
    )

    goods: tuple[GoodsConfig, ...] = Field(
        default=(), description="Goods accounts (items prepaid at one business)."
    )

    @model_validator(mode="after")
    def _goods_ids(self) -> Self:
        ids = [g.id for g in self.goods]
        if len(set(ids)) != len(ids):
            raise ValueError("a goods id is listed twice")
        clash = set(ids) & (
            {g.business for g in self.goods} | set(self.partners) | {"mall", "gift"}
        )
        if clash:
            raise ValueError(f"goods ids {sorted(clash)} clash with a business or pocket")
        return self

    def goods_of(self, goods_id: str) -> GoodsConfig | None:
        return next((g for g in self.goods if g.id == goods_id), None)

    def rules(self, business: str) -> PartnerRules:
        """The effective rules of a business (defaults with its overrides)."""
        overrides = self.partners.get(business, PartnerRules()).model_dump(exclude_none=True)
        return PartnerRules.model_validate({**self.defaults.model_dump(), **overrides})
