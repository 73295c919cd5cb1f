"""Test harness: starts the real imapd and ipop3d binaries and gives tests real
connections.

Modes: "daemon" (imapd/ipop3d --listen on loopback) and "inetd" (a minimal inetd: a
loopback TCP listener that hands each accepted socket to a fresh process as
stdin/stdout, exactly what inetd does). Under root (as in CI) every test gets a throwaway system account that
owns the mail and that sessions run as; it is removed afterwards. Syslog lines are
caught on a private datagram socket passed with --log-socket.
"""
import imaplib
import os
import poplib
import pwd
import random
import re
import shutil
import socket
import string
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# IMAP_TEST_TARGET=s390x-unknown-linux-gnu (or aarch64-...): the suite runs binaries of
# that target under qemu-user (`tests/run s390x`). There is no binfmt_misc, so each
# binary is reached through a wrapper script, and the build names the wrapper as the
# program a root daemon's hand-off execs (IMAP_SESSION_PROGRAM).
TARGET = os.environ.get("IMAP_TEST_TARGET")


def binary_path(target_dir, name):
    """Where the test runs `name` of the build in `target_dir`: the binary itself, or
    under emulation a wrapper that runs it with qemu-user."""
    if not TARGET:
        return os.path.join(target_dir, "debug", name)
    wrapper = os.path.join(target_dir, "qemu", TARGET, name)
    os.makedirs(os.path.dirname(wrapper), exist_ok=True)
    exe = os.path.join(target_dir, TARGET, "debug", name)
    # cross/bin/qemu-*: qemu-user with the target's libraries (cross/README.md).
    qemu = os.path.join(ROOT, "cross", "bin", f'qemu-{TARGET.split("-")[0]}')
    text = f'#!/bin/sh\nexec {qemu} {exe} "$@"\n'
    if not os.path.exists(wrapper) or open(wrapper).read() != text:
        with open(wrapper, "w") as f:
            f.write(text)
        os.chmod(wrapper, 0o755)
    return wrapper


def build_env(target_dir, settings=None):
    """The environment of a cargo build into `target_dir` (see binary_path)."""
    env = dict(os.environ, CARGO_TARGET_DIR=target_dir, **(settings or {}))
    if TARGET:
        env["IMAP_SESSION_PROGRAM"] = binary_path(target_dir, "imapd")
    return env


def cargo_build(target_dir, settings=None, features=()):
    """Build both binaries into `target_dir` (for TARGET under emulation)."""
    cmd = ["cargo", "build", "--locked", "--quiet", "--bins"]
    if TARGET:
        cmd += ["--target", TARGET]
    if features:
        cmd += ["--features", ",".join(features)]
    subprocess.run(cmd, cwd=ROOT, env=build_env(target_dir, settings), check=True)


# tests/run builds these first (with build_env under emulation).
IMAPD = os.environ.get("IMAPD_BIN", binary_path(os.path.join(ROOT, "target"), "imapd"))
IPOP3D = os.environ.get("IPOP3D_BIN", binary_path(os.path.join(ROOT, "target"), "ipop3d"))
# A build with short timeouts (autologout, LOGIN-DELAY) for the tests that wait them out,
# and small thresholds for the tests of what only big folders do (the Maildir cache).
SHORT_TARGET = os.path.join(ROOT, "target", "short-timeouts")
SHORT_SETTINGS = {
    "IMAP_TEST_TIMINGS": "yes",
    "IMAP_MAILDIR_CACHE_MIN_MESSAGES": "2",
    "IMAP_POP3_AUTOLOGOUT_SECS": "3",
    "IMAP_POP3_LOGIN_DELAY_SECS": "3",
    "IMAP_AUTOLOGOUT_SECS": "3",
    "IMAP_LOGIN_TIMEOUT_SECS": "3",
    "IMAP_MAX_PRELOGIN_PER_ADDRESS": "8",
    "IMAP_LOCK_WAIT_SECS": "2",
}
IS_ROOT = os.geteuid() == 0
PASSWORD = "s3cret pass"


def chown_tree(path, uid, gid):
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, uid, gid)
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


