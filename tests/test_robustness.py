"""Bad input gets BAD, NO or BYE, never a crash or a hang; the daemon keeps serving
others while one client misbehaves, uploads 100 MB or stops reading."""
import os
import random
import socket
import time

import pytest

from conftest import PASSWORD, message


def greet_login(r, account):
    assert r.line().startswith("* OK")
    assert r.command("l", f'LOGIN {account.name} "{PASSWORD}"')[-1].startswith("l OK")


def assert_alive(server):
    c = server.connect()
    typ, _ = c.noop()
    assert typ == "OK"
    c.logout()


def test_malformed_commands_get_bad(server, syslog):
    r = server.raw()
    greet_login(r, server.account)
    for cmd in ["FETCH", "a1 FETCH", "a2 FETCH 1:* (", "a3 SELECT", "a4 FOO", "a5 STORE 1 FLAGS (\\Bogus)",
                "a6 SEARCH ((((", "a7 UID", "a8 LOGIN x", 'a9 LIST "unterminated']:
        r.send(cmd + "\r\n")
        line = r.line()
        assert " BAD " in line, (cmd, line)
    r.send("\r\n")
    assert r.line().startswith("* BAD")
    assert r.command("ok", "NOOP")[-1].startswith("ok OK")
    syslog.wait_for(r"protocol error peer=127\.0\.0\.1 user=\S+ error=")
    r.close()


def test_too_many_bad_commands_end_the_session(server):
    r = server.raw()
    r.line()
    for i in range(20):
        r.send(f"x{i} NONSENSE\r\n")
    lines = [r.line() for _ in range(21)]
    assert lines[-1].startswith("* BYE")
    assert r.closed()


def test_overlong_line_is_refused_with_bye(server):
    r = server.raw()
    r.line()
    r.send("a " + "x" * 70000)
    assert r.line().startswith("* BYE")
    assert r.closed()
    assert_alive(server)


def test_literal_limits(server):
    r = server.raw()
    r.line()
    # A synchronizing literal over the limit: tagged BAD, no "+", session goes on.
    r.send("a LOGIN {99999999}\r\n")
    assert r.line().startswith("a BAD Literal too large")
    greet = r.command("b", "NOOP")
    assert greet[-1].startswith("b OK")
    # A non-synchronizing one cannot be refused without losing sync: BYE (RFC 7888 4).
    r.send("c LOGIN {99999999+}\r\n")
    assert r.line().startswith("* BYE")
    assert r.closed()


def test_append_limits_and_trycreate(server):
    r = server.raw()
    greet_login(r, server.account)
    r.send("a APPEND INBOX {999999999999}\r\n")
    assert r.line().startswith("a NO [TOOBIG]")
    # LITERAL+ into a missing mailbox: the message is read and dropped, then NO.
    msg = message("x")
    r.send(f"b APPEND Missing {{{len(msg)}+}}\r\n{msg}\r\n")
    assert r.line().startswith("b NO [TRYCREATE]")
    r.send(f"c APPEND INBOX {{{len(msg)}+}}\r\n{msg}\r\n")
    assert r.line().startswith("c OK [APPENDUID")
    r.send("d APPEND INBOX {999999999999+}\r\n")
    assert r.line().startswith("* BYE")
    assert r.closed()


def test_hostile_sets_and_nesting_are_bounded(server):
    c = server.connect()
    c.append("INBOX", None, None, message("one").encode())
    c.select()
    start = time.time()
    typ, data = c.store("1:4294967295", "+FLAGS", "(\\Seen)")
    assert typ == "OK"
    typ, data = c.uid("FETCH", "1:4294967295,1:4294967295,1:4294967295", "(FLAGS)")
    assert typ == "OK" and len(data) == 1
    r = server.raw()
    greet_login(r, server.account)
    r.command("s", "SELECT INBOX")
    deep = "(" * 5000 + "ALL" + ")" * 5000
    assert " BAD " in r.command("d", "SEARCH " + deep)[-1]
    nots = "NOT " * 3000 + "ALL"
    assert " BAD " in r.command("n", "SEARCH " + nots)[-1]
    assert time.time() - start < 30
    r.close()
    c.logout()


