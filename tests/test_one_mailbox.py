"""One mailbox, several sessions, in both stores and both run modes: each case a
transcript of what a phone and a desktop on one INBOX do to each other, and what
RFC 3501 says each must be told. (The random, many-client version is test_stress.)"""
import os
import re
import shutil

import pytest

from conftest import PASSWORD, Account, Server, message
from test_mbox import MboxAccount, make_base


@pytest.fixture(params=[("maildir", "daemon"), ("maildir", "inetd"), ("mbox", "daemon"),
                        ("mbox", "inetd")], ids=lambda p: f"{p[0]}-{p[1]}")
def box(request, syslog):
    store, mode = request.param
    base = make_base()
    acc = MboxAccount(base) if store == "mbox" else Account(base)
    if store == "mbox":
        acc.write_spool(b"")
    s = Server(mode, acc, syslog)
    s.store = store
    yield s
    s.stop()
    panics = [line for line in syslog.lines if "panic" in line]
    acc.remove()
    shutil.rmtree(base, ignore_errors=True)
    assert not panics, panics


def session(box):
    raw = box.raw()
    raw.line()
    assert raw.command("l", f'LOGIN {box.account.name} "{PASSWORD}"')[-1].startswith("l OK")
    return raw


def append(raw, text, flags="", box="INBOX"):
    raw.send(f"ap APPEND {box} ({flags}) {{{len(text)}}}\r\n")
    assert raw.line().startswith("+")
    raw.send(text + "\r\n")
    lines = raw.until_tagged("ap")
    assert lines[-1].startswith("ap OK"), lines
    return lines


def fill(box, n):
    """n messages in INBOX, appended by a session of their own."""
    c = session(box)
    for i in range(n):
        append(c, message(f"m{i + 1}"))
    c.command("z", "LOGOUT")
    c.close()


def ok(lines):
    assert lines[-1].split()[1] == "OK", lines
    return lines


def flags_of(lines, uid):
    """The flags the last FETCH in `lines` gave for `uid` (a command's own FETCH data
    may be followed by an update)."""
    found = None
    for line in lines:
        m = re.match(r"\* \d+ FETCH \(.*UID %d .*FLAGS \(([^)]*)\)" % uid, line) or \
            re.match(r"\* \d+ FETCH \(FLAGS \(([^)]*)\) UID %d\b" % uid, line)
        if m:
            found = set(m.group(1).split()) - {"\\Recent"}
    return found


def current_flags(c, uid):
    return flags_of(ok(c.command("cf", f"UID FETCH {uid} (UID FLAGS)")), uid)


def test_a_flag_change_keeps_what_another_session_set(box):
    fill(box, 2)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(b.command("f", "STORE 1 +FLAGS (\\Seen)"))
    # a has not heard of b's \Seen: its +\Answered must not undo it, nor b's -\Seen...
    ok(a.command("a", "UID STORE 1 +FLAGS (\\Answered)"))
    assert current_flags(b, 1) == {"\\Seen", "\\Answered"}
    # ... and b's -\Seen (b never saw \Answered) keeps a's \Answered.
    ok(b.command("r", "UID STORE 1 -FLAGS (\\Seen)"))
    assert current_flags(a, 1) == {"\\Answered"}


def test_silent_store_still_reports_what_another_session_merged_in(box):
    fill(box, 1)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(b.command("f", "STORE 1 +FLAGS (\\Flagged)"))
    lines = ok(a.command("a", "STORE 1 +FLAGS.SILENT (\\Seen)"))
    # The client asked for silence, but its model lacks \Flagged: it is told.
    assert flags_of(lines, 1) == {"\\Seen", "\\Flagged"}, lines


