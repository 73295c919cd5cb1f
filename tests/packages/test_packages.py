"""The six packages packaging/dist builds (target/dist/): their metadata and contents for
each architecture, lintian and rpmlint, and the native .deb and .rpm installed,
upgraded and removed in a fresh Debian root (mmdebstrap) whose xinetd then serves IMAP
and POP3 from the installed files, with no edit, to a system account made in that root.

The root gets its own network namespace, so its xinetd binds the real ports (143, 110,
993, 995, found through /etc/services) without touching the host's. tests/run packages
builds the packages first."""
import ctypes
import glob
import imaplib
import os
import poplib
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ROOT, SyslogCatcher

DIST = os.path.join(ROOT, "target", "dist")
VERSION = re.search(r'^version = "([^"]+)"', open(os.path.join(ROOT, "Cargo.toml")).read(), re.M).group(1)
ARCHES = [  # Debian, RPM, ELF machine (readelf -h)
    ("amd64", "x86_64", "Advanced Micro Devices X86-64"),
    ("arm64", "aarch64", "AArch64"),
    ("s390x", "s390x", "IBM S/390"),
]
# qemu-user with the target's libraries from cross/sysroot.
QEMU = {arch: os.path.join(ROOT, "cross", "bin", name)
        for arch, name in (("arm64", "qemu-aarch64"), ("s390x", "qemu-s390x"))}
MIRROR = "http://deb.debian.org/debian"
PASSWORD = "pkg s3cret"
SPOOL_MESSAGE = (b"From postfix@example.org  Mon Nov 23 10:00:00 2026\n"
                 b"From: Postfix <postfix@example.org>\nTo: alice\nSubject: delivered by the MTA\n\n"
                 b"Hello from /var/mail.\n\n")


def deb(arch):
    return os.path.join(DIST, f"imap_{VERSION}-1_{arch}.deb")


def rpm(arch):
    return os.path.join(DIST, f"imap-{VERSION}-1.{arch}.rpm")


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def test_dist_made_exactly_the_six_packages():
    names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DIST, "*")))
    assert names == sorted([os.path.basename(deb(a[0])) for a in ARCHES] +
                           [os.path.basename(rpm(a[1])) for a in ARCHES])


FILES = ["/usr/sbin/imapd", "/usr/sbin/ipop3d", "/usr/share/man/man8/imapd.8.gz",
         "/usr/share/man/man8/ipop3d.8.gz", "/etc/xinetd.d/imap", "/etc/xinetd.d/imaps",
         "/etc/xinetd.d/pop3", "/etc/xinetd.d/pop3s", "/etc/pam.d/imap", "/etc/pam.d/pop3",
         "/usr/share/imap/inetd.conf.d/imap", "/usr/share/imap/inetd.conf.d/pop3s",
         "/etc/fail2ban/filter.d/imapd.conf"]
UNITS = ["imap.socket", "imap@.service", "imaps.socket", "imaps@.service", "pop3.socket",
         "pop3@.service", "pop3s.socket", "pop3s@.service", "imapd.service", "ipop3d.service"]
CONFFILES = ["/etc/xinetd.d/imap", "/etc/xinetd.d/imaps", "/etc/xinetd.d/pop3",
             "/etc/xinetd.d/pop3s", "/etc/pam.d/imap", "/etc/pam.d/pop3",
             "/etc/fail2ban/filter.d/imapd.conf"]


def settings_of(exe, arch):
    """`imapd --settings` of a packaged binary, run on its architecture (qemu-user)."""
    cmd = ([QEMU[arch]] if arch in QEMU else []) + [exe, "--settings"]
    return dict(line.split("=", 1) for line in run(*cmd).splitlines())


