"""TLS: STARTTLS (IMAP), STLS (POP3) and implicit TLS against the real binaries, with a
certificate made at test time: Python's ssl clients (imaplib starttls, IMAP4_SSL,
poplib stls, POP3_SSL), curl with --ssl-reqd, openssl s_client; the command-injection
case (CVE-2011-0411: what was pipelined after STARTTLS must be dropped); non-TLS
bytes on an implicit-TLS connection; a missing certificate."""
import imaplib
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import IMAPD, IPOP3D, PASSWORD, Server

MODES = ["inetd", "daemon"]


@pytest.fixture(scope="module")
def cert():
    d = tempfile.mkdtemp(prefix="imapd-tls-")
    os.chmod(d, 0o755)
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    os.chmod(key, 0o600)
    yield crt, key
    shutil.rmtree(d, ignore_errors=True)


def client_context(crt):
    ctx = ssl.create_default_context(cafile=crt)
    ctx.check_hostname = False
    return ctx


def tls_server(mode, account, syslog, cert, binary=IMAPD, implicit=False):
    args = ["--cert", cert[0], "--key", cert[1]]
    if implicit:
        args.append("--tls")
    return Server(mode, account, syslog, binary=binary, extra_args=args)


@pytest.mark.parametrize("mode", MODES)
def test_imap_starttls_then_login(account, syslog, cert, mode):
    s = tls_server(mode, account, syslog, cert)
    try:
        c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
        assert "STARTTLS" in c.capabilities
        c.starttls(client_context(cert[0]))
        assert "STARTTLS" not in c.capabilities
        c.login(account.name, PASSWORD)
        assert c.select("INBOX")[0] == "OK"
        # More than TLS buffers at once, both ways.
        big = b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 3000
        assert c.append("INBOX", None, None, big)[0] == "OK"
        assert c.fetch("1", "(BODY.PEEK[])")[1][0][1] == big
        c.logout()
        syslog.wait_for(r"TLS established peer=127\.0\.0\.1")
    finally:
        s.stop()


@pytest.mark.parametrize("mode", MODES)
def test_imaps_and_pop3s_implicit_tls(account, syslog, cert, mode):
    s = tls_server(mode, account, syslog, cert, implicit=True)
    try:
        c = imaplib.IMAP4_SSL("127.0.0.1", s.port, ssl_context=client_context(cert[0]), timeout=30)
        assert "STARTTLS" not in c.capabilities and "AUTH=PLAIN" in c.capabilities
        c.login(account.name, PASSWORD)
        c.logout()
    finally:
        s.stop()
    s = tls_server(mode, account, syslog, cert, binary=IPOP3D, implicit=True)
    try:
        p = poplib.POP3_SSL("127.0.0.1", s.port, context=client_context(cert[0]), timeout=30)
        assert "STLS" not in p.capa()
        p.user(account.name)
        p.pass_(PASSWORD)
        assert p.stat()[0] == 0
        p.quit()
    finally:
        s.stop()


@pytest.mark.parametrize("mode", MODES)
def test_pop3_stls(account, syslog, cert, mode):
    account.deliver("Subject: over tls\n\nbody\n")
    s = tls_server(mode, account, syslog, cert, binary=IPOP3D)
    try:
        p = poplib.POP3("127.0.0.1", s.port, timeout=30)
        assert "STLS" in p.capa()
        p.stls(client_context(cert[0]))
        assert "STLS" not in p.capa()
        p.user(account.name)
        p.pass_(PASSWORD)
        assert b"body" in b"\n".join(p.retr(1)[1])
        p.quit()
    finally:
        s.stop()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("binary", ["imapd", "ipop3d"])
def test_commands_pipelined_before_the_handshake_are_dropped(account, syslog, cert, binary, mode):
    """CVE-2011-0411: bytes sent in the clear after STARTTLS/STLS must not be executed
    inside the TLS session."""
    exe = IMAPD if binary == "imapd" else IPOP3D
    s = tls_server(mode, account, syslog, cert, binary=exe)
    try:
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        f = raw.makefile("rb")
        f.readline()
        if binary == "imapd":
            raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        else:
            raw.sendall(b"STLS\r\nCAPA\r\n")
        assert f.readline().startswith(b"a OK" if binary == "imapd" else b"+OK")
        tls = client_context(cert[0]).wrap_socket(raw, server_hostname="localhost")
        tf = tls.makefile("rb")
        tls.sendall(b"c NOOP\r\n" if binary == "imapd" else b"USER x\r\n")
        first = tf.readline()
        assert first.startswith(b"c OK" if binary == "imapd" else b"+OK Send PASS"), first
        tls.close()
    finally:
        s.stop()


