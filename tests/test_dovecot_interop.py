"""The same Maildir served by imapd and by Dovecot in turn: each sees the other's UIDs,
UIDVALIDITY, flags, keywords and folders (so a site can switch, or run both)."""
import imaplib
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import PASSWORD, Server, message


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Dovecot:
    def __init__(self, account, base):
        assert shutil.which("dovecot"), "Dovecot is not installed (tests/run installs dovecot-imapd)"
        self.port = free_port()
        d = os.path.join(base, "dovecot")
        os.makedirs(d)
        os.chmod(d, 0o755)  # Dovecot's auth process runs as the dovecot user
        users = os.path.join(d, "users")
        with open(users, "w") as f:
            f.write(f"{account.name}:{{PLAIN}}{PASSWORD}:{account.uid}:{account.gid}::{account.home}::\n")
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{account.maildir}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
}}
""")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "dovecot did not start"
                time.sleep(0.1)

    def connect(self, account):
        c = imaplib.IMAP4("127.0.0.1", self.port)
        c.login(account.name, PASSWORD)
        return c

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def snapshot(c, folder="INBOX"):
    typ, _ = c.select(folder)
    assert typ == "OK"
    uidvalidity = c.response("UIDVALIDITY")[1][0]
    typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    rows = []
    for d in data:
        if isinstance(d, tuple):
            flags = d[0].split(b"FLAGS (")[1].split(b")")[0].replace(b"\\Recent", b"").split()
            uid = d[0].split(b"UID ")[1].split()[0]
            rows.append((uid, sorted(flags), d[1].strip()))
    return uidvalidity, rows


def test_imapd_then_dovecot_then_imapd(account, syslog):
    imapd = Server("daemon", account, syslog)
    c = imapd.connect()
    for i in range(5):
        c.append("INBOX", "(\\Seen $Work)" if i % 2 else None, None, message(f"m{i}").encode())
    c.select()
    c.store("3", "+FLAGS", "(\\Deleted)")
    c.expunge()
    c.store("4", "+FLAGS", "(\\Flagged Later)")
    c.create("Sub.Folder")
    c.append("Sub.Folder", "(\\Answered)", None, message("sub").encode())
    ours = snapshot(c)
    ours_sub = snapshot(c, "Sub.Folder")
    c.logout()
    imapd.stop()

    dovecot = Dovecot(account, account.base)
    try:
        d = dovecot.connect(account)
        assert snapshot(d) == ours
        assert snapshot(d, "Sub.Folder") == ours_sub
        # Dovecot's turn to change things: a new message with a keyword, a flag, an expunge.
        d.append("INBOX", "(\\Draft Dovecot)", None, message("from dovecot").encode())
        d.select()
        d.store("1", "+FLAGS", "(\\Answered)")
        d.store("2", "+FLAGS", "(\\Deleted)")
        d.expunge()
        theirs = snapshot(d)
        d.logout()
    finally:
        dovecot.stop()

    imapd = Server("daemon", account, syslog)
    c = imapd.connect()
    assert snapshot(c) == theirs
    assert [row[0] for row in theirs[1]] == [b"1", b"4", b"5", b"6"]
    c.logout()
    imapd.stop()
