"""System accounts and privilege separation: real accounts (useradd, yescrypt and
SHA-512 hashes from mkpasswd, a locked and an expired one) log in under the minimal
inetd (a root process per connection) and under a daemon running as root, which hands
each logged-in session to a process of the user. The serving process must hold only
the user's identity (/proc/PID/status), files it creates belong to the user, and no
mailbox name reaches outside the user's mail."""
import imaplib
import os
import poplib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import IMAPD, IPOP3D, IS_ROOT, PASSWORD, Server

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="creates system accounts")


def mkpasswd(method):
    return subprocess.run(["mkpasswd", "-m", method, PASSWORD], capture_output=True,
                          text=True, check=True).stdout.strip()


class SystemAccount:
    """A real login account (uid >= 1000, home with mail) and no users-file entry."""

    system = False  # conftest's daemon then runs as root: the hand-off path

    def __init__(self, method="yescrypt"):
        self.base = tempfile.mkdtemp(prefix="imapd-sys-")
        os.chmod(self.base, 0o755)
        self.home = os.path.join(self.base, "home")
        self.name = "imaps" + os.urandom(3).hex()
        subprocess.run(["useradd", "--home-dir", self.home, "--create-home", "--shell",
                        "/usr/sbin/nologin", "--password", mkpasswd(method), self.name],
                       check=True)
        out = subprocess.run(["id", "-u", self.name], capture_output=True, text=True).stdout
        self.uid = int(out)
        self.gid = int(subprocess.run(["id", "-g", self.name], capture_output=True,
                                      text=True).stdout)
        self.maildir = os.path.join(self.home, "Maildir")
        # An existing users file without this user: system accounts answer.
        self.users_file = os.path.join(self.base, "passwd")
        open(self.users_file, "w").close()
        os.chmod(self.users_file, 0o644)

    def remove(self):
        # Sessions of the account end with their clients; wait for them (userdel refuses
        # a logged-in user, and a reused uid must not find old processes).
        deadline = time.time() + 5
        while time.time() < deadline and (serving_processes(self.uid, "imapd")
                                          or serving_processes(self.uid, "ipop3d")):
            time.sleep(0.05)
        subprocess.run(["pkill", "-9", "-U", str(self.uid)], check=False)
        subprocess.run(["userdel", self.name], check=False, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["yescrypt", "sha-512"])
def sysacct(request):
    a = SystemAccount(request.param)
    yield a
    a.remove()


