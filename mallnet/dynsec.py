"""Broker identities and per-role confinement, in Mosquitto's dynamic-security plugin.
(~400 lines: the roles, their ACLs, the plugin's file format and its live control client
must agree exactly, so they stay in one module.)

Mosquitto 2.0's ``acl_file`` does not check SUBSCRIBE (a device could join the core's
shared subscription and swallow part of its stream) and cannot bind a client id to a
user. So both broker configs (dev and prod) load the dynamic-security plugin, whose JSON
file this module writes: one client per device, bound to the client id equal to its id,
with its own role listing exactly the topics of its kind (store node, gate, kiosk);
everything else, subscriptions included, is denied. The core's role reads and writes the
whole mall. Mosquitto 2.0.11 does not substitute ``%u``/``%c`` in these ACL topics, hence
one role per device.

Production devices log in with certificates instead of passwords (``mallnet.pki``): the TLS
listener takes the certificate's CN as the username and as the client id, so Mosquitto never
asks the plugin to check a password or a client id for them — the plugin only confines them.
Their clients here have no password (``password=None``) and cannot log in any other way.

The plugin reads its file only at start (SIGHUP does not reload it): after editing the
file, restart the broker, or change a running broker live through
``$CONTROL/dynamic-security/v1`` (``DynsecControl``), which also rewrites the file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any

from mallnet.config import MqttSettings
from mallnet.errors import MallnetError
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire.topics import (
    CHECKINS,
    FOOTFALL,
    HEALTH,
    KIOSK_CONFIG,
    KIOSK_OFFERS,
    KIOSK_RECEIPTS,
    KIOSK_STATUS,
    NODE_CONFIG,
    PARKING,
    PRESENCE,
    RECEIPTS,
    ROOT,
    STATUS,
    VERSION,
    TopicSpec,
    check_id,
)

ADMIN_USER = "mallnet-admin"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
PBKDF2_ITERATIONS = 10_000  # the plugin reads the count per client; mosquitto_ctrl uses 101


class DynsecError(MallnetError):
    """An identity file that cannot be read, an id that may not be used, a refused change."""


class Role(StrEnum):
    """What a broker identity is; each kind has its own ACL."""

    STORE = "store"
    GATE = "gate"
    KIOSK = "kiosk"
    CORE = "core"
    MONITOR = "monitor"


# Roles shared by all their identities (devices have one role each).
SHARED_ROLES = (Role.CORE, Role.MONITOR)

# The connections of one core worker: its client id plus these suffixes, one bound client each.
CORE_OUT = "-out"  # the publisher (receipts, configs, inbox notices)
CORE_API = "-api"  # the API-only process's status watch
CORE_SUFFIXES = ("", CORE_OUT, CORE_API)


def core_client_ids(user: str) -> tuple[str, ...]:
    """The client ids (= usernames) of a core identity's bound clients."""
    return tuple(f"{user}{suffix}" for suffix in CORE_SUFFIXES)


# What each device kind may publish (its own topics only) and read (subscribe + receive).
PUBLISHES: dict[Role, tuple[TopicSpec, ...]] = {
    Role.STORE: (PRESENCE, FOOTFALL, HEALTH, STATUS),
    Role.GATE: (PARKING, HEALTH, STATUS),
    Role.KIOSK: (CHECKINS, KIOSK_STATUS),
}
READS: dict[Role, tuple[TopicSpec, ...]] = {
    Role.STORE: (NODE_CONFIG, RECEIPTS),
    Role.GATE: (NODE_CONFIG, RECEIPTS),
    Role.KIOSK: (KIOSK_RECEIPTS, KIOSK_OFFERS, KIOSK_CONFIG),
}