@pytest.mark.parametrize("mode", MODES)
def test_plain_bytes_on_an_implicit_tls_connection_are_logged_and_cost_nothing(account, syslog, cert, mode):
    s = tls_server(mode, account, syslog, cert, implicit=True)
    try:
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        raw.sendall(b"a LOGIN someone secret\r\n")
        raw.settimeout(10)
        data = b""
        try:
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"OK" not in data and b"someone" not in data
        raw.close()
        syslog.wait_for(r"TLS failed peer=127\.0\.0\.1 error=")
        # A vanishing client mid-handshake, then a good one: the server is fine.
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        raw.sendall(b"\x16\x03\x01\x00\x05")
        raw.close()
        c = imaplib.IMAP4_SSL("127.0.0.1", s.port, ssl_context=client_context(cert[0]), timeout=30)
        c.login(account.name, PASSWORD)
        c.logout()
    finally:
        s.stop()


def test_missing_certificate_means_no_starttls_and_a_log_line(account, syslog):
    s = Server("inetd", account, syslog, extra_args=["--cert", "/nonexistent.pem", "--key", "/nonexistent.key"])
    try:
        c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
        assert "STARTTLS" not in c.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="not available"):
            c._simple_command("STARTTLS")
        c.login(account.name, PASSWORD)
        c.logout()
        syslog.wait_for(r"TLS unavailable: certificate /nonexistent\.pem")
    finally:
        s.stop()


@pytest.mark.parametrize("mode", MODES)
def test_curl_and_openssl_s_client(account, syslog, cert, mode):
    account.deliver("Subject: curl tls\n\nhello\n")
    s = tls_server(mode, account, syslog, cert)
    try:
        out = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "--cacert", cert[0], "--max-time", "30",
             "-u", f"{account.name}:{PASSWORD}", f"imap://127.0.0.1:{s.port}/INBOX;UID=1"],
            capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "hello" in out.stdout
        out = subprocess.run(
            ["openssl", "s_client", "-starttls", "imap", "-connect", f"127.0.0.1:{s.port}",
             "-CAfile", cert[0], "-verify_return_error", "-quiet"],
            input=f"a LOGIN {account.name} \"{PASSWORD}\"\r\nb LOGOUT\r\n", capture_output=True,
            text=True, timeout=30)
        assert "a OK" in out.stdout, (out.stdout, out.stderr)
    finally:
        s.stop()


def test_sighup_reloads_the_certificate_without_dropping_sessions(account, syslog, cert):
    d = tempfile.mkdtemp(prefix="imapd-tls-reload-")
    os.chmod(d, 0o755)
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    shutil.copy(cert[0], crt)
    shutil.copy(cert[1], key)
    os.chown(key, account.uid, account.gid)
    s = Server("daemon", account, syslog, extra_args=["--cert", crt, "--key", key])
    try:
        before = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
        before.starttls(client_context(cert[0]))
        before.login(account.name, PASSWORD)
        # A new pair in place of the old, then SIGHUP.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=renewed", "-keyout", key, "-out", crt],
                       check=True, capture_output=True)
        # A daemon run with --user reads the new key as that user (Debian: make the
        # account a member of ssl-cert); here the account owns it.
        os.chown(key, account.uid, account.gid)
        s.proc.send_signal(signal.SIGHUP)
        syslog.wait_for(r"TLS certificate loaded from " + re.escape(crt))
        after = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
        after.starttls(client_context(crt))
        subject = after.sock.getpeercert()["subject"]
        assert (("commonName", "renewed"),) in subject, subject
        after.login(account.name, PASSWORD)
        after.logout()
        # The session that was up before the reload goes on.
        assert before.noop()[0] == "OK"
        before.logout()
    finally:
        s.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_root_daemon_relays_tls_to_the_users_process(syslog, cert):
    """A root daemon keeps a TLS session's TLS and relays plaintext to the process of
    the user it hands the login to: STARTTLS and implicit TLS, IMAP and POP3."""
    from test_accounts import SystemAccount, assert_only_user, serving_processes
    acc = SystemAccount("yescrypt")
    try:
        s = Server("daemon", acc, syslog, extra_args=["--cert", cert[0], "--key", cert[1]])
        try:
            c = imaplib.IMAP4("127.0.0.1", s.port, timeout=30)
            c.starttls(client_context(cert[0]))
            try:
                c.login(acc.name, PASSWORD)
            except Exception as e:
                raise AssertionError(f"{e}; log: {syslog.lines[-6:]}")
            assert c.select("INBOX")[0] == "OK"
            big = b"Subject: big\r\n\r\n" + b"x" * 100 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 3000
            assert c.append("INBOX", None, None, big)[0] == "OK"
            typ, data = c.fetch("1", "(BODY.PEEK[])")
            assert data[0][1] == big
            pids = serving_processes(acc.uid, "imapd")
            assert len(pids) == 1
            assert_only_user(acc, pids[0])
            c.logout()
            syslog.wait_for(rf"login user={acc.name} peer=127\.0\.0\.1 method=LOGIN")
        finally:
            s.stop()
        s = Server("daemon", acc, syslog, binary=IPOP3D,
                   extra_args=["--cert", cert[0], "--key", cert[1], "--tls"])
        try:
            p = poplib.POP3_SSL("127.0.0.1", s.port, context=client_context(cert[0]), timeout=30)
            p.user(acc.name)
            p.pass_(PASSWORD)
            assert p.stat()[0] == 1
            assert b"y" * 998 in b"\n".join(p.retr(1)[1])
            p.quit()
        finally:
            s.stop()
    finally:
        acc.remove()