@pytest.mark.parametrize("arch,rpm_arch,machine", ARCHES)
def test_deb_metadata_and_contents(arch, rpm_arch, machine, tmp_path):
    path = deb(arch)
    fields = {f: run("dpkg-deb", "-f", path, f).strip() for f in
              ("Package", "Version", "Architecture", "Depends", "Section", "Provides", "Conflicts")}
    assert fields["Package"] == "imap" and fields["Version"] == f"{VERSION}-1"
    assert fields["Architecture"] == arch and fields["Section"] == "mail"
    # Computed from this architecture's binary by dpkg-shlibdeps, plus the fixed ones.
    for dep in ("libc6 (>=", "libcrypt1 (>=", "libpam0g (>=", "ssl-cert", "libpam-runtime"):
        assert dep in fields["Depends"], fields["Depends"]
    assert "imap-server" in fields["Provides"] and "courier-imap" in fields["Conflicts"]
    listing = run("dpkg-deb", "-c", path)
    for f in FILES + [f"/lib/systemd/system/{u}" for u in UNITS]:
        assert f" .{f}" in listing, f
    control = tmp_path / "control"
    run("dpkg-deb", "-e", path, str(control))
    assert sorted(open(control / "conffiles").read().split()) == sorted(CONFFILES)
    for script in ("postinst", "prerm", "postrm"):
        text = open(control / script).read()
        assert not re.search(r"^#IMAP_SERVICES_FUNCTIONS#$", text, re.M), script
        run("sh", "-n", str(control / script))
    assert "imap_services_add" in open(control / "postinst").read()
    assert "imap_services_remove" in open(control / "postrm").read()
    # The binaries are this architecture's, run there, and carry the packages' settings.
    root = tmp_path / "root"
    run("dpkg-deb", "-x", path, str(root))
    copyright = open(root / "usr/share/doc/imap/copyright").read()
    assert "License: Apache-2.0" in copyright and "/usr/share/common-licenses/Apache-2.0" in copyright
    exe = str(root / "usr/sbin/imapd")
    assert re.search(rf"Machine:\s+{re.escape(machine)}", run("readelf", "-h", exe))
    s = settings_of(exe, arch)
    assert s["IMAP_MAIL_LOCATION"] == "mbox:~/mail:INBOX=/var/mail/%u"
    assert s["IMAP_TLS_CERT_FILE"] == "/etc/ssl/certs/ssl-cert-snakeoil.pem"
    assert s["IMAP_PAM_SERVICE_IMAP"] == "imap"
    assert "libpam.so.0" in run("readelf", "-d", exe)


@pytest.mark.parametrize("arch,rpm_arch,machine", ARCHES)
def test_rpm_metadata_and_contents(arch, rpm_arch, machine, tmp_path):
    path = rpm(rpm_arch)
    q = lambda fmt: run("rpm", "-qp", "--qf", fmt, path)
    assert q("%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}") == \
        f"imap {VERSION} 1 {rpm_arch} Apache-2.0"
    requires = set(run("rpm", "-qpR", path).splitlines())
    for req in ("libc.so.6()(64bit)", "libcrypt.so.1()(64bit)", "libpam.so.0()(64bit)", "openssl"):
        assert req in requires, (req, requires)
    listing = run("rpm", "-qpl", path).split()
    for f in FILES + [f"/usr/lib/systemd/system/{u}" for u in UNITS] + ["/usr/share/licenses/imap/LICENSE"]:
        assert f in listing, f
    assert sorted(run("rpm", "-qpc", path).split()) == sorted(CONFFILES)
    scripts = run("rpm", "-qp", "--scripts", path)
    assert "postinstall scriptlet" in scripts and "postuninstall scriptlet" in scripts
    assert "imap_services_add" in scripts and "imap_services_remove" in scripts
    assert not re.search(r"^#IMAP_SERVICES_FUNCTIONS#$", scripts, re.M)
    root = tmp_path / "root"
    root.mkdir()
    subprocess.run(f"rpm2cpio {path} | cpio -idm --quiet", shell=True, cwd=root, check=True)
    exe = str(root / "usr/sbin/imapd")
    assert re.search(rf"Machine:\s+{re.escape(machine)}", run("readelf", "-h", exe))
    # The package requires what rpm's own generator reads off this architecture's binary.
    generated = set(run("/usr/lib/rpm/rpmdeps", "--requires", exe).splitlines())
    assert generated and generated <= requires, generated - requires
    s = settings_of(exe, arch)
    assert s["IMAP_TLS_CERT_FILE"] == "/etc/pki/tls/certs/imapd.pem"
    assert s["IMAP_TLS_KEY_FILE"] == "/etc/pki/tls/private/imapd.key"
    assert s["IMAP_MAIL_LOCATION"] == "mbox:~/mail:INBOX=/var/mail/%u"


