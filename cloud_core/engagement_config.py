"""Config of mailings (``mailings:``): the delivery channels, the outbox's retry policy and
the weekly digest (docs/core.md "Mailings")."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from cloud_core.settings import read_secret
from mallnet.config import ConfigModel, parse_yaml, read_text_file, validate_data


class _Secret(ConfigModel):
    secret_file: Path | None = Field(
        default=None, description="File with the HMAC secret (mode 0600)."
    )
    secret: SecretStr | None = Field(
        default=None, description="Inline secret; development only, prefer secret_file."
    )

    @model_validator(mode="after")
    def _has_secret(self) -> Self:
        if self.secret_file is None and self.secret is None:
            raise ValueError("give secret_file (or secret in development)")
        return self

    def key(self, what: str) -> bytes:
        """The HMAC key; ``ConfigError`` if unusable."""
        return read_secret(self.secret_file, self.secret, what)


class WebhookChannel(_Secret):
    """A chatbot's endpoint: one JSON POST per recipient, signed
    ``X-Mallnet-Signature: sha256=<hex HMAC of the body>``."""

    url: str = Field(pattern=r"^https?://", max_length=500, description="Where to POST.")
    timeout_s: float = Field(default=10, gt=0, le=120, description="Seconds per request.")


class SmtpCredentials(ConfigModel):
    username: str = Field(min_length=1, max_length=200, description="SMTP user.")
    password: SecretStr = Field(description="SMTP password.")


class SmtpChannel(ConfigModel):
    """E-mail over SMTP (stdlib ``smtplib``) to the customer's stored address."""

    host: str = Field(min_length=1, max_length=253, description="SMTP server.")
    port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS.")
    from_address: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+$", max_length=254, description="The sender's address."
    )
    credentials_file: Path | None = Field(
        default=None,
        description="YAML file `{username, password}` (mode 0600); leave out for no login.",
    )
    timeout_s: float = Field(default=20, gt=0, le=300, description="Seconds per connection.")

    def credentials(self) -> SmtpCredentials | None:
        """The login from ``credentials_file``; ``ConfigError`` if unreadable or invalid."""
        if self.credentials_file is None:
            return None
        text = read_text_file(self.credentials_file, "SMTP credentials")
        data, lines = parse_yaml(text, str(self.credentials_file))
        return validate_data(data, SmtpCredentials, str(self.credentials_file), lines)


class RetryPolicy(ConfigModel):
    """Exponential backoff of a failed delivery: ``base_s * 2**(attempts-1)``, at most
    ``max_s``; after ``max_attempts`` the delivery is given up (``failed``)."""

    max_attempts: int = Field(default=8, ge=1, le=50, description="Attempts before giving up.")
    base_s: float = Field(default=30, gt=0, le=86_400, description="First retry delay (s).")
    max_s: float = Field(default=3600, gt=0, le=7 * 86_400, description="Longest delay (s).")

    def delay(self, attempts: int) -> float:
        """Seconds until the next attempt after ``attempts`` failed ones."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))


class DigestSettings(ConfigModel):
    """The weekly digest of tenants' running offers, to every shopper who consented."""

    weekday: int = Field(default=0, ge=0, le=6, description="0 Monday … 6 Sunday (mall time).")
    hour: int = Field(default=10, ge=0, le=23, description="From this hour (mall time).")
    channels: tuple[Literal["inbox", "webhook", "email"], ...] = Field(
        default=("inbox",), min_length=1, description="Channels of the digest (configured ones)."
    )


class ReviewInvitations(ConfigModel):
    """Tell shoppers in their inbox when a store may be reviewed (``reviews:`` sets the
    delay and the window)."""

    period_days: int = Field(
        default=30, ge=1, le=366, description="At most one invitation per shopper and store."
    )


class MailingSettings(_Secret):
    """Mailings to shoppers; the secret signs unsubscribe tokens."""

    public_url: str = Field(
        default="",
        max_length=300,
        description="The API's public base URL for unsubscribe links (empty: a path only).",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy, description="The outbox's retries.")
    poll_s: float = Field(
        default=1.0, gt=0, le=600, description="How often the dispatcher looks for due rows."
    )
    batch: int = Field(default=200, ge=1, le=10_000, description="Deliveries per turn.")
    webhook: WebhookChannel | None = Field(default=None, description="The chatbot webhook.")
    email: SmtpChannel | None = Field(default=None, description="E-mail over SMTP.")
    digest: DigestSettings | None = Field(
        default=None, description="The weekly digest of offers; leave out for none."
    )
    review_invitations: ReviewInvitations | None = Field(
        default=None, description="Review invitations to the inbox; leave out for none."
    )

    def channels(self) -> tuple[str, ...]:
        """The channels this mall can send through."""
        return (
            ("inbox",) + (("webhook",) if self.webhook else ()) + (("email",) if self.email else ())
        )
