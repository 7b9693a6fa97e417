"""Device identity by certificate: ``mallnet pki`` and the production broker's TLS listener.

The broker is the production config in Debian's layout (``debian_prod_broker``): a client
certificate from the mall's CA is required, its CN is the username and the client id, the
dynamic-security plugin confines it, and the CA's CRL refuses revoked certificates.
"""

from __future__ import annotations

import gc
import signal
import ssl
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mallnet.cli import main
from mallnet.dynsec import Role, load_dynsec
from mallnet.mqtt import NOT_AUTHORIZED
from mallnet.pki import CertificateAuthority, CertRole, PkiError
from mallnet.wire.topics import PRESENCE, RECEIPTS
from tests.conftest import MALL, wait_until
from tests.mallnet.test_broker_roles import NODE, OTHER, Raw, _end, _start, debian_prod_broker

NO_CONNACK = -1  # the TLS handshake failed: the client never reached MQTT


def _subject(cert: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-ext", "extendedKeyUsage"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _reloaded(log: Path, count: int) -> bool:
    return log.exists() and log.read_text().count("Reloading config") >= count


def test_a_valid_device_connects_and_is_confined_to_its_topics(tmp_path):
    proc, prod, _conf = debian_prod_broker(tmp_path)
    try:
        device = Raw(prod, NODE, NODE)
        assert device.connect() == 0
        assert device.publish(PRESENCE.topic(MALL, NODE)) in (0, 16)
        assert device.publish(PRESENCE.topic(MALL, OTHER)) == NOT_AUTHORIZED
        assert device.publish(RECEIPTS.topic(MALL, NODE)) == NOT_AUTHORIZED
        assert device.subscribe("#", RECEIPTS.topic(MALL, OTHER), RECEIPTS.topic(MALL, NODE)) == [
            0x87,
            0x87,
            1,
        ]
        assert device.disconnects == 0
        device.close()
    finally:
        _end(proc)
        gc.collect()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_wrong_ca_expired_revoked_and_missing_certificates_are_refused(tmp_path):
    """Each bad certificate fails the TLS handshake (no CONNACK, nothing reaches MQTT), while
    the device's own good certificate keeps working; a revocation applies on reload."""
    proc, prod, conf = debian_prod_broker(tmp_path)
    assert prod.ca is not None
    log = tmp_path / "log" / "mosquitto.log"
    rogue = CertificateAuthority(tmp_path / "rogue-ca")
    rogue.issue(NODE, CertRole.STORE, out=tmp_path / "wrong-ca")
    prod.ca.issue(
        NODE,
        CertRole.STORE,
        out=tmp_path / "expired",
        not_before=datetime(2020, 1, 1, tzinfo=UTC),
        not_after=datetime(2021, 1, 1, tzinfo=UTC),
    )
    [spare] = prod.ca.issue(NODE, CertRole.STORE, out=tmp_path / "revoked")
    try:
        for folder in ("wrong-ca", "expired"):
            bad = replace(prod, issued=tmp_path / folder)
            assert Raw(bad, NODE, NODE).connect() == NO_CONNACK, folder
        revoked = replace(prod, issued=tmp_path / "revoked")
        holder = Raw(revoked, NODE, NODE)
        assert holder.connect() == 0  # not yet revoked
        holder.close()
        assert (
            main(["pki", "revoke", NODE, "--serial", spare.serial, "--ca-dir", str(prod.ca.dir)])
            == 0
        )
        proc.send_signal(signal.SIGHUP)  # `systemctl reload mosquitto`
        wait_until(lambda: _reloaded(log, 1), 10, "the reload")
        assert Raw(revoked, NODE, NODE).connect() == NO_CONNACK
        assert Raw(prod, NODE, NODE).connect() == 0  # its other certificate is still good
        # a restart reads the CRL too
        _end(proc)
        proc = _start(conf, prod)
        assert Raw(revoked, NODE, NODE).connect() == NO_CONNACK
        good = Raw(prod, NODE, NODE)
        assert good.connect() == 0
        good.close()
        # no certificate at all: TLS with the right CA, a username and a password
        anonymous = Raw(prod, NODE, NODE)
        anonymous.client = _paho_without_certificate(prod.ca_file)
        anonymous.client.on_connect = anonymous._on_connect
        anonymous.client.on_disconnect = anonymous._on_disconnect
        assert anonymous.connect() == NO_CONNACK
    finally:
        _end(proc)
        gc.collect()
    text = log.read_text()
    assert "certificate revoked" in text or "certificate verify failed" in text


def _paho_without_certificate(ca_file: Path | None) -> Any:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=NODE, protocol=paho.MQTTv5)
    client.username_pw_set(NODE, "a-password-is-not-an-identity-here")
    client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
    return client


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_documented_certificate_procedure_add_revoke_rotate(tmp_path):
    """docs/operations.md "Device certificates": issue + `add-device --cert` and a restart
    add a device; a rotation issues a second certificate and revokes the first by serial; a
    revocation and a reload refuse the device, `remove-device --live`-style removal and a
    restart take its rights."""
    proc, prod, conf = debian_prod_broker(tmp_path)
    assert prod.ca is not None and prod.issued is not None
    ca_dir, dynsec = str(prod.ca.dir), tmp_path / "var-lib" / "mallnet-dynsec.json"
    log = tmp_path / "log" / "mosquitto.log"
    new = "store-new-1"
    issue = ["pki", "issue", new, "--role", "store", "--ca-dir", ca_dir]
    try:
        assert main([*issue, "--out", str(prod.issued)]) == 0
        add = ["broker", "add-device", new, "--role", "store", "--mall", MALL, "--cert"]
        assert main([*add, "--dynsec-file", str(dynsec)]) == 0
        assert "password" not in next(
            c for c in load_dynsec(dynsec)["clients"] if c["username"] == new
        )
        device = Raw(prod, new, new)
        assert device.connect() == 0  # the CA vouches for it ...
        assert device.publish(PRESENCE.topic(MALL, new)) == NOT_AUTHORIZED  # ... no rights yet
        device.close()
        _end(proc)
        proc = _start(conf, prod)  # the plugin reads its file at start
        device = Raw(prod, new, new)
        assert device.connect() == 0
        assert device.publish(PRESENCE.topic(MALL, new)) in (0, 16)
        device.close()
        # rotation: a second certificate, then the first one revoked by its serial
        first = prod.ca.entries()[-1]
        assert (first.name, first.status) == (new, "V")
        rotated = tmp_path / "rotated"
        assert main([*issue, "--out", str(rotated)]) == 0
        assert main(["pki", "revoke", new, "--serial", first.serial, "--ca-dir", ca_dir]) == 0
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: _reloaded(log, 1), 10, "the reload")
        assert Raw(prod, new, new).connect() == NO_CONNACK  # the old certificate
        device = Raw(replace(prod, issued=rotated), new, new)
        assert device.connect() == 0
        assert device.publish(PRESENCE.topic(MALL, new)) in (0, 16)
        device.close()
        # revocation of the device: every valid certificate of it, then reload
        assert main(["pki", "revoke", new, "--ca-dir", ca_dir]) == 0
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: _reloaded(log, 2), 10, "the second reload")
        assert Raw(replace(prod, issued=rotated), new, new).connect() == NO_CONNACK
        assert main(["broker", "remove-device", new, "--dynsec-file", str(dynsec)]) == 0
        assert new not in dynsec.read_text()
        assert [e.status for e in prod.ca.entries() if e.name == new] == ["R", "R"]
    finally:
        _end(proc)
        gc.collect()


