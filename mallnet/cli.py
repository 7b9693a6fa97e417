"""The ``mallnet`` command.

Shared subcommands live here (``demo``, ``broker``, ``wire``); each part adds
its own (``edge``, ``core``, ``kiosk``) through the ``mallnet.commands`` entry
point group, so this package never imports a part. A part whose extra is not
installed on a device (a Pi has no ``cloud`` extra) is reported, not crashed on.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from mallnet import __version__
from mallnet.errors import ConfigError, MallnetError
from mallnet.logs import configure_logging

if TYPE_CHECKING:
    from datetime import datetime

    from mallnet.dynsec import DynsecControl
    from mallnet.pki import CertificateAuthority

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
REPO_ROOT = Path(__file__).resolve().parent.parent


def _wire_docs(args: argparse.Namespace) -> int:
    from mallnet.wire.docs import render_wire_docs

    target = Path(args.output)
    text = render_wire_docs()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            log.error("%s is stale: run `mallnet wire docs`", target)
            return 1
        log.info("%s is current", target)
        return 0
    target.write_text(text, encoding="utf-8")
    log.info("wrote %s", target)
    return 0


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(secret + "\n", encoding="utf-8")


def _live_control(settings_file: str) -> DynsecControl:
    from mallnet.config import MqttSettings, load_config
    from mallnet.dynsec import DynsecControl

    path = Path(settings_file)
    return DynsecControl(load_config(path, MqttSettings).relative_to(path.parent))


def _broker_add_device(args: argparse.Namespace) -> int:
    import secrets

    from mallnet.dynsec import Role, add_device, check_identity, client_ids
    from mallnet.wire.topics import check_id

    role = Role(args.role)
    mall = check_id(args.mall, "mall")
    check_identity(args.user, role)
    if args.cert == (args.secret_out is not None):
        log.error("give either --secret-out (a password identity) or --cert (a certificate one)")
        return 2
    password: str | None = None if args.cert else secrets.token_urlsafe(24)
    if args.live:
        _live_control(args.live).set_identity(mall, args.user, role, password)
        where = "the running broker (applied now)"
    else:
        dynsec = Path(args.dynsec_file)
        password = add_device(dynsec, mall, args.user, role, password, certificate=args.cert)
        where = f"{args.dynsec_file} (restart Mosquitto to apply)"
    if password is not None:
        _write_secret(Path(args.secret_out), password)
    login = (
        "it logs in with its certificate (`mallnet pki issue`)"
        if password is None
        else f"its password is in {args.secret_out}"
    )
    log.info(
        "added %s (%s; clients bound to ids %s) to %s; %s",
        args.user,
        role,
        ", ".join(client_ids(args.user, role)),
        where,
        login,
    )
    return 0


def _broker_remove_device(args: argparse.Namespace) -> int:
    from mallnet.dynsec import remove_device

    if args.live:
        _live_control(args.live).remove_identity(args.user)
        log.info("removed %s from the running broker; its connections were closed", args.user)
        return 0
    if not remove_device(Path(args.dynsec_file), args.user):
        log.error("%s is not in %s", args.user, args.dynsec_file)
        return 1
    log.info("removed %s from %s; restart Mosquitto to apply", args.user, args.dynsec_file)
    return 0


def _broker_add_admin(args: argparse.Namespace) -> int:
    from mallnet.dynsec import write_admin

    _write_secret(Path(args.secret_out), write_admin(Path(args.dynsec_file)))
    log.info(
        "added the admin identity to %s (restart Mosquitto once); its password is in %s",
        args.dynsec_file,
        args.secret_out,
    )
    return 0


def _broker_acl(args: argparse.Namespace) -> int:
    from mallnet.dynsec import Role, role_acls
    from mallnet.wire.topics import check_id

    acls = role_acls(check_id(args.mall, "mall"), args.user, Role(args.role))
    sys.stdout.write("".join(f"{a['acltype']} {a['topic']}\n" for a in acls))
    return 0


def _broker_bridge_conf(args: argparse.Namespace) -> int:
    from mallnet.bridge import render_bridge
    from mallnet.config import MqttSettings, load_config

    remote_file = Path(args.remote)
    remote = load_config(remote_file, MqttSettings).relative_to(remote_file.parent)
    text = render_bridge(args.mall, remote, allow_plain=args.allow_plain)
    _write_secret(Path(args.output), text.rstrip("\n"))
    log.info(
        "wrote the bridge of mall %s to %s:%s into %s (0600, holds its password); "
        "restart the mall's Mosquitto to apply",
        args.mall,
        remote.host,
        remote.port,
        args.output,
    )
    return 0


def _broker_status(args: argparse.Namespace) -> int:
    import json

    from mallnet.config import MqttSettings, load_config
    from mallnet.status import read_status
    from mallnet.wire.topics import check_id

    path = Path(args.settings)
    settings = load_config(path, MqttSettings).relative_to(path.parent)
    status = read_status(
        settings, check_id(args.mall, "mall"), args.device, kiosk=args.kiosk, timeout=args.timeout
    )
    if status is None:
        log.error("the broker holds no status for %s", args.device)
        return 1
    sys.stdout.write(json.dumps(status, sort_keys=True) + "\n")
    return 0


def _ca(args: argparse.Namespace) -> CertificateAuthority:
    from mallnet.pki import CertificateAuthority

    return CertificateAuthority(Path(args.ca_dir))


def _pki_init(args: argparse.Namespace) -> int:
    ca = _ca(args)
    ca.init(args.name, days=args.days)
    log.info(
        "CA certificate %s (give it to every device and the broker); CRL %s", ca.ca_cert, ca.crl
    )
    return 0


def _iso(value: str | None) -> datetime | None:
    from datetime import UTC, datetime

    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _pki_issue(args: argparse.Namespace) -> int:
    from mallnet.pki import CertRole

    issued = _ca(args).issue(
        args.id,
        CertRole(args.role),
        out=Path(args.out) if args.out else None,
        days=args.days,
        not_before=_iso(args.not_before),
        not_after=_iso(args.not_after),
        san=tuple(args.san),
        csr=Path(args.csr) if args.csr else None,
    )
    for cert in issued:
        sys.stdout.write(f"{cert.name}\t{cert.serial}\t{cert.cert}\t{cert.key or '-'}\n")
    return 0


def _pki_revoke(args: argparse.Namespace) -> int:
    ca = _ca(args)
    serials = ca.revoke(args.id, args.serial)
    log.info(
        "revoked %s (serial %s); copy %s to the broker's crlfile and reload it "
        "(`systemctl reload mosquitto`)",
        args.id,
        ", ".join(serials),
        ca.crl,
    )
    return 0


def _pki_crl(args: argparse.Namespace) -> int:
    ca = _ca(args)
    crl = ca.gen_crl(args.days)
    log.info("wrote %s, valid %d days: re-sign it before then", crl, args.days)
    return 0


def _pki_list(args: argparse.Namespace) -> int:
    for entry in _ca(args).entries():
        sys.stdout.write(
            f"{entry.status}\t{entry.serial}\t{entry.name}\t{entry.role}\t"
            f"{entry.not_after.isoformat()}\n"
        )
    return 0


def _pi_boot_config(args: argparse.Namespace) -> int:
    from mallnet.config import load_config
    from mallnet.pi import (
        PiBoot,
        apply_cmdline,
        apply_config_txt,
        cmdline_args,
        config_txt_lines,
        update,
        watchdog_dropin,
    )

    boot = load_config(Path(args.profile), PiBoot)
    targets = [
        (args.config_txt, apply_config_txt),
        (args.cmdline, apply_cmdline),
    ]
    if not any(path for path, _ in targets) and not args.watchdog_conf:
        sys.stdout.write("\n".join(config_txt_lines(boot)) + "\n")
        sys.stdout.write(f"# cmdline.txt: {' '.join(cmdline_args(boot))}\n")
        return 0
    changed = []
    for path, apply in targets:
        if path:
            file = Path(path)
            old = file.read_text(encoding="utf-8") if file.exists() else ""
            if update(file, apply(old, boot)):
                changed.append(path)
    dropin = watchdog_dropin(boot)
    if args.watchdog_conf:
        conf = Path(args.watchdog_conf)
        if dropin is None:
            if conf.exists():
                conf.unlink()
                changed.append(args.watchdog_conf)
        elif update(conf, dropin):
            changed.append(args.watchdog_conf)
    sys.stdout.write(("changed: " + " ".join(changed) if changed else "unchanged") + "\n")
    return 0


def _broker_run(args: argparse.Namespace) -> int:
    from mallnet.broker import DevBroker

    broker = DevBroker(Path(args.data_dir), mall=args.mall, port=args.port)
    try:  # Ctrl-C while it is still starting stops Mosquitto too
        broker.start()
        log.info(
            "dev broker on 127.0.0.1:%s, data in %s; Ctrl-C stops it", broker.port, args.data_dir
        )
        broker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def _diagnose(args: argparse.Namespace) -> int:
    from mallnet.diagnose import build_report, render

    sys.stdout.write(render(build_report([Path(p) for p in args.config])))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from mallnet.demo import run_demo

    return run_demo(
        Path(args.workdir) if args.workdir else None, duration_s=args.duration, quiet=args.quiet
    )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``mallnet core run: error: … (see --help)``, exit 2.

    Subcommand parsers (the parts' too) are made by ``add_parser`` with this class.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _add_log_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level``/``--log-format`` on ``parser``; below the top they default to
    nothing, so a value given before the subcommand is not overwritten."""
    level: object = "INFO" if top else argparse.SUPPRESS
    fmt: object = "text" if top else argparse.SUPPRESS
    parser.add_argument(
        "--log-level", type=_log_level, default=level, help="DEBUG, INFO, WARNING or ERROR"
    )
    parser.add_argument("--log-format", default=fmt, choices=["text", "json"])


