"""Real clients beyond imaplib and curl: mbsync (isync) two-way sync, fetchmail
download-and-delete, and logins with every crypt(3) scheme a passwd-file may hold."""
import os
import re
import subprocess

import pytest

from conftest import PASSWORD, message


def test_mbsync_two_way_sync(server, tmp_path):
    acc = server.account
    acc.deliver(message("one", "first\r\n"))
    acc.deliver(message("two", "second\r\n"))
    c = server.connect()
    c.create("Work.Projects")
    c.append("Work.Projects", "(\\Seen)", None, message("plan").encode())
    c.logout()
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount t
Host 127.0.0.1
Port {server.port}
User {acc.name}
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account t

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    def sync():
        p = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    sync()
    inbox = sorted(os.listdir(local / "INBOX" / "new") + os.listdir(local / "INBOX" / "cur"))
    assert len(inbox) == 2
    assert len(os.listdir(local / "Work" / "Projects" / "cur")) == 1
    # Local changes go back: a new folder with a message, a trashed message.
    arch = local / "Archive"
    for sub in ("cur", "new", "tmp"):
        (arch / sub).mkdir(parents=True)
    (arch / "new" / "1.local").write_text("From: me@example.org\nSubject: pushed\n\nhello\n")
    name = os.listdir(local / "INBOX" / "new")[0]
    os.rename(local / "INBOX" / "new" / name, local / "INBOX" / "cur" / (name.split(":")[0] + ":2,ST"))
    sync()
    c = server.connect()
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    typ, data = c.select("Archive")
    assert data == [b"1"]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: pushed" in data[0][1]
    c.logout()
    sync()  # and a no-change sync is clean


def test_fetchmail_download_and_delete(server, tmp_path):
    acc = server.account
    for i in range(3):
        acc.deliver(message(f"fetch {i}", f"body {i}\r\n"))
    out = tmp_path / "out.mbox"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 service {server.port} protocol IMAP auth password '
        f'user "{acc.name}" password "{PASSWORD}" nokeep fetchall sslproto \'\' '
        f'mda "cat >> {out}"\n')
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path))
    p = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach", "--pidfile", str(tmp_path / "pid")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert out.read_text().count("Subject: fetch") == 3
    c = server.connect()
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0]
    c.logout()


@pytest.mark.parametrize("method", ["yescrypt", "sha512crypt", "sha256crypt", "md5crypt", "bcrypt"])
def test_crypt_schemes(daemon, method):
    acc = daemon.account
    hashed = subprocess.run(["mkpasswd", "-m", method, "right horse"], capture_output=True, text=True,
                            check=True).stdout.strip()
    with open(acc.users_file) as f:
        lines = f.read().splitlines()
    fields = lines[0].split(":")
    fields[1] = hashed if method != "sha512crypt" else "{SHA512-CRYPT}" + hashed
    lines[0] = ":".join(fields)
    with open(acc.users_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", daemon.port)
    assert c.login(acc.name, "right horse")[0] == "OK"
    c.logout()
    c = imaplib.IMAP4("127.0.0.1", daemon.port)
    with pytest.raises(imaplib.IMAP4.error):
        c.login(acc.name, "wrong horse")
