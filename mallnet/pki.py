"""The mall's own certificate authority: device, core and broker certificates, revocation.

Production devices (store nodes, gates, kiosks) and the core authenticate to the broker with
client certificates: the broker's TLS listener requires one signed by this CA, takes the
certificate's CN as the username (``use_identity_as_username``) and as the client id
(``use_username_as_clientid``), checks it against the CRL this module writes, and the
dynamic-security plugin confines that username to its role's topics (``mallnet.dynsec``).

The CA is an ``openssl ca`` directory driven through the ``openssl`` command (present on every
Debian and Raspberry Pi OS; no Python dependency): ``index.txt`` is the ledger of what was
issued and revoked, so revocation and the CRL are openssl's own, readable with standard tools::

    CA_DIR/ca.crt  private/ca.key (0600)  openssl.cnf  index.txt  serial  crlnumber
    CA_DIR/newcerts/<serial>.pem   every certificate ever issued
    CA_DIR/crl.pem                 the revocation list the broker reads (``crlfile``)
    OUT/<id>.crt  OUT/<id>.key     what a device installs (OUT defaults to CA_DIR/issued)

Keys are EC P-256, written mode 0600. A core identity ``X`` gets one certificate per
connection of its worker (``X``, ``X-out``, ``X-api``; ``dynsec.core_client_ids``): the broker
binds each connection's client id to its certificate's CN.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from mallnet.dynsec import ADMIN_USER, Role, check_identity, client_ids
from mallnet.errors import MallnetError

log = logging.getLogger(__name__)

DEVICE_DAYS = 825  # the longest validity browsers accept; devices rotate well before
CA_DAYS = 3650
CRL_DAYS = 90  # re-sign at least this often (`mallnet pki crl`): an expired CRL refuses everyone
HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class PkiError(MallnetError):
    """The CA directory is missing or inconsistent, or openssl refused an operation."""


class CertRole(StrEnum):
    """What a certificate is for: a broker identity's role, the admin, or the broker itself."""

    STORE = "store"
    GATE = "gate"
    KIOSK = "kiosk"
    CORE = "core"
    MONITOR = "monitor"
    ADMIN = "admin"
    BROKER = "broker"


@dataclass(frozen=True)
class Issued:
    """One issued certificate (and its key, unless it was signed from a request)."""

    name: str
    serial: str
    cert: Path
    key: Path | None


@dataclass(frozen=True)
class Entry:
    """One line of the CA's ledger (``index.txt``)."""

    status: str  # V valid, R revoked, E expired
    serial: str
    name: str
    role: str
    not_after: datetime


CONF = """\
# mallnet CA (written by `mallnet pki init-ca`); paths are relative to this folder.
[ ca ]
default_ca = mallnet_ca

[ mallnet_ca ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/private/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 825
default_crl_days = 90
policy = policy_mallnet
# a device re-issued for rotation holds two valid certificates for a while
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = no

[ policy_mallnet ]
organizationalUnitName = optional
commonName = supplied

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ ca_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""

CLIENT_EXT = """\
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""

SERVER_EXT = """\
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = {san}
"""


def _openssl() -> str:
    tool = shutil.which("openssl")
    if tool is None:
        raise PkiError("openssl not found: install the 'openssl' package")
    return tool


