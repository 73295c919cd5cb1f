#!/usr/bin/env python3
"""POP3 figures (never pass/fail): ipop3d beside dovecot-pop3d when installed, on copies
of one Maildir, over loopback, with the same client.

    tests/bench/run pop3 [--messages 10000] [--big-mb 50]

Figures (shared/docs/targets.md): transfer rate with every RETR of the maildrop
pipelined on one connection; the first login (the maildrop numbered and sized, no
cache); the server's peak memory during a RETR of one big message.
"""
import argparse
import os
import poplib
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from support import OurDaemon, free_port, start_dovecot  # noqa: E402

IPOP3D = os.path.join(ROOT, "target", "release", "ipop3d")
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray").split()


def make_maildir(path, n, seed=11):
    """n messages of about 4.3 KB (43 MB for 10,000), LF line ends, as MDAs write them;
    names without sizes, as Postfix and procmail write them."""
    rng = random.Random(seed)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    lines = [" ".join(rng.choice(WORDS) for _ in range(11)) for _ in range(500)]
    for i in range(n):
        body = "\n".join(rng.sample(lines, 62))
        text = (f"From: user{i % 100}@example.com\nTo: bench@example.org\nSubject: message {i}\n"
                f"Message-ID: <{i}@pop3.bench>\n\n.{body}\n")
        with open(os.path.join(path, "new", f"{1_700_000_000 + i}.V801I{i}.bench"), "w") as f:
            f.write(text)


def add_big(path, mb):
    line = "z" * 99 + "\n"
    with open(os.path.join(path, "new", "1800000000.V801Ibig.bench"), "w") as f:
        f.write("Subject: big\n\n")
        for _ in range(mb * 1024 * 1024 // 100):
            f.write(line)


class Ipop3d(OurDaemon):
    name = "ipop3d"

    def __init__(self, base, maildir, user):
        super().__init__(IPOP3D, base, maildir, user)


class Dovecot:
    name = "dovecot"

    def __init__(self, base, maildir, user):
        pw = pwd.getpwnam(user)
        self.port = free_port()
        self.proc, _ = start_dovecot(base, maildir, "bench", "bench", pw.pw_uid, pw.pw_gid,
                                     os.path.join(base, "dovecot"), pop3_port=self.port)

    def pids(self):
        out = subprocess.run(["pgrep", "-x", "pop3"], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def quit(s, f):
    """QUIT and wait for its answer: the UPDATE state is done (and the lock free) then."""
    s.sendall(b"QUIT\r\n")
    line = f.readline()
    assert line.startswith(b"+OK"), line
    s.close()


def login(port):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    t = time.perf_counter()
    s.sendall(b"USER bench\r\nPASS bench\r\n")
    assert f.readline().startswith(b"+OK")
    line = f.readline()
    assert line.startswith(b"+OK"), line
    # A fetcher's first question; a server may put off sizing the maildrop until then.
    s.sendall(b"STAT\r\n")
    line = f.readline()
    assert line.startswith(b"+OK"), line
    return s, f, time.perf_counter() - t


def stat(f, s):
    s.sendall(b"STAT\r\n")
    return [int(x) for x in f.readline().split()[1:3]]


def pipelined_retr(port):
    """Every RETR in one write; read until every response has ended."""
    s, f, _ = login(port)
    count, _ = stat(f, s)
    commands = b"".join(b"RETR %d\r\n" % n for n in range(1, count + 1))
    t = time.perf_counter()
    s.sendall(commands)
    # Each response ends with CRLF "." CRLF; dot-stuffing keeps that out of bodies.
    seen, received, tail = 0, 0, b""
    data = s.recv(1 << 20)
    while True:
        received += len(data)
        chunk = tail + data
        seen += chunk.count(b"\r\n.\r\n")
        tail = chunk[-4:]
        if seen >= count:
            break
        data = s.recv(1 << 20)
        if not data:
            raise EOFError("server closed during the transfer")
    elapsed = time.perf_counter() - t
    s.sendall(b"QUIT\r\n")
    answer = b""
    while not answer.endswith(b"\r\n"):
        answer += s.recv(65536)
    assert answer.startswith(b"+OK"), answer
    s.close()
    return count, received, elapsed


def peak_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total = max(total, int(line.split()[1]))
        except OSError:
            pass
    return total


def big_retr(srv):
    s, f, _ = login(srv.port)
    count, _ = stat(f, s)
    s.sendall(b"RETR %d\r\n" % count)
    got, tail = 0, b""
    while True:
        data = s.recv(1 << 20)
        got += len(data)
        if (tail + data).endswith(b"\r\n.\r\n"):
            break
        tail = data[-4:]
    peak = peak_kib(srv.pids())
    quit(s, f)
    return got, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--big-mb", type=int, default=50)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="ipop3d-bench-")
    os.chmod(base, 0o755)
    user = "nobody"
    src = os.path.join(base, "source")
    make_maildir(src, args.messages)
    servers = [Ipop3d]
    if os.path.exists("/usr/lib/dovecot/pop3"):
        servers.append(Dovecot)
    else:
        print("dovecot-pop3d not installed: ipop3d figures only (apt-get install dovecot-pop3d)")
    rows = {}
    for cls in servers:
        md = os.path.join(base, f"maildir-{cls.name}")
        subprocess.run(["cp", "-a", src, md], check=True)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", user, md], check=True)
        srv = cls(base, md, user)
        r = rows[cls.name] = {}
        try:
            s, f, first = login(srv.port)
            quit(s, f)
            r["first login + STAT, no index (ms)"] = first * 1000
            s, f, again = login(srv.port)
            quit(s, f)
            r["login + STAT again (ms)"] = again * 1000
            best = None
            for _ in range(3):
                n, octets, t = pipelined_retr(srv.port)
                best = min(best or t, t)
            r["pipelined RETR of all (MB/s)"] = octets / best / 1e6
            r["pipelined RETR of all (msg/s)"] = n / best
        finally:
            srv.stop()
        add_big(md, args.big_mb)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", user, md], check=True)
        srv = cls(base, md, user)
        try:
            got, peak = big_retr(srv)
            r[f"RETR of a {args.big_mb} MB message: peak RSS (MB)"] = peak / 1024
        finally:
            srv.stop()
    size = sum(os.path.getsize(os.path.join(src, "new", f)) for f in os.listdir(os.path.join(src, "new")))
    print(f"\n{args.messages} messages, {size / 1e6:.0f} MB on disk; loopback; Python client")
    names = list(rows)
    print(f"{'figure':46} " + " ".join(f"{n:>10}" for n in names) + ("   ipop3d/dovecot" if len(names) == 2 else ""))
    for k in rows[names[0]]:
        vals = [rows[n].get(k) for n in names]
        cells = " ".join(f"{v:>10.1f}" for v in vals)
        ratio = f"   {vals[0] / vals[1]:.2f}x" if len(vals) == 2 and vals[1] else ""
        print(f"{k:46} {cells}{ratio}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