class SyslogCatcher:
    """A datagram socket standing where /dev/log would; collects lines."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.lines = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.lines.append(data.decode("utf-8", "replace"))

    def wait_for(self, pattern, timeout=5):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in list(self.lines):
                if rx.search(line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no syslog line matching {pattern!r}; got {self.lines!r}")

    def close(self):
        self._stop = True
        self.sock.close()


class Account:
    """A mail user: a users-file entry and a Maildir, owned by a throwaway system
    account when running as root."""

    def __init__(self, base):
        self.base = base
        self.home = os.path.join(base, "home")
        self.maildir = os.path.join(self.home, "Maildir")
        os.makedirs(self.home)
        self.name = "imapt" + "".join(random.choice(string.ascii_lowercase) for _ in range(6))
        self.system = IS_ROOT
        if self.system:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--home-dir", self.home,
                 "--shell", "/usr/sbin/nologin", self.name],
                check=True,
            )
            pw = pwd.getpwnam(self.name)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        self.users_file = os.path.join(base, "passwd")
        uid_fields = f"{self.uid}:{self.gid}" if self.system else ":"
        with open(self.users_file, "w") as f:
            f.write(f"{self.name}:{{PLAIN}}{PASSWORD}:{uid_fields}::{self.home}::\n")
            f.write(f"other:{{PLAIN}}otherpw:{uid_fields}::{base}/otherhome::\n")
        self.fix_owner()

    def fix_owner(self):
        if self.system:
            chown_tree(self.home, self.uid, self.gid)
            os.chown(self.users_file, self.uid, self.gid)
        os.chmod(self.users_file, 0o600)

    def become(self):
        """preexec_fn for a tool that must run as the account (an MDA, a fetcher)."""
        if self.system:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)

    def folder(self, name="INBOX"):
        return self.maildir if name == "INBOX" else os.path.join(self.maildir, "." + name)

    def deliver(self, text, folder="INBOX", name=None):
        """Deliver as an MDA does: write to tmp/, rename into new/."""
        d = self.folder(folder)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        name = name or f"{time.time():.6f}.P{os.getpid()}R{random.randint(0, 1 << 30)}.testhost"
        tmp = os.path.join(d, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(text.encode() if isinstance(text, str) else text)
        if self.system:
            chown_tree(d, self.uid, self.gid)
        os.rename(tmp, os.path.join(d, "new", name))
        return name

    def remove(self):
        if self.system:
            subprocess.run(["userdel", self.name], check=False, stderr=subprocess.DEVNULL)


class Server:
    def __init__(self, mode, account, syslog, binary=IMAPD, extra_args=()):
        self.mode = mode
        self.binary = binary
        self.extra_args = list(extra_args)
        self.account = account
        self.syslog = syslog
        self.procs = []
        if mode == "daemon":
            self._start_daemon()
        else:
            self._start_inetd()

    def _start_daemon(self):
        extra = list(self.extra_args)
        # `--tls` (implicit TLS, an inetd flag) means a TLS listener for a daemon.
        listen = "--listen"
        if "--tls" in extra:
            extra.remove("--tls")
            listen = "--tls-listen"
        args = [self.binary, listen, "127.0.0.1:0", "--users", self.account.users_file,
                "--log-socket", self.syslog.path] + extra
        if self.account.system:
            args += ["--user", self.account.name]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(self.proc)
        line = self.proc.stderr.readline().decode()
        m = re.search(r"listening on \[127\.0\.0\.1:(\d+)\]", line)
        assert m, f"daemon did not start: {line!r}"
        self.port = int(m.group(1))
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()

    @staticmethod
    def _drain(stream):
        for _ in stream:
            pass

    def _start_inetd(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._stopping = False

        def accept_loop():
            while not self._stopping:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                if self._stopping:
                    conn.close()
                    return
                # inetd: the socket is the child's stdin and stdout; it runs as root.
                p = subprocess.Popen(
                    [self.binary, "--users", self.account.users_file, "--log-socket", self.syslog.path]
                    + self.extra_args,
                    stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL,
                    close_fds=True,
                )
                self.procs.append(p)
                conn.close()

        self.accepter = threading.Thread(target=accept_loop, daemon=True)
        self.accepter.start()

    def connect(self, login=True):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        if login:
            c.login(self.account.name, PASSWORD)
        return c

    def pop(self, login=True):
        """A poplib client (for an ipop3d server)."""
        p = poplib.POP3("127.0.0.1", self.port, timeout=30)
        if login:
            p.user(self.account.name)
            p.pass_(PASSWORD)
        return p

    def raw(self):
        return RawClient("127.0.0.1", self.port, literals=os.path.basename(self.binary) != "ipop3d")

    def stop(self):
        if self.mode == "inetd":
            self._stopping = True
            # Wake the accept() before closing: a thread still blocked on the closed
            # descriptor number would take the connections of the next test's
            # listener, which gets the same number, and run this test's binary for them.
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.accepter.join(timeout=5)
            self.listener.close()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


class RawClient:
    """A line-level client for protocol transcripts and malformed input."""

    def __init__(self, host, port, literals=True):
        self.sock = socket.create_connection((host, port), timeout=15)
        self.buf = b""
        # IMAP folds `{n}` literals into the line; POP3 lines are only lines.
        self.literals = literals

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk

    def _rawline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def line(self):
        """One response line, with any literals it announces folded in."""
        out = b""
        while True:
            raw = self._rawline()
            out += raw
            m = re.search(rb"\{(\d+)\}$", raw) if self.literals else None
            if not m:
                return out.decode("latin-1")
            n = int(m.group(1))
            self._fill(n)
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def until_tagged(self, tag):
        """Lines up to and including the tagged completion of `tag`."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def command(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until_tagged(tag)

    def closed(self):
        try:
            self.sock.settimeout(5)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def syslog(tmp_path):
    log_dir = tempfile.mkdtemp(prefix="imapd-log-")
    os.chmod(log_dir, 0o755)  # reachable by every user, as /dev/log is
    path = os.path.join(log_dir, "log")
    s = SyslogCatcher(path)
    yield s
    s.close()
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)


