"""Loading YAML config into pydantic models, with errors that name the file's line.

Every part keeps its config as pydantic models (``extra="forbid"``, a
description on every field) and loads it once at its composition root with
``load_config``. ``ConfigError.problems`` holds lines such as
``node.yaml:14: presence.radius_m: Input should be greater than 0``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from mallnet.errors import ConfigError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


class ConfigModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _line_map(node: yaml.Node, path: Loc, out: dict[Loc, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), out)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        line = lines.get(loc[:cut])
        if line is not None:
            return line
    return None


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    """One line naming the file, line and column, and what is wrong there."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        char = exc.character
        code = char if isinstance(char, int) else ord(char)
        return f"{source}: not valid YAML: {exc.reason}: #x{code:04x} at offset {exc.position}"
    if mark is None or problem is None:
        detail = " ".join(str(exc).replace("<unicode string>", source).split())
        return f"{source}: not valid YAML: {detail}"
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context and context != problem else problem
    return f"{source}:{mark.line + 1}:{mark.column + 1}: not valid YAML: {detail}"


def parse_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML; return the data and a map from key paths to 1-based lines.

    A syntax error is a ``ConfigError`` of one line: ``core.yaml:3:7: not valid YAML: …``.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(exc, source)) from None
    lines: dict[Loc, int] = {}
    if node is not None:
        _line_map(node, (), lines)
    return ({} if data is None else data), lines


def read_text_file(path: Path, what: str = "config") -> str:
    """A config-like file's text; ``ConfigError`` (one line) when missing, unreadable or
    not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: {what} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
            f"at offset {exc.start})"
        ) from None


def validate_data(data: Any, model: type[M], source: str, lines: dict[Loc, int]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = _line_for(loc, lines)
            where = f"{source}:{line}" if line is not None else source
            dotted = ".".join(str(p) for p in loc) or "<top>"
            problems.append(f"{where}: {dotted}: {err['msg']}")
        raise ConfigError(f"{source} is not a valid {model.__name__}", problems) from None


def load_config(path: Path | str, model: type[M]) -> M:
    """Read, parse and validate one YAML config file; raises ``ConfigError``."""
    path = Path(path)
    text = read_text_file(path)
    data, lines = parse_yaml(text, str(path))
    return validate_data(data, model, str(path), lines)


class TlsSettings(ConfigModel):
    """TLS to the broker. In production every device and the core present a client
    certificate of the mall's CA (``mallnet pki issue``): its CN is their broker identity, so
    ``username`` and passwords are left out."""

    ca_file: Path = Field(description="CA certificate that signed the broker's certificate.")
    cert_file: Path | None = Field(
        default=None, description="Client certificate (mutual TLS; its CN is the identity)."
    )
    key_file: Path | None = Field(default=None, description="Client private key (mode 0600).")

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                "cert_file and key_file go together (a client certificate and its key)"
            )
        return self

    def sibling(self, suffix: str) -> TlsSettings:
        """The client certificate and key of another connection of the same identity, beside
        these and named with ``suffix`` before the extension (``core-1.crt`` →
        ``core-1-out.crt``), as ``mallnet pki issue ID --role core`` writes them."""
        if self.cert_file is None or self.key_file is None or not suffix:
            return self
        cert, key = self.cert_file, self.key_file
        return self.model_copy(
            update={
                "cert_file": cert.with_name(f"{cert.stem}{suffix}{cert.suffix}"),
                "key_file": key.with_name(f"{key.stem}{suffix}{key.suffix}"),
            }
        )


class MqttSettings(ConfigModel):
    """How a process reaches the broker. Secrets come from a file, never the YAML."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker port (8883 with TLS).")
    username: str | None = Field(default=None, description="This device's broker user.")
    password_file: Path | None = Field(
        default=None, description="File holding this device's broker password (mode 0600)."
    )
    password: SecretStr | None = Field(
        default=None, description="Inline password; development only, prefer password_file."
    )
    tls: TlsSettings | None = Field(default=None, description="TLS settings; None is plain TCP.")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive.")
    reconnect_min_s: float = Field(default=0.5, gt=0, description="First reconnect delay.")
    reconnect_max_s: float = Field(default=30, gt=0, description="Reconnect delay ceiling.")

    def relative_to(self, base: Path) -> MqttSettings:
        """These settings with relative file paths (password, CA, client cert and key) under
        ``base``, the config file's folder."""

        def under(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        update: dict[str, object] = {}
        if self.password_file is not None:
            update["password_file"] = under(self.password_file)
        tls = self.tls
        if tls is not None:
            update["tls"] = tls.model_copy(
                update={
                    "ca_file": under(tls.ca_file),
                    "cert_file": under(tls.cert_file) if tls.cert_file is not None else None,
                    "key_file": under(tls.key_file) if tls.key_file is not None else None,
                }
            )
        return self.model_copy(update=update)

    def resolve_password(self) -> str | None:
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read MQTT password file {self.password_file}: {exc.strerror}"
                ) from None
        return self.password.get_secret_value() if self.password is not None else None