def _add_log_options_below(parser: argparse.ArgumentParser, seen: set[int]) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) in seen:  # an alias
                    continue
                seen.add(id(child))
                if "--log-level" not in child._option_string_actions:
                    _add_log_options(child, top=False)
                _add_log_options_below(child, seen)


def _add_broker_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = sub.add_parser("broker", help="development broker and device credentials")
    bsub = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    roles = ["store", "gate", "kiosk", "core", "monitor", "bridge"]
    dynsec = "/var/lib/mosquitto/mallnet-dynsec.json"
    add = bsub.add_parser("add-device", help="create or replace a broker identity")
    add.add_argument(
        "user",
        help="the node, kiosk or monitor id (its broker user and client id); for the core its "
        "ingest.client_id (it also gets USER-out and USER-api, same password)",
    )
    add.add_argument("--role", required=True, choices=roles, help="what the identity may do")
    add.add_argument("--mall", required=True, help="the mall id in topics")
    add.add_argument("--dynsec-file", default=dynsec, help=f"the broker's identities ({dynsec})")
    add.add_argument("--secret-out", help="write the new password here (0600)")
    add.add_argument(
        "--cert",
        action="store_true",
        help="a certificate identity: no password, it logs in with the client certificate "
        "`mallnet pki issue` made for it (production)",
    )
    add.set_defaults(handler=_broker_add_device)
    remove = bsub.add_parser("remove-device", help="revoke a broker identity")
    remove.add_argument("user", help="the node or kiosk id")
    remove.add_argument("--dynsec-file", default=dynsec, help=f"the broker's identities ({dynsec})")
    remove.set_defaults(handler=_broker_remove_device)
    live_help = (
        "apply to the running broker through its $CONTROL topic, connecting with these MQTT "
        "settings (YAML: host, port, tls, username mallnet-admin, password_file)"
    )
    for command in (add, remove):
        command.add_argument("--live", metavar="SETTINGS.yaml", help=live_help)
    admin = bsub.add_parser("add-admin", help="create the identity that changes a broker live")
    admin.add_argument("--dynsec-file", default=dynsec, help=f"the broker's identities ({dynsec})")
    admin.add_argument("--secret-out", required=True, help="write its password here (0600)")
    admin.set_defaults(handler=_broker_add_admin)
    acl = bsub.add_parser("acl", help="print what an identity may publish and subscribe to")
    acl.add_argument("user", help="the node or kiosk id (any id for the core)")
    acl.add_argument("--role", required=True, choices=roles)
    acl.add_argument("--mall", required=True, help="the mall id in topics")
    acl.set_defaults(handler=_broker_acl)
    bridge = bsub.add_parser(
        "bridge-conf", help="write the config that bridges a mall's broker to the platform's"
    )
    bridge.add_argument("--mall", required=True, help="the mall id in topics")
    bridge.add_argument(
        "--remote",
        required=True,
        metavar="SETTINGS.yaml",
        help="the platform broker as this mall's bridge reaches it (YAML: host, port, "
        "username bridge-MALL, password_file, tls.ca_file)",
    )
    bridge.add_argument(
        "--output", required=True, help="the file to write (0600), e.g. conf.d/mallnet-bridge.conf"
    )
    bridge.add_argument(
        "--allow-plain", action="store_true", help="allow no TLS (development on loopback only)"
    )
    bridge.set_defaults(handler=_broker_bridge_conf)

    status = bsub.add_parser("status", help="print a node's or kiosk's retained status (JSON)")
    status.add_argument("device", help="the node or kiosk id")
    status.add_argument("--settings", required=True, help="MQTT settings YAML of a monitor")
    status.add_argument("--mall", required=True, help="the mall id in topics")
    status.add_argument("--kiosk", action="store_true", help="the device is a kiosk")
    status.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    status.set_defaults(handler=_broker_status)
    run = bsub.add_parser("run", help="run a development broker from mqtt_broker/ config")
    run.add_argument("--data-dir", required=True)
    run.add_argument("--mall", default="demo")
    run.add_argument("--port", type=int, default=1883)
    run.set_defaults(handler=_broker_run)