def _run(args: list[str], cwd: Path, *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(  # noqa: S603 - fixed tool, list arguments
            [_openssl(), *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except OSError as exc:
        raise PkiError(f"cannot run openssl: {exc}") from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-400:]
        raise PkiError(f"openssl {args[0]} failed: {detail}")
    return done.stdout


def _when(moment: datetime) -> str:
    """openssl's ``YYYYMMDDHHMMSSZ`` (UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


class CertificateAuthority:
    """An ``openssl ca`` directory: init, issue, revoke, CRL, ledger."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory.resolve()
        self.ca_cert = self.dir / "ca.crt"
        self.ca_key = self.dir / "private" / "ca.key"
        self.crl = self.dir / "crl.pem"
        self.index = self.dir / "index.txt"

    @property
    def exists(self) -> bool:
        return self.ca_cert.exists() and self.ca_key.exists() and self.index.exists()

    def _require(self) -> None:
        if not self.exists:
            raise PkiError(f"{self.dir} is not a mallnet CA: run `mallnet pki init-ca` first")

    def init(self, name: str = "mallnet CA", days: int = CA_DAYS) -> None:
        """Create the CA key (0600), its self-signed certificate and an empty CRL."""
        if self.exists:
            raise PkiError(f"{self.dir} already holds a CA; refusing to overwrite it")
        for folder in (self.dir, self.dir / "newcerts"):
            folder.mkdir(parents=True, exist_ok=True)
        (self.dir / "private").mkdir(mode=0o700, exist_ok=True)
        (self.dir / "openssl.cnf").write_text(CONF, encoding="utf-8")
        self.index.write_text("", encoding="utf-8")
        (self.dir / "serial").write_text(f"{int.from_bytes(os.urandom(8), 'big') | 1:016X}\n")
        (self.dir / "crlnumber").write_text("1000\n")
        self._new_key(self.ca_key)
        _run(
            [
                "req", "-new", "-x509", "-config", "openssl.cnf", "-key", "private/ca.key",
                "-subj", f"/OU=mallnet/CN={name}", "-days", str(days), "-sha256",
                "-extensions", "ca_ext", "-out", "ca.crt",
            ],
            self.dir,
        )  # fmt: skip
        self.gen_crl()
        log.info("created CA %r in %s", name, self.dir)

    def _new_key(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        pem = _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], self.dir)
        path.write_text(pem, encoding="utf-8")

    def issue(
        self,
        name: str,
        role: CertRole,
        *,
        out: Path | None = None,
        days: int = DEVICE_DAYS,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        san: tuple[str, ...] = (),
        csr: Path | None = None,
    ) -> list[Issued]:
        """Issue the certificate(s) of one identity; a core identity gets one per connection.

        ``not_before``/``not_after`` override ``days`` (an already expired certificate for a
        test); ``csr`` signs a request whose key never left the device (its subject is
        replaced by the identity's).
        """
        self._require()
        names = _names(name, role)
        if csr is not None and len(names) > 1:
            raise PkiError("a core identity is several certificates: issue it without --csr")
        out = (out or self.dir / "issued").resolve()
        out.mkdir(parents=True, exist_ok=True)
        ext = SERVER_EXT.format(san=_san(name, san)) if role is CertRole.BROKER else CLIENT_EXT
        made = []
        for cn in names:
            made.append(
                self._sign(
                    cn,
                    role=role,
                    out=out,
                    days=days,
                    not_before=not_before,
                    not_after=not_after,
                    ext=ext,
                    csr=csr,
                )
            )
        return made

    def _sign(
        self,
        cn: str,
        *,
        role: CertRole,
        out: Path,
        days: int,
        not_before: datetime | None,
        not_after: datetime | None,
        ext: str,
        csr: Path | None,
    ) -> Issued:
        subject = f"/OU={role}/CN={cn}"
        work = self.dir / "tmp"
        work.mkdir(mode=0o700, exist_ok=True)
        ext_file, request = work / f"{cn}.ext", work / f"{cn}.csr"
        ext_file.write_text(ext, encoding="utf-8")
        key: Path | None = None
        if csr is None:
            key = out / f"{cn}.key"
            self._new_key(key)
            _run(
                ["req", "-new", "-config", "openssl.cnf", "-key", str(key), "-subj", subject,
                 "-out", str(request)],
                self.dir,
            )  # fmt: skip
        else:
            shutil.copyfile(csr, request)
        cert = out / f"{cn}.crt"
        validity = ["-days", str(days)]
        if not_before is not None or not_after is not None:
            start = not_before or datetime.now(UTC)
            validity = ["-startdate", _when(start)]
            validity += ["-enddate", _when(not_after)] if not_after else ["-days", str(days)]
        serial = (self.dir / "serial").read_text().strip()
        try:
            _run(
                ["ca", "-batch", "-config", "openssl.cnf", "-notext", "-in", str(request),
                 "-subj", subject, "-extfile", str(ext_file), "-extensions", "ext",
                 "-out", str(cert), *validity],
                self.dir,
            )  # fmt: skip
        finally:
            ext_file.unlink(missing_ok=True)
            request.unlink(missing_ok=True)
        cert.chmod(0o644)
        log.info("issued %s (%s) serial %s: %s", cn, role, serial, cert)
        return Issued(cn, serial, cert, key)

    def entries(self) -> list[Entry]:
        """The ledger: every certificate issued, with its state."""
        self._require()
        found = []
        for line in self.index.read_text(encoding="utf-8").splitlines():
            fields = line.split("\t")
            if len(fields) < 6:
                continue
            status, expiry, _revoked, serial, _file, subject = fields[:6]
            cn = re.search(r"/CN=([^/]+)", subject)
            ou = re.search(r"/OU=([^/]+)", subject)
            stamp = expiry.rstrip("Z")
            when = datetime.strptime(stamp, "%Y%m%d%H%M%S" if len(stamp) == 14 else "%y%m%d%H%M%S")
            found.append(
                Entry(
                    status,
                    serial,
                    cn.group(1) if cn else subject,
                    ou.group(1) if ou else "",
                    when.replace(tzinfo=UTC),
                )
            )
        return found

    def revoke(self, name: str, serial: str | None = None) -> list[str]:
        """Revoke every valid certificate of ``name`` (its core connections included) or only
        the one with ``serial``; rewrites the CRL. Returns the revoked serials."""
        self._require()
        ledger = self.entries()
        core = any(e.name == name and e.role == CertRole.CORE for e in ledger)
        names = set(client_ids(name, Role.CORE)) if core else {name}
        wanted = None if serial is None else serial.upper()
        targets = [
            e for e in ledger if e.status == "V" and e.name in names and wanted in (None, e.serial)
        ]
        if not targets:
            which = f"serial {serial} of {name}" if serial else f"{name}"
            raise PkiError(f"no valid certificate for {which} in {self.index}")
        for entry in targets:
            _run(
                ["ca", "-batch", "-config", "openssl.cnf", "-revoke",
                 f"newcerts/{entry.serial}.pem", "-crl_reason", "cessationOfOperation"],
                self.dir,
            )  # fmt: skip
            log.info("revoked %s serial %s", entry.name, entry.serial)
        self.gen_crl()
        return [e.serial for e in targets]

    def gen_crl(self, days: int = CRL_DAYS) -> Path:
        """(Re)write ``crl.pem``: every revoked certificate, valid for ``days``."""
        tmp = self.dir / "crl.pem.tmp"
        _run(
            ["ca", "-batch", "-config", "openssl.cnf", "-gencrl", "-crldays", str(days),
             "-crlexts", "crl_ext", "-out", str(tmp)],
            self.dir,
        )  # fmt: skip
        tmp.chmod(0o644)
        tmp.replace(self.crl)
        return self.crl


def _names(name: str, role: CertRole) -> tuple[str, ...]:
    if role is CertRole.BROKER:
        if not HOST_RE.match(name):
            raise PkiError(f"{name!r} is not a host name")
        return (name,)
    if role is CertRole.ADMIN:
        if name != ADMIN_USER:
            raise PkiError(f"the admin certificate's name is {ADMIN_USER!r}")
        return (name,)
    broker_role = Role(role.value)
    check_identity(name, broker_role)
    return client_ids(name, broker_role)


def _san(host: str, extra: tuple[str, ...]) -> str:
    entries = []
    for value in (host, *extra):
        kind = "IP" if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+:[0-9a-fA-F:]*", value) else "DNS"
        if kind == "DNS" and not HOST_RE.match(value):
            raise PkiError(f"{value!r} is neither a host name nor an IP address")
        entry = f"{kind}:{value}"
        if entry not in entries:
            entries.append(entry)
    return ",".join(entries)
