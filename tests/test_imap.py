"""RFC 3501 commands through Python's imaplib against the real imapd, in daemon and
inetd mode."""
import imaplib
import os
import re
import time

import pytest

from conftest import (PASSWORD, SIMPLE, copy_fails_halfway,
                      esearch_while_another_session_changes_the_mailbox, message,
                      sequence_set_numbers)


def ok(res):
    typ, data = res
    assert typ == "OK", data
    return data


def test_capability_and_greeting(server):
    c = server.connect(login=False)
    caps = c.capabilities
    for cap in ("IMAP4REV1", "LITERAL+", "IDLE", "UIDPLUS", "AUTH=PLAIN", "NAMESPACE", "MOVE"):
        assert cap in caps
    assert any(cap.startswith("APPENDLIMIT=") for cap in caps)
    c.login(server.account.name, PASSWORD)
    assert "AUTH=PLAIN" not in ok(c.capability())[0].decode()
    c.logout()


def test_login_failure_is_uniform_and_logged(server, syslog):
    answers = []
    for user, pw in ((server.account.name, "wrong"), ("nosuchuser", "whatever")):
        c = server.connect(login=False)
        start = time.time()
        with pytest.raises(imaplib.IMAP4.error) as e:
            c.login(user, pw)
        answers.append((str(e.value), time.time() - start >= 0.9))
        c.shutdown()
    assert answers[0] == answers[1], "unknown user and wrong password must look the same"
    assert answers[0][1], "failures are answered after the delay"
    syslog.wait_for(rf"login failed user={server.account.name} peer=127\.0\.0\.1 reason=wrong password")
    syslog.wait_for(r"login failed user=nosuchuser peer=127\.0\.0\.1")


def test_three_failures_end_the_connection(server):
    r = server.raw()
    r.line()
    for i in range(3):
        r.send(f"a{i} LOGIN {server.account.name} nope\r\n")
        assert "NO [AUTHENTICATIONFAILED]" in r.line()
    assert r.line().startswith("* BYE")
    assert r.closed()


def test_authenticate_plain(server, syslog):
    c = server.connect(login=False)
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{server.account.name}\0{PASSWORD}".encode())
    assert typ == "OK"
    ok(c.select())
    c.logout()
    syslog.wait_for(rf"login user={server.account.name} peer=127\.0\.0\.1 method=AUTHENTICATE")
    syslog.wait_for(rf"logout user={server.account.name} peer=127\.0\.0\.1 reason=LOGOUT")


def test_select_examine_and_status(server):
    server.account.deliver(SIMPLE)
    server.account.deliver(message("second"))
    c = server.connect()
    data = ok(c.select("INBOX"))
    assert data == [b"2"]
    assert c.untagged_responses.get("RECENT") == [b"2"]
    uidvalidity = int(c.untagged_responses["UIDVALIDITY"][0])
    assert uidvalidity > 0
    assert b"\\*" in c.untagged_responses["PERMANENTFLAGS"][0]
    ok(c.close())
    typ, data = c.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
    assert typ == "OK"
    text = data[0].decode()
    assert "MESSAGES 2" in text and "UNSEEN 2" in text and "UIDNEXT 3" in text
    assert f"UIDVALIDITY {uidvalidity}" in text
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK"
    assert "READ-ONLY" in str(c.response("READ-ONLY"))
    typ, _ = c.store("1", "+FLAGS", "\\Seen")
    assert typ == "NO"
    c.logout()


def test_append_fetch_roundtrip(server):
    c = server.connect()
    typ, data = c.append("INBOX", "(\\Flagged $Work)", imaplib.Time2Internaldate(1_700_000_000), SIMPLE.encode())
    assert typ == "OK"
    assert re.search(rb"APPENDUID \d+ 1", data[0]), data
    ok(c.select())
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[] ENVELOPE)")
    assert typ == "OK"
    meta, body = data[0]
    assert body == SIMPLE.encode()
    meta += data[1]
    assert f"RFC822.SIZE {len(SIMPLE)}".encode() in meta
    assert b"\\Flagged" in meta and b"$Work" in meta
    assert b'"14-Nov-2023' in meta
    assert b'("Alice Example" NIL "alice" "example.com")' in meta
    # BODY.PEEK did not set \Seen; BODY[] does, and says so.
    typ, data = c.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"Shall we meet at noon?\r\n"
    assert b"\\Seen" in data[0][0] or b"\\Seen" in data[1]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[]<0.4>)")
    joined = b"".join(x if isinstance(x, bytes) else x[0] + x[1] for x in data)
    assert b"Subject: Lunch plans\r\n" in joined
    assert b"BODY[]<0> {4}" in joined
    c.logout()


