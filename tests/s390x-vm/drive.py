#!/usr/bin/env python3
"""The s390x package in a booted s390x Debian under qemu-system-s390x (TCG).

Image: Debian bookworm s390x from Debian's mirror, debootstrap --foreign on the host
(no binfmt_misc here), the second stage run in the guest's first boot, Debian's s390x
kernel. The whole root is the guest's initramfs (no disk image, no bootloader); the
configured root is cached in CACHE/configured.cpio between runs.

Then one boot per run: the s390x .deb installed with dpkg, xinetd started, an IMAP and
a POP3 session from the host through loopback-only forwarded ports, purge, then the
.rpm with rpm, erase. One line per step; exit 1 on any failure (the guest's console
log is kept in CACHE/logs/)."""
import argparse
import base64
import imaplib
import os
import poplib
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from support import free_port  # noqa: E402 (tests/support.py)

MIRROR = "http://deb.debian.org/debian"
PACKAGES = "kmod,xinetd,ssl-cert,rpm,iproute2,procps,passwd,libpam-modules"
PASSWORD = "vm s3cret"
T0 = time.time()


class StepFailed(Exception):
    pass


def step(name, fn, *args):
    start = time.time()
    try:
        result = fn(*args)
    except Exception as e:
        print(f"FAIL {name} ({time.time() - start:.1f} s): {e}", flush=True)
        raise StepFailed(name) from e
    print(f"ok   {name} ({time.time() - start:.1f} s)", flush=True)
    return result


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def make_cpio(directory, out):
    with open(out, "wb") as f:
        files = subprocess.run(["find", ".", "-mount"], cwd=directory, check=True,
                               capture_output=True).stdout
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=directory, input=files,
                       stdout=f, check=True)


def kernel_deb(workdir):
    """Debian's current s390x kernel package, fetched by name with cross/apt (s390x
    package lists of the project's own; the host's dpkg is not touched)."""
    apt = os.path.join(HERE, "..", "..", "cross", "apt")
    deps = sh(apt, "s390x", "apt-cache", "depends", "linux-image-s390x")
    name = re.search(r"Depends: (linux-image-[0-9][^\s:]*)", deps).group(1)
    sh(apt, "s390x", "apt-get", "download", name, cwd=workdir)
    return os.path.join(workdir, [f for f in os.listdir(workdir) if f.startswith(name)][0])


def build_base(cache):
    """debootstrap's first stage (host) plus the kernel's files, as a cpio."""
    base = os.path.join(cache, "base")
    shutil.rmtree(base, ignore_errors=True)
    sh("debootstrap", "--foreign", "--arch=s390x", "--variant=minbase",
       f"--include={PACKAGES}", "bookworm", base, MIRROR)
    with tempfile.TemporaryDirectory() as tmp:
        deb = kernel_deb(tmp)
        files = os.path.join(tmp, "files")
        sh("dpkg-deb", "-x", deb, files)
        # Merged /usr: the package's /lib/modules go to /usr/lib/modules (extracting it
        # over the root would turn the /lib symlink into a directory).
        shutil.copytree(os.path.join(files, "lib", "modules"), os.path.join(base, "usr", "lib", "modules"))
        boot = os.path.join(files, "boot")
        kernel = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")][0]
        shutil.copy(os.path.join(boot, kernel), os.path.join(cache, "vmlinuz"))
    shutil.copy(os.path.join(HERE, "guest-stage2"), os.path.join(base, "init-stage2"))
    os.chmod(os.path.join(base, "init-stage2"), 0o755)
    make_cpio(base, os.path.join(cache, "base.cpio"))
    shutil.rmtree(base)


def qemu(cache, initrd, init, log, extra=()):
    cmd = ["qemu-system-s390x", "-M", "s390-ccw-virtio", "-cpu", "max", "-smp", "2",
           "-accel", "tcg,thread=multi", "-m", "3072", "-nographic", "-no-reboot",
           "-kernel", os.path.join(cache, "vmlinuz"), "-initrd", initrd,
           "-append", f"console=ttysclp0 rdinit={init} quiet", *extra]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def configure(cache, logs):
    """First boot: the second stage in the guest; the configured root comes back as a
    tar on a scratch disk, and is kept as a cpio."""
    disk = os.path.join(cache, "stage2.tar")
    with open(disk, "wb") as f:
        f.truncate(1536 << 20)
    log_path = os.path.join(logs, "stage2-console.log")
    with open(log_path, "wb") as log:
        p = qemu(cache, os.path.join(cache, "base.cpio"), "/init-stage2", log,
                 ["-drive", f"file={disk},format=raw,if=none,id=d0",
                  "-device", "virtio-blk-ccw,drive=d0"])
        p.wait(timeout=3600)
    text = open(log_path, errors="replace").read()
    if "imap-vm: stage2 saved" not in text:
        raise RuntimeError(f"second stage failed: see {log_path}")
    root = os.path.join(cache, "configured")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    sh("tar", "-xf", disk, "-C", root)
    os.unlink(disk)
    make_cpio(root, os.path.join(cache, "configured.cpio"))
    shutil.rmtree(root)
    os.unlink(os.path.join(cache, "base.cpio"))