@pytest.mark.parametrize("arch", [a[0] for a in ARCHES])
def test_lintian_is_clean(arch):
    """No error or warning, pedantic included (overrides, each with its reason, ship in
    /usr/share/lintian/overrides/imap)."""
    out = subprocess.run(["lintian", "--pedantic", "--fail-on", "error,warning,info,pedantic",
                          deb(arch)], capture_output=True, text=True)
    tags = [line for line in out.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert tags == [] and out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("rpm_arch", [a[1] for a in ARCHES])
def test_rpmlint_is_clean(rpm_arch):
    """No error or warning (checks filtered in rpm/rpmlint.toml, each with its reason)."""
    out = subprocess.run(["rpmlint", "-c", os.path.join(ROOT, "rpm", "rpmlint.toml"), rpm(rpm_arch)],
                         capture_output=True, text=True)
    assert "0 errors, 0 warnings" in out.stdout and out.returncode == 0, out.stdout + out.stderr


# --- a fresh Debian with the package installed ---------------------------------------

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


class DebianRoot:
    """A minimal Debian bookworm (mmdebstrap, from Debian's mirror) with xinetd and
    ssl-cert, its own network namespace, /proc, and a syslog socket at /dev/log."""

    def __init__(self, path, superserver="xinetd"):
        self.path = path
        self.superserver = superserver
        subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--mode=root",
                        f"--include={superserver},ssl-cert,libpam-runtime,openssl,systemd,procps",
                        "bookworm", path,
                        f"deb {MIRROR} bookworm main", f"deb {MIRROR} bookworm-updates main",
                        f"deb {MIRROR}-security bookworm-security main"], check=True)
        subprocess.run(["mount", "-t", "proc", "proc", f"{path}/proc"], check=True)
        # Daemons are started by the test, in the namespace; a package may reload them.
        self.write("/usr/sbin/policy-rc.d",
                   '#!/bin/sh\ncase "$2" in reload|force-reload) exit 0 ;; esac\nexit 101\n', 0o755)
        self.netns = f"imappkg{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self.syslog = SyslogCatcher(f"{path}/dev/log")

    def chroot(self, *cmd, check=True):
        return subprocess.run(["chroot", self.path, *cmd], check=check, capture_output=True, text=True)

    def read(self, name, mode="r"):
        with open(self.path + name, mode) as f:
            return f.read()

    def write(self, name, data, mode=0o644):
        with open(self.path + name, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        os.chmod(self.path + name, mode)

    def exists(self, name):
        return os.path.lexists(self.path + name)

    def pid_file(self):
        return "/run/xinetd.pid" if self.superserver == "xinetd" else "/run/inetd.pid"

    def start_superserver(self):
        """Debian's init script, inside the namespace. nsenter, not `ip netns exec`, which
        also makes a mount namespace: from there the daemon's /proc/PID/exe would not
        resolve in the root, and a reload (start-stop-daemon --exec) would miss it."""
        subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", "chroot", self.path,
                        f"/etc/init.d/{self.superserver}", "start"], check=True, capture_output=True)
        deadline = time.time() + 10
        while not self.exists(self.pid_file()) and time.time() < deadline:
            time.sleep(0.05)
        assert self.exists(self.pid_file()), f"{self.superserver} did not start"

    def add_account(self, name):
        hashed = run("mkpasswd", "-m", "yescrypt", PASSWORD).strip()
        self.chroot("useradd", "-m", "-s", "/bin/sh", "-p", hashed, name)
        uid = int(self.chroot("id", "-u", name).stdout)
        gid_mail = int(self.chroot("getent", "group", "mail").stdout.split(":")[2])
        # What Postfix local(8) leaves: the spool file, USER:mail 0660, in /var/mail.
        self.write(f"/var/mail/{name}", SPOOL_MESSAGE, 0o660)
        os.chown(f"{self.path}/var/mail/{name}", uid, gid_mail)

    def connect(self, factory):
        """`factory()` run in a thread that joined the root's network namespace, so the
        sockets it opens live there (setns changes the calling thread only)."""
        out = {}

        def inside():
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                out["value"] = factory()
            except Exception as e:  # handed to the caller's thread
                out["error"] = e
            finally:
                os.close(fd)

        t = threading.Thread(target=inside)
        t.start()
        t.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    def wait_serving(self, *ports):
        """The superserver writes its pid file before it binds (openbsd-inetd does), and
        a reload rebinds after the signal: wait until each port takes connections."""
        for port in ports:
            deadline = time.time() + 10
            while self.refused(port) and time.time() < deadline:
                time.sleep(0.05)
            assert not self.refused(port), f"nothing listens on {port} after 10 s"

    def refused(self, port):
        import socket
        try:
            self.connect(lambda: socket.create_connection(("127.0.0.1", port), timeout=5)).close()
            return False
        except ConnectionRefusedError:
            return True

    def close(self):
        pid = self.read(self.pid_file()).strip() if self.exists(self.pid_file()) else None
        if pid:
            subprocess.run(["kill", pid])
        self.syslog.close()
        subprocess.run(["ip", "netns", "delete", self.netns])
        subprocess.run(["umount", "-l", f"{self.path}/proc"])
        shutil.rmtree(self.path, ignore_errors=True)