def test_pathological_mime_is_answered(server):
    nested = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(3000))
    many = "Content-Type: multipart/mixed; boundary=x\r\n\r\n" + "--x\r\n\r\n" * 20000 + "--x--\r\n"
    c = server.connect()
    for body in (nested, many, "Subject: no body separator at all"):
        typ, _ = c.append("INBOX", None, None, body.encode())
        assert typ == "OK"
    c.select()
    typ, data = c.fetch("1:3", "(BODYSTRUCTURE ENVELOPE BODY.PEEK[1.1.1.MIME])")
    assert typ == "OK"
    typ, data = c.search(None, "BODY", "nothing-matches")
    assert typ == "OK"
    c.logout()


def test_random_garbage_never_kills_the_server(server):
    rng = random.Random(1234)
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.recv(4096)
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4000)))
        try:
            s.sendall(blob + b"\r\n" + b"z LOGOUT\r\n")
            s.settimeout(5)
            while s.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        s.close()
    assert_alive(server)


def test_daemon_serves_others_during_a_100mb_append(daemon):
    size = 100 * 1024 * 1024
    up = daemon.raw()
    greet_login(up, daemon.account)
    up.send("big APPEND INBOX {%d}\r\n" % size)
    assert up.line().startswith("+")
    chunk = (b"x" * 1023 + b"\n") * 1024
    header = b"Subject: big\r\n\r\n"
    up.send(header)
    sent = len(header)
    bare_lf = 0  # RFC822.SIZE counts each bare LF as CRLF
    while sent < size // 2:
        up.send(chunk)
        sent += len(chunk)
        bare_lf += 1024
    # Half-way through the upload another client is answered at once.
    other = daemon.connect()
    typ, _ = other.noop()
    assert typ == "OK"
    other.select()
    other.logout()
    rest = size - sent
    while rest > 0:
        part = chunk[: min(len(chunk), rest)]
        up.send(part)
        rest -= len(part)
        bare_lf += part.count(b"\n")
    up.send("\r\n")
    assert up.line().startswith("big OK [APPENDUID")
    c = daemon.connect()
    c.select()
    typ, data = c.fetch("1", "(RFC822.SIZE)")
    assert b"RFC822.SIZE %d" % (size + bare_lf) in data[0]
    c.logout()


def test_daemon_serves_others_while_a_client_stops_reading(daemon):
    acc = daemon.account
    body = "Subject: filler\r\n\r\n" + ("y" * 1000 + "\r\n") * 200
    for i in range(60):
        acc.deliver(body)
    stuck = daemon.raw()
    greet_login(stuck, acc)
    stuck.command("s", "SELECT INBOX")
    stuck.send("f FETCH 1:* (BODY.PEEK[])\r\n")  # ~12 MB it never reads
    time.sleep(0.5)
    other = daemon.connect()
    typ, _ = other.noop()
    assert typ == "OK"
    other.select()
    typ, data = other.fetch("1", "(RFC822.SIZE)")
    assert typ == "OK"
    other.logout()
    stuck.close()


def test_large_fetch_completes(server):
    """A FETCH far larger than the output buffer is streamed out to the end."""
    body = "Subject: bulk\r\n\r\n" + ("z" * 998 + "\r\n") * 20
    for i in range(800):
        server.account.deliver(body)
    c = server.connect()
    c.select()
    typ, data = c.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    bodies = [d for d in data if isinstance(d, tuple)]
    assert len(bodies) == 800 and all(len(b[1]) == len(body) for b in bodies)
    typ, data = c.fetch("1:*", "(FLAGS UID RFC822.SIZE)")
    assert typ == "OK" and len(data) == 800
    c.logout()