def serving_processes(uid, name):
    """PIDs of `name` processes whose real uid is `uid`."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        # By name, or (under qemu-user, where the process is qemu) by its program, or
        # as the session of that protocol a root daemon handed off (`--handoff NAME`).
        ours = re.search(rf"^Name:\s+{name}$", status, re.M) or any(
            os.path.basename(a) == name.encode() for a in argv[:4]) or any(
            a == b"--handoff" and b == name.encode() for a, b in zip(argv, argv[1:]))
        if ours and re.search(rf"^Uid:\s+{uid}\s", status, re.M):
            out.append(int(pid))
    return out


def identity(pid):
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    field = lambda k: re.search(rf"^{k}:\s*(.*)$", status, re.M).group(1).split()  # noqa: E731
    return {k: field(k) for k in ("Uid", "Gid", "Groups", "CapEff", "CapPrm")}


def assert_only_user(acc, pid):
    ident = identity(pid)
    assert ident["Uid"] == [str(acc.uid)] * 4, ident
    assert ident["Gid"] == [str(acc.gid)] * 4, ident
    assert ident["Groups"] == [str(acc.gid)], ident
    assert int(ident["CapEff"][0], 16) == 0 and int(ident["CapPrm"][0], 16) == 0, ident


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_system_account_is_served_by_a_process_of_its_own(sysacct, syslog, mode):
    acc = sysacct
    s = Server(mode, acc, syslog)
    try:
        c = s.connect()
        typ, data = c.select("INBOX")
        assert typ == "OK", data
        assert c.append("INBOX", None, None, b"Subject: mine\r\n\r\nx\r\n")[0] == "OK"
        pids = serving_processes(acc.uid, "imapd")
        assert len(pids) == 1, [(p, open(f"/proc/{p}/cmdline").read(), identity(p)) for p in pids]
        assert_only_user(acc, pids[0])
        # The root daemon (if any) still runs as root and holds no mail file.
        for p in s.procs:
            if p.poll() is None and mode == "daemon":
                assert identity(p.pid)["Uid"][0] == "0"
                fds = os.listdir(f"/proc/{p.pid}/fd")
                targets = [os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in fds]
                assert not any(t.startswith(acc.home) for t in targets), targets
        c.logout()
        syslog.wait_for(rf"login user={acc.name} peer=127\.0\.0\.1 method=LOGIN")
    finally:
        s.stop()
    # Everything the session created belongs to the user.
    for dirpath, dirnames, filenames in os.walk(acc.maildir):
        for n in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, n))
            assert (st.st_uid, st.st_gid) == (acc.uid, acc.gid), os.path.join(dirpath, n)
    new = os.listdir(os.path.join(acc.maildir, "new")) + os.listdir(os.path.join(acc.maildir, "cur"))
    assert len(new) == 1


def test_pop3_in_a_root_daemon_hands_off_too(syslog):
    acc = SystemAccount("yescrypt")
    try:
        os.makedirs(os.path.join(acc.maildir, "new"))
        for sub in ("cur", "tmp"):
            os.makedirs(os.path.join(acc.maildir, sub))
        with open(os.path.join(acc.maildir, "new", "1.1.host"), "w") as f:
            f.write("Subject: pop\n\nbody\n")
        subprocess.run(["chown", "-R", f"{acc.uid}:{acc.gid}", acc.maildir], check=True)
        s = Server("daemon", acc, syslog, binary=IPOP3D)
        try:
            p = poplib.POP3("127.0.0.1", s.port, timeout=30)
            p.user(acc.name)
            # Pipelined after PASS: must reach the user's process, answered in order.
            p._putcmd("PASS " + PASSWORD)
            p._putcmd("STAT")
            assert p._getresp().startswith(b"+OK")
            assert p._getresp().split()[1] == b"1"
            pids = serving_processes(acc.uid, "ipop3d")
            assert len(pids) == 1
            assert_only_user(acc, pids[0])
            assert b"body" in b"\n".join(p.retr(1)[1])
            p.quit()
        finally:
            s.stop()
    finally:
        acc.remove()


def test_locked_expired_and_root_accounts_are_refused_like_a_wrong_password(syslog):
    accs = [SystemAccount("sha-512") for _ in range(2)]
    locked, expired = accs
    subprocess.run(["usermod", "-L", locked.name], check=True)
    subprocess.run(["usermod", "--expiredate", "1970-01-02", expired.name], check=True)
    # inetd: a process per connection, so each failure waits the base delay only (the
    # daemon's growing delay has its own test).
    s = Server("inetd", locked, syslog)
    try:
        answers = {}
        for who, pw in [(locked.name, PASSWORD), (expired.name, PASSWORD), ("root", PASSWORD),
                        ("nosuchuser", PASSWORD), (expired.name, "wrong")]:
            c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
            with pytest.raises(imaplib.IMAP4.error) as e:
                c.login(who, pw)
            answers[who] = str(e.value)
            c.shutdown()
        assert len(set(answers.values())) == 1, answers
        assert "AUTHENTICATIONFAILED" in answers["root"]
        syslog.wait_for(rf"login failed user={locked.name} peer=127\.0\.0\.1 reason=account locked")
        syslog.wait_for(rf"login failed user={expired.name} peer=127\.0\.0\.1 reason=account expired")
        syslog.wait_for(r"login failed user=root peer=127\.0\.0\.1 reason=system account below")
    finally:
        s.stop()
        for a in accs:
            a.remove()


ESCAPES = ["/root", "/etc/shadow", "~root/x", "../other/INBOX", "#news.comp", "INBOX/../../x",
           "..", ".evil", "evil", "a\x01b"]


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_no_mailbox_name_reaches_outside_the_users_mail(sysacct, syslog, mode):
    acc = sysacct
    os.makedirs(acc.maildir)
    # A symlink the user planted in their own mail, pointing out of it, to a directory
    # the user may write: had a session followed it, nothing would have stopped a write.
    outside = os.path.join(acc.base, "outside")
    os.makedirs(outside)
    os.chmod(outside, 0o777)
    os.symlink(outside, os.path.join(acc.maildir, ".evil"))
    subprocess.run(["chown", "-hR", f"{acc.uid}:{acc.gid}", acc.maildir], check=True)
    # (Not /etc: the other suites of `tests/run` add and remove accounts meanwhile.)
    before = {p: os.stat(p).st_mtime_ns for p in (outside, "/root")}
    s = Server(mode, acc, syslog)
    try:
        c = s.connect()
        c.select("INBOX")
        for name in ESCAPES:
            q = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for cmd, args in [("SELECT", (q,)), ("EXAMINE", (q,)), ("CREATE", (q,)),
                              ("DELETE", (q,)), ("STATUS", (q, "(MESSAGES)")),
                              ("RENAME", (q, '"x"')), ("RENAME", ('"INBOX"', q)),
                              ("SUBSCRIBE", (q,))]:
                typ, data = c._simple_command(cmd, *args)
                if cmd == "SUBSCRIBE" and typ == "OK":
                    continue  # a name in the subscription list opens nothing
                assert typ in ("NO", "BAD"), (cmd, name, typ, data)
            typ, data = c.append(q, None, None, b"Subject: x\r\n\r\nx\r\n")
            assert typ in ("NO", "BAD"), (name, data)
        typ, data = c.list()
        assert not any(b"evil" in d for d in data), data
        c.logout()
    finally:
        s.stop()
    assert os.path.islink(os.path.join(acc.maildir, ".evil"))
    assert os.listdir(outside) == []
    assert {p: os.stat(p).st_mtime_ns for p in before} == before


def non_loopback_address():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    v4 = [a for a in out if "." in a and not a.startswith("127.")]
    assert v4, "this test needs a non-loopback IPv4 address on the machine"
    return v4[0]


def daemon_on_all_addresses(exe, account, syslog, extra=()):
    """`exe` as a daemon on 0.0.0.0 (reachable at a non-loopback address), run as the
    account: (process, port)."""
    proc = subprocess.Popen([exe, "--listen", "0.0.0.0:0", "--users", account.users_file,
                             "--log-socket", syslog.path, "--user", account.name, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = int(re.search(r":(\d+)\]", proc.stderr.readline().decode()).group(1))
    return proc, port


@pytest.mark.parametrize("binary", ["imapd", "ipop3d"])
def test_plaintext_passwords_only_on_loopback_by_default(account, syslog, binary):
    """IMAP_PLAINTEXT_AUTH=loopback: from another address (no TLS yet) LOGIN,
    AUTHENTICATE PLAIN, USER/PASS are refused and not offered; loopback works."""
    from conftest import IMAPD
    import socket
    exe = IMAPD if binary == "imapd" else IPOP3D
    proc, port = daemon_on_all_addresses(exe, account, syslog)
    try:
        outside = non_loopback_address()
        if binary == "imapd":
            c = imaplib.IMAP4(outside, port, timeout=30)
            assert "LOGINDISABLED" in c.capabilities and "AUTH=PLAIN" not in c.capabilities
            with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
                c.login(account.name, PASSWORD)
            with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
                c.authenticate("PLAIN", lambda _: f"\0{account.name}\0{PASSWORD}".encode())
            c.shutdown()
            syslog.wait_for(rf"login refused user={account.name} peer={re.escape(outside)} "
                            r"reason=plaintext password on an unencrypted connection")
            c = imaplib.IMAP4("127.0.0.1", port, timeout=30)
            assert "AUTH=PLAIN" in c.capabilities and "LOGINDISABLED" not in c.capabilities
            c.login(account.name, PASSWORD)
            c.logout()
        else:
            p = poplib.POP3(outside, port, timeout=30)
            capa = p.capa()
            assert "USER" not in capa and "SASL" not in capa, capa
            with pytest.raises(poplib.error_proto, match="Plaintext"):
                p.user(account.name)
            # APOP sends no password: still allowed.
            p.apop(account.name, PASSWORD)
            assert p.stat()[0] == 0
            p.quit()
            p = poplib.POP3("127.0.0.1", port, timeout=30)
            assert "USER" in p.capa()
            p.user(account.name)
            p.pass_(PASSWORD)
            p.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


HOSTILE = "x peer=203.0.113.66 reason="


def test_fail2ban_filter_matches_every_failed_login(account, syslog, tmp_path):
    """packaging/fail2ban/imapd.conf, run by fail2ban-regex over the syslog lines real
    failed logins produced (IMAP and POP3), finds the client's address in each."""
    from conftest import ROOT
    for binary in ("imapd", "ipop3d"):
        s = Server("daemon", account, syslog, binary=IPOP3D if binary == "ipop3d" else
                   os.path.join(os.path.dirname(IPOP3D), "imapd"))
        try:
            if binary == "imapd":
                c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
                with pytest.raises(imaplib.IMAP4.error):
                    c.login(account.name, "wrong")
                c.shutdown()
                # Names that try to write a peer= of their own into the line.
                raw = s.raw()
                raw.line()
                raw.command("a", f'LOGIN "{HOSTILE}" wrong')
                forged = "x\r\npeer=203.0.113.67 reason=wrong password\r\n"
                raw.send(f"b LOGIN {{{len(forged)}}}\r\n")
                raw.line()
                raw.send(forged + " wrong\r\n")
                raw.until_tagged("b")
                raw.close()
            else:
                p = poplib.POP3("127.0.0.1", s.port, timeout=30)
                p.user("nobody-here")
                with pytest.raises(poplib.error_proto):
                    p.pass_("wrong")
                p.close()
                p = poplib.POP3("127.0.0.1", s.port, timeout=30)
                p.user(HOSTILE.replace(" ", "="))  # USER takes one word
                with pytest.raises(poplib.error_proto):
                    p.pass_("wrong")
                p.close()
            syslog.wait_for(r"login failed user=\S+ peer=127\.0\.0\.1")
        finally:
            s.stop()
    # As rsyslog writes them to /var/log/mail.log: the host name after the time stamp.
    lines = []
    for raw in syslog.lines:
        m = re.match(r"<\d+>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (.*)$", raw)
        if m:
            lines.append(f"{m.group(1)} mailhost {m.group(2)}")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n")
    failures = [l for l in lines if "login failed" in l]
    assert len(failures) == 5, lines
    # The client's text never reaches the line as spaces or `=`.
    assert not any(" peer=203.0.113" in l for l in lines), lines
    # The filter as installed: in a filter.d beside fail2ban's own common.conf.
    filters = tmp_path / "filter.d"
    filters.mkdir()
    shutil.copy("/etc/fail2ban/filter.d/common.conf", filters)
    shutil.copy(os.path.join(ROOT, "packaging", "fail2ban", "imapd.conf"), filters)
    out = subprocess.run(["fail2ban-regex", "--print-all-matched", str(log),
                          str(filters / "imapd.conf")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", out.stdout)
    assert m and int(m.group(1)) == len(failures), out.stdout
    assert out.stdout.count("peer=127.0.0.1") >= len(failures), out.stdout
    # The address fail2ban would ban is the client's, for every line, hostile or not.
    ips = subprocess.run(["fail2ban-regex", "--out", "ip", str(log), str(filters / "imapd.conf")],
                         capture_output=True, text=True, timeout=120).stdout.split()
    assert ips == ["127.0.0.1"] * len(failures), ips


def test_daemon_slows_repeated_failures_from_one_address(account, syslog):
    """Each further failed login from the same address waits twice as long, across
    connections (the daemon remembers; one connection's limit alone would not)."""
    s = Server("daemon", account, syslog)
    try:
        waits = []
        for _ in range(3):
            c = imaplib.IMAP4("127.0.0.1", s.port, timeout=60)
            t = time.monotonic()
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                c.login(account.name, "wrong")
            waits.append(time.monotonic() - t)
            c.shutdown()
        assert waits[0] >= 0.9 and waits[1] >= 1.9 and waits[2] >= 3.9, waits
        # A right password still works (after its own wait for nothing).
        c = s.connect()
        c.logout()
    finally:
        s.stop()


def test_system_account_under_real_xinetd(sysacct, syslog, tmp_path):
    from conftest import IMAPD
    from test_system import xinetd_service
    acc = sysacct
    args = f"--users {acc.users_file} --log-socket {syslog.path}"
    with xinetd_service(IMAPD, args, tmp_path) as (xi, port):
        c = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        c.login(acc.name, PASSWORD)
        assert c.select("INBOX")[0] == "OK"
        assert c.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n")[0] == "OK"
        pids = serving_processes(acc.uid, "imapd")
        assert len(pids) == 1, pids
        assert_only_user(acc, pids[0])
        with open(f"/proc/{pids[0]}/status") as f:
            assert re.search(rf"^PPid:\s+{xi.pid}$", f.read(), re.M)
        c.logout()
    syslog.wait_for(rf"login user={acc.name} peer=127\.0\.0\.1 method=LOGIN")


PAM_TARGET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "target", "pam")


def pam_binary(name):
    """`name` built with --features pam (once per run, in its own target directory)."""
    from conftest import binary_path, cargo_build
    cargo_build(PAM_TARGET, features=["pam"])
    return binary_path(PAM_TARGET, name)


def test_pam_build_checks_system_accounts_through_pam(syslog):
    """A --features pam build asks PAM (service imap): with no /etc/pam.d/imap that is
    Debian's `other` (pam_unix), so the password, a locked and an expired account behave
    as with the built-in check; a pam.d/imap that denies everything then denies."""
    exe = pam_binary("imapd")
    ok, locked, expired = (SystemAccount("yescrypt") for _ in range(3))
    subprocess.run(["usermod", "-L", locked.name], check=True)
    subprocess.run(["usermod", "--expiredate", "1970-01-02", expired.name], check=True)
    pam_file = "/etc/pam.d/imap"
    assert not os.path.exists(pam_file), "a real /etc/pam.d/imap would decide this test"
    s = Server("inetd", ok, syslog, binary=exe)
    try:
        c = s.connect()
        assert c.select("INBOX")[0] == "OK"
        c.logout()
        for who in (locked, expired):
            c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                c.login(who.name, PASSWORD)
            c.shutdown()
        syslog.wait_for(rf"PAM refused user={expired.name}: PAM account")
        with open(pam_file, "w") as f:
            f.write("auth required pam_deny.so\naccount required pam_deny.so\n")
        try:
            c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                c.login(ok.name, PASSWORD)
            c.shutdown()
        finally:
            os.remove(pam_file)
        syslog.wait_for(rf"login failed user={ok.name} peer=127\.0\.0\.1 reason=refused by PAM")
    finally:
        s.stop()
        for a in (ok, locked, expired):
            a.remove()


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_pop3_names_that_are_paths_or_other_users_get_nothing(syslog, mode):
    """POP3 has no mailbox names: its confinement is the user name. Paths, `~user`,
    root and another user's name all get the one failure answer, and no process runs
    as the user afterwards."""
    acc = SystemAccount("yescrypt")
    s = Server(mode, acc, syslog, binary=IPOP3D)
    # The daemon doubles its delay per failure from one address: fewer tries there.
    names = ["../" + acc.name, "/root", "~root", "root", acc.name + "/../root", "nobody"]
    if mode == "daemon":
        names = names[:3]
    try:
        answers = set()
        for name in names:
            p = poplib.POP3("127.0.0.1", s.port, timeout=30)
            try:
                p.user(name)
                p.pass_(PASSWORD)
                raise AssertionError(f"{name!r} logged in")
            except poplib.error_proto as e:
                answers.add(str(e))
            finally:
                p.close()
        assert answers == {"b'-ERR [AUTH] Authentication failed'"}, answers
        assert not serving_processes(acc.uid, "ipop3d")
    finally:
        s.stop()
        acc.remove()


@pytest.mark.parametrize("upgrade", ["replaced", "removed"])
def test_root_daemon_serves_on_after_its_program_is_replaced(sysacct, syslog, tmp_path, upgrade):
    """What dpkg and rpm do to /usr/sbin/imapd under a running daemon: the file is
    replaced (or removed). Logins go on, served by the program the daemon started as,
    and no connected client is lost."""
    acc = sysacct
    bindir = tmp_path / "sbin"
    bindir.mkdir()
    os.chmod(tmp_path, 0o755)
    program = bindir / "imapd"
    shutil.copy(IMAPD, program)
    s = Server("daemon", acc, syslog, binary=str(program))
    try:
        first = s.connect()
        assert first.select("INBOX")[0] == "OK"
        if upgrade == "replaced":
            new = bindir / "imapd.dpkg-new"
            new.write_bytes(b"#!/bin/sh\nexit 1\n")
            os.chmod(new, 0o755)
            os.rename(new, program)
        else:
            os.unlink(program)
        for _ in range(3):
            c = s.connect()
            typ, data = c.select("INBOX")
            assert typ == "OK", data
            c.logout()
        assert first.noop()[0] == "OK"
        first.logout()
        assert s.proc.poll() is None, "the daemon died"
        assert not [l for l in syslog.lines if "panic" in l], syslog.lines
    finally:
        s.stop()


def test_a_session_process_gets_nothing_of_the_root_daemon(sysacct, syslog):
    """The process a root daemon hands a login to holds the client's socket, and
    nothing else of the daemon's: no other client's socket, no listener, no file, no
    environment but PATH."""
    acc = sysacct
    os.environ["IMAPD_TEST_SECRET"] = "daemon only"
    try:
        s = Server("daemon", acc, syslog)
    finally:
        del os.environ["IMAPD_TEST_SECRET"]
    try:
        other = s.connect(login=False)  # another client's socket, open in the daemon
        c = s.connect()
        assert c.select("INBOX")[0] == "OK"
        pids = serving_processes(acc.uid, "imapd")
        assert len(pids) == 1, pids
        pid = pids[0]
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        sockets = [t for t in fds.values() if t.startswith("socket:")]
        # 0 and 1 are the client's socket; beyond them only what the session opened
        # itself (its mail, the log socket): no second socket of the daemon's.
        assert fds[0] == fds[1] and fds[0].startswith("socket:"), fds
        assert len(set(sockets) - {fds[0]}) <= 1, fds  # the syslog socket at most
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if kv)
        # PATH only (a shell between, as the qemu wrapper under emulation, may add its
        # own PWD and SHLVL).
        assert b"IMAPD_TEST_SECRET" not in env, env
        assert set(env) <= {b"PATH", b"PWD", b"OLDPWD", b"SHLVL", b"_"}, env
        c.logout()
        other.shutdown()
    finally:
        s.stop()


