"""The same Maildir served by imapd and by Dovecot in turn: each sees the other's UIDs,
UIDVALIDITY, flags, keywords and folders (so a site can switch, or run both)."""
import imaplib
import shutil

from conftest import PASSWORD, Server, message
from support import start_dovecot


class Dovecot:
    def __init__(self, account, base):
        assert shutil.which("dovecot"), "Dovecot is not installed (tests/run installs dovecot-imapd)"
        self.proc, self.port = start_dovecot(base, account.maildir, account.name, PASSWORD,
                                             account.uid, account.gid, account.home)

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
