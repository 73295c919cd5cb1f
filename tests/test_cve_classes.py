"""Bug classes other IMAP and POP3 servers shipped CVEs for (Dovecot, UW, Cyrus,
Courier, qpopper), each tried against imapd and ipop3d: the answer must be a clean
protocol error (or the right result), the session or at least the server must go on,
and nothing may take unbounded time or memory. STARTTLS injection, huge literal counts,
unterminated quotes and deep nesting have their tests in test_tls.py and
test_robustness.py."""
import base64
import os
import socket
import time

import pytest

from conftest import IPOP3D, PASSWORD, Server, message
from test_robustness import assert_alive, greet_login


class long_lines:
    """imaplib refuses response lines over 1 MB; some answers here are longer."""

    def __enter__(self):
        import imaplib
        self.limit, imaplib._MAXLINE = imaplib._MAXLINE, 50_000_000

    def __exit__(self, *exc):
        import imaplib
        imaplib._MAXLINE = self.limit


def test_nul_and_8bit_in_quoted_strings_and_atoms(server):
    """RFC 3501 9: a quoted string holds 7-bit text without NUL, CR or LF; an atom no
    control or 8-bit octet. (Cyrus and UW CVEs: a NUL cutting a string short in C.)"""
    r = server.raw()
    greet_login(r, server.account)
    for tag, line in [(b"q1", b'q1 SELECT "IN\x00BOX"'), (b"q2", b"q2 SELECT IN\x00BOX"),
                      (b"q3", b'q3 SELECT "INB\xc3\xa9X"'), (b"q4", b"q4 CREATE caf\xc3\xa9"),
                      (b"q5", b'q5 SEARCH SUBJECT "a\x00b"'), (b"q6", b"q6 NO\x00OP"),
                      (b"q7", b"q7 SELECT IN\x01BOX")]:
        r.send(line + b"\r\n")
        answer = r.line()
        assert answer.startswith(tag.decode() + " BAD") or \
            answer.startswith(tag.decode() + " NO"), (line, answer)
    # 8-bit text goes in a literal, where it is allowed (SEARCH CHARSET UTF-8).
    r.command("s", "SELECT INBOX")
    r.send(b"u SEARCH CHARSET UTF-8 SUBJECT {5}\r\n")
    assert r.line().startswith("+")
    r.send("café".encode() + b"\r\n")
    assert r.until_tagged("u")[-1].startswith("u OK")
    assert r.command("z", "NOOP")[-1].startswith("z OK")
    r.close()


