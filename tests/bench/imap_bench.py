#!/usr/bin/env python3
"""Benchmarks that print figures (never pass/fail): imapd beside Dovecot when Dovecot is
installed, on the same Maildir copy, over loopback, with the same Python client.

    tests/bench/run [--messages 100000] [--sessions 1000]

Figures (shared/docs/targets.md): first SELECT of a big Maildir without an index, SELECT
again, SEARCH without an index, FETCH 1:* (FLAGS UID RFC822.SIZE) and ENVELOPE, inetd
start-to-greeting, memory of idle sessions in IDLE.
"""
import argparse
import imaplib
import os
import pwd
import random
import resource
import shutil
import socket
import statistics
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


def make_maildir(path, n, seed=7):
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    body_lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(400)]
    t0 = 1_700_000_000
    for i in range(n):
        subject = " ".join(rng.choice(WORDS) for _ in range(4))
        if i % 1000 == 500:
            subject += " zebracrossing"
        lines = rng.sample(body_lines, 80)
        if i % 997 == 0:
            lines.append("the needle word is zebracrossing")
        text = (f"From: user{i % 300}@example.com\nTo: bench@example.org\nSubject: {subject}\n"
                f"Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <{i}@bench>\n\n" + "\n".join(lines) + "\n")
        name = f"{t0 + i}.M{i}P1.bench:2,{'S' if i % 3 else ''}"
        with open(os.path.join(path, "cur", name), "w") as f:
            f.write(text)


def du(path):
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    return total


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


class Imapd(OurDaemon):
    name = "imapd"

    def __init__(self, base, maildir, user):
        super().__init__(IMAPD, base, maildir, user)


