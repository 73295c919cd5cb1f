#!/usr/bin/env python3
"""Mixed load, imapd beside Dovecot (figures only): clients that each, in a loop, pick
one of a hundred users and run a session in the spirit of imaptest's default profile:
LOGIN, LIST, STATUS, SELECT, FETCH of flags, a header and a body, STORE \\Seen and
\\Deleted, EXPUNGE, APPEND, LOGOUT. Both servers serve their own copy of the same
Maildirs, over loopback, to the same load generator (processes, not threads: Python's
lock must not be what limits the rate). Dovecot runs with reused processes
(service_count = 0, process_min_avail), as a busy site tunes it.

    tests/bench/run mixed [--clients 10,50] [--seconds 20] [--users 100] [--messages 40]
                          [--rounds 3]

Prints, per server and client count: session cycles and commands per second, each
command's median and 99th percentile latency, and the server's CPU use. The servers take
turns, round after round (a virtual machine's disk and neighbours change speed over a
minute), and the summary gives each round's ratio and their median.
"""
import argparse
import multiprocessing
import os
import pwd
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from support import free_port, wait_port  # noqa: E402

IMAPD = os.path.join(ROOT, "target", "release", "imapd")
PASSWORD = "bench"
BODY = "\r\n".join(f"line {i} of a message that is about two kilobytes long, as mail is"
                   for i in range(30)) + "\r\n"


def message(i, user):
    return (f"From: sender{i % 17}@example.com\r\nTo: {user}@example.org\r\n"
            f"Subject: message {i}\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{i}.{user}@bench>\r\n\r\n{BODY}")