def test_uidlist_lock_of_a_killed_session_is_broken_at_once(server):
    """A session killed while it held dovecot-uidlist.lock leaves the lock (ours: mode
    0400, and nobody holds its fcntl lock): the next session breaks it at once, not
    after 30 s of waiting on a worker and the 120-second stale timeout. A lock a live
    process holds is waited for, never broken."""
    import fcntl
    import threading
    acc = server.account
    acc.deliver(message("one"))
    c = server.connect()
    c.select("INBOX")
    c.logout()
    lock = os.path.join(acc.maildir, "dovecot-uidlist.lock")

    def leave_lock(held_for=None):
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        os.fchmod(fd, 0o400)
        if acc.system:
            os.fchown(fd, acc.uid, acc.gid)
        if held_for is None:
            os.close(fd)  # the owner is gone
            old = time.time() - 5
            os.utime(lock, (old, old))
            return None
        fcntl.lockf(fd, fcntl.LOCK_EX)  # a live owner (a POSIX lock conflicts with OFD)

        def release():
            time.sleep(held_for)
            os.unlink(lock)
            os.close(fd)
        t = threading.Thread(target=release)
        t.start()
        return t

    leave_lock()
    acc.deliver(message("two"))  # new mail: the session must take the uidlist lock
    t0 = time.monotonic()
    c = server.connect()
    typ, data = c.select("INBOX")
    took = time.monotonic() - t0
    assert typ == "OK" and data == [b"2"], data
    assert took < 5, f"SELECT waited {took:.1f} s on a dead session's lock"
    c.logout()
    assert not os.path.exists(lock)
    # A live holder: waited for.
    holder = leave_lock(held_for=2)
    acc.deliver(message("three"))
    t0 = time.monotonic()
    c = server.connect()
    typ, data = c.select("INBOX")
    took = time.monotonic() - t0
    holder.join()
    assert typ == "OK" and data == [b"3"], data
    assert took >= 1.5, f"a live lock was broken after {took:.2f} s"
    c.logout()


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("Threads:")).split()[1])


