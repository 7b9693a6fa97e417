"""A mall's broker bridged to the platform's broker (many malls on one platform).

Each mall keeps its own Mosquitto: its nodes, gates and kiosks log in there (their
identities and ACLs live in the mall's dynamic-security file) and keep working through a
WAN outage. The mall broker runs a Mosquitto bridge to the platform broker, where the core
runs: device events go out, receipts, configs, offers and inbox notices come back in. The
topics keep their names (they already carry the mall); the bridge logs in to the platform as
its own identity (``bridge-<mall>``, role ``bridge``), confined to its mall's topics.

``render_bridge`` fills ``mqtt_broker/mosquitto.bridge.conf`` for one mall; ``mallnet broker
bridge-conf`` writes it, ``DevBroker(bridge=...)`` runs it in development and tests.
"""

from __future__ import annotations

import re

from mallnet.config import MqttSettings
from mallnet.dynsec import BRIDGE_IN, BRIDGE_OUT, Role, check_identity
from mallnet.errors import MallnetError
from mallnet.resources import BROKER_PACKAGE, data_dir
from mallnet.wire.topics import check_id

TEMPLATE = "mosquitto.bridge.conf"
BRIDGE_QOS = 1  # both ways: the bridge resends until the other broker acknowledges
_TOKEN = re.compile(r"^\S+$")  # one word of Mosquitto's config syntax


class BridgeError(MallnetError):
    """A bridge that cannot be rendered: no TLS, no password, a value Mosquitto would misread."""


def bridge_id(mall: str) -> str:
    """The bridge's fixed identity and client id on the platform broker."""
    return check_id(f"bridge-{check_id(mall, 'mall')}", "bridge")


def bridge_topics(mall: str) -> list[str]:
    """Mosquitto ``topic`` lines: device events out, the core's answers in (QoS 1)."""
    out = [f"topic {spec.filter(mall)} out {BRIDGE_QOS}" for spec in BRIDGE_OUT]
    return out + [f"topic {spec.filter(mall)} in {BRIDGE_QOS}" for spec in BRIDGE_IN]


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise BridgeError(f"the bridge's {what} must be one word without spaces or newlines")
    return value


def render_bridge(mall: str, remote: MqttSettings, *, allow_plain: bool = False) -> str:
    """The bridge section of the mall broker's config for the platform broker ``remote``
    (host, port, ``username`` = the bridge identity, its password, TLS). Without TLS only
    when ``allow_plain`` (development and tests on loopback)."""
    user = remote.username or bridge_id(mall)
    check_identity(user, Role.BRIDGE)
    password = remote.resolve_password()
    if not password:
        raise BridgeError("the bridge needs its password (password_file) on the platform broker")
    tls = ""
    if remote.tls is not None:
        lines = [f"bridge_cafile {remote.tls.ca_file}", "bridge_tls_version tlsv1.2"]
        if remote.tls.cert_file is not None and remote.tls.key_file is not None:
            lines += [f"bridge_certfile {remote.tls.cert_file}"]
            lines += [f"bridge_keyfile {remote.tls.key_file}"]
        tls = "# TLS to the platform; its certificate must name the address above.\n"
        tls += "\n".join(lines)
    elif not allow_plain:
        raise BridgeError("the bridge to the platform needs TLS (tls.ca_file in its settings)")
    out = [line for line in bridge_topics(mall) if " out " in line]
    into = [line for line in bridge_topics(mall) if " in " in line]
    replacements = {
        "@MALL@": check_id(mall, "mall"),
        "@REMOTE_HOST@": _token(remote.host, "host"),
        "@REMOTE_PORT@": str(remote.port),
        "@CLIENT_ID@": user,
        "@PASSWORD@": _token(password, "password"),
        "@TLS@": tls,
        "@TOPICS_OUT@": "\n".join(out),
        "@TOPICS_IN@": "\n".join(into),
    }
    text = (data_dir(BROKER_PACKAGE) / TEMPLATE).read_text(encoding="utf-8")
    for key, value in replacements.items():
        text = text.replace(key, value)
    return text
