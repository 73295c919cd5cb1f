"""ipop3d with the clients and peers a site has: curl, fetchmail's download-and-delete
and leave-on-server cycles across server restarts, Dovecot's POP3 on the same Maildir
(same UIDLs, so fetchers switching servers download nothing twice), and the timeouts
of a short-timeouts build (autologout, LOGIN-DELAY)."""
import os
import poplib
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import IPOP3D, PASSWORD, Server, message, short_timeouts_binary
from support import free_port, start_dovecot


def curl(server, path="/", *args):
    acc = server.account
    p = subprocess.run(["curl", "-sS", "--max-time", "30", f"pop3://127.0.0.1:{server.port}{path}",
                        "-u", f"{acc.name}:{PASSWORD}", *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_curl_list_retr_top_uidl_dele(pop3):
    acc = pop3.account
    acc.deliver(message("curl one", "first body\r\n"))
    acc.deliver(message("curl two", ".dotted line\r\nsecond body\r\n"))
    listing = curl(pop3)
    assert re.fullmatch(r"1 \d+\r\n2 \d+\r\n", listing), listing
    sizes = [int(l.split()[1]) for l in listing.splitlines()]
    body = curl(pop3, "/2")
    assert "Subject: curl two" in body and "\r\n.dotted line\r\n" in body  # un-stuffed
    assert len(body.encode()) == sizes[1]
    top = curl(pop3, "/", "-X", "TOP 1 0")
    assert "Subject: curl one" in top and "first body" not in top
    uidl = curl(pop3, "/", "-X", "UIDL")
    assert re.fullmatch(r"(\d [0-9a-f]{16}\r\n){2}", uidl), uidl
    curl(pop3, "/1", "-X", "DELE", "-I")
    assert re.fullmatch(r"1 \d+\r\n", curl(pop3))


def fetchmail(server, tmp_path, options):
    """One fetchmail run against the server; returns fetchmail's exit code."""
    acc = server.account
    rc = tmp_path / "fetchmailrc"
    out = tmp_path / "out.mbox"
    rc.write_text(
        f'poll 127.0.0.1 service {server.port} protocol POP3 uidl auth password '
        f'user "{acc.name}" password "{PASSWORD}" {options} sslproto \'\' '
        f'mda "cat >> {out}"\n')
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    p = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--pidfile", str(tmp_path / "pid"),
                        "--idfile", str(tmp_path / "fetchids")],
                       capture_output=True, text=True, timeout=60, env=env)
    # 0: mail fetched; 1: no mail. Anything else is a failure.
    assert p.returncode in (0, 1), p.stdout + p.stderr
    assert "not the expected length" not in p.stdout + p.stderr
    return p.returncode


def fetched(tmp_path):
    path = tmp_path / "out.mbox"
    return re.findall(r"Subject: (fetch \d+)", path.read_text()) if path.exists() else []


def test_fetchmail_leave_on_server_then_download_and_delete_across_restarts(pop3, tmp_path):
    acc = pop3.account
    for i in range(3):
        acc.deliver(message(f"fetch {i}", f"body {i}\r\n"))
    acc.deliver(f"Subject: fetch 3\n\nno final newline, LF only")
    # Leave mail on the server: everything once...
    assert fetchmail(pop3, tmp_path, "keep") == 0
    assert sorted(fetched(tmp_path)) == [f"fetch {i}" for i in range(4)]
    # ...and nothing twice, also after the server restarts.
    assert fetchmail(pop3, tmp_path, "keep") == 1
    mode = pop3.mode
    pop3.stop()
    again = Server(mode, acc, pop3.syslog, binary=IPOP3D)
    try:
        acc.deliver(message("fetch 4"))
        assert fetchmail(again, tmp_path, "keep") == 0
        assert sorted(fetched(tmp_path)) == [f"fetch {i}" for i in range(5)]
        # Download and delete: the new message once, and every old one flushed.
        acc.deliver(message("fetch 5"))
        assert fetchmail(again, tmp_path, "nokeep flush") == 0
        assert sorted(fetched(tmp_path)) == [f"fetch {i}" for i in range(6)]
        p = again.pop()
        assert p.stat() == (0, 0)
        p.quit()
        # What POP3 deleted is gone for IMAP too.
        imap = Server("daemon", acc, pop3.syslog)
        try:
            c = imap.connect()
            typ, data = c.status("INBOX", "(MESSAGES)")
            assert b"MESSAGES 0" in data[0]
            c.logout()
        finally:
            imap.stop()
    finally:
        again.stop()


def test_same_uidls_and_sizes_as_dovecot_pop3(pop3_daemon, tmp_path):
    """A site switching from Dovecot: its fetchers see the same UIDLs and sizes, so
    "leave mail on server" downloads nothing again."""
    assert shutil.which("dovecot"), "Dovecot is not installed (tests/run installs it)"
    assert os.path.exists("/usr/lib/dovecot/pop3"), "dovecot-pop3d is not installed (tests/run installs it)"
    acc = pop3_daemon.account
    for i in range(5):
        acc.deliver(message(f"dc {i}", "line\n" * (i + 1)))
    acc.deliver("Subject: crlf\r\n\r\nalready CRLF\r\n")
    ours = pop3_daemon.pop()
    our_uidl, our_list = ours.uidl()[1], ours.list()[1]
    ours.quit()
    pop_port = free_port()
    proc, _ = start_dovecot(acc.base, acc.maildir, acc.name, PASSWORD, acc.uid, acc.gid,
                            acc.home, pop3_port=pop_port)
    try:
        d = poplib.POP3("127.0.0.1", pop_port, timeout=30)
        d.user(acc.name)
        d.pass_(PASSWORD)
        assert d.uidl()[1] == our_uidl
        assert d.list()[1] == our_list
        d.dele(1)
        d.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # And back: Dovecot's deletion is ours, the rest keep their UIDLs.
    ours = pop3_daemon.pop()
    assert ours.uidl()[1] == [f"{n} {u.split()[1].decode()}".encode()
                              for n, u in enumerate(our_uidl[1:], 1)]
    ours.quit()