def make_root(superserver="xinetd"):
    assert os.geteuid() == 0, "package tests install into a Debian root: run as root (CI does)"
    return DebianRoot(tempfile.mkdtemp(prefix="imap-pkg-root."), superserver)


@pytest.fixture
def debian_root():
    r = make_root()
    yield r
    r.close()


@pytest.fixture
def inetd_root():
    r = make_root("openbsd-inetd")
    yield r
    r.close()


# An /etc/services an admin kept: IMAP (as imap2) and POP3S are there, imaps only for
# udp, pop3 only in a comment. The package must add imaps/tcp and pop3/tcp, nothing else.
SERVICES_BEFORE = (
    "# /etc/services, as this site keeps it\n"
    "ssh\t\t22/tcp\n"
    "imap2\t\t143/tcp\t\timap\t\t# the site's own line\n"
    "#pop3\t\t110/tcp\t\t\t\t# commented out\n"
    "imaps\t\t993/udp\n"
    "pop3s\t\t995/tcp\n"
)


def added_lines(before, after):
    assert after.startswith(before), "the package changed lines it did not add"
    return after[len(before):].splitlines()


def imap_session(root, user):
    """IMAP on 143 (xinetd): login, the spool's message, APPEND, flags, EXPUNGE; then
    STARTTLS and 993 with the installed default certificate."""
    c = root.connect(lambda: imaplib.IMAP4("127.0.0.1", 143, timeout=30))
    assert "STARTTLS" in c.capabilities
    c.login(user, PASSWORD)
    assert c.select("INBOX") == ("OK", [b"1"])
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert b"Hello from /var/mail." in data[0][1]
    assert c.append("INBOX", r"(\Seen)", None, b"Subject: appended\r\n\r\nover IMAP\r\n")[0] == "OK"
    c.noop()
    c.store("1", "+FLAGS", r"(\Deleted)")
    assert c.expunge() == ("OK", [b"1"])
    c.logout()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    c = root.connect(lambda: imaplib.IMAP4("127.0.0.1", 143, timeout=30))
    c.starttls(context)
    c.login(user, PASSWORD)
    c.logout()
    c = root.connect(lambda: imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=context, timeout=30))
    c.login(user, PASSWORD)
    assert c.select("INBOX") == ("OK", [b"1"])
    c.logout()


def pop3_session(root, user):
    """POP3 on 110 and 995 (xinetd): the message IMAP appended, RETR, DELE, QUIT."""
    p = root.connect(lambda: poplib.POP3("127.0.0.1", 110, timeout=30))
    p.user(user)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    assert b"over IMAP" in b"\n".join(p.retr(1)[1])
    p.quit()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    p = root.connect(lambda: poplib.POP3_SSL("127.0.0.1", 995, context=context, timeout=30))
    p.user(user)
    p.pass_(PASSWORD)
    p.dele(1)
    p.quit()