class Dovecot:
    name = "dovecot"

    def __init__(self, base, maildir, user):
        pw = pwd.getpwnam(user)
        # Limits raised so 1,000 sessions of one user from one address are served.
        tuning = ("service imap {\n  process_limit = 5000\n}\n"
                  "protocol imap {\n  mail_max_userip_connections = 100000\n}\n"
                  "default_process_limit = 5000\ndefault_client_limit = 10000\n")
        self.proc, self.port = start_dovecot(base, maildir, "bench", "bench", pw.pw_uid, pw.pw_gid,
                                             os.path.join(base, "dovecot"), tuning)

    def pids(self):
        out = subprocess.run(["pgrep", "-f", "dovecot|imap"], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def bench_server(server, n, sessions):
    r = {}
    c = imaplib.IMAP4("127.0.0.1", server.port)
    c.login("bench", "bench")
    r["first SELECT"], (typ, data) = timed(lambda: c.select("INBOX"))
    assert typ == "OK" and int(data[0]) == n, data
    c.close()
    r["SELECT again"], _ = timed(lambda: c.select("INBOX"))
    r["SEARCH TEXT+SUBJECT"], (typ, data) = timed(lambda: c.search(None, "TEXT", "zebracrossing", "SUBJECT", "zebracrossing"))
    r["search hits"] = len(data[0].split())
    r["FETCH 1:* (FLAGS UID RFC822.SIZE)"], _ = timed(lambda: c.fetch("1:*", "(FLAGS UID RFC822.SIZE)"))
    r["FETCH 1:* ENVELOPE"], _ = timed(lambda: c.fetch("1:*", "(ENVELOPE)"))
    c.create("Idle")
    for i in range(20):
        c.append("Idle", None, None, f"Subject: idle {i}\r\n\r\nbody\r\n".encode())
    c.logout()
    return r


def bench_latency(server, maildir):
    """Worst NOOP round trip of one client while another opens the big folder cold."""
    import threading
    for name in os.listdir(maildir):
        if name.startswith("dovecot") or name.startswith("imapd.cache"):
            os.remove(os.path.join(maildir, name))
    a = imaplib.IMAP4("127.0.0.1", server.port)
    a.login("bench", "bench")
    b = imaplib.IMAP4("127.0.0.1", server.port)
    b.login("bench", "bench")
    worst = 0.0
    stop = threading.Event()

    def noops():
        nonlocal worst
        while not stop.is_set():
            t = time.perf_counter()
            b.noop()
            worst = max(worst, time.perf_counter() - t)

    th = threading.Thread(target=noops)
    th.start()
    time.sleep(0.2)
    elapsed, _ = timed(lambda: a.select("INBOX"))
    stop.set()
    th.join()
    a.logout()
    b.logout()
    return {"worst NOOP during a cold SELECT": worst, "(that cold SELECT)": elapsed}


def bench_idle(server, sessions, folder="Idle"):
    """Idle sessions on a freshly started server: logged in, a folder selected (a small
    one, or the big INBOX), in IDLE, as a client watching its mailbox sits."""
    r = {}
    time.sleep(0.5)
    before = pss_kib(server.pids())
    socks = []
    for i in range(sessions):
        s = socket.create_connection(("127.0.0.1", server.port))
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a LOGIN bench bench\r\nb SELECT {folder}\r\nc IDLE\r\n".encode())
        while True:
            line = f.readline()
            if not line:
                raise SystemExit(f"{server.name} closed idle session {i}")
            if line.startswith(b"+"):
                break
        socks.append((s, f))
    time.sleep(1)
    after = pss_kib(server.pids())
    if folder != "Idle":
        r[f"PSS per IDLE session on {folder} ({sessions})"] = \
            f"{(after - before) / sessions:.0f} KiB"
        for s, f in socks:
            s.close()
        return r
    r[f"PSS per IDLE session ({sessions})"] = f"{(after - before) / sessions:.0f} KiB"
    t0 = cpu_seconds(server.pids())
    time.sleep(10)
    r[f"server CPU with {sessions} in IDLE"] = f"{10 * (cpu_seconds(server.pids()) - t0):.1f}% core"
    for s, f in socks:
        s.close()
    return r


def inetd_start(n=200):
    """Process start to greeting, imapd in inetd mode over a socketpair."""
    times = []
    for _ in range(n):
        a, b = socket.socketpair()
        t = time.perf_counter()
        p = subprocess.Popen([IMAPD, "--log-socket", "/nonexistent", "--users", "/nonexistent"],
                             stdin=b.fileno(), stdout=b.fileno(), stderr=subprocess.DEVNULL)
        a.recv(4096)
        times.append(time.perf_counter() - t)
        a.close()
        b.close()
        p.kill()
        p.wait()
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=1000)
    ap.add_argument("--imapd-sessions", type=int, default=10000, help="imapd alone: also this many idle sessions")
    ap.add_argument("--keep", help="reuse/keep the generated Maildir here")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    base = tempfile.mkdtemp(prefix="imapd-bench-")
    os.chmod(base, 0o755)
    user = "nobody"
    src = args.keep or os.path.join(base, "source")
    if not os.path.isdir(os.path.join(src, "cur")):
        t, _ = timed(lambda: make_maildir(src, args.messages))
        print(f"generated {args.messages} messages, {du(src) / 1e6:.0f} MB, in {t:.1f} s")
    servers = [Imapd]
    if shutil.which("dovecot"):
        servers.append(Dovecot)
    else:
        print("dovecot not installed: imapd figures only (apt-get install dovecot-imapd)")
    results = {}
    for cls in servers:
        # Each server gets its own pristine copy: no index, no uidlist, cold structures.
        md = os.path.join(base, f"maildir-{cls.name}")
        subprocess.run(["cp", "-a", src, md], check=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", user, md], check=True)
        srv = cls(base, md, user)
        try:
            results[cls.name] = bench_server(srv, args.messages, args.sessions)
        finally:
            srv.stop()
        srv = cls(base, md, user)
        try:
            results[cls.name].update(bench_latency(srv, md))
        finally:
            srv.stop()
        # The big folder open in a few sessions: what each holds per message.
        srv = cls(base, md, user)
        try:
            results[cls.name].update(bench_idle(srv, 20, folder="INBOX"))
        finally:
            srv.stop()
        counts = [args.sessions] + ([args.imapd_sessions] if cls is Imapd and args.imapd_sessions else [])
        for n in counts:
            srv = cls(base, md, user)
            try:
                results[cls.name].update(bench_idle(srv, n))
            finally:
                srv.stop()
    results.setdefault("imapd", {})["inetd start to greeting (median)"] = inetd_start()
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    names = list(results.keys())
    print(f"\n{'figure':42} " + " ".join(f"{n:>14}" for n in names) + ("   ratio" if len(names) == 2 else ""))
    for k in keys:
        vals = [results[n].get(k, "") for n in names]
        cells = []
        for v in vals:
            cells.append(f"{v * 1000:>11.1f} ms" if isinstance(v, float) else f"{v!s:>14}")
        ratio = ""
        if len(vals) == 2 and all(isinstance(v, float) and v > 0 for v in vals):
            ratio = f"   {vals[1] / vals[0]:.2f}x"
        print(f"{k:42} " + " ".join(cells) + ratio)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