def check_identity(user: str, role: Role) -> str:
    """A contract id; ``core``/``core-*`` are reserved for the core, so a device credential
    can never hold one of the core's client ids. A core id may not end in a connection
    suffix (``-out``/``-api``): those ids belong to the core identity without it."""
    check_id(user, "device")
    reserved = user == "core" or user.startswith("core-")
    if role is not Role.CORE and reserved:
        raise DynsecError(f"{user!r}: ids 'core' and 'core-*' are reserved for the core")
    if role is Role.CORE:
        for client_id in core_client_ids(user):
            check_id(client_id, "core client")
        if user.endswith((CORE_OUT, CORE_API)):
            raise DynsecError(
                f"{user!r}: core ids ending in {CORE_OUT!r} or {CORE_API!r} are the "
                "connections of another core identity"
            )
    if user == ADMIN_USER:
        raise DynsecError(f"{user!r} is reserved for the broker's admin identity")
    return user


def role_name(mall: str, user: str, role: Role) -> str:
    return f"mallnet-{mall}-{role}" if role in SHARED_ROLES else f"mallnet-{mall}-{role}-{user}"


def client_ids(user: str, role: Role) -> tuple[str, ...]:
    """The bound clients (username = client id) an identity consists of."""
    return core_client_ids(user) if role is Role.CORE else (user,)


def role_acls(mall: str, user: str, role: Role) -> list[dict[str, Any]]:
    """The dynamic-security ACL entries of one identity (all others are denied)."""
    check_id(mall, "mall")
    if role is Role.CORE:
        everything = f"{ROOT}/{VERSION}/{mall}/#"
        acl = [
            ("publishClientSend", everything),
            ("publishClientReceive", everything),
            ("subscribePattern", everything),
            ("subscribePattern", f"$share/+/{everything}"),  # the workers' shared group
        ]
    elif role is Role.MONITOR:
        check_identity(user, role)
        everything = f"{ROOT}/{VERSION}/{mall}/#"
        acl = [("publishClientReceive", everything), ("subscribePattern", everything)]
    else:
        check_identity(user, role)
        acl = [("publishClientSend", spec.topic(mall, user)) for spec in PUBLISHES[role]]
        for spec in READS[role]:
            acl += [
                ("subscribeLiteral", spec.topic(mall, user)),
                ("publishClientReceive", spec.topic(mall, user)),
            ]
    return [{"acltype": kind, "topic": topic, "allow": True} for kind, topic in acl]