def test_deb_installs_serves_upgrades_and_purges_in_a_fresh_debian(debian_root):
    r = debian_root
    r.write("/etc/services", SERVICES_BEFORE)
    r.add_account("alice")
    r.start_superserver()
    assert r.refused(143)
    shutil.copy(deb("amd64"), r.path + "/tmp/imap.deb")

    out = r.chroot("dpkg", "-i", "/tmp/imap.deb")
    # Only what was missing was added: imaps/tcp and pop3/tcp, once each.
    services = r.read("/etc/services")
    added = added_lines(SERVICES_BEFORE, services)
    assert [l.split()[:2] for l in added] == [["imaps", "993/tcp"], ["pop3", "110/tcp"]], added
    assert r.read("/etc/xinetd.d/imap") == open(os.path.join(ROOT, "xinetd.d", "imap")).read()
    # The package told the running xinetd (reload, through invoke-rc.d): it serves now.
    r.wait_serving(143, 993, 110, 995)
    imap_session(r, "alice")
    pop3_session(r, "alice")
    r.syslog.wait_for(r"imapd\[\d+\]: login user=alice peer=127\.0\.0\.1 method=LOGIN")
    r.syslog.wait_for(r"ipop3d\[\d+\]: logout user=alice peer=127\.0\.0\.1 reason=QUIT")
    # One store: IMAP expunged the MTA's message, POP3 deleted the one IMAP appended.
    spool = r.read("/var/mail/alice", "rb")
    assert b"Hello from /var/mail." not in spool and b"over IMAP" not in spool

    # The systemd units are sound (systemd-analyze, offline), and the per-connection
    # command of imap@.service serves a connection systemd's way (Accept=yes on a
    # dual-stack socket: the IPv4 peer is logged as IPv4).
    units = [f"/lib/systemd/system/{u}" for u in UNITS]
    verify = r.chroot("systemd-analyze", "verify", "--man=no", *units, check=False)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    exec_start = re.search(r"^ExecStart=(.*)$", r.read("/lib/systemd/system/imap@.service"), re.M).group(1)
    activate = subprocess.Popen(["nsenter", f"--net=/run/netns/{r.netns}", "chroot", r.path,
                                 "systemd-socket-activate", "--inetd", "--accept", "-l", "1143",
                                 *exec_start.split()], stderr=subprocess.PIPE)
    try:
        assert b"Listening on" in activate.stderr.readline()
        c = r.connect(lambda: imaplib.IMAP4("127.0.0.1", 1143, timeout=30))
        c.login("alice", PASSWORD)
        c.logout()
        r.syslog.wait_for(r"imapd\[\d+\]: logout user=alice peer=127\.0\.0\.1 reason=LOGOUT")
    finally:
        activate.terminate()
        activate.wait()

    # Upgrade (the same version again: postinst configure with the old version).
    r.chroot("dpkg", "-i", "/tmp/imap.deb")
    assert r.read("/etc/services") == services, "an upgrade added lines again"

    # Remove: the programs go, /etc/services keeps its lines until purge.
    r.chroot("dpkg", "-r", "imap")
    assert not r.exists("/usr/sbin/imapd")
    assert r.read("/etc/services") == services
    # Purge: /etc/services exactly as it was; conffiles and state gone; xinetd let go.
    r.chroot("dpkg", "-P", "imap")
    assert r.read("/etc/services") == SERVICES_BEFORE
    for gone in ("/etc/xinetd.d/imap", "/etc/pam.d/imap", "/var/lib/imap"):
        assert not r.exists(gone), gone
    deadline = time.time() + 10
    while not r.refused(143) and time.time() < deadline:
        time.sleep(0.1)
    assert r.refused(143) and r.refused(110)
    assert "imap" not in r.chroot("dpkg-query", "-W", "-f", "${Package} ", check=False).stdout.split()


