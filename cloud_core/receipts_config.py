"""Config of receipt QR scans (``receipts:``): how old a receipt may be, and the receipt game."""

from __future__ import annotations

from pydantic import Field

from mallnet.config import ConfigModel


class ReceiptGame(ConfigModel):
    """Receipts from N different partners within one week (Monday to Sunday, the mall's
    time) pay a prize into the coalition pocket, once per shopper and week."""

    partners: int = Field(default=3, ge=2, le=100, description="Different partners per week.")
    prize_points: int = Field(default=100, ge=1, le=1_000_000, description="The prize (points).")


class ReceiptSettings(ConfigModel):
    enabled: bool = Field(default=True, description="Whether shoppers may scan receipts.")
    max_age_days: int = Field(
        default=7, ge=1, le=366, description="Receipts older than this earn nothing."
    )
    game: ReceiptGame | None = Field(
        default=None, description="The weekly receipt game; leave out for none."
    )
