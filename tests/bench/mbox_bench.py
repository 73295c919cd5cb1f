#!/usr/bin/env python3
"""mbox figures (never pass/fail): imapd beside Dovecot (when installed) on copies of one
large mbox INBOX, over loopback, with the same client.

    tests/bench/run mbox [--messages 100000] [--kb 10]

Figures (the mbox issue): the time to read the file (`cat`, the disk read speed the
first open is held to; the file is in the page cache for every row); SELECT of a
Postfix-style spool no server has seen (UIDs and metadata headers get written: a full
rewrite); first SELECT of a labelled mbox with no index (one parse); SELECT again
(index valid); and the same two for Dovecot on a copy of the labelled file.
"""
import argparse
import imaplib
import os
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from support import OurDaemon, start_dovecot  # noqa: E402

IMAPD = os.path.join(ROOT, "target", "release", "imapd")
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()


def make_spool(path, n, kb, seed=7):
    """n messages of about `kb` KiB each, as Postfix local(8) appends them."""
    rng = random.Random(seed)
    lines = [" ".join(rng.choice(WORDS) for _ in range(11)) for _ in range(500)]
    per = max(1, kb * 1024 // 70)
    with open(path, "w") as f:
        for i in range(n):
            body = "\n".join(rng.choices(lines, k=per))
            f.write(f"From user{i % 100}@example.com  Mon Nov 23 10:{i // 60 % 60:02d}:{i % 60:02d} 2026\n"
                    f"From: user{i % 100}@example.com\nTo: bench@example.org\nSubject: message {i}\n"
                    f"Message-ID: <{i}@mbox.bench>\n\n{body}\nFrom the middle of a line\n\n")


def timed_select(port, user="bench", password="bench"):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=600)
    c.login(user, password)
    t = time.perf_counter()
    typ, data = c.select("INBOX")
    elapsed = time.perf_counter() - t
    assert typ == "OK", data
    c.logout()
    return elapsed, int(data[0])


def cat_time(path):
    t = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass
    return time.perf_counter() - t


def chown(path, user):
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", user, path], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--kb", type=int, default=10)
    args = ap.parse_args()
    user = "nobody"
    base = tempfile.mkdtemp(prefix="imapd-mbox-bench-")
    os.chmod(base, 0o755)
    try:
        ours = os.path.join(base, "ours")
        os.makedirs(os.path.join(ours, "mail"))
        spool = os.path.join(ours, "spool")
        make_spool(spool, args.messages, args.kb)
        chown(ours, user)
        size = os.path.getsize(spool)
        print(f"mbox: {args.messages} messages, {size / 1e6:.0f} MB")
        cat = min(cat_time(spool) for _ in range(2))
        rows = [("read the file (cat, page cache)", cat, None)]
        srv = OurDaemon(IMAPD, base, None, user,
                        location=f"mbox:{ours}/mail:INBOX={spool}")
        try:
            t, n = timed_select(srv.port)
            assert n == args.messages, n
            rows.append(("SELECT, Postfix spool never seen (labels + rewrites)", t, None))
            shutil.rmtree(os.path.join(ours, "mail", ".imap"))
            t, _ = timed_select(srv.port)
            rows.append(("first SELECT, labelled, no index", t, None))
            t = min(timed_select(srv.port)[0] for _ in range(3))
            rows.append(("SELECT again (index valid)", t, None))
        finally:
            srv.stop()
        if shutil.which("dovecot"):
            theirs = os.path.join(base, "dovecot-home")
            os.makedirs(os.path.join(theirs, "mail"))
            shutil.copy(spool, os.path.join(theirs, "spool"))
            chown(theirs, user)
            pw = pwd.getpwnam(user)
            proc, port = start_dovecot(base, None, "bench", "bench", pw.pw_uid, pw.pw_gid, theirs,
                                       mail_location=f"mbox:{theirs}/mail:INBOX={theirs}/spool")
            try:
                t, n = timed_select(port)
                assert n == args.messages, n
                rows[2] = rows[2][:2] + (t,)
                t = min(timed_select(port)[0] for _ in range(3))
                rows[3] = rows[3][:2] + (t,)
            finally:
                proc.terminate()
                proc.wait()
        else:
            print("dovecot not installed: imapd figures only (apt-get install dovecot-imapd)")
        print(f"{'':55} {'imapd':>10} {'dovecot':>10}")
        for name, t, d in rows:
            dv = f"{d * 1000:8.0f}ms" if d is not None else ""
            print(f"{name:55} {t * 1000:8.0f}ms {dv:>10}")
        print(f"parse rate, first SELECT with no index: {size / rows[2][1] / 1e6:.0f} MB/s "
              f"(cat: {size / cat / 1e6:.0f} MB/s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