def test_deb_under_openbsd_inetd_adds_and_removes_its_inetd_conf_lines(inetd_root):
    """Where the inetd is not xinetd, the package adds UW-style inetd.conf lines with
    update-inetd, they serve, remove disables them and purge takes them out."""
    r = inetd_root
    r.add_account("carol")
    conf_before = r.read("/etc/inetd.conf")
    shutil.copy(deb("amd64"), r.path + "/tmp/imap.deb")
    r.chroot("dpkg", "-i", "/tmp/imap.deb")
    conf = r.read("/etc/inetd.conf")
    for name in ("imap", "imaps", "pop3", "pop3s"):
        line = open(os.path.join(ROOT, "inetd.conf.d", name)).read().strip()
        assert re.search(rf"^{re.escape(line)}$", conf, re.M), (name, conf)
    # Debian's inetd will not start with nothing enabled: start it now, on the lines.
    r.start_superserver()
    r.wait_serving(143, 110)
    c = r.connect(lambda: imaplib.IMAP4("127.0.0.1", 143, timeout=30))
    c.login("carol", PASSWORD)
    assert c.select("INBOX") == ("OK", [b"1"])
    c.logout()
    p = r.connect(lambda: poplib.POP3("127.0.0.1", 110, timeout=30))
    p.user("carol")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()
    r.chroot("dpkg", "-r", "imap")
    assert not re.search(r"^imap\s", r.read("/etc/inetd.conf"), re.M), "remove left an enabled line"
    r.chroot("dpkg", "-P", "imap")
    conf_after = r.read("/etc/inetd.conf")
    assert "/usr/sbin/imapd" not in conf_after and "/usr/sbin/ipop3d" not in conf_after
    assert conf_after == conf_before


# Fedora's /etc/pam.d/password-auth, as far as a Debian root can have it (pam_unix).
PASSWORD_AUTH = ("auth     required pam_unix.so\naccount  required pam_unix.so\n")


def test_rpm_installs_upgrades_and_erases_with_its_scriptlets(debian_root):
    """`rpm -i` of the x86_64 .rpm into the root (rpm's own database there; --nodeps, as
    the root's libraries are dpkg's): %post adds the services, makes the TLS pair, and
    xinetd serves; `rpm -U` (upgrade, $1=2) adds nothing; `rpm -e` ($1=0) restores
    /etc/services byte for byte, here one whose last line had no newline."""
    r = debian_root
    before = SERVICES_BEFORE.rstrip("\n")
    r.write("/etc/services", before)
    r.write("/etc/pam.d/password-auth", PASSWORD_AUTH)
    r.add_account("bob")
    r.start_superserver()
    rpm_cmd = ["rpm", "--root", r.path, "--nodeps"]
    run(*rpm_cmd, "-i", rpm("x86_64"))
    services = r.read("/etc/services")
    added = added_lines(before + "\n", services)
    assert [l.split()[:2] for l in added] == [["imaps", "993/tcp"], ["pop3", "110/tcp"]], added
    cert, key = "/etc/pki/tls/certs/imapd.pem", "/etc/pki/tls/private/imapd.key"
    assert "BEGIN CERTIFICATE" in r.read(cert)
    assert os.stat(r.path + key).st_mode & 0o077 == 0
    r.wait_serving(143, 993, 110, 995)
    imap_session(r, "bob")
    pop3_session(r, "bob")
    assert "imap" in run("rpm", "--root", r.path, "-q", "imap")

    run(*rpm_cmd, "-U", "--replacepkgs", rpm("x86_64"))
    assert r.read("/etc/services") == services, "an upgrade added lines again"
    assert "BEGIN CERTIFICATE" in r.read(cert)

    run(*rpm_cmd, "-e", "imap")
    assert r.read("/etc/services") == before
    for gone in ("/usr/sbin/imapd", "/etc/xinetd.d/imap", "/etc/pam.d/imap", "/var/lib/imap"):
        assert not r.exists(gone), gone
    deadline = time.time() + 10
    while not r.refused(143) and time.time() < deadline:
        time.sleep(0.1)
    assert r.refused(143)