def test_expunge_spares_a_message_another_session_undeleted(box):
    fill(box, 3)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(a.command("d", "STORE 2 +FLAGS (\\Deleted)"))
    ok(b.command("n", "NOOP"))
    ok(b.command("u", "STORE 2 -FLAGS (\\Deleted)"))
    lines = ok(a.command("e", "EXPUNGE"))
    assert not any("EXPUNGE" in l for l in lines[:-1]), lines
    # A stale +FLAGS does not write \Deleted back either.
    ok(a.command("f", "STORE 2 +FLAGS (\\Seen)"))
    assert current_flags(b, 2) == {"\\Seen"}
    assert "* 3 EXISTS" in ok(b.command("s2", "SELECT INBOX"))


def test_expunge_removes_what_another_session_deleted(box):
    fill(box, 2)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(b.command("d", "STORE 1 +FLAGS (\\Deleted)"))
    # a never heard of the \Deleted (no command since): EXPUNGE acts on the store now.
    lines = ok(a.command("e", "EXPUNGE"))
    assert "* 1 EXPUNGE" in lines, lines


def test_store_and_expunge_of_a_message_gone_elsewhere_succeed(box):
    fill(box, 3)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(b.command("d", "STORE 1 +FLAGS (\\Deleted)"))
    ok(b.command("e", "EXPUNGE"))
    # a still numbers it 1; STORE succeeds for what is left, quietly for what is gone.
    lines = ok(a.command("f", "STORE 1:3 +FLAGS (\\Flagged)"))
    assert "EXPUNGEISSUED" not in lines[-1], lines
    assert [re.sub(r" ?\\Recent", "", l) for l in lines[:-1]] == \
        ["* 2 FETCH (FLAGS (\\Flagged))", "* 3 FETCH (FLAGS (\\Flagged))"], lines
    lines = ok(a.command("x", "STORE 2 +FLAGS (\\Deleted)"))
    lines = ok(a.command("e", "EXPUNGE"))
    assert lines[:-1] == ["* 1 EXPUNGE", "* 1 EXPUNGE"], lines


def test_flag_updates_are_numbered_before_the_expunges_they_come_with(box):
    fill(box, 4)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    ok(b.command("f", "STORE 4 +FLAGS (\\Flagged)"))
    ok(b.command("d", "STORE 1:2 +FLAGS (\\Deleted)"))
    ok(b.command("e", "EXPUNGE"))
    lines = ok(a.command("n", "NOOP"))
    untagged = lines[:-1]
    # Message 4 (UID 4) is numbered 4 until the expunges after it are told.
    fetch = [l for l in untagged if "FETCH" in l and "UID 4 " in l]
    assert fetch and fetch[0].startswith("* 4 FETCH (UID 4 "), untagged
    assert untagged.index(fetch[0]) < untagged.index("* 1 EXPUNGE"), untagged
    assert not any(l.startswith("* BYE") for l in untagged), untagged
    lines = ok(a.command("u", "FETCH 1:* (UID)"))
    assert [re.search(r"UID (\d+)", l).group(1) for l in lines[:-1]] == ["3", "4"], lines


def test_copied_appended_and_moved_messages_are_recent_once(box):
    fill(box, 2)
    a = session(box)
    ok(a.command("c", "CREATE Dest"))
    ok(a.command("s", "SELECT INBOX"))
    ok(a.command("cp", "COPY 1 Dest"))
    append(a, message("flagged"), "\\Seen", box="Dest")
    ok(a.command("mv", "MOVE 2 Dest"))
    # STATUS and EXAMINE see three recent messages without taking them...
    assert "RECENT 3" in ok(a.command("st", "STATUS Dest (RECENT)"))[0]
    lines = ok(a.command("x", "EXAMINE Dest"))
    assert "* 3 RECENT" in lines, lines
    b = session(box)
    # ... the first read-write SELECT takes them, the next sees none.
    lines = ok(b.command("s", "SELECT Dest"))
    assert "* 3 RECENT" in lines, lines
    assert all("\\Recent" in l for l in ok(b.command("f", "FETCH 1:* FLAGS"))[:-1])
    lines = ok(a.command("s2", "SELECT Dest"))
    assert "* 0 RECENT" in lines, lines