def _add_pki_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from mallnet.pki import CA_DAYS, CRL_DAYS, DEVICE_DAYS

    pki = sub.add_parser("pki", help="the mall's certificate authority (device certificates)")
    psub = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")
    default_dir = "/etc/mallnet/ca"
    init = psub.add_parser("init-ca", help="create the CA (key, certificate, empty CRL)")
    init.add_argument("--name", default="mallnet CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=CA_DAYS, help="the CA certificate's validity")
    init.set_defaults(handler=_pki_init)
    roles = ["store", "gate", "kiosk", "core", "monitor", "admin", "broker"]
    issue = psub.add_parser("issue", help="issue a device's (or the broker's) certificate")
    issue.add_argument("id", help="the device id (CN = broker username = client id), or a host")
    issue.add_argument("--role", required=True, choices=roles, help="what the certificate is for")
    issue.add_argument("--out", help="write ID.crt and ID.key here (default: CA_DIR/issued)")
    issue.add_argument("--days", type=int, default=DEVICE_DAYS, help="validity in days")
    issue.add_argument("--not-before", help="ISO date/time the certificate starts (tests)")
    issue.add_argument("--not-after", help="ISO date/time it ends, past ones too (tests)")
    issue.add_argument("--san", action="append", default=[], help="broker: another name or IP")
    issue.add_argument("--csr", help="sign this request (key made on the device) instead")
    issue.set_defaults(handler=_pki_issue)
    revoke = psub.add_parser("revoke", help="revoke a device's certificates and rewrite the CRL")
    revoke.add_argument("id", help="the device id (a core id revokes all its connections)")
    revoke.add_argument("--serial", help="only this certificate (after a rotation)")
    revoke.set_defaults(handler=_pki_revoke)
    crl = psub.add_parser("crl", help="re-sign the CRL (before it expires)")
    crl.add_argument("--days", type=int, default=CRL_DAYS, help="until the next update")
    crl.set_defaults(handler=_pki_crl)
    listing = psub.add_parser("list", help="every certificate issued: state, serial, id, role")
    listing.set_defaults(handler=_pki_list)
    for command in (init, issue, revoke, crl, listing):
        command.add_argument(
            "--ca-dir", default=default_dir, help=f"the CA's folder, with its key ({default_dir})"
        )


def _add_pi_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pi = sub.add_parser("pi", help="a Raspberry Pi's boot settings (firmware_config/pi/)")
    psub = pi.add_subparsers(dest="pi_command", required=True, metavar="ACTION")
    boot = psub.add_parser(
        "boot-config", help="apply a boot profile to config.txt, cmdline.txt and the watchdog"
    )
    boot.add_argument("profile", help="a profile, e.g. firmware_config/pi/store-node.yaml")
    boot.add_argument("--config-txt", help="update the mallnet block of this config.txt")
    boot.add_argument("--cmdline", help="set the profile's arguments in this cmdline.txt")
    boot.add_argument(
        "--watchdog-conf",
        help="write the systemd watchdog drop-in here "
        "(/etc/systemd/system.conf.d/mallnet-watchdog.conf)",
    )
    boot.set_defaults(handler=_pi_boot_config)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(prog="mallnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mallnet {__version__}")
    _add_log_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a whole simulated mall on this machine")
    demo.add_argument("--workdir", help="keep the demo's files here (default: a temp dir)")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="close the mall after N seconds (default: Ctrl-C, or after the simulated hour)",
    )
    demo.add_argument(
        "--quiet", action="store_true", help="no line per inbox notice, only progress"
    )
    demo.set_defaults(handler=_demo)

    diag = sub.add_parser("diagnose", help="print a redacted report for support tickets")
    diag.add_argument("--config", action="append", default=[], help="a config file to include")
    diag.set_defaults(handler=_diagnose)

    _add_broker_commands(sub)
    _add_pki_commands(sub)
    _add_pi_commands(sub)

    wire = sub.add_parser("wire", help="the MQTT wire contract")
    wsub = wire.add_subparsers(dest="wire_command", required=True, metavar="ACTION")
    docs = wsub.add_parser("docs", help="write docs/wire.md from the models")
    docs.add_argument("--output", default=str(REPO_ROOT / "docs" / "wire.md"))
    docs.add_argument("--check", action="store_true", help="fail if the file is stale")
    docs.set_defaults(handler=_wire_docs)

    for ep in sorted(entry_points(group="mallnet.commands"), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as exc:
            missing = sub.add_parser(ep.name, help=f"(not installed here: {exc.name})")
            missing.set_defaults(handler=_not_installed(ep.name, str(exc)))
            continue
        register(sub)
    _add_log_options_below(parser, set())
    return parser


def _not_installed(name: str, reason: str) -> Handler:
    def handler(_args: argparse.Namespace) -> int:
        log.error("`mallnet %s` is not available: %s (install the matching extra)", name, reason)
        return 2

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:  # one line per problem, each naming the file (and line)
        for line in exc.problems or [str(exc)]:
            log.error("%s", line)
        return 2
    except MallnetError as exc:
        log.error("%s", " ".join(str(exc).split("\n")))
        return 2
    except OSError as exc:  # an output folder that does not exist, a file we may not write …
        log.error("%s", exc)
        log.debug("where it happened", exc_info=True)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