def make_users(base, users, messages, owner):
    """`users` homes with a Maildir of `messages` messages each."""
    for u in range(users):
        md = os.path.join(base, f"user{u}", "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(md, sub))
        for i in range(messages):
            with open(os.path.join(md, "cur", f"{1700000000 + i}.M{i}P{u}.bench:2,"), "w") as f:
                f.write(message(i, f"user{u}").replace("\r\n", "\n"))
    subprocess.run(["chown", "-R", f"{owner.pw_uid}:{owner.pw_gid}", base], check=True)


class Imapd:
    name = "imapd"

    def __init__(self, base, users, owner):
        self.port = free_port()
        path = os.path.join(base, "imapd-passwd")
        with open(path, "w") as f:
            for u in range(users):
                f.write(f"user{u}:{{PLAIN}}{PASSWORD}::::{base}/user{u}::\n")
        os.chmod(path, 0o644)
        args = [IMAPD, "--listen", f"127.0.0.1:{self.port}", "--users", path,
                "--log-socket", "/nonexistent", "--user", owner.pw_name]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Dovecot:
    name = "dovecot"

    def __init__(self, base, users, owner):
        self.port = free_port()
        d = os.path.join(base, "dovecot")
        os.makedirs(d)
        os.chmod(d, 0o755)
        path = os.path.join(d, "users")
        with open(path, "w") as f:
            for u in range(users):
                f.write(f"user{u}:{{PLAIN}}{PASSWORD}:{owner.pw_uid}:{owner.pw_gid}::"
                        f"{base}/user{u}::\n")
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"""protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
ssl = no
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {path}
}}
userdb {{
  driver = passwd-file
  args = {path}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.port}
  }}
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  service_count = 0
  process_min_avail = 4
  process_limit = 1024
}}
protocol imap {{
  mail_max_userip_connections = 10000
}}
""")
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, "dovecot")
        time.sleep(1)  # process_min_avail processes up

    def pids(self):
        out = subprocess.run(["pgrep", "-f", "dovecot"], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        for path in [f"/proc/{pid}/stat"] + [f"/proc/{pid}/task/{t}/stat" for t in []]:
            try:
                with open(path) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                # utime, stime, cutime, cstime: children (per-session processes) too.
                total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
            except OSError:
                pass
    return total


class Session:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.n = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                self.buf += self.sock.recv(1 << 16)
            self.buf = self.buf[n:]
            line += b"..." + self.line()
        return line

    def cmd(self, text, literal=None, gone_ok=False):
        self.n += 1
        tag = f"c{self.n}".encode()
        if literal is None:
            self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            while not self.line().startswith(b"+"):
                pass
            self.sock.sendall(literal + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                gone = gone_ok and line.startswith(tag + b" NO [EXPUNGEISSUED]")
                if not line.startswith(tag + b" OK") and not gone:
                    raise RuntimeError(f"{text}: {line!r}")
                return

    def close(self):
        self.sock.close()


def worker(port, users, seconds, threads, seed, queue):
    import threading
    lat = {}
    cycles = [0]
    errors = []
    lock = threading.Lock()

    def one(n):
        rng = random.Random(seed * 1000 + n)
        end = time.time() + seconds
        while time.time() < end:
            user = f"user{rng.randrange(users)}"
            try:
                s = Session(port)
                steps = [
                    ("LOGIN", f'LOGIN {user} "{PASSWORD}"', None),
                    ("LIST", 'LIST "" "*"', None),
                    ("STATUS", "STATUS INBOX (MESSAGES UNSEEN UIDNEXT)", None),
                    ("SELECT", "SELECT INBOX", None),
                    ("FETCH flags", "FETCH 1:* (UID FLAGS)", None),
                    ("FETCH header", f"UID FETCH {rng.randint(1, 30)} (BODY.PEEK[HEADER])", None),
                    ("FETCH body", f"UID FETCH {rng.randint(1, 30)} (BODY[])", None),
                    ("STORE", f"STORE {rng.randint(1, 20)} +FLAGS (\\Seen)", None),
                    ("STORE deleted", "STORE 1 +FLAGS (\\Deleted)", None),
                    ("EXPUNGE", "EXPUNGE", None),
                    ("APPEND", "APPEND INBOX", message(rng.randrange(10**6), user).encode()),
                    ("LOGOUT", "LOGOUT", None),
                ]
                for name, text, literal in steps:
                    t = time.perf_counter()
                    # Another client of the same user may have expunged the message a
                    # FETCH names: NO [EXPUNGEISSUED] is a right answer (RFC 2180 4.1.2).
                    s.cmd(text, literal, gone_ok=name.startswith("FETCH"))
                    dt = time.perf_counter() - t
                    with lock:
                        lat.setdefault(name, []).append(dt)
                s.close()
                with lock:
                    cycles[0] += 1
            except Exception as e:  # reported, not hidden
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

    ts = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    queue.put((lat, cycles[0], errors))


def run(server, users, clients, seconds):
    procs = min(clients, max(2, os.cpu_count() or 2))
    queue = multiprocessing.Queue()
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    cpu0 = cpu_seconds(server.pids())
    t0 = time.time()
    ps = [multiprocessing.Process(target=worker, args=(server.port, users, seconds, n, i, queue))
          for i, n in enumerate(per)]
    for p in ps:
        p.start()
    results = [queue.get() for _ in ps]
    for p in ps:
        p.join()
    wall = time.time() - t0
    cpu = cpu_seconds(server.pids()) - cpu0
    lat, cycles, errors = {}, 0, []
    for lt, c, e in results:
        cycles += c
        errors += e
        for k, v in lt.items():
            lat.setdefault(k, []).extend(v)
    commands = sum(len(v) for v in lat.values())
    return {"cycles/s": cycles / wall, "commands/s": commands / wall, "cpu%": 100 * cpu / wall,
            "lat": lat, "errors": errors}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", default="10,50")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=40)
    ap.add_argument("--servers", default="imapd,dovecot")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
    if os.geteuid() == 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "imapbench"],
                       stderr=subprocess.DEVNULL)
        owner = pwd.getpwnam("imapbench")
    servers = [s for s in a.servers.split(",") if s != "dovecot" or shutil.which("dovecot")]
    table = {}
    for round_no, clients in [(r, int(c)) for r in range(a.rounds) for c in a.clients.split(",")]:
        for name in servers:
            base = tempfile.mkdtemp(prefix="imap-mixed-")
            os.chmod(base, 0o755)
            try:
                make_users(base, a.users, a.messages, owner)
                server = (Imapd if name == "imapd" else Dovecot)(base, a.users, owner)
                try:
                    r = run(server, a.users, clients, a.seconds)
                finally:
                    server.stop()
            finally:
                shutil.rmtree(base, ignore_errors=True)
            table.setdefault((name, clients), []).append(r)
            print(f"\n{name}, round {round_no + 1}, {clients} clients, {a.users} users, "
                  f"{a.seconds:.0f} s: "
                  f"{r['cycles/s']:.1f} sessions/s, {r['commands/s']:.0f} commands/s, "
                  f"server CPU {r['cpu%']:.0f}%, {len(r['errors'])} errors", flush=True)
            for e in r["errors"][:5]:
                print(f"  error: {e}")
            for k, v in r["lat"].items():
                v.sort()
                print(f"  {k:14} median {1000 * statistics.median(v):7.2f} ms   "
                      f"p99 {1000 * v[int(len(v) * 0.99)]:7.2f} ms   n={len(v)}")
    if "dovecot" in servers and "imapd" in servers:
        print()
        for clients in [int(c) for c in a.clients.split(",")]:
            ours = [r["commands/s"] for r in table[("imapd", clients)]]
            theirs = [r["commands/s"] for r in table[("dovecot", clients)]]
            ratios = [o / t for o, t in zip(ours, theirs)]
            print(f"{clients} clients: imapd {statistics.median(ours):.0f} commands/s, Dovecot "
                  f"{statistics.median(theirs):.0f} (medians); per round "
                  + ", ".join(f"{r:.2f}" for r in ratios)
                  + f"; median {statistics.median(ratios):.2f} x")


if __name__ == "__main__":
    main()