def test_a_mailbox_created_again_gets_a_new_uidvalidity(box):
    a = session(box)
    seen = set()
    for i in range(3):  # within one second, as fast as a client can
        ok(a.command(f"c{i}", "CREATE Again"))
        lines = ok(a.command(f"s{i}", "SELECT Again"))
        v = next(re.search(r"UIDVALIDITY (\d+)", l).group(1) for l in lines if "UIDVALIDITY" in l)
        assert v not in seen and v != "0", (v, seen)
        seen.add(v)
        ok(a.command(f"u{i}", "UNSELECT"))
        ok(a.command(f"d{i}", "DELETE Again"))


def test_an_empty_inbox_has_one_uidvalidity_for_every_session(box):
    a, b = session(box), session(box)
    va = re.search(r"UIDVALIDITY (\d+)", " ".join(ok(a.command("s", "SELECT INBOX")))).group(1)
    vb = re.search(r"UIDVALIDITY (\d+)", " ".join(ok(b.command("s", "EXAMINE INBOX")))).group(1)
    assert va == vb != "0"
    append(a, message("first"))
    lines = ok(b.command("s2", "EXAMINE INBOX"))
    assert f"[UIDVALIDITY {va}]" in " ".join(lines), lines


def test_4294967295_is_a_number_not_star(box):
    fill(box, 3)
    a = session(box)
    ok(a.command("s", "SELECT INBOX"))
    lines = ok(a.command("f", "UID FETCH 4294967295 (FLAGS)"))
    assert lines[:-1] == [], lines
    lines = ok(a.command("st", "UID STORE 4294967295 +FLAGS (\\Flagged)"))
    assert current_flags(a, 3) == set(), lines
    assert not a.command("q", "FETCH 4294967295 (FLAGS)")[-1].startswith("q OK")
    lines = ok(a.command("g", "UID FETCH 2:* (UID)"))
    assert len(lines) == 3, lines


def test_a_new_keyword_is_announced_before_it_is_shown(box):
    fill(box, 1)
    a, b = session(box), session(box)
    ok(a.command("s", "SELECT INBOX"))
    ok(b.command("s", "SELECT INBOX"))
    lines = ok(a.command("k", "STORE 1 +FLAGS ($Project)"))
    flags_line = next(i for i, l in enumerate(lines) if l.startswith("* FLAGS"))
    fetch_line = next(i for i, l in enumerate(lines) if "FETCH" in l)
    assert "$Project" in lines[flags_line] and flags_line < fetch_line, lines
    assert any(l.startswith("* OK [PERMANENTFLAGS") and "$Project" in l for l in lines), lines
    lines = ok(b.command("n", "NOOP"))
    flags_line = next(i for i, l in enumerate(lines) if l.startswith("* FLAGS"))
    fetch_line = next(i for i, l in enumerate(lines) if "FETCH" in l)
    assert "$Project" in lines[flags_line] and flags_line < fetch_line, lines


def test_search_from_matches_the_address_not_the_header_text(box):
    c = session(box)
    append(c, "From: Jo <user-from (comment)@ (comment) domain.org>\r\nTo: x@example.org\r\n"
              "Subject: comments\r\n\r\nbody\r\n")
    append(c, message("other"))
    ok(c.command("s", "SELECT INBOX"))
    lines = ok(c.command("f", "SEARCH FROM user-from@domain.org"))
    assert "* SEARCH 1" in lines, lines
    assert "* SEARCH 1" in ok(c.command("f2", 'SEARCH FROM "Jo <user-from"'))