def test_lf_only_message_is_served_with_crlf_and_exact_size(server):
    text = "From: a@example.com\nSubject: unix\n\nline one\nline two\n"
    server.account.deliver(text)
    c = server.connect()
    ok(c.select())
    typ, data = c.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    meta, body = data[0]
    assert body == text.replace("\n", "\r\n").encode()
    assert f"RFC822.SIZE {len(body)}".encode() in meta
    c.logout()


MULTIPART = (
    "From: carol@example.com\r\nTo: dave@example.org\r\nSubject: files\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n"
    "preamble\r\n--XYZ\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me\r\n"
    "--XYZ\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: inner\r\nFrom: eve@example.net\r\n\r\ninner text\r\n"
    "--XYZ\r\nContent-Type: application/octet-stream; name=x.bin\r\n"
    "Content-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "AAECAw==\r\n--XYZ--\r\n"
)


def test_bodystructure_and_sections(server):
    c = server.connect()
    ok(c.append("INBOX", None, None, MULTIPART.encode()))
    ok(c.select())
    typ, data = c.fetch("1", "(BODYSTRUCTURE)")
    bs = data[0].decode()
    assert '("TEXT" "PLAIN" ("CHARSET" "iso-8859-1") NIL NIL "QUOTED-PRINTABLE" 14 1' in bs
    assert '"MESSAGE" "RFC822" NIL NIL NIL "7BIT"' in bs
    assert '("ATTACHMENT" ("FILENAME" "x.bin"))' in bs
    assert '"MIXED" ("BOUNDARY" "XYZ")' in bs
    typ, data = c.fetch("1", "(BODY.PEEK[1] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[3.MIME] BODY.PEEK[9])")
    got = b"".join(k + v for k, v in [d for d in data if isinstance(d, tuple)])
    # imaplib drops the CRLF after each literal marker.
    assert b"BODY[1] {14}Caf=E9 cr=E8me" in got
    assert b"BODY[2.HEADER] {41}Subject: inner\r\nFrom: eve@example.net\r\n\r\n" in got
    assert b"BODY[2.TEXT] {10}inner text BODY" in got
    assert b"BODY[3.MIME] {" in got and b"Content-Disposition: attachment" in got
    assert got.endswith(b"BODY[9] {0}")
    typ, data = c.fetch("1", "(BODY)")
    assert b"BODY (" in data[0] and b"ATTACHMENT" not in data[0]
    c.logout()


def test_store_flags_and_keywords(server):
    for i in range(3):
        server.account.deliver(message(f"m{i}"))
    c = server.connect()
    ok(c.select())
    typ, data = c.store("1:2", "+FLAGS", "(\\Flagged $Important)")
    assert typ == "OK" and len(data) == 2 and b"$Important" in data[0]
    typ, data = c.store("2", "-FLAGS.SILENT", "(\\Flagged)")
    assert typ == "OK"
    typ, data = c.uid("STORE", "3", "FLAGS", "(\\Answered \\Draft)")
    assert b"UID 3" in data[0] and b"\\Answered" in data[0]
    typ, data = c.fetch("1:3", "(FLAGS)")
    assert b"\\Flagged" in data[0] and b"\\Flagged" not in data[1]
    c.logout()
    # Flags live in the file names, where other Maildir readers see them.
    names = os.listdir(os.path.join(server.account.maildir, "cur"))
    assert any(n.endswith(":2,DR") for n in names), names
    # ... and survive a new session (a restart in inetd mode).
    c = server.connect()
    ok(c.select())
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"$Important" in data[0]
    c.logout()