def test_sessions_waiting_on_a_lock_leave_the_workers_to_others(daemon):
    """Twenty sessions SELECT, one APPENDs and one COPYs while another program holds
    dovecot-uidlist.lock (a Dovecot lock: the file's mode, so not taken for a dead
    session's), more than the daemon's 16 workers. No worker waits for it: each command
    is parked and asked again from its session's timer (the daemon starts no substitute
    threads, as it did before, and before that every worker slept in the wait). Another
    session's NOOP is answered at once; commands pipelined behind a parked one keep
    their order. When the lock goes, every command ends OK, each message stored once."""
    acc = daemon.account
    acc.deliver(message("one"))
    c = daemon.connect()
    c.create("Dest")
    c.logout()
    acc.deliver(message("two"))  # new mail: SELECT must take the uidlist lock to number it
    lock = os.path.join(acc.maildir, "dovecot-uidlist.lock")
    pid = daemon.proc.pid
    other = daemon.connect()  # logged in already: its NOOP needs no lock
    copier = daemon.raw()
    greet_login(copier, acc)
    assert copier.command("s", "SELECT Dest")[-1].startswith("s OK")
    threads_before = threads_of(pid)
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if acc.system:
        os.fchown(fd, acc.uid, acc.gid)
    try:
        waiters = []
        for _ in range(20):
            r = daemon.raw()
            greet_login(r, acc)
            r.send(b"s SELECT INBOX\r\nn NOOP\r\n")
            waiters.append(r)
        body = message("appended").encode()
        appender = daemon.raw()
        greet_login(appender, acc)
        appender.send(b"a APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        # Into INBOX, whose uidlist is locked (Dest's is not: only the destination's
        # lock is taken to number the copies).
        assert copier.command("p", "APPEND Dest {3+}\r\nabc")[-1].startswith("p OK")
        copier.send(b"c COPY 1 INBOX\r\n")
        time.sleep(1)  # every command has met the lock by now
        t0 = time.monotonic()
        assert other.noop()[0] == "OK"
        took = time.monotonic() - t0
        threads_during = threads_of(pid)
        for r in waiters + [appender, copier]:
            r.sock.setblocking(False)
            try:
                early = r.sock.recv(65536)
            except BlockingIOError:
                early = b""
            r.sock.setblocking(True)
            r.sock.settimeout(30)
            r.buf += early
            assert b" OK" not in early and b" NO" not in early, early
    finally:
        os.unlink(lock)
        os.close(fd)
    for r in waiters:
        lines = r.until_tagged("s")
        assert lines[-1].startswith("s OK"), lines
        assert r.until_tagged("n")[-1].startswith("n OK")
        r.close()
    appended = appender.until_tagged("a")
    assert appended[-1].startswith("a OK [APPENDUID"), appended
    copied = copier.until_tagged("c")
    assert copied[-1].startswith("c OK [COPYUID"), copied
    other.select("INBOX")
    typ, data = other.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = sorted(d[1].decode().strip() for d in data if isinstance(d, tuple))
    assert subjects == ["", "Subject: appended", "Subject: one", "Subject: two"], subjects
    other.logout()
    assert took < 0.5, f"NOOP waited {took:.2f} s behind sessions waiting on a lock"
    assert threads_during <= threads_before + 1, \
        f"the daemon ran {threads_during - threads_before} more threads while sessions waited"


@pytest.mark.parametrize("name", ["imapd", "ipop3d"])
def test_a_lock_held_past_the_wait_is_answered_in_use(account, syslog, name):
    """A lock another program keeps past LOCK_WAIT_SECS (2 s in the short build): the
    command is answered NO [INUSE] (IMAP) or -ERR [IN-USE] (POP3 login), logged, and
    the next try after the lock has gone succeeds."""
    from conftest import Server, short_timeouts_binary
    acc = account
    acc.deliver(message("one"))  # new mail: numbering it needs the uidlist lock
    s = Server("daemon", acc, syslog, binary=short_timeouts_binary(name))
    lock = os.path.join(acc.maildir, "dovecot-uidlist.lock")
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if acc.system:
        os.fchown(fd, acc.uid, acc.gid)
    try:
        r = s.raw()
        assert r.line().startswith("+OK" if name == "ipop3d" else "* OK")
        t0 = time.monotonic()
        if name == "imapd":
            assert r.command("l", f'LOGIN {acc.name} "{PASSWORD}"')[-1].startswith("l OK")
            t0 = time.monotonic()
            answer = r.command("s", "SELECT INBOX")[-1]
            assert answer.startswith("s NO [INUSE]"), answer
        else:
            r.send(f"USER {acc.name}\r\n")
            assert r.line().startswith("+OK")
            r.send(f"PASS {PASSWORD}\r\n")
            answer = r.line()
            assert answer.startswith("-ERR [IN-USE]"), answer
            assert r.closed()
        took = time.monotonic() - t0
        assert 1.5 <= took < 10, f"answered after {took:.1f} s"
        syslog.wait_for(r"held by another program")
    finally:
        os.unlink(lock)
        os.close(fd)
    if name == "imapd":
        assert r.command("s2", "SELECT INBOX")[-2:][-1].startswith("s2 OK")
        r.close()
    else:
        p = s.pop()
        assert p.stat()[0] == 1
        p.quit()
    s.stop()


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1]) // 1024


def read_fetch_f(r, chunk_size, pause_every=0):
    """Read the response to FETCH tagged `f` off the socket up to its OK, `chunk_size`
    octets at a time (pausing 20 ms each `pause_every` octets, if given): the octets read."""
    got, tail = 0, b""
    r.sock.settimeout(60)
    while not tail.endswith(b"f OK FETCH completed\r\n"):
        chunk = r.sock.recv(chunk_size)
        assert chunk, "connection closed"
        got += len(chunk)
        tail = (tail + chunk)[-64:]
        if pause_every and got % pause_every < len(chunk):
            time.sleep(0.02)
    return got


def test_one_fetch_of_many_sections_is_written_as_the_client_reads(daemon):
    """FETCH 1 (BODY.PEEK[] x 300) of a 1 MB message is 300 MB of response: written
    item by item as the client reads, never built whole (it took 1.96 GB for 1,000 items;
    with a 10 MB message, the OOM killer takes every user's sessions)."""
    c = daemon.connect()
    body = ("x" * 998 + "\r\n") * 1024
    assert c.append("INBOX", None, None, message("big", body).encode())[0] == "OK"
    c.logout()
    before = peak_rss_mb(daemon.proc.pid)
    r = daemon.raw()
    greet_login(r, daemon.account)
    r.command("s", "SELECT INBOX")
    r.send("f FETCH 1 (" + " ".join(["BODY.PEEK[]"] * 300) + ")\r\n")
    got = read_fetch_f(r, 1 << 20)
    assert got > 300 * len(body)
    grew = peak_rss_mb(daemon.proc.pid) - before
    assert grew < 64, f"the daemon grew by {grew} MB for one FETCH"
    assert r.command("n", "NOOP")[-1].startswith("n OK")
    r.close()