def hash_password(password: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The plugin's password hash: base64 of PBKDF2-HMAC-SHA512 over the raw salt."""
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return base64.b64encode(digest).decode()


def new_dynsec_config() -> dict[str, Any]:
    """An empty file: nobody exists, everything not granted is denied."""
    return {
        "clients": [],
        "groups": [],
        "roles": [],
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


def _client_entry(user: str, password: str | None, rolename: str, clientid: str) -> dict[str, Any]:
    """A client of the plugin's file; without a password it can log in only by certificate."""
    entry: dict[str, Any] = {"username": user}
    if password is not None:
        salt = secrets.token_bytes(12)
        entry |= {
            "password": hash_password(password, salt),
            "salt": base64.b64encode(salt).decode(),
            "iterations": PBKDF2_ITERATIONS,
        }
    return entry | {"roles": [{"rolename": rolename}], "clientid": clientid}


def set_identity(
    doc: dict[str, Any], mall: str, user: str, role: Role, password: str | None
) -> None:
    """Add or replace an identity in a dynamic-security document.

    Every client is bound to the client id equal to its username. A device or monitor is
    one client; a core identity ``X`` is one client per connection of its worker
    (``X``, ``X-out``, ``X-api``, see ``core_client_ids``) sharing ``password``, so no
    connection (nor anyone holding one of the ids) can take over another's session.
    ``password=None`` makes a certificate identity (no password login at all).
    """
    check_identity(user, role)
    ids = client_ids(user, role)
    rolename = role_name(mall, user, role)
    foreign = [
        c["username"]
        for c in doc["clients"]
        if c["username"] in ids[1:] and {"rolename": rolename} not in c.get("roles", [])
    ]
    if foreign:
        raise DynsecError(f"{user!r}: client {foreign[0]!r} exists with another role")
    remove_identity(doc, user)
    roles = [r for r in doc["roles"] if r["rolename"] != rolename]
    roles.append({"rolename": rolename, "acls": role_acls(mall, user, role)})
    doc["roles"] = roles
    doc["clients"] += [_client_entry(cid, password, rolename, cid) for cid in ids]


def _connections(clients: dict[str, list[str]], user: str) -> set[str]:
    """``user`` and, for a core identity, its other connections' clients: those named by
    ``core_client_ids`` that hold the same (core) role ({username: rolenames})."""
    mine = clients.get(user)
    names = {user}
    if mine and all(r.endswith(f"-{Role.CORE}") for r in mine):
        names.update(cid for cid in core_client_ids(user) if clients.get(cid) == mine)
    return names


def remove_identity(doc: dict[str, Any], user: str) -> bool:
    """Remove an identity's clients (all connections of a core identity) and its
    per-device role; False if it was not there."""
    held = {c["username"]: [r["rolename"] for r in c.get("roles", [])] for c in doc["clients"]}
    names = _connections(held, user)
    gone = [c for c in doc["clients"] if c["username"] in names]
    doc["clients"] = [c for c in doc["clients"] if c["username"] not in names]
    mine = {r["rolename"] for c in gone for r in c.get("roles", [])}
    still_used = {r["rolename"] for c in doc["clients"] for r in c.get("roles", [])}
    doc["roles"] = [
        r for r in doc["roles"] if r["rolename"] not in mine or r["rolename"] in still_used
    ]
    return bool(gone)


def load_dynsec(path: Path) -> dict[str, Any]:
    if not path.exists():
        return new_dynsec_config()
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DynsecError(f"cannot read {path}: {exc}") from exc
    for key, empty in new_dynsec_config().items():
        doc.setdefault(key, empty)
    return doc


def save_dynsec(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically, mode 0600, owned like the file it replaces or else like its folder
    (``mosquitto`` in ``/var/lib/mosquitto``), so the broker can read and rewrite it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = path.stat() if path.exists() else path.parent.stat()
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=1)
        with contextlib.suppress(PermissionError):
            os.chown(tmp, owner.st_uid, owner.st_gid)
        tmp.replace(path)
    except OSError as exc:
        raise DynsecError(f"cannot write {path}: {exc}") from exc


def add_device(
    path: Path,
    mall: str,
    user: str,
    role: Role,
    password: str | None = None,
    *,
    certificate: bool = False,
) -> str | None:
    """Add or replace an identity in a dynamic-security file; returns its password
    (a strong random one when none is given), or None for a ``certificate`` identity
    (no password: it logs in with a client certificate whose CN is ``user``). A running
    broker must be restarted (or changed live with ``DynsecControl``) to see it."""
    if not certificate:
        password = password or secrets.token_urlsafe(24)
    elif password is not None:
        raise DynsecError("a certificate identity has no password")
    doc = load_dynsec(path)
    set_identity(doc, mall, user, role, password)
    save_dynsec(path, doc)
    return password


def remove_device(path: Path, user: str) -> bool:
    doc = load_dynsec(path)
    removed = remove_identity(doc, user)
    if removed:
        save_dynsec(path, doc)
    return removed


class DynsecControl:
    """Changes a running broker through ``$CONTROL/dynamic-security/v1`` as the admin user.

    The plugin applies each command at once (a deleted client is disconnected) and
    rewrites its file.
    """

    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()

    def run(self, commands: list[dict[str, Any]], timeout: float = 10.0) -> list[dict[str, Any]]:
        replies: list[Inbound] = []
        arrived = threading.Event()

        def on_message(message: Inbound) -> None:
            replies.append(message)
            arrived.set()

        with self._lock:
            client = MqttClient(
                self._settings,
                ADMIN_USER,
                subscriptions=[(f"{CONTROL_TOPIC}/response", 1)],
                on_message=on_message,
            )
            client.start()
            try:
                if not client.wait_connected(timeout):
                    raise DynsecError("the admin client could not connect to the broker")
                # the SUBSCRIBE went out before this PUBLISH: the broker handles them in order
                client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}).encode())
                if not arrived.wait(timeout):
                    raise DynsecError("the broker did not answer a dynamic-security command")
            finally:
                client.stop()
        try:
            responses: list[dict[str, Any]] = json.loads(replies[0].payload)["responses"]
        except (ValueError, KeyError, TypeError) as exc:
            raise DynsecError(f"unreadable answer from the broker: {exc}") from exc
        return responses

    def set_identity(self, mall: str, user: str, role: Role, password: str | None) -> None:
        """Create or replace an identity (``password=None``: a certificate identity)."""
        check_identity(user, role)
        rolename = role_name(mall, user, role)
        ids = client_ids(user, role)
        deletes = [{"command": "deleteClient", "username": cid} for cid in ids]
        if role not in SHARED_ROLES:
            deletes.append({"command": "deleteRole", "rolename": rolename})
        self.run(deletes)  # absent ones answer with an error, which is fine here
        secret = {} if password is None else {"password": password}
        clients = [
            {
                "command": "createClient",
                "username": cid,
                **secret,
                "clientid": cid,
                "roles": [{"rolename": rolename}],
            }
            for cid in ids
        ]
        create_role = {
            "command": "createRole",
            "rolename": rolename,
            "acls": role_acls(mall, user, role),
        }
        for reply in self.run([create_role, *clients]):
            error = reply.get("error")
            if error and not (reply["command"] == "createRole" and "already" in str(error)):
                raise DynsecError(f"{reply['command']} for {user}: {error}")

    def remove_identity(self, user: str) -> None:
        """Delete the identity's clients (their connections are closed at once) and its own
        role."""
        candidates = core_client_ids(user)
        found = self.run([{"command": "getClient", "username": cid} for cid in candidates])
        if found[0].get("error"):
            raise DynsecError(f"{user}: {found[0]['error']}")
        held = {
            cid: [r["rolename"] for r in reply["data"]["client"].get("roles", [])]
            for cid, reply in zip(candidates, found, strict=True)
            if not reply.get("error")
        }
        roles = held[user]
        own = [r for r in roles if any(r.endswith(f"-{kind}-{user}") for kind in PUBLISHES)]
        names = _connections(held, user)
        commands = [{"command": "deleteClient", "username": cid} for cid in sorted(names)]
        commands += [{"command": "deleteRole", "rolename": rolename} for rolename in own]
        for reply in self.run(commands):
            if reply.get("error"):
                raise DynsecError(f"{reply['command']} {user}: {reply['error']}")


def add_admin(doc: dict[str, Any], password: str) -> None:
    """Add or replace the identity ``DynsecControl`` uses: only ``$CONTROL/dynamic-security/#``
    (it manages identities; it can neither read nor write the mall's topics)."""
    control = "$CONTROL/dynamic-security/#"
    remove_identity(doc, ADMIN_USER)
    doc["roles"] = [r for r in doc["roles"] if r["rolename"] != ADMIN_USER]
    doc["roles"].append(
        {
            "rolename": ADMIN_USER,
            "acls": [
                {"acltype": kind, "topic": control, "allow": True}
                for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")
            ],
        }
    )
    doc["clients"].append(_client_entry(ADMIN_USER, password, ADMIN_USER, ADMIN_USER))


def write_admin(path: Path) -> str:
    """Add or replace the admin identity in a file; returns its new random password."""
    password = secrets.token_urlsafe(24)
    doc = load_dynsec(path)
    add_admin(doc, password)
    save_dynsec(path, doc)
    return password