def test_search_keys(server):
    acc = server.account
    acc.deliver(message("Invoice March", "Total due: 100 EUR\r\n", sender="billing@shop.example"))
    acc.deliver(message("Re: lunch", "See you at the caf\xe9\r\n",
                        extra="Content-Type: text/plain; charset=iso-8859-1\r\n").encode("latin-1"))
    acc.deliver(message("=?UTF-8?Q?R=C3=A9union?=", "=C3=A9t=C3=A9\r\n",
                        extra="Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"))
    # As an MDA writes it: LF line ends.
    acc.deliver("From: unix@example.net\nSubject: Plain LF zebra\nDate: Tue, 3 Nov 2026 08:00:00 +0000\n\nzebra body\n")
    c = server.connect()
    ok(c.select())
    def search(*crit):
        typ, data = c.search(None, *crit)
        assert typ == "OK", data
        return data[0].split()
    assert search("ALL") == [b"1", b"2", b"3", b"4"]
    assert search("SUBJECT", "invoice") == [b"1"]
    assert search("FROM", "BILLING") == [b"1"]
    assert search("BODY", '"total DUE"') == [b"1"]
    assert search("TEXT", "lunch") == [b"2"]
    assert search("NOT", "SUBJECT", "lunch") == [b"1", b"3", b"4"]
    assert search("OR", "SUBJECT", "invoice", "SUBJECT", "lunch") == [b"1", b"2"]
    assert search("LARGER", "10", "SMALLER", "100000") == [b"1", b"2", b"3", b"4"]
    assert search("SENTON", "2-Nov-2026") == [b"1", b"2", b"3"]
    assert search("SENTBEFORE", "1-Nov-2026") == []
    assert search("SINCE", "1-Jan-2020", "UNSEEN") == [b"1", b"2", b"3", b"4"]
    assert search("2:*") == [b"2", b"3", b"4"]
    assert search("HEADER", "Subject", '""') == [b"1", b"2", b"3", b"4"]
    ok(c.store("2", "+FLAGS", "\\Seen"))
    assert search("SEEN") == [b"2"]
    assert search("UNSEEN", "NEW") == [b"1", b"3", b"4"]
    assert search("SUBJECT", "zebra", "FROM", "unix") == [b"4"]
    assert search("TEXT", "zebra", "SUBJECT", "zebra") == [b"4"]
    assert search("SENTON", "3-Nov-2026") == [b"4"]
    # CHARSET UTF-8: decoded headers (RFC 2047) and decoded QP bodies, case-insensitive.
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "SUBJECT", "réunion".encode())
    assert data[0].split() == [b"3"], data
    c.literal = "ÉTÉ".encode()  # as a literal, the RFC 3501 way for 8-bit strings
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "BODY")
    assert data[0].split() == [b"3"], data
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "BODY", "café".encode())
    assert data[0].split() == [b"2"], data
    typ, data = c.uid("SEARCH", "UID", "2:*")
    assert data[0].split() == [b"2", b"3", b"4"]
    typ, data = c.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    c.logout()


def test_copy_move_expunge(server):
    for i in range(4):
        server.account.deliver(message(f"m{i}"))
    c = server.connect()
    ok(c.create("Archive"))
    ok(c.select())
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK"
    assert re.search(rb"COPYUID \d+ 1:2 1:2", data[0]), data
    typ, data = c.copy("1", "Nowhere")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    typ, data = c.uid("MOVE", "3", "Archive")
    assert typ == "OK"
    assert c.response("EXPUNGE") == ("EXPUNGE", [b"3"])
    ok(c.store("1", "+FLAGS", "\\Deleted"))
    typ, data = c.expunge()
    assert data == [b"1"]
    typ, data = c.search(None, "ALL")
    assert data[0].split() == [b"1", b"2"]
    typ, data = c.fetch("1:*", "(UID)")
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"2", b"4"]
    typ, data = c.status("Archive", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0]
    # UID EXPUNGE removes only the named \Deleted messages.
    ok(c.store("1:2", "+FLAGS", "\\Deleted"))
    typ, data = c.uid("EXPUNGE", "4")
    assert typ == "OK"
    typ, data = c.fetch("1:*", "(UID)")
    assert len(data) == 1 and b"UID 2" in data[0]
    ok(c.close())
    c.logout()