def test_a_session_process_never_reads_shadow(syslog):
    """The root daemon checks the password (reading /etc/shadow, as it must); the
    process it hands the login to needs the user's groups only, from passwd and group,
    and never opens /etc/shadow as root."""
    acc = SystemAccount("yescrypt")
    s = Server("daemon", acc, syslog)
    log = os.path.join(acc.base, "strace.log")
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=openat,execve", "-o", log,
                               "-p", str(s.proc.pid)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # attached
        c = s.connect()
        assert c.select("INBOX")[0] == "OK"
        c.logout()
        time.sleep(0.3)
    finally:
        tracer.terminate()
        tracer.wait()
        s.stop()
        with open(log) as f:
            lines = f.read().splitlines()
        acc.remove()
    session = {l.split()[0] for l in lines if "execve(" in l and "--handoff" in l}
    assert session, "no hand-off seen:\n" + "\n".join(lines[-20:])
    shadow = [l for l in lines if "/etc/shadow" in l]
    assert any(l.split()[0] not in session for l in shadow), "the daemon checks passwords"
    assert not [l for l in shadow if l.split()[0] in session], shadow


def login_seconds(port, user, password, pop3=False):
    """Seconds from sending a login to its answer, on a new connection (in inetd mode a
    new process: each failure waits the base delay, not a growing one)."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    f.readline()  # greeting
    if pop3:
        s.sendall(f"USER {user}\r\n".encode())
        f.readline()
        t = time.monotonic()
        s.sendall(f"PASS {password}\r\n".encode())
        answer = f.readline()
    else:
        t = time.monotonic()
        s.sendall(f'a LOGIN "{user}" "{password}"\r\n'.encode())
        answer = f.readline()
        while not answer.startswith(b"a "):
            answer = f.readline()
    took = time.monotonic() - t
    s.close()
    return took, answer


def set_sha512_cost(acc, server, seconds=0.6, pop3=False):
    """Give `acc` a SHA-512 hash whose check takes about `seconds` where the server runs
    (natively or under qemu): measured through a successful login, then scaled."""
    rounds = 100000
    for _ in range(4):
        subprocess.run(["usermod", "-p", subprocess.run(
            ["mkpasswd", "-m", "sha-512", "-R", str(rounds), PASSWORD], capture_output=True,
            text=True, check=True).stdout.strip(), acc.name], check=True)
        took = min(login_seconds(server.port, acc.name, PASSWORD, pop3)[0] for _ in range(2))
        if 0.75 * seconds <= took <= 1.5 * seconds:
            break
        rounds = max(5000, min(50_000_000, int(rounds * seconds / max(took, 0.002))))
    return took


@pytest.mark.parametrize("binary", ["imapd", "ipop3d", "imapd-pam"])
def test_failed_logins_are_answered_after_the_same_time_whatever_failed(syslog, binary):
    """An unknown name, a wrong password for an account whose hash is slow to check, a
    system account (uid < 1000), a locked and an expired one are all answered after the
    same delay, counted from the start of the check (so the check's cost hides inside
    it), in the built-in and the PAM build alike; and PAM's own 2-second fail delay
    (pam_unix) is not added on top."""
    pop3 = binary == "ipop3d"
    exe = pam_binary("imapd") if binary == "imapd-pam" else (IPOP3D if pop3 else IMAPD)
    acc, locked, expired = (SystemAccount("sha-512") for _ in range(3))
    subprocess.run(["usermod", "-L", locked.name], check=True)
    subprocess.run(["usermod", "--expiredate", "1970-01-02", expired.name], check=True)
    s = Server("inetd", acc, syslog, binary=exe)
    try:
        check = set_sha512_cost(acc, s, pop3=pop3)
        assert check > 0.3, f"the slow hash took only {check:.3f} s: it would prove nothing"
        times = {}
        for who, pw in [(acc.name, "wrong password"), ("nosuchuser" + acc.name[-6:], PASSWORD),
                        ("root", "wrong"), (locked.name, PASSWORD), (expired.name, PASSWORD),
                        ("../etc", "x")]:
            runs = [login_seconds(s.port, who, pw, pop3) for _ in range(2)]
            assert all(b"AUTHENTICATIONFAILED" in a or b"-ERR [AUTH]" in a for _, a in runs), runs
            times[who] = min(t for t, _ in runs)
        spread = max(times.values()) - min(times.values())
        assert spread < 0.25, times
        assert min(times.values()) >= 0.95, times  # the configured delay (1 s) holds
        assert max(times.values()) < 1.6, times  # no PAM fail delay added after it
    finally:
        s.stop()
        for a in (acc, locked, expired):
            a.remove()


def test_pam_checks_do_not_hold_up_logged_in_sessions(syslog):
    """A PAM build's daemon: twenty wrong passwords at once (each one a pam_unix check)
    while a logged-in session runs NOOPs: its answers stay quick, because password
    checks run on login workers of their own and PAM's own fail delay is not slept."""
    exe = pam_binary("imapd")
    acc = SystemAccount("yescrypt")
    target = SystemAccount("yescrypt")
    # A daemon of one user (`--user`), serving the logged-in session itself.
    users = Path(acc.base) / "daemon-passwd"  # where the daemon's user can read it
    users.write_text(f"{acc.name}:{{PLAIN}}{PASSWORD}:{acc.uid}:{acc.gid}::{acc.home}::\n")
    os.chmod(users, 0o644)
    proc = subprocess.Popen([exe, "--listen", "127.0.0.1:0", "--users", str(users),
                             "--log-socket", syslog.path, "--user", acc.name],
                            stderr=subprocess.PIPE)
    try:
        port = int(re.search(rb"listening on \[127\.0\.0\.1:(\d+)\]",
                             proc.stderr.readline()).group(1))
        c = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        c.login(acc.name, PASSWORD)
        import socket
        flood = []
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.recv(4096)
            flood.append(sock)
        for sock in flood:
            sock.sendall(f"a LOGIN {target.name} wrongpassword\r\n".encode())
        worst = 0.0
        end = time.monotonic() + 3
        while time.monotonic() < end:
            t = time.monotonic()
            assert c.noop()[0] == "OK"
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.05)
        assert worst < 0.5, f"a NOOP waited {worst:.2f} s behind password checks"
        syslog.wait_for(rf"login failed user={target.name} peer=127\.0\.0\.1 reason=refused by PAM")
        c.logout()
        for sock in flood:
            sock.close()
    finally:
        proc.terminate()
        proc.wait()
        acc.remove()
        target.remove()