def test_lsub_answers_unsubscribed_parents_as_noselect(box):
    c = session(box)
    delim = "/" if box.store == "mbox" else "."
    ok(c.command("c", f"CREATE foo{delim}bar{delim}baz"))
    ok(c.command("sub", f"SUBSCRIBE foo{delim}bar{delim}baz"))
    lines = ok(c.command("l", 'LSUB "" %'))
    assert lines[:-1] == [f'* LSUB (\\Noselect) "{delim}" foo'], lines
    lines = ok(c.command("l2", f'LSUB "" foo{delim}%'))
    assert lines[:-1] == [f'* LSUB (\\Noselect) "{delim}" foo{delim}bar'], lines
    lines = ok(c.command("l3", 'LSUB "" *'))
    assert lines[:-1] == [f'* LSUB () "{delim}" foo{delim}bar{delim}baz'], lines


def test_names_that_are_lock_files_or_wildcards_are_refused(box):
    c = session(box)
    for name in ("*", "Work%", "a*b"):
        lines = c.command("c", f'CREATE "{name}"')
        assert lines[-1].startswith("c NO [CANNOT]"), (name, lines)
    # mbox: `Work.lock` beside `Work` is Work's dot-lock to procmail, mutt and us.
    lines = c.command("l", 'CREATE "Work.lock"')
    if box.store == "mbox":
        assert lines[-1].startswith("l NO [CANNOT]"), lines
        assert not os.path.exists(os.path.join(box.account.mail, "Work.lock"))
    else:  # Maildir: folder `lock` under `Work`, a directory `.Work.lock`: no clash
        ok(lines)


def test_a_message_numbered_during_a_listing_is_shown_in_uid_order(syslog):
    """Maildir APPEND and COPY publish a file, then number it. A session whose listing
    missed such a file, and that numbered a file it did list after it, must still show
    both, in UID order; before, it showed the higher UID alone and the lower one never
    (logged as "got UIDs below ones already shown"; seen once in a 30-minute soak).
    Made certain here: strace holds the listing session (its own inetd process) for
    three seconds between its listing and the uidlist lock, and another session's
    APPEND lands in that window."""
    import socket
    import subprocess
    import threading
    import time
    from conftest import IMAPD, RawClient
    base = make_base()
    acc = Account(base)
    acc.deliver(message("old"))
    other = Server("inetd", acc, syslog)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    traced = []

    def serve_one():
        conn, _ = listener.accept()
        lock = os.path.join(acc.maildir, "dovecot-uidlist.lock")
        traced.append(subprocess.Popen(
            ["strace", "-f", "-qq", "-o", "/dev/null", "-P", lock, "-e", "trace=openat",
             "-e", "inject=openat:delay_enter=3000000",
             IMAPD, "--users", acc.users_file, "--log-socket", syslog.path],
            stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL))
        conn.close()
    threading.Thread(target=serve_one, daemon=True).start()
    try:
        slow = RawClient("127.0.0.1", listener.getsockname()[1])
        slow.sock.settimeout(60)
        slow.line()
        ok(slow.command("l", f'LOGIN {acc.name} "{PASSWORD}"'))
        ok(slow.command("s", "SELECT INBOX"))
        acc.deliver(message("listed"))
        slow.send("n NOOP\r\n")  # lists new/ and cur/, then waits for the lock
        time.sleep(1)
        writer = session(other)
        appended = append(writer, message("numbered meanwhile"))
        appended_uid = int(re.search(r"APPENDUID \d+ (\d+)", appended[-1]).group(1))
        ok(slow.until_tagged("n"))
        lines = ok(slow.command("f", "UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        shown = [int(m.group(1)) for l in lines if (m := re.search(r"UID (\d+)", l))]
        subjects = re.findall(r"Subject: ([\w ]+)", "\n".join(lines))
        assert shown == sorted(shown) and len(shown) == 3, lines
        assert appended_uid in shown and set(subjects) == {"old", "listed", "numbered meanwhile"}
        ok(slow.command("z", "NOOP"))
        assert not [l for l in syslog.lines if "below ones already shown" in l]
        writer.close()
    finally:
        for p in traced:
            p.kill()  # strace waits out its injected delay on SIGTERM; its tracee goes too
            p.wait()
        listener.close()
        other.stop()
        acc.remove()
        shutil.rmtree(base, ignore_errors=True)