class Guest:
    """The test boot: the configured root plus /imap-test (packages, agent)."""

    def __init__(self, cache, logs, deb, rpm, ports):
        self.work = tempfile.mkdtemp(prefix="imap-vm.")
        extra = os.path.join(self.work, "extra")
        os.makedirs(os.path.join(extra, "imap-test"))
        shutil.copy(deb, os.path.join(extra, "imap-test", "imap.deb"))
        shutil.copy(rpm, os.path.join(extra, "imap-test", "imap.rpm"))
        shutil.copy(os.path.join(HERE, "guest-agent"), os.path.join(extra, "imap-test", "agent"))
        os.chmod(os.path.join(extra, "imap-test", "agent"), 0o755)
        make_cpio(extra, os.path.join(self.work, "extra.cpio"))
        initrd = os.path.join(self.work, "initrd")
        # The kernel unpacks concatenated cpio archives in order: root, then ours.
        with open(initrd, "wb") as out:
            for part in (os.path.join(cache, "configured.cpio"), os.path.join(self.work, "extra.cpio")):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)
        self.ctl_path = os.path.join(self.work, "ctl.sock")
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{host}-:{guest}" for guest, host in ports.items())
        self.log_path = os.path.join(logs, "console.log")
        self.log = open(self.log_path, "wb")
        self.proc = qemu(cache, initrd, "/imap-test/agent", self.log, [
            # restrict=on: the guest reaches nothing; the forwards, on loopback, reach it.
            "-netdev", f"user,id=n0,restrict=on,{fwd}", "-device", "virtio-net-ccw,netdev=n0",
            "-device", "virtio-serial-ccw",
            "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
            "-device", "virtserialport,chardev=ctl,name=ctl"])
        self.conn = None

    def wait_ready(self, timeout=1800):
        deadline = time.time() + timeout
        while self.conn is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"qemu exited ({self.proc.returncode})")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.ctl_path)
                self.conn = s.makefile("rwb")
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("no control socket")
                time.sleep(0.5)
        while True:
            line = self.conn.readline()
            if not line:
                raise RuntimeError("guest closed the control port")
            if line.strip() == b"READY":
                return

    def run(self, script, check=True):
        """A shell script in the guest, as root: its output (stdout and stderr)."""
        self.conn.write(base64.b64encode(script.encode()) + b"\n")
        self.conn.flush()
        rc, _, out = self.conn.readline().decode().strip().partition(" ")
        out = base64.b64decode(out).decode(errors="replace")
        if check and rc != "0":
            raise RuntimeError(f"exit {rc}: {out.strip()[-2000:]}")
        return out

    def stop(self):
        if self.conn is not None:
            try:
                self.conn.write(base64.b64encode(b"sync; echo o > /proc/sysrq-trigger") + b"\n")
                self.conn.flush()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def tls_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the guest's own snakeoil certificate
    return context


def imap_session(port, tls_port):
    # The guest sees the host as 10.0.2.2, not loopback: passwords need TLS first
    # (IMAP_PLAINTEXT_AUTH=loopback), as for any client on the network.
    c = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    assert "LOGINDISABLED" in c.capabilities
    c.starttls(tls_context())
    c.login("alice", PASSWORD)
    for n in (1, 2):
        typ, _ = c.append("INBOX", None, None, f"Subject: from the host {n}\r\n\r\nbody {n}\r\n".encode())
        assert typ == "OK", typ
    assert c.select("INBOX") == ("OK", [b"2"])
    typ, data = c.fetch("1", "(BODY[] FLAGS)")
    assert b"body 1" in data[0][1], data
    assert c.store("1", "+FLAGS", r"(\Deleted)")[0] == "OK"
    assert c.expunge() == ("OK", [b"1"])
    assert c.logout()[0] == "BYE"
    c = imaplib.IMAP4_SSL("127.0.0.1", tls_port, ssl_context=tls_context(), timeout=60)
    c.login("alice", PASSWORD)
    assert c.select("INBOX") == ("OK", [b"1"])
    c.logout()