def short_server(mode, account, syslog, name="ipop3d"):
    return Server(mode, account, syslog, binary=short_timeouts_binary(name))


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_autologout_ends_an_idle_session_without_deleting(mode, account, syslog):
    s = short_server(mode, account, syslog)
    try:
        account.deliver(message("kept"))
        r = s.raw()
        assert r.line().startswith("+OK")
        r.send(f"USER {account.name}\r\nPASS {PASSWORD}\r\nDELE 1\r\n")
        for _ in range(3):
            assert r.line().startswith("+OK")
        # RFC 1939 3: the timer closes the connection silently, with no UPDATE.
        assert r.closed()
        assert r.buf == b""
        syslog.wait_for(rf"logout user={account.name} peer=127\.0\.0\.1 reason=autologout")
        time.sleep(1)  # this build's LOGIN-DELAY (3 s) runs from the login, as long
        p = s.pop()
        assert p.stat()[0] == 1
        p.quit()
    finally:
        s.stop()


def test_login_delay_is_advertised_and_enforced(account, syslog):
    s = short_server("daemon", account, syslog)
    try:
        p = s.pop(login=False)
        assert p.capa()["LOGIN-DELAY"] == ["3"]
        p.user(account.name)
        p.pass_(PASSWORD)
        p.quit()
        r = s.raw()
        assert r.line().startswith("+OK")
        r.send(f"USER {account.name}\r\nPASS {PASSWORD}\r\n")
        assert r.line().startswith("+OK")
        assert r.line().startswith("-ERR [LOGIN-DELAY]")
        assert r.closed()
        time.sleep(3.5)
        p = s.pop()  # after the delay, welcome again
        p.quit()
    finally:
        s.stop()


def test_imap_autologout_in_the_short_build(account, syslog):
    s = short_server("daemon", account, syslog, name="imapd")
    try:
        r = s.raw()
        assert r.line().startswith("* OK")
        assert r.line() == "* BYE Autologout; idle for too long"
        assert r.closed()
    finally:
        s.stop()


def getmail(server, delete):
    """One getmail run (getmail6, as the account: it will not deliver as root) into a
    local Maildir; returns the subjects it has."""
    from pathlib import Path
    acc = server.account
    local = Path(acc.base) / "getmail-local"
    for sub in ("cur", "new", "tmp"):
        (local / sub).mkdir(parents=True, exist_ok=True)
    state = Path(acc.base) / "getmail-state"
    state.mkdir(exist_ok=True)
    rc = state / "getmailrc"
    rc.write_text(f"""[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = {server.port}
username = {acc.name}
password = {PASSWORD}

[destination]
type = Maildir
path = {local}/

[options]
read_all = false
delete = {str(delete).lower()}
verbose = 0
""")
    if acc.system:
        for path in (local, local / "cur", local / "new", local / "tmp", state, rc):
            os.chown(path, acc.uid, acc.gid)
    p = subprocess.run(["getmail", "--getmaildir", str(state), "--rcfile", str(rc)],
                       capture_output=True, text=True, timeout=60, preexec_fn=acc.become,
                       env=dict(os.environ, HOME=acc.base))
    assert p.returncode == 0, p.stdout + p.stderr
    subjects = []
    for sub in ("new", "cur"):
        for name in os.listdir(local / sub):
            m = re.search(r"Subject: (.*)", (local / sub / name).read_text())
            subjects.append(m.group(1))
    return sorted(subjects)


def test_getmail_leave_on_server_then_delete(pop3):
    acc = pop3.account
    for i in range(3):
        acc.deliver(message(f"get {i}"))
    assert getmail(pop3, delete=False) == ["get 0", "get 1", "get 2"]
    assert getmail(pop3, delete=False) == ["get 0", "get 1", "get 2"]
    acc.deliver(message("get 3"))
    # The new message once; with delete on, getmail removes what it has (now and
    # before) from the server.
    assert getmail(pop3, delete=True) == ["get 0", "get 1", "get 2", "get 3"]
    p = pop3.pop()
    assert p.stat() == (0, 0)
    p.quit()


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_a_client_that_stops_reading_is_logged_out_and_frees_the_maildrop(mode, account, syslog):
    s = short_server(mode, account, syslog)
    try:
        account.deliver("Subject: big\n\n" + ("r" * 999 + "\n") * 20000)  # 20 MB
        account.deliver(message("small"))
        r = s.raw()
        assert r.line().startswith("+OK")
        r.send(f"USER {account.name}\r\nPASS {PASSWORD}\r\nDELE 2\r\nRETR 1\r\n")
        r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # ...and this client reads no more: the server can't finish the RETR.
        syslog.wait_for(rf"logout user={account.name} peer=127\.0\.0\.1 reason=autologout.* dele=1/",
                        timeout=20)
        time.sleep(1)  # past this build's LOGIN-DELAY
        p = s.pop()  # the maildrop lock went with the session; DELE was not committed
        assert p.stat()[0] == 2
        p.quit()
        r.close()
    finally:
        s.stop()