@pytest.fixture
def account():
    base = tempfile.mkdtemp(prefix="imapd-test-")
    os.chmod(base, 0o755)
    a = Account(base)
    yield a
    a.remove()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["daemon", "inetd"])
def server(request, account, syslog):
    s = Server(request.param, account, syslog)
    yield s
    s.stop()


@pytest.fixture
def daemon(account, syslog):
    s = Server("daemon", account, syslog)
    yield s
    s.stop()


@pytest.fixture(params=["daemon", "inetd"])
def pop3(request, account, syslog):
    """ipop3d on the test account, in each run mode."""
    s = Server(request.param, account, syslog, binary=IPOP3D)
    yield s
    s.stop()


@pytest.fixture
def pop3_daemon(account, syslog):
    s = Server("daemon", account, syslog, binary=IPOP3D)
    yield s
    s.stop()


@pytest.fixture
def pop3_inetd(account, syslog):
    s = Server("inetd", account, syslog, binary=IPOP3D)
    yield s
    s.stop()


_short_built = []


def short_timeouts_binary(name):
    """The binary `name` built with SHORT_SETTINGS (once per run, in its own target
    directory so the normal build is untouched)."""
    if not _short_built:
        cargo_build(SHORT_TARGET, SHORT_SETTINGS)
        _short_built.append(True)
    return binary_path(SHORT_TARGET, name)


@pytest.fixture
def inetd(account, syslog):
    s = Server("inetd", account, syslog)
    yield s
    s.stop()


SIMPLE = (
    "From: Alice Example <alice@example.com>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: Lunch plans\r\n"
    "Date: Wed, 17 Jul 1996 02:23:25 -0700\r\n"
    "Message-ID: <lunch@example.com>\r\n"
    "\r\n"
    "Shall we meet at noon?\r\n"
)


def message(subject="Hello", body="Body text\r\n", sender="alice@example.com", extra=""):
    return (
        f"From: {sender}\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}"
    )