def test_maildir_move_keeps_the_file_and_copy_links_it(server):
    """Between Maildir folders a message file is not rewritten: MOVE gives the same
    inode a name in the destination (flags kept), COPY a second name; the two names
    then carry their own flags."""
    acc = server.account
    for i in range(3):
        acc.deliver(message(f"m{i}"))

    def files(folder):
        d = acc.folder(folder)
        return {
            os.stat(os.path.join(d, sub, n)).st_ino: os.path.join(d, sub, n)
            for sub in ("new", "cur")
            for n in os.listdir(os.path.join(d, sub))
        }

    before = files("INBOX")
    c = server.connect()
    ok(c.create("Archive"))
    ok(c.select())
    bodies = [c.fetch(str(i), "(BODY.PEEK[])")[1][0][1] for i in (1, 2, 3)]
    ok(c.store("1", "+FLAGS", "(\\Flagged $Work)"))
    typ, data = c.uid("MOVE", "1:2", "Archive")
    assert typ == "OK", data
    moved, left = files("Archive"), files("INBOX")
    assert len(moved) == 2 and len(left) == 1
    assert set(moved) | set(left) == set(before) and not set(moved) & set(left)
    ok(c.copy("1", "Archive"))
    copied = files("Archive")
    assert set(copied) == set(before)
    (ino,) = left
    assert os.stat(left[ino]).st_nlink == 2
    ok(c.select("Archive"))
    typ, data = c.fetch("1:3", "(FLAGS BODY.PEEK[])")
    got = [d for d in data if isinstance(d, tuple)]
    assert [d[1] for d in got] == bodies
    assert b"\\Flagged" in got[0][0] and b"$Work" in got[0][0]
    ok(c.store("3", "+FLAGS", "(\\Seen)"))
    ok(c.select("INBOX"))
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0], data
    c.logout()


def test_mailbox_management(server):
    c = server.connect()
    ok(c.create("Work.Projects"))
    ok(c.create("Sent"))
    typ, data = c.create("Sent")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    typ, data = c.list()
    names = [d.decode() for d in data]
    assert any(n.endswith('"." INBOX') for n in names)
    assert any("\\Noselect" in n and n.endswith(" Work") for n in names), names
    assert any(n.endswith(" Work.Projects") for n in names)
    typ, data = c.list("", "%")
    assert not any("Work.Projects" in d.decode() for d in data)
    typ, data = c.list("Work.", "%")
    assert [d.decode().split()[-1] for d in data] == ["Work.Projects"]
    typ, data = c.list('""', '""')
    assert data == [b'(\\Noselect) "." ""']
    ok(c.rename("Work.Projects", "Job.Plans"))
    typ, data = c.list("", "*")
    text = b" ".join(data)
    assert b"Job.Plans" in text and b"Work.Projects" not in text
    ok(c.subscribe("Sent"))
    typ, data = c.lsub()
    assert data == [b'() "." Sent']
    ok(c.unsubscribe("Sent"))
    typ, data = c.lsub()
    assert data == [None]
    ok(c.delete("Job.Plans"))
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    typ, data = c.select("Job.Plans")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    c.logout()