def test_pki_commands_make_the_files_a_device_installs(tmp_path, capsys):
    ca_dir = tmp_path / "ca"
    assert main(["pki", "init-ca", "--ca-dir", str(ca_dir), "--name", "Riverside CA"]) == 0
    assert main(["pki", "init-ca", "--ca-dir", str(ca_dir)]) == 2  # never overwritten
    assert (ca_dir / "private" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (ca_dir / "crl.pem").exists()
    out = tmp_path / "device"
    assert (
        main(
            [
                "pki",
                "issue",
                "gate-north",
                "--role",
                "gate",
                "--ca-dir",
                str(ca_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "gate-north.key").stat().st_mode & 0o777 == 0o600
    subject = _subject(out / "gate-north.crt")
    assert (
        "CN=gate-north" in subject.replace(" ", "") and "TLS Web Client Authentication" in subject
    )
    capsys.readouterr()
    assert (
        main(
            ["pki", "issue", "core-9", "--role", "core", "--ca-dir", str(ca_dir), "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert [line.split("\t")[0] for line in printed.splitlines()] == [
        "core-9",
        "core-9-out",
        "core-9-api",
    ]
    assert (
        main(
            [
                "pki",
                "issue",
                "broker.mall.example",
                "--role",
                "broker",
                "--san",
                "10.0.0.5",
                "--ca-dir",
                str(ca_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(out / "broker.mall.example.crt"),
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "DNS:broker.mall.example" in text
        and "IP Address:10.0.0.5" in text
        and "Server Authentication" in text
    )
    # ids the broker reserves, and nonsense, are refused before anything is written
    assert main(["pki", "issue", "core-1", "--role", "store", "--ca-dir", str(ca_dir)]) == 2
    assert main(["pki", "issue", "not the admin", "--role", "admin", "--ca-dir", str(ca_dir)]) == 2
    assert main(["pki", "revoke", "core-9", "--ca-dir", str(ca_dir)]) == 0  # all three
    assert main(["pki", "revoke", "core-9", "--ca-dir", str(ca_dir)]) == 2  # nothing left
    assert main(["pki", "crl", "--days", "30", "--ca-dir", str(ca_dir)]) == 0
    crl = subprocess.run(
        ["openssl", "crl", "-in", str(ca_dir / "crl.pem"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert crl.count("Serial Number:") == 3
    capsys.readouterr()
    assert main(["pki", "list", "--ca-dir", str(ca_dir)]) == 0
    states = {
        line.split("\t")[2]: line.split("\t")[0] for line in capsys.readouterr().out.splitlines()
    }
    assert states == {
        "gate-north": "V",
        "core-9": "R",
        "core-9-out": "R",
        "core-9-api": "R",
        "broker.mall.example": "V",
    }
    with pytest.raises(PkiError):
        CertificateAuthority(tmp_path / "nowhere").issue("store-1", CertRole.STORE)


def test_a_certificate_identity_cannot_log_in_with_a_password(tmp_path):
    """`add-device --cert` writes a client without a password, so the dev (password) listener
    refuses any password for it."""
    from mallnet.dynsec import add_device

    dynsec = tmp_path / "dynsec.json"
    assert add_device(dynsec, MALL, NODE, Role.STORE, certificate=True) is None
    [client] = load_dynsec(dynsec)["clients"]
    assert set(client) == {"username", "roles", "clientid"}