def test_a_100mb_message_is_sent_from_its_file_as_the_client_reads(daemon):
    """FETCH BODY[] of a 100 MB message, read at a few MB a time: sent from the message
    file in pieces as the client takes them, never held whole (a whole-message read grew
    the daemon by 95 MB and more)."""
    line = "z" * 1022 + "\r\n"
    body = line * (100 * 1024)
    daemon.account.deliver("Subject: huge\r\n\r\n" + body)
    before = peak_rss_mb(daemon.proc.pid)
    r = daemon.raw()
    greet_login(r, daemon.account)
    r.command("s", "SELECT INBOX")
    r.send("f FETCH 1 (BODY.PEEK[])\r\n")
    got = read_fetch_f(r, 256 << 10, pause_every=4 << 20)  # a reader slower than the disk
    assert got > len(body)
    grew = peak_rss_mb(daemon.proc.pid) - before
    assert grew < 24, f"the daemon grew by {grew} MB for one FETCH of a 100 MB message"
    r.close()


def test_fast_noops_do_not_grow_the_daemon(daemon):
    """Eight clients sending NOOPs as fast as they are answered for 15 seconds: the
    daemon's memory stays where it was (a timer entry kept per step, each until its
    autologout deadline, grew it by 70 MB a minute)."""
    import threading
    stop = threading.Event()
    counts = []

    def pinger():
        r = daemon.raw()
        greet_login(r, daemon.account)
        n = 0
        while not stop.is_set():
            # One at a time: each NOOP is a step of its own in the daemon.
            r.send(b"p NOOP\r\n")
            r.until_tagged("p")
            n += 1
        counts.append(n)
        r.close()

    warm = [threading.Thread(target=pinger) for _ in range(8)]
    for t in warm:
        t.start()
    time.sleep(2)  # warmed up: buffers and threads at their working size
    before = rss_mb(daemon.proc.pid)
    time.sleep(15)
    stop.set()
    for t in warm:
        t.join()
    grew = rss_mb(daemon.proc.pid) - before
    assert sum(counts) > 5000, counts
    # (A timer entry per step grew it by 6 MB in these 15 seconds.)
    assert grew < 2, f"{sum(counts)} NOOPs grew the daemon by {grew:.1f} MB"


def test_memory_goes_back_when_a_burst_of_load_ends(daemon):
    """Twelve clients at once FETCH the text of a 4 MB message over and over (each
    FETCH loads and parses it), then leave: within a few seconds the daemon is back near
    its size before the burst (glibc kept what the burst freed: its arenas held 100 MB
    and more after the clients had gone)."""
    import threading
    c = daemon.connect()
    body = ("y" * 998 + "\r\n") * 4096
    assert c.append("INBOX", None, None, message("big", body).encode())[0] == "OK"
    c.select("INBOX")

    def reader(fetches=5):
        r = daemon.connect()
        r.select("INBOX")
        for _ in range(fetches):
            typ, data = r.fetch("1", "(BODY.PEEK[TEXT])")
            assert typ == "OK" and len(data[0][1]) == len(body)
        r.logout()

    # Warm: buffers, threads and their stacks at their working size (and under
    # qemu-user its translated code, which never shrinks), then freed again.
    warm = [threading.Thread(target=reader, args=(1,)) for _ in range(12)]
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    time.sleep(6)
    before = rss_mb(daemon.proc.pid)

    threads = [threading.Thread(target=reader) for _ in range(12)]
    for t in threads:
        t.start()
    peak = before
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(daemon.proc.pid))
        time.sleep(0.05)
    deadline = time.time() + 12
    while rss_mb(daemon.proc.pid) > before + 10 and time.time() < deadline:
        time.sleep(0.5)
    after = rss_mb(daemon.proc.pid)
    c.logout()
    assert peak > before + 20, f"the burst did not load the daemon ({before:.0f} -> {peak:.0f} MB)"
    print(f"before {before:.0f} MB, peak {peak:.0f} MB, after {after:.0f} MB")
    assert after < before + 10, (f"before {before:.0f} MB, peak {peak:.0f} MB, "
                                 f"after {after:.0f} MB")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmRSS:")).split()[1]) / 1024


