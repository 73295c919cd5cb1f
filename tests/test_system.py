"""imapd and ipop3d as administrators run them: under real xinetd (as root, dropping
to the mail user after login), and imapd from a shell or ssh as a user (PREAUTH, as
UW imapd)."""
import os
import re
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import IMAPD, IPOP3D, IS_ROOT, PASSWORD, message
from support import free_port, wait_port


@pytest.fixture
def root_required():
    # These tests create system accounts and run xinetd; CI runs the suite as root.
    assert IS_ROOT, "tests/test_system.py needs root (it creates accounts and runs xinetd); run the suite as CI does"


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_preauth_over_a_pipe_as_the_invoking_user(account, syslog, root_required):
    account.deliver(message("for preauth"))
    p = subprocess.Popen(
        [IMAPD, "--log-socket", syslog.path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        user=account.uid, group=account.gid, extra_groups=[],
        env={"PATH": "/usr/bin:/bin"},
    )
    out, _ = p.communicate(b"a SELECT INBOX\r\nb FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nc LOGOUT\r\n", timeout=20)
    text = out.decode()
    assert text.startswith(f"* PREAUTH [CAPABILITY IMAP4rev1"), text
    assert f"Logged in as {account.name}" in text
    assert "* 1 EXISTS" in text and "Subject: for preauth" in text
    assert "c OK LOGOUT completed" in text
    assert p.returncode == 0
    syslog.wait_for(rf"login user={account.name} peer=local method=PREAUTH")


@contextmanager
def xinetd_service(server, server_args, tmp_path):
    """Real xinetd running `server` for one service on a loopback test port, with the
    service definition an admin writes for UW imapd/ipop3d. Yields (xinetd, port)."""
    xinetd = shutil.which("xinetd") or "/usr/sbin/xinetd"
    assert os.path.exists(xinetd), "xinetd is not installed (.ci/run installs it)"
    port = free_port()
    conf = tmp_path / "xinetd.conf"
    conf.write_text(f"""
service mailtest
{{
    type        = UNLISTED
    port        = {port}
    socket_type = stream
    protocol    = tcp
    wait        = no
    user        = root
    server      = {server}
    server_args = {server_args}
    bind        = 127.0.0.1
    only_from   = 127.0.0.1
    instances   = 50
}}
""")
    xi = subprocess.Popen([xinetd, "-dontfork", "-f", str(conf), "-pidfile", str(tmp_path / "pid")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, "xinetd", timeout=10)
        yield xi, port
    finally:
        xi.terminate()
        xi.wait(timeout=10)


def assert_child_runs_as(xi, account):
    """The serving process is xinetd's child; after login it is the user, for good."""
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = proc_status(pid)
        except OSError:
            continue
        if st.get("PPid") == str(xi.pid):
            children.append(st)
    assert len(children) == 1, children
    st = children[0]
    assert st["Uid"].split() == [str(account.uid)] * 4
    assert st["Gid"].split() == [str(account.gid)] * 4
    assert st["Groups"].split() == [str(account.gid)]
    assert int(st["CapEff"], 16) == 0


def test_under_xinetd_the_session_runs_as_the_mail_user(account, syslog, tmp_path, root_required):
    args = f"--users {account.users_file} --log-socket {syslog.path}"
    with xinetd_service(IMAPD, args, tmp_path) as (xi, port):
        import imaplib
        account.deliver(message("via xinetd"))
        c = imaplib.IMAP4("127.0.0.1", port, timeout=20)
        c.login(account.name, PASSWORD)
        typ, data = c.select()
        assert data == [b"1"]
        typ, data = c.append("INBOX", None, None, message("appended").encode())
        assert typ == "OK"
        assert_child_runs_as(xi, account)
        c.logout()
        # What the session wrote (APPENDed files carry ,W=; its uidlist and cache)
        # belongs to the user and is private.
        created = [os.path.join(account.maildir, sub, f) for sub in ("new", "cur")
                   for f in os.listdir(os.path.join(account.maildir, sub)) if ",W=" in f]
        created += [os.path.join(account.maildir, "dovecot-uidlist")]
        assert len(created) == 2
        for path in created:
            s = os.stat(path)
            assert (s.st_uid, s.st_gid) == (account.uid, account.gid), path
            assert s.st_mode & 0o077 == 0, (path, oct(s.st_mode))
        syslog.wait_for(rf"login user={account.name} peer=127\.0\.0\.1 method=LOGIN")


def test_ipop3d_under_xinetd_runs_as_the_mail_user(account, syslog, tmp_path, root_required):
    import poplib
    args = f"--users {account.users_file} --log-socket {syslog.path}"
    with xinetd_service(IPOP3D, args, tmp_path) as (xi, port):
        account.deliver(message("pop via xinetd"))
        account.deliver(message("second"))
        p = poplib.POP3("127.0.0.1", port, timeout=20)
        p.user(account.name)
        p.pass_(PASSWORD)
        assert p.stat()[0] == 2
        assert b"Subject: pop via xinetd" in b"\r\n".join(p.retr(1)[1])
        p.dele(1)
        assert_child_runs_as(xi, account)
        assert p.quit().startswith(b"+OK")
        # The lock file the session made belongs to the user and is private.
        st = os.stat(os.path.join(account.maildir, "ipop3d.lock"))
        assert (st.st_uid, st.st_gid) == (account.uid, account.gid)
        assert st.st_mode & 0o077 == 0
        assert len(os.listdir(os.path.join(account.maildir, "cur"))) + \
            len(os.listdir(os.path.join(account.maildir, "new"))) == 1
        syslog.wait_for(rf"ipop3d\[\d+\]: logout user={account.name} peer=127\.0\.0\.1 reason=QUIT retr=1/")


def test_readme_lists_every_compile_time_setting():
    """Every setting `imapd --settings` prints is in README's table with its default,
    unless the build's environment overrides it (as an emulated test build does)."""
    from conftest import IMAPD, ROOT, build_env
    overrides = build_env(os.path.join(ROOT, "target"))
    out = subprocess.run([IMAPD, "--settings"], capture_output=True, text=True, check=True).stdout
    readme = open(os.path.join(ROOT, "README.md")).read()
    printed = set()
    for line in out.splitlines():
        name, value = line.split("=", 1)
        printed.add(name)
        row = re.search(rf"^\| `{name}` \| `([^`]*)` \|", readme, re.M)
        assert row, f"{name} missing from README's settings table"
        assert overrides.get(name, row.group(1)) == value, (name, row.group(1), value)
    # And the other way: no row in README for a setting the build does not have.
    documented = set(re.findall(r"^\| `(IMAP_[A-Z0-9_]+)` \|", readme, re.M))
    assert documented == printed, (documented - printed, printed - documented)


def test_daemon_listens_on_ipv4_and_ipv6_at_one_port(account, syslog):
    """README's daemon line binds 0.0.0.0 and [::] at the same port: the IPv6 socket is
    IPv6-only, both answer a login, and each peer is logged in its own family."""
    import imaplib
    port = free_port()
    proc = subprocess.Popen([IMAPD, "--listen", f"127.0.0.1:{port}", "--listen", f"[::1]:{port}",
                             "--users", account.users_file, "--log-socket", syslog.path,
                             *(["--user", account.name] if IS_ROOT else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert b"listening on" in proc.stderr.readline()
        for host, logged in (("127.0.0.1", r"127\.0\.0\.1"), ("::1", r"::1")):
            c = imaplib.IMAP4(host, port, timeout=30)
            c.login(account.name, PASSWORD)
            c.logout()
            syslog.wait_for(rf"login user={account.name} peer={logged} method=LOGIN")
    finally:
        proc.terminate()
        proc.wait()


def test_settings_piped_into_head_is_no_error():
    """`imapd --settings | head -3`: the reader may be gone before the last line is
    written. Here it is gone before the first: no panic, exit 0."""
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run([IMAPD, "--settings"], stdout=w, stderr=subprocess.PIPE, text=True,
                       timeout=60)
    os.close(w)
    assert p.returncode == 0 and "panicked" not in p.stderr, p.stderr