def sequence_set_numbers(s):
    """The numbers of a server's sequence set (`1:3,7`, as COPYUID and ESEARCH send
    them), in order; str or bytes."""
    s = s.decode() if isinstance(s, bytes) else s
    out = []
    for part in s.split(","):
        lo, _, hi = part.partition(":")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def esearch_while_another_session_changes_the_mailbox(server):
    """RFC 4731 ESEARCH on the five messages in INBOX while another session expunges the
    first and appends a sixth: by sequence number, no EXPUNGE before the answer (RFC
    3501 7.4.1) and the numbers are the client's; by UID, the mailbox as it is now."""
    a, b = server.connect(), server.connect()
    assert a.select("INBOX") == ("OK", [b"5"])
    b.select("INBOX")
    assert b.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert b.expunge()[0] == "OK"
    assert b.append("INBOX", None, None, message("sixth").encode())[0] == "OK"

    def esearch(*args):
        """The one ESEARCH line's items (COUNT and ALL checked against each other), and
        the other untagged responses the command brought."""
        a.untagged_responses.clear()
        typ, data = a._simple_command(*args)
        assert typ == "OK", data
        [line] = a.untagged_responses.pop("ESEARCH")
        line = line.decode()
        m = re.fullmatch(r'\(TAG "[A-Z]+\d+"\)((?: [A-Z]+)?)((?: [A-Z]+ [\d:,]+)*)', line)
        assert m, line
        items = dict(zip(*[iter(m.group(2).split())] * 2))
        if m.group(1):
            items[m.group(1).strip()] = True
        if "ALL" in items:
            numbers = set(sequence_set_numbers(items["ALL"]))
            items["ALL"] = numbers
            if "COUNT" in items:
                assert int(items["COUNT"]) == len(numbers), line
        return items, dict(a.untagged_responses)

    items, others = esearch("SEARCH", "RETURN", "(COUNT ALL)", "ALL")
    assert "EXPUNGE" not in others, others
    assert items["ALL"] <= set(range(1, 7)), items
    # By UID: the messages of the session's view (UID 1 too, if its expunge is not
    # reported yet), the new one among them.
    items, others = esearch("UID", "SEARCH", "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert items["UID"] is True and set(range(2, 7)) <= items["ALL"] <= set(range(1, 7)), items
    assert (int(items["MIN"]), int(items["MAX"])) == (min(items["ALL"]), 6), items
    assert a.noop()[0] == "OK"
    items, _ = esearch("UID", "SEARCH", "RETURN", "(ALL)", "ALL")
    assert items["ALL"] == set(range(2, 7)), items
    items, _ = esearch("SEARCH", "RETURN", "(MIN MAX)", "ALL")
    assert items == {"MIN": "1", "MAX": "5"}, items
    items, _ = esearch("SEARCH", "RETURN", "(MIN COUNT)", "SUBJECT", "sixth")
    assert items == {"MIN": "5", "COUNT": "1"}, items
    a.logout()
    b.logout()


def copy_fails_halfway(c, fill, limit):
    """A COPY, then a MOVE, of the 400 messages `fill` puts in INBOX, the 300th with a
    keyword the destination has no room for (it holds `limit` already): the store
    refuses it in a later batch, and the destination must be as it was."""
    assert c.create("Full")[0] == "OK"
    flags = " ".join(f"$k{i}" for i in range(limit))
    assert c.append("Full", f"({flags})", None, message("kept").encode())[0] == "OK"
    fill()
    c.select("INBOX")
    assert c.store("300", "+FLAGS", "($new)")[0] == "OK"
    typ, data = c.copy("1:*", "Full")
    assert typ == "NO" and b"LIMIT" in data[0], (typ, data)
    assert c.select("Full") == ("OK", [b"1"])
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: kept" in data[0][1]
    assert c.select("INBOX") == ("OK", [b"400"])
    # MOVE fails the same way (RFC 6851 3.3): every message stays in exactly one mailbox.
    typ, data = c.uid("MOVE", "1:*", "Full")
    assert typ == "NO" and b"LIMIT" in data[0], (typ, data)
    assert c.select("Full") == ("OK", [b"1"])
    assert c.select("INBOX") == ("OK", [b"400"])