def test_expunged_messages_leave_the_maildir_uidlist(server):
    """A folder whose mail is only copied in and expunged (a client's Trash, a
    scratch folder) keeps no record of it: EXPUNGE drops the uidlist lines of the
    files it removed, and UIDs go on from where they were, never reused. Before,
    the soak's scratch folders held 1,000 lines of no file after five minutes."""
    acc = server.account
    for i in range(20):
        acc.deliver(message(f"m{i}"))
    c = server.connect()
    ok(c.create("Scratch"))
    ok(c.select())
    uids = []
    for _ in range(5):
        typ, data = c.copy("1:*", "Scratch")
        assert typ == "OK", data
        uids += re.search(rb"COPYUID \d+ \S+ (\S+)\]", data[-1]).group(1).split(b",")
        ok(c.select("Scratch"))
        ok(c.store("1:*", "+FLAGS.SILENT", "(\\Deleted)"))
        ok(c.expunge())
        ok(c.select())
    assert uids == [b"1:20", b"21:40", b"41:60", b"61:80", b"81:100"], uids
    with open(os.path.join(acc.folder("Scratch"), "dovecot-uidlist")) as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 and " N101" in lines[0], lines
    # INBOX too: expunging half of it leaves ten lines.
    ok(c.store("1:10", "+FLAGS.SILENT", "(\\Deleted)"))
    ok(c.expunge())
    with open(os.path.join(acc.folder("INBOX"), "dovecot-uidlist")) as f:
        assert len(f.read().splitlines()) == 11
    c.logout()


def test_rename_inbox_moves_messages(server):
    for i in range(2):
        server.account.deliver(message(f"m{i}"))
    c = server.connect()
    ok(c.rename("INBOX", "Old"))
    typ, data = c.status("Old", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0]
    typ, data = c.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 0" in data[0]
    c.logout()


def test_mailbox_names_stay_inside_the_mail_root(server, syslog):
    c = server.connect()
    for name in ("/root", "/etc/shadow", "~root/x", "../other/INBOX", "#news.comp", "a..b", ".hidden", "x/y"):
        for cmd in (c.select, c.create):
            typ, data = cmd(f'"{name}"')
            assert typ == "NO", (name, data)
    typ, data = c.list("", "~root/*")
    assert data == [None]
    typ, data = c.list("/", "*")
    assert data == [None]
    # A symlink planted in the user's own Maildir does not lead out.
    os.symlink("/etc", os.path.join(server.account.maildir, ".escape"))
    typ, data = c.select("escape")
    assert typ == "NO"
    typ, data = c.list("", "*")
    assert b"escape" not in b" ".join(x for x in data if x)
    c.logout()
    syslog.wait_for(r"mailbox name refused user=\S+ peer=127\.0\.0\.1 name=\"/root\"")
    for name in os.listdir(server.account.base):
        assert name in ("home", "passwd", "otherhome"), name


def test_a_symlink_in_cur_is_not_a_message(server):
    """A user who plants cur/NAME -> /etc/shadow (or another user's mail) gets nothing
    through IMAP or POP3: a message is a regular file."""
    acc = server.account
    acc.deliver(message("real"))
    cur = os.path.join(acc.maildir, "cur")
    os.symlink("/etc/shadow", os.path.join(cur, "1700000000.M1P1.evil:2,S"))
    c = server.connect()
    typ, data = c.select()
    assert data == [b"1"], data
    typ, data = c.fetch("1:*", "(BODY[])")
    assert typ == "OK" and b"root:" not in b"".join(x[1] for x in data if isinstance(x, tuple))
    c.logout()


def test_uid_fetch_and_sequence_edge_cases(server):
    for i in range(3):
        server.account.deliver(message(f"m{i}"))
    c = server.connect()
    ok(c.select())
    typ, data = c.fetch("1:4294967295", "(UID)")
    assert typ == "OK" and len(data) == 3
    typ, data = c.uid("FETCH", "1:4294967295", "(FLAGS)")
    assert typ == "OK" and len(data) == 3 and all(b"UID" in d for d in data)
    typ, data = c.uid("FETCH", "100:200", "(FLAGS)")
    assert typ == "OK" and data == [None]
    with pytest.raises(imaplib.IMAP4.error, match="Invalid message sequence number"):
        c.fetch("7", "(FLAGS)")
    typ, data = c.fetch("1", "(FAST)")
    assert b"RFC822.SIZE" in data[0] and b"INTERNALDATE" in data[0]
    typ, data = c.fetch("1", "(ALL)")
    assert b"ENVELOPE" in data[0]
    typ, data = c.fetch("1", "(FULL)")
    assert b"BODY (" in data[0]
    typ, data = c.fetch("2", "(RFC822.HEADER RFC822.TEXT)")
    assert typ == "OK"
    typ, data = c.fetch("3", "(RFC822)")
    assert data[0][1].startswith(b"From: alice@example.com")
    c.logout()