def pop3_session(port):
    p = poplib.POP3("127.0.0.1", port, timeout=60)
    p.stls(tls_context())
    p.user("alice")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    assert b"body 2" in b"\n".join(p.retr(1)[1])
    p.dele(1)
    p.quit()
    p = poplib.POP3("127.0.0.1", port, timeout=60)
    p.stls(tls_context())
    p.user("alice")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 0
    p.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", required=True)
    ap.add_argument("--deb", required=True)
    ap.add_argument("--rpm", required=True)
    args = ap.parse_args()
    cache = os.path.abspath(args.cache)
    logs = os.path.join(cache, "logs", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(logs)
    guest = None
    try:
        if not os.path.exists(os.path.join(cache, "configured.cpio")):
            if not os.path.exists(os.path.join(cache, "base.cpio")):
                step("image: debootstrap --foreign s390x, Debian kernel", build_base, cache)
            step("image: second stage in the guest (first boot)", configure, cache, logs)
        else:
            print(f"ok   image: cached ({cache}/configured.cpio)", flush=True)
        ports = {143: free_port(), 993: free_port(), 110: free_port()}
        boot_start = time.time()
        guest = Guest(cache, logs, args.deb, args.rpm, ports)
        step("boot the s390x guest", guest.wait_ready)
        boot = time.time() - boot_start
        print(f"     guest: {guest.run('uname -srm; cat /etc/debian_version').split()}", flush=True)
        hashed = sh("mkpasswd", "-m", "yescrypt", PASSWORD).strip()
        # An /etc/services without imaps and pop3s, for the package to add and remove.
        step("guest: /etc/services without imaps, pop3s; account alice", guest.run,
             "sed -i -e '/^imaps[[:space:]]*993\\/tcp/d' -e '/^pop3s[[:space:]]*995\\/tcp/d' /etc/services;"
             " sha256sum /etc/services > /run/services.sum;"
             f" useradd -m -s /bin/sh -p '{hashed}' alice")
        step("guest: dpkg -i imap_s390x.deb", guest.run, "dpkg -i /imap-test/imap.deb")
        step("guest: /etc/services has imaps and pop3s added, once", guest.run,
             "test $(grep -c '^imaps[[:space:]]*993/tcp' /etc/services) = 1 &&"
             " test $(grep -c '^pop3s[[:space:]]*995/tcp' /etc/services) = 1 &&"
             " test $(grep -c '^pop3[[:space:]]*110/tcp' /etc/services) = 1")
        step("guest: xinetd files installed", guest.run,
             "for s in imap imaps pop3 pop3s; do grep -q 'disable[[:space:]]*= no' /etc/xinetd.d/$s; done;"
             " test -x /usr/sbin/imapd && /usr/sbin/imapd --version")
        step("guest: start xinetd", guest.run,
             "/etc/init.d/xinetd start; sleep 1; test -s /run/xinetd.pid")
        step("host: IMAP STARTTLS login APPEND SELECT FETCH STORE EXPUNGE LOGOUT; IMAPS",
             imap_session, ports[143], ports[993])
        step("host: POP3 STLS USER PASS STAT RETR DELE QUIT", pop3_session, ports[110])
        step("guest: the spool /var/mail/alice held the mail, deleted now", guest.run,
             "test -f /var/mail/alice && ! grep -q 'body 2' /var/mail/alice")
        step("guest: dpkg -P imap; /etc/services as it was", guest.run,
             "dpkg -P imap && sha256sum -c /run/services.sum && ! test -e /etc/xinetd.d/imap")
        step("guest: rpm -i imap.s390x.rpm (%post ran: services, TLS pair)", guest.run,
             "rpm -i --nodeps /imap-test/imap.rpm &&"
             " test $(grep -c '^imaps[[:space:]]*993/tcp' /etc/services) = 1 &&"
             " grep -q 'BEGIN CERTIFICATE' /etc/pki/tls/certs/imapd.pem &&"
             " test -s /var/lib/imap/services-added")
        step("guest: rpm -ql, the files and scriptlets", guest.run,
             "rpm -ql imap | grep -qx /usr/sbin/ipop3d && test -f /etc/xinetd.d/pop3s &&"
             " rpm -q --scripts imap | grep -q imap_services_remove &&"
             " /usr/sbin/ipop3d --version")
        step("guest: rpm -e imap; /etc/services as it was", guest.run,
             "rpm -e --nodeps imap && sha256sum -c /run/services.sum && ! test -e /usr/sbin/imapd")
        print(f"boot {boot:.0f} s, total {time.time() - T0:.0f} s", flush=True)
        return 0
    except StepFailed:
        print(f"FAILED after {time.time() - T0:.0f} s; guest console: {logs}", flush=True)
        return 1
    finally:
        if guest is not None:
            guest.stop()


if __name__ == "__main__":
    sys.exit(main())
