"""Several sessions on one mailbox: untagged updates at the points RFC 3501 7.4.1
allows, IDLE woken by another session and by an MDA, UIDs across restarts."""
import os
import re
import select
import shutil
import time

from conftest import Server, message, short_timeouts_binary


def login(raw, account):
    raw.line()
    lines = raw.command("l", f'LOGIN {account.name} "s3cret pass"')
    assert lines[-1].startswith("l OK"), lines


def test_two_sessions_see_each_others_changes(server):
    acc = server.account
    for i in range(3):
        acc.deliver(message(f"m{i}"))
    a, b = server.raw(), server.raw()
    login(a, acc)
    login(b, acc)
    assert "* 3 EXISTS" in a.command("s", "SELECT INBOX")
    assert "* 3 EXISTS" in b.command("s", "SELECT INBOX")
    # b appends and flags; a hears of it at its next command.
    b.send("x APPEND INBOX (\\Seen) {%d}\r\n" % len(message("new")))
    assert b.line().startswith("+")
    b.send(message("new") + "\r\n")
    assert b.until_tagged("x")[-1].startswith("x OK [APPENDUID")
    b.command("f", "STORE 1 +FLAGS (\\Flagged)")
    lines = a.command("n", "NOOP")
    assert "* 4 EXISTS" in lines, lines
    assert any(re.match(r"\* 1 FETCH \(UID 1 FLAGS \(\\Flagged", l) for l in lines), lines
    # b expunges message 2; a is not told during FETCH (sequence numbers must hold)...
    b.command("d", "STORE 2 +FLAGS (\\Deleted)")
    assert "* 2 EXPUNGE" in b.command("e", "EXPUNGE")
    lines = a.command("f", "FETCH 1:* (UID)")
    assert not any("EXPUNGE" in l for l in lines), lines
    assert sum(1 for l in lines if " FETCH (UID" in l) == 4, lines
    # ... but at NOOP, and only then do its numbers shift.
    lines = a.command("n2", "NOOP")
    assert "* 2 EXPUNGE" in lines, lines
    lines = a.command("f2", "FETCH 1:* (UID)")
    assert [re.search(r"UID (\d+)", l).group(1) for l in lines if l.startswith("* ") and "FETCH" in l] == ["1", "3", "4"]
    # UID FETCH may report the expunge right away.
    b.command("d2", "STORE 1 +FLAGS (\\Deleted)")
    b.command("e2", "EXPUNGE")
    lines = a.command("u", "UID FETCH 1:* (FLAGS)")
    assert "* 1 EXPUNGE" in lines, lines
    a.close()
    b.close()


def wait_line(raw, pattern, timeout):
    raw.sock.settimeout(timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = raw.line()
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern}")


def test_idle_hears_other_sessions_and_mda_deliveries(server):
    acc = server.account
    acc.deliver(message("first"))
    idler, other = server.raw(), server.raw()
    login(idler, acc)
    login(other, acc)
    idler.command("s", "SELECT INBOX")
    other.command("s", "SELECT INBOX")
    idler.send("i IDLE\r\n")
    assert idler.line().startswith("+")
    # Another session sets a flag: heard within a second.
    other.command("f", "STORE 1 +FLAGS (\\Answered)")
    start = time.time()
    wait_line(idler, r"\* 1 FETCH \(UID 1 FLAGS \(\\Answered", 5)
    assert time.time() - start < 5
    # An MDA drops a file into new/.
    acc.deliver(message("delivered while idling"))
    wait_line(idler, r"\* 2 EXISTS", 5)
    # A delete from another session arrives as EXPUNGE during IDLE.
    other.command("n", "NOOP")
    other.command("d", "STORE 1 +FLAGS (\\Deleted)")
    other.command("e", "EXPUNGE")
    wait_line(idler, r"\* 1 EXPUNGE", 5)
    idler.send("DONE\r\n")
    assert idler.until_tagged("i")[-1] == "i OK IDLE terminated"
    idler.close()
    other.close()


def test_uids_survive_restart_and_new_sessions(account, syslog):
    from conftest import Server

    for i in range(5):
        account.deliver(message(f"m{i}"))
    s = Server("daemon", account, syslog)
    c = s.connect()
    c.select()
    uidvalidity = c.untagged_responses["UIDVALIDITY"][0]
    typ, data = c.fetch("1:*", "(UID)")
    first = [re.search(rb"UID (\d+)", d).group(1) for d in data]
    c.store("2", "+FLAGS", "\\Deleted")
    c.expunge()
    c.logout()
    s.stop()
    account.deliver(message("after restart"))
    s = Server("daemon", account, syslog)
    c = s.connect()
    c.select()
    assert c.untagged_responses["UIDVALIDITY"][0] == uidvalidity
    typ, data = c.fetch("1:*", "(UID)")
    uids = [re.search(rb"UID (\d+)", d).group(1) for d in data]
    assert uids == [first[0]] + first[2:] + [b"6"]
    c.logout()
    s.stop()