def test_from_another_host_login_waits_for_starttls(account, syslog, cert):
    """Not from loopback: LOGINDISABLED and no AUTH=PLAIN before STARTTLS, a normal
    login after it (the capabilities change); POP3 likewise with USER after STLS."""
    from test_accounts import daemon_on_all_addresses, non_loopback_address
    outside = non_loopback_address()
    for exe in (IMAPD, IPOP3D):
        proc, port = daemon_on_all_addresses(exe, account, syslog,
                                             ["--cert", cert[0], "--key", cert[1]])
        try:
            if exe == IMAPD:
                c = imaplib.IMAP4(outside, port, timeout=30)
                assert "LOGINDISABLED" in c.capabilities and "AUTH=PLAIN" not in c.capabilities
                c.starttls(client_context(cert[0]))
                assert "LOGINDISABLED" not in c.capabilities and "AUTH=PLAIN" in c.capabilities
                c.login(account.name, PASSWORD)
                c.logout()
            else:
                p = poplib.POP3(outside, port, timeout=30)
                assert "USER" not in p.capa()
                p.stls(client_context(cert[0]))
                assert "USER" in p.capa()
                p.user(account.name)
                p.pass_(PASSWORD)
                p.quit()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_xinetd_imaps_on_port_993_is_tls_without_a_flag(account, syslog, cert, tmp_path):
    """The stock imaps entry (port 993, no --tls): the local port says TLS."""
    from test_system import xinetd_service
    s = socket.socket()
    # As xinetd binds it: connections of an earlier run in TIME_WAIT do not count.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", 993))
    except OSError:
        pytest.fail("port 993 is taken on this machine; the test needs it free")
    finally:
        s.close()
    import test_system
    real = test_system.free_port
    test_system.free_port = lambda: 993
    try:
        args = f"--users {account.users_file} --log-socket {syslog.path} --cert {cert[0]} --key {cert[1]}"
        with xinetd_service(IMAPD, args, tmp_path) as (xi, port):
            assert port == 993
            c = imaplib.IMAP4_SSL("127.0.0.1", 993, ssl_context=client_context(cert[0]), timeout=30)
            c.login(account.name, PASSWORD)
            c.logout()
    finally:
        test_system.free_port = real


def test_openssl_s_client_starttls_pop3(account, syslog, cert):
    s = tls_server("daemon", account, syslog, cert, binary=IPOP3D)
    try:
        out = subprocess.run(
            ["openssl", "s_client", "-starttls", "pop3", "-connect", f"127.0.0.1:{s.port}",
             "-CAfile", cert[0], "-verify_return_error", "-quiet"],
            input=f"USER {account.name}\r\nPASS {PASSWORD}\r\nSTAT\r\nQUIT\r\n",
            capture_output=True, text=True, timeout=30)
        assert re.search(r"\+OK \d+ \d+", out.stdout), (out.stdout, out.stderr)
    finally:
        s.stop()