def test_a_copy_that_fails_halfway_leaves_the_destination_as_it_was(server):
    """RFC 3501 6.4.7: a COPY that fails restores the destination. The first batches
    (128 messages each) were already stored when the third failed: they are taken back,
    and nothing is left in tmp/ or beside the folder. A MOVE that fails the same way
    leaves every message where it was."""
    acc = server.account
    c = server.connect()
    copy_fails_halfway(c, lambda: [acc.deliver(message(f"n{i}")) for i in range(400)], 26)
    c.logout()
    full = acc.folder("Full")
    assert os.listdir(os.path.join(full, "tmp")) == []
    assert not [n for n in os.listdir(full) if n.startswith("imapd-copy")]


def test_a_copy_cut_by_kill_9_is_undone_at_the_next_open(inetd, syslog):
    """kill -9 in the middle of a 3,000-message COPY (some batches in the destination,
    not all): the next session to open the destination finds it as it was before the
    COPY, and the source whole."""
    acc = inetd.account
    for i in range(3000):
        acc.deliver(message(f"n{i}"))
    c = inetd.connect()
    assert c.create("Dest")[0] == "OK"
    c.logout()
    r = inetd.raw()
    r.line()
    r.command("a", f'LOGIN {acc.name} "{PASSWORD}"')
    r.command("b", "SELECT INBOX")
    proc = inetd.procs[-1]
    dest = acc.folder("Dest")

    def count():
        return sum(len(os.listdir(os.path.join(dest, d))) for d in ("new", "cur"))

    r.send("c COPY 1:* Dest\r\n")
    deadline = time.time() + 60
    while count() == 0 and time.time() < deadline:
        time.sleep(0.002)
    proc.kill()
    proc.wait()
    r.close()
    partial = count()
    assert 0 < partial < 3000, partial
    c = inetd.connect()
    assert c.select("Dest") == ("OK", [b"0"])
    assert count() == 0
    assert c.select("INBOX") == ("OK", [b"3000"])
    c.logout()
    syslog.wait_for(r"undoing an unfinished copy of \d+ messages")
    assert not [n for n in os.listdir(dest) if n.startswith("imapd-copy")]


def test_a_large_copy_in_batches_keeps_every_message_and_its_copyuid(server):
    """COPY of 600 messages (three batches, each numbered in the destination at once):
    COPYUID pairs every source UID with the destination UID of the same message, in
    order, and the destination holds them all with their flags."""
    acc = server.account
    for i in range(600):
        acc.deliver(message(f"n{i}", f"body {i}\r\n"))
    c = server.connect()
    c.select("INBOX")
    assert c.store("1:*", "+FLAGS", "(\\Flagged)")[0] == "OK"
    assert c.create("Big")[0] == "OK"
    typ, data = c.copy("1:*", "Big")
    assert typ == "OK", data
    m = re.search(rb"COPYUID (\d+) (\S+) (\S+)\]", data[-1])
    assert m, data
    src, dst = sequence_set_numbers(m.group(2)), sequence_set_numbers(m.group(3))
    assert len(src) == len(dst) == 600
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subject_of = {int(re.search(rb"UID (\d+)", d[0]).group(1)): d[1].strip() for d in data
                  if isinstance(d, tuple)}
    c.select("Big")
    typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    got = {int(re.search(rb"UID (\d+)", d[0]).group(1)): (d[1].strip(), b"\\Flagged" in d[0])
           for d in data if isinstance(d, tuple)}
    assert len(got) == 600
    for s_uid, d_uid in zip(src, dst):
        assert got[d_uid] == (subject_of[s_uid], True), (s_uid, d_uid)
    c.logout()


def test_esearch_while_another_session_changes_the_mailbox(server):
    for i in range(5):
        server.account.deliver(message(f"m{i}"))
    esearch_while_another_session_changes_the_mailbox(server)