def test_concurrent_processes_assign_unique_uids(inetd, syslog):
    """Many inetd processes appending at once (each its own process, as inetd runs
    them) never hand out one UID twice, and lose nothing."""
    import threading

    results = []
    failures = []

    def worker(n):
        c = inetd.connect()
        for i in range(10):
            typ, data = c.append("INBOX", None, None, message(f"w{n}-{i}").encode())
            if typ != "OK":
                failures.append(data)
                continue
            results.append(int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)))
        c.logout()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, (failures, syslog.lines)
    assert len(results) == 40 and len(set(results)) == 40
    c = inetd.connect()
    typ, data = c.select()
    assert data == [b"40"]
    typ, data = c.uid("SEARCH", "ALL")
    assert sorted(int(x) for x in data[0].split()) == sorted(results)
    c.logout()


DOVECOT_UIDLIST = """3 V1446660062 N893 Gc9411e16de473a566f06000061f01900
17 :1511442247.M529702P32470.mail.example.org,S=120,W=125
891 W125 :1511442438.M141759P32632.mail.example.org,S=120,W=125
"""

COURIER_UIDDB = """1 1199999999 42
40 1200000000.123.courier.example.org
41 1200000001.124.courier.example.org
"""


def put(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_dovecot_and_courier_maildirs_keep_their_uids(daemon):
    acc = daemon.account
    body = message("old mail").replace("\r\n", "\n")
    inbox = acc.maildir
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(inbox, sub), exist_ok=True)
    put(os.path.join(inbox, "cur", "1511442247.M529702P32470.mail.example.org,S=120,W=125:2,Sa"), body)
    put(os.path.join(inbox, "cur", "1511442438.M141759P32632.mail.example.org,S=120,W=125:2,FR"), body)
    put(os.path.join(inbox, "dovecot-uidlist"), DOVECOT_UIDLIST)
    put(os.path.join(inbox, "dovecot-keywords"), "0 $Label1\n")
    courier = os.path.join(inbox, ".Courier")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(courier, sub), exist_ok=True)
    put(os.path.join(courier, "maildirfolder"), "")
    put(os.path.join(courier, "cur", "1200000000.123.courier.example.org:2,S"), body)
    put(os.path.join(courier, "cur", "1200000001.124.courier.example.org:2,"), body)
    put(os.path.join(courier, "courierimapuiddb"), COURIER_UIDDB)
    acc.fix_owner()
    c = daemon.connect()
    c.select("INBOX")
    assert c.untagged_responses["UIDVALIDITY"] == [b"1446660062"]
    assert c.untagged_responses["UIDNEXT"] == [b"893"]
    typ, data = c.fetch("1:*", "(UID FLAGS)")
    assert b"UID 17 FLAGS (\\Seen $Label1)" in data[0], data
    assert b"UID 891 FLAGS (\\Answered \\Flagged)" in data[1], data
    # A new message continues Dovecot's numbering.
    acc.deliver(message("new"))
    c.noop()
    typ, data = c.fetch("3", "(UID)")
    assert b"UID 893" in data[0]
    c.select("Courier")
    assert c.untagged_responses["UIDVALIDITY"] == [b"1199999999"]
    typ, data = c.fetch("1:*", "(UID FLAGS)")
    assert b"UID 40 FLAGS (\\Seen)" in data[0] and b"UID 41" in data[1], data
    c.logout()
    # What we wrote is Dovecot's format, so Dovecot reads it back the same way.
    with open(os.path.join(inbox, "dovecot-uidlist")) as f:
        text = f.read()
    assert text.startswith("3 V1446660062 N894 ")
    assert re.search(r"^893 :\S+testhost$", text, re.M)


def test_cache_is_rebuilt_when_damaged(account, syslog):
    # The short build keeps a cache from 2 messages on (big folders only, normally).
    daemon = Server("daemon", account, syslog, binary=short_timeouts_binary("imapd"))
    acc = daemon.account
    for i in range(3):
        acc.deliver(message(f"m{i}"))
    c = daemon.connect()
    c.select()
    # A cache is written only from directory stamps older than a clock tick (a change
    # in the same tick could hide behind them): let SELECT's moves out of new/ settle.
    time.sleep(0.3)
    c.fetch("1:*", "(RFC822.SIZE)")
    c.logout()
    cache = os.path.join(acc.maildir, "imapd.cache")
    assert os.path.exists(cache)
    with open(cache, "r+b") as f:
        f.seek(20)
        f.write(b"\xff\xff\xff\xff")
    c = daemon.connect()
    typ, data = c.select()
    assert data == [b"3"]
    typ, data = c.fetch("1:*", "(UID RFC822.SIZE)")
    assert len(data) == 3
    c.logout()
    daemon.stop()


def test_selected_folder_deleted_by_another_session(server):
    acc = server.account
    a, b = server.raw(), server.raw()
    login(a, acc)
    login(b, acc)
    assert b.command("c", "CREATE Doomed")[-1].startswith("c OK")
    assert a.command("s", "SELECT Doomed")[-1].startswith("s OK")
    assert b.command("d", "DELETE Doomed")[-1].startswith("d OK")
    # The view can't be kept: the session ends with BYE instead of failing forever.
    a.send("n NOOP\r\n")
    assert a.line().startswith("* BYE")
    assert a.closed()
    b.close()