@pytest.mark.parametrize("name", ["imapd", "ipop3d"])
def test_slowloris_login_deadline_and_per_address_cap(account, syslog, name):
    """Before login: a byte now and then does not extend the login deadline (3 s in the
    short build), and one address may hold only so many connections not logged in (8
    in the short build); logged-in sessions do not count, and a slot frees when a
    waiting connection goes."""
    from conftest import Server, short_timeouts_binary
    s = Server("daemon", account, syslog, binary=short_timeouts_binary(name))
    try:
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        slow.recv(4096)
        start = time.monotonic()
        noop = b"a NOOP\r\n" if name == "imapd" else b"NOOP\r\n"
        closed = False
        while time.monotonic() - start < 8:
            try:
                slow.sendall(noop)
                data = slow.recv(4096)
            except OSError:
                closed = True
                break
            if not data or b"BYE" in data:
                closed = True
                break
            time.sleep(0.5)
        took = time.monotonic() - start
        assert closed and took < 5, f"a client sending bytes stayed {took:.1f} s without login"
        slow.close()
        # A logged-in session does not count: eight waiting connections from 127.0.0.1
        # beside it are taken, the ninth is refused.
        c = s.pop() if name == "ipop3d" else s.connect()
        waiting = []
        for _ in range(8):
            w = socket.create_connection(("127.0.0.1", s.port), timeout=15)
            assert w.recv(4096).startswith((b"* OK", b"+OK"))
            waiting.append(w)
        extra = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        assert extra.recv(4096).startswith((b"* BYE", b"-ERR")), "a ninth was greeted"
        extra.close()
        syslog.wait_for(r"connection refused peer=127\.0\.0\.1 reason=too many connections not logged in")
        # One waiting connection gone frees a slot.
        waiting.pop().close()
        time.sleep(0.3)
        again = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        assert again.recv(4096).startswith((b"* OK", b"+OK"))
        again.close()
        c.quit() if name == "ipop3d" else c.logout()
        for w in waiting:
            w.close()
    finally:
        s.stop()


def test_at_the_descriptor_limit_queued_connections_are_served_when_one_closes(account, syslog):
    """A daemon out of descriptors leaves new connections in the kernel's queue; as soon
    as one of its connections closes it takes them (the listener is edge-triggered:
    without retrying, they waited until yet another client connected)."""
    import subprocess
    from conftest import IMAPD
    args = ["prlimit", "--nofile=40:40", IMAPD, "--listen", "127.0.0.1:0", "--users",
            account.users_file, "--log-socket", syslog.path]
    if account.system:
        args += ["--user", account.name]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import re
        port = int(re.search(rb"listening on \[127\.0\.0\.1:(\d+)\]",
                             proc.stderr.readline()).group(1))
        held = []
        for _ in range(60):
            c = socket.create_connection(("127.0.0.1", port), timeout=2)
            held.append(c)
        greeted = []
        for c in held:
            c.settimeout(0.5)
            try:
                greeted.append(c.recv(4096).startswith(b"* OK"))
            except socket.timeout:
                greeted.append(False)
        assert any(greeted) and not all(greeted), greeted
        queued = [c for c, g in zip(held, greeted) if not g]
        for c, g in zip(held, greeted):
            if g:
                c.close()  # descriptors free: the queued ones must be taken now
        for c in queued:
            c.settimeout(10)
            assert c.recv(4096).startswith(b"* OK"), "a queued connection was not served"
            c.close()
        syslog.wait_for(r"accept failed: .*resuming when a connection closes")
    finally:
        proc.terminate()
        proc.wait()

