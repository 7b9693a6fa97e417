"""A real Debian host for the Ansible tests: a debootstrapped root file system (cached between
runs), booted with systemd-nspawn inside a network namespace made here, reached over SSH with a
key made here. Only the address inside that namespace is ever targeted.

Each run mounts an overlay over the cached root, so the cache stays clean; everything is torn
down by PID, mount point and namespace name, also when a test fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# What the host needs before Ansible can reach it (python3, sshd) and what the roles install
# with apt (the host has no route to a mirror: the roles find them installed).
PACKAGES = (
    "python3,python3-venv,python3-apt,openssh-server,sudo,iproute2,ca-certificates,"
    "systemd,systemd-sysv,dbus,mosquitto,mosquitto-clients,openssl,chrony,"
    "unattended-upgrades,nftables,bluez"
)
SUITE = "bookworm"


def missing_requirements() -> list[str]:
    """Why this machine cannot run the host tests (empty: it can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root")
    for tool in ("systemd-nspawn", "debootstrap", "ip", "ssh", "ssh-keygen", "mount"):
        if shutil.which(tool) is None:
            reasons.append(f"no {tool}")
    return reasons


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mallnet" / "testhost"


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (deb.debian.org otherwise)."""
    for source in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        with contextlib.suppress(OSError):
            for line in source.read_text(encoding="utf-8").splitlines():
                words = line.split()
                if line.startswith("URIs:") and "debian" in line and "security" not in line:
                    return words[1]
                if words[:1] == ["deb"] and "debian" in line and "security" not in line:
                    return next(w for w in words[1:] if w.startswith("http"))
    return "http://deb.debian.org/debian"


def cached_rootfs() -> Path:
    """The cached root file system, made by debootstrap on first use (about a minute)."""
    key = hashlib.sha256(f"{SUITE} {PACKAGES}".encode()).hexdigest()[:12]
    root = cache_dir() / f"rootfs-{SUITE}-{key}"
    done = root / ".mallnet-testhost"
    if done.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob(f"rootfs-{SUITE}-*"):  # older package lists, half-made roots
        shutil.rmtree(stale)
    log.info("debootstrap %s into %s (cached for later runs)", SUITE, root)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, str(root), _mirror()],
        check=True,
        capture_output=True,
    )
    # Boot quietly: no getty on the console nspawn gives us.
    (root / "etc/systemd/system/console-getty.service").symlink_to("/dev/null")
    done.write_text(f"{SUITE} {PACKAGES}\n", encoding="utf-8")
    return root


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Host:
    name: str
    address: str
    root: Path  # the booted root file system (an overlay), readable from this machine
    key: Path

    def ssh_argv(self, command: str) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
            f"root@{self.address}",
            command,
        ]

    def ssh(
        self, command: str, *, check: bool = True, attempts: int = 1
    ) -> subprocess.CompletedProcess[str]:
        argv = self.ssh_argv(command)
        argv[1:1] = ["-o", f"ConnectionAttempts={attempts}"]  # ssh retries once a second
        return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def booted_host(workdir: Path, name: str = "mallnet-testhost") -> Iterator[Host]:
    """Boot the cached root in a fresh network namespace; tear everything down on exit."""
    lower = cached_rootfs()
    tag = f"{os.getpid() % 100000}"
    netns, veth_out, veth_in = f"mallnet-t{tag}", f"mn{tag}o", f"mn{tag}i"
    subnet = 16 + (os.getpid() % 200)
    here, there = f"10.231.{subnet}.1", f"10.231.{subnet}.2"
    merged, upper, work = workdir / "root", workdir / "upper", workdir / "work"
    for folder in (merged, upper, work):
        folder.mkdir(parents=True)
    key = workdir / "id_ed25519"
    proc: subprocess.Popen[bytes] | None = None
    console = None
    mounted = netns_made = veth_made = False
    try:
        _run(
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={lower},upperdir={upper},workdir={work}",
            str(merged),
        )
        mounted = True
        _run("ip", "netns", "add", netns)
        netns_made = True
        _run("ip", "link", "add", veth_out, "type", "veth", "peer", "name", veth_in)
        veth_made = True
        _run("ip", "link", "set", veth_in, "netns", netns)
        _run("ip", "addr", "add", f"{here}/30", "dev", veth_out)
        _run("ip", "link", "set", veth_out, "up")
        _run("ip", "-n", netns, "addr", "add", f"{there}/30", "dev", veth_in)
        _run("ip", "-n", netns, "link", "set", veth_in, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        ssh_dir = merged / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        (merged / "etc/hostname").write_text(f"{name}\n")
        hosts = merged / "etc/hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.1.1 {name}\n")
        console = (workdir / "console.log").open("wb")
        proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--register=no",
                "--keep-unit",
                "--quiet",
                "-b",
                "-D",
                str(merged),
                f"--network-namespace-path=/run/netns/{netns}",
                "--capability=CAP_NET_ADMIN",
                f"--machine={name}",
            ],
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        host = Host(name, there, merged, key)
        deadline = time.monotonic() + 90
        while host.ssh(
            "systemctl is-system-running --wait", check=False, attempts=10
        ).returncode not in (0, 1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the test host did not boot: see {workdir / 'console.log'}")
        yield host
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a clean shutdown of the container's systemd
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if console is not None:
            console.close()
        if mounted:
            subprocess.run(["umount", "-R", str(merged)], check=False, capture_output=True)
        if veth_made:
            subprocess.run(["ip", "link", "del", veth_out], check=False, capture_output=True)
        if netns_made:
            subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