def test_many_addresses_and_a_huge_header(server):
    """An ENVELOPE of 20,000 addresses and a 4 MB header: answered, in bounded time and
    memory. (Dovecot CVE-2020-12100/12673 class: header parsing cost and recursion.)"""
    to = ", ".join(f'"User {i}" <u{i}@example.com>' for i in range(20000))
    groups = " ".join(f"g{i}: a{i}@x, b{i}@y;" for i in range(2000))
    folded = "X-Long: " + "\r\n ".join("y" * 70 for _ in range(60000))
    body = f"From: a@b\r\nTo: {to}\r\nCc: {groups}\r\n{folded}\r\nSubject: big\r\n\r\nx\r\n"
    c = server.connect()
    assert c.append("INBOX", None, None, body.encode())[0] == "OK"
    c.select("INBOX")
    t = time.monotonic()
    with long_lines():  # the ENVELOPE line is ~2 MB
        typ, data = c.fetch("1", "(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    text = data[0][0] if isinstance(data[0], tuple) else data[0]
    assert b"u19999" in b"".join(d if isinstance(d, bytes) else d[0] for d in data) or \
        b"u19999" in text
    typ, _ = c.search(None, "TO", "u12345@example.com")
    assert typ == "OK"
    assert time.monotonic() - t < 20
    c.logout()
    assert_alive(server)


def test_rfc2231_parameter_floods(server):
    """50,000 continuation parameters (`name*N*=`), out of order and with charsets:
    BODYSTRUCTURE answers without quadratic work. (Dovecot CVE-2021-33515-era MIME
    parser hardening; Cyrus RFC 2231 bugs.)"""
    params = "".join(f";\r\n name*{i}*=utf-8''%41{i}" for i in range(50000, 0, -1))
    body = (f"Content-Type: text/plain{params}\r\n"
            "Content-Disposition: attachment; filename*0=a; filename*1=b\r\n\r\nx\r\n")
    c = server.connect()
    assert c.append("INBOX", None, None, body.encode())[0] == "OK"
    c.select("INBOX")
    t = time.monotonic()
    with long_lines():  # all 50,000 are answered
        typ, data = c.fetch("1", "(BODYSTRUCTURE)")
    assert typ == "OK" and b'"FILENAME*1" "b"' in data[0], data[0][:200]
    assert time.monotonic() - t < 20
    c.logout()


def test_list_patterns_with_many_wildcards(server):
    """`*%*%...` patterns against long names: no exponential backtracking (the glob
    CVEs of several servers); answered at once."""
    c = server.connect()
    for name in ["a" * 200, "b." * 10 + "c"]:
        typ, data = c.create(name)
        assert typ == "OK", (name, data)
    for pattern in ["*%" * 500 + "z", "*" * 2000 + "q", "%" * 1000, ("a*" * 300) + "b"]:
        t = time.monotonic()
        typ, data = c.list("", pattern)
        assert typ in ("OK", "NO"), data
        assert time.monotonic() - t < 5, pattern[:20]
    c.logout()


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
def test_pop3_dot_stuffing_with_bare_cr_and_lf(account, syslog, mode):
    """A message whose lines start with `.`, whose line ends are bare LF or bare CR, and
    a `\\r\\n.\\r\\n` hidden behind a bare CR: RETR and TOP stuff every line start and
    end with the one terminator (qpopper and Courier CVE class: a message that ends the
    response early and injects the rest as protocol)."""
    body = (b"From: a@b\r\nSubject: dots\r\n\r\n.starts with a dot\r\n..two\r\n"
            b"bare lf\n.after bare lf\nbare cr\r.after bare cr\r\n.\r\n"
            b"+OK forged\r\n.\r\n")
    account.deliver(body)
    s = Server(mode, account, syslog, binary=IPOP3D)
    try:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        f = sock.makefile("rb")
        f.readline()
        for cmd in (f"USER {account.name}", f"PASS {PASSWORD}", "RETR 1"):
            sock.sendall(cmd.encode() + b"\r\n")
            assert f.readline().startswith(b"+OK")
        lines = []
        while True:
            line = f.readline()
            assert line.endswith(b"\r\n"), line
            if line == b".\r\n":
                break
            lines.append(line[:-2])
        # Un-stuffed, the message comes back with every line intact, forged reply too:
        # bare LF ends a line (sent as CRLF, the next line stuffed); a bare CR is text
        # inside a line (RFC 1939 lines end with CRLF only).
        unstuffed = [l[1:] if l.startswith(b".") else l for l in lines]
        assert unstuffed[3:] == [b".starts with a dot", b"..two", b"bare lf", b".after bare lf",
                                 b"bare cr\r.after bare cr", b".", b"+OK forged", b"."], lines
        assert all(b"\n" not in l for l in lines), lines
        sock.sendall(b"NOOP\r\n")
        assert f.readline().startswith(b"+OK")
        sock.sendall(b"QUIT\r\n")
        sock.close()
    finally:
        s.stop()


def test_credentials_with_tab_cr_lf_and_percent(server, syslog):
    """Control characters and `%` in a user name or password: refused like any wrong
    login, never splitting the line, the log line or the users file's fields; a `%` in
    a name never expands as a mail location template."""
    r = server.raw()
    r.line()
    for tag, user, pw in [("c1", "a\tb", "x"), ("c2", "%u", PASSWORD), ("c3", "x%", "y"),
                          ("c4", server.account.name + "\t", PASSWORD)]:
        r.send(f'{tag} LOGIN "{user}" "{pw}"\r\n')
        answer = r.line()
        assert answer.startswith(f"{tag} NO") or answer.startswith(f"{tag} BAD"), answer
        if answer.startswith(f"{tag} NO") and "AUTHENTICATIONFAILED" in answer:
            break  # failures end the connection after MAX_AUTH_FAILURES: go on anew
    r.close()
    # CR and LF inside a literal user name (the only way to send them).
    r = server.raw()
    r.line()
    r.send(b"l1 LOGIN {7}\r\n")
    assert r.line().startswith("+")
    r.send(b"a\r\nb c1 {1}\r\n")
    assert r.line().startswith("+")
    r.send(b"x\r\n")
    answer = r.line()
    assert answer.startswith("l1 NO") or answer.startswith("l1 BAD"), answer
    r.close()
    # The log line of a hostile name is one line with the name escaped.
    syslog.wait_for(r"login failed user=\S+ peer=127\.0\.0\.1 reason=")
    assert not [l for l in syslog.lines if "\t" in l or "\r" in l]
    assert_alive(server)


def test_a_second_authenticate_after_a_failure(server):
    """AUTHENTICATE PLAIN fails, then another AUTHENTICATE (and a LOGIN) on the same
    connection: each is answered on its own, with the held delay, and a right one
    after a wrong one logs in (no state left from the failure: Dovecot's
    CVE-2019-11500 class of SASL state confusion)."""
    acc = server.account
    r = server.raw()
    r.line()
    wrong = base64.b64encode(f"\0{acc.name}\0wrong".encode()).decode()
    right = base64.b64encode(f"\0{acc.name}\0{PASSWORD}".encode()).decode()
    r.send("a1 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+")
    r.send(wrong + "\r\n")
    assert r.line().startswith("a1 NO")
    # A cancelled exchange, then a continuation line that is not base64.
    r.send("a2 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+")
    r.send("*\r\n")
    assert r.line().startswith("a2 BAD")
    r.send("a3 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith("+")
    r.send("!!!not base64!!!\r\n")
    assert r.line().startswith("a3 BAD")
    r.send(f"a4 AUTHENTICATE PLAIN {right}\r\n")
    assert r.line().startswith("a4 OK")
    r.send(f"a5 AUTHENTICATE PLAIN {right}\r\n")
    assert r.line().startswith("a5 BAD")  # already logged in
    assert r.command("a6", "SELECT INBOX")[-1].startswith("a6 OK")
    r.close()


def test_names_with_dots_tildes_hashes_and_modified_utf7_tricks(server):
    """Mailbox names that other servers resolved outside the user's mail or into
    another's: parent references, home directories, namespaces, and modified UTF-7
    that decodes to `/`, `..` or NUL. Each is refused or stays a plain folder inside."""
    acc = server.account
    c = server.connect()
    before = sorted(os.listdir(os.path.dirname(acc.maildir)))
    tricks = ["..", "a/../../b", "~", "~root", "~/x", "#mh/x", "#public/x", "/x",
              "&AC8-etc", "&AC4ALg-", "&AAA-", "&-..&-", "a/&AC8-/b", "INBOX/..", "&Jjo-/..",
              "&", "&Jjo", "a/./b", "a//b", "a..b", ".x", "x.", "a.~root", "a.&AC4-.b",
              "&AC4-&AC4-", "INBOX.."]
    for name in tricks:
        typ, _ = c.create(name)
        if typ == "OK":
            typ, data = c.list("", "*")
            assert typ == "OK"
            c.delete(name)
    c.logout()
    assert sorted(os.listdir(os.path.dirname(acc.maildir))) == before
    for root, dirs, files in os.walk(acc.maildir):
        assert os.path.realpath(root).startswith(os.path.realpath(acc.maildir)), root
    assert_alive(server)
