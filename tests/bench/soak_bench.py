#!/usr/bin/env python3
"""The daemon under a long mixed load (figures only): clients of every kind at once on a
hundred users, for an hour by default, with a probe client measuring what an ordinary
user feels. Prints one line a minute: the daemon's RSS and CPU, the probe's NOOP and
SELECT latency (median, p99, worst), and errors; then the whole run's summary.

    tests/bench/run soak [--minutes 60] [--clients 200] [--users 100] [--messages 200]

The clients (their shares of --clients): idle sessions that only NOOP now and then;
sessions in IDLE; busy readers (a command every second or two: FETCH of whole folders,
SEARCH TEXT, COPY to a folder and EXPUNGE it again); reconnecting clients (a session of a
few commands each time, deleting old mail so that folders keep their size); slow readers (FETCH of large messages, read at 64 KB/s); and an
MDA delivering into the users' Maildirs. The clients run in several processes and the
probe in one of its own, so that Python's interpreter lock does not time the load.
RSS should stay flat after the first minutes (within 10%) and go back down when the load
ends; the probe's p99 under 50 ms; client errors and server warnings zero.
"""
import argparse
import multiprocessing
import os
import pwd
import queue
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from support import free_port, wait_port  # noqa: E402

IMAPD = os.path.join(ROOT, "target", "release", "imapd")
PASSWORD = "soak"
BODY = "".join(f"line {i} of a message with some words: alpha bravo charlie {i}\r\n"
               for i in range(40))


def message(i, user, big=False):
    body = BODY * (400 if big else 1)  # about 1.2 MB for the slow readers
    return (f"From: sender{i % 13}@example.com\r\nTo: {user}@example.org\r\n"
            f"Subject: soak {i}\r\nMessage-ID: <{i}.{user}@soak>\r\n\r\n{body}")


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""
        self.n = 0
        self.rate = None  # bytes per second when reading slowly
        self.line()

    def _more(self):
        want = 65536 if self.rate is None else 8192
        chunk = self.sock.recv(want)
        if not chunk:
            raise EOFError("closed")
        self.buf += chunk
        if self.rate:
            time.sleep(len(chunk) / self.rate)

    def line(self):
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                self._more()
            self.buf = self.buf[n:]
            line += b" ..." + self.line()
        return line

    def cmd(self, text):
        """Send a command; its untagged lines."""
        self.n += 1
        tag = f"t{self.n}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK") and b"EXPUNGEISSUED" not in line:
                    raise RuntimeError(f"{text[:40]}: {line[:120]!r}")
                return untagged
            untagged.append(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Run:
    """The clients of one load process (or the probe's): results go to `results`, a
    queue the main process reads (errors, and the probe's timings)."""

    def __init__(self, port, users, stop, results):
        self.port, self.users, self.stop, self.results = port, users, stop, results

    def error(self, what):
        self.results.put(("error", time.time(), what))

    def login(self, rng):
        c = Client(self.port)
        c.cmd(f'LOGIN user{rng.randrange(self.users)} "{PASSWORD}"')
        return c

    def forever(self, body, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            try:
                body(rng)
            except Exception as e:  # counted, and the client starts over
                if not self.stop.is_set():
                    self.error(f"{body.__name__}: {type(e).__name__}: {e}")
                    time.sleep(1)

    def idle(self, rng):
        c = self.login(rng)
        c.cmd("SELECT INBOX")
        while not self.stop.is_set():
            self.stop.wait(rng.uniform(20, 40))
            c.cmd("NOOP")
        c.close()

    def idler(self, rng):
        c = self.login(rng)
        c.cmd("SELECT INBOX")
        while not self.stop.is_set():
            c.n += 1
            c.sock.sendall(f"i{c.n} IDLE\r\n".encode())
            while not (line := c.line()).startswith(b"+"):
                # Untagged news (EXISTS, EXPUNGE) may come before the continuation.
                assert line.startswith(b"* "), line
            self.stop.wait(rng.uniform(20, 60))
            c.sock.sendall(b"DONE\r\n")
            while not c.line().startswith(f"i{c.n} ".encode()):
                pass
        c.close()

    def busy(self, rng):
        c = self.login(rng)
        c.cmd("SELECT INBOX")
        for _ in range(20):
            # A person at work, not a loop: a command every second or two.
            if self.stop.wait(rng.uniform(0.5, 2)):
                break
            what = rng.random()
            if what < 0.4:
                c.cmd("FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)")
            elif what < 0.7:
                c.cmd(f"SEARCH TEXT \"{rng.choice(['alpha', 'zulu', 'soak 7'])}\"")
            else:
                try:
                    c.cmd("COPY 1:50 Scratch")
                except RuntimeError as e:
                    if b"TRYCREATE" not in str(e).encode():
                        raise
                    try:
                        c.cmd("CREATE Scratch")
                    except RuntimeError as e:  # another session of the user was first
                        if b"ALREADYEXISTS" not in str(e).encode():
                            raise
                c.cmd("SELECT Scratch")
                c.cmd("UID STORE 1:4294967295 +FLAGS.SILENT (\\Deleted)")
                c.cmd("EXPUNGE")
                c.cmd("SELECT INBOX")
        c.cmd("LOGOUT")
        c.close()

    def reconnecting(self, rng):
        c = self.login(rng)
        exists = [int(l.split()[1]) for l in c.cmd("SELECT INBOX") if l.endswith(b" EXISTS")]
        top = min(50, exists[0] if exists else 0)
        if top:
            c.cmd(f"FETCH {rng.randint(1, top)} (BODY.PEEK[])")
            c.cmd(f"STORE {rng.randint(1, top)} +FLAGS (\\Seen)")
        if exists and exists[0] > self.messages:
            # The user deletes old mail as new mail comes: folders stay the same size
            # over the hour, as in a steady state.
            c.cmd(f"STORE 1:{exists[0] - self.messages} +FLAGS.SILENT (\\Deleted)")
            c.cmd("EXPUNGE")
        c.cmd("LOGOUT")
        c.close()
        self.stop.wait(rng.uniform(0.5, 2))

    def slow_reader(self, rng):
        c = self.login(rng)
        c.cmd("SELECT Large")
        c.rate = 64 * 1024
        c.cmd("FETCH 1:2 (BODY.PEEK[])")
        c.cmd("LOGOUT")
        c.close()

    def mda(self, rng, base):
        n = 0
        while not self.stop.is_set():
            u = rng.randrange(self.users)
            md = os.path.join(base, f"user{u}", "Maildir")
            name = f"{time.time():.6f}.M{n}P{os.getpid()}.soak"
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "w") as f:
                f.write(message(n, f"user{u}"))
            os.chown(tmp, self.owner.pw_uid, self.owner.pw_gid)
            os.rename(tmp, os.path.join(md, "new", name))
            n += 1
            self.stop.wait(0.2)

    def prober(self, rng):
        while not self.stop.is_set():
            c = Client(self.port)
            c.cmd(f'LOGIN user0 "{PASSWORD}"')
            for _ in range(60):
                if self.stop.is_set():
                    break
                for name, text in (("NOOP", "NOOP"), ("SELECT", "SELECT INBOX")):
                    t = time.perf_counter()
                    c.cmd(text)
                    self.results.put(("probe", time.time(), name, time.perf_counter() - t))
                self.stop.wait(1)
            c.cmd("LOGOUT")
            c.close()


def make_users(base, users, messages, owner):
    for u in range(users):
        md = os.path.join(base, f"user{u}", "Maildir")
        for sub in ("cur", "new", "tmp", ".Large/cur", ".Large/new", ".Large/tmp"):
            os.makedirs(os.path.join(md, sub))
        for i in range(messages):
            with open(os.path.join(md, "cur", f"{1700000000 + i}.M{i}P{u}.soak:2,"), "w") as f:
                f.write(message(i, f"user{u}"))
        for i in range(2):
            with open(os.path.join(md, ".Large", "cur", f"{1700000000 + i}.L{i}P{u}.soak:2,"),
                      "w") as f:
                f.write(message(i, f"user{u}", big=True))
    subprocess.run(["chown", "-R", f"{owner.pw_uid}:{owner.pw_gid}", base], check=True)


def load_process(port, users, messages, base, owner, kinds, seed, stop, results, mda):
    """One process of load clients (Python's threads share one interpreter lock: the
    load is spread over several processes, and the probe has one of its own, so that
    what it measures is the server, not the load's own queueing)."""
    run = Run(port, users, stop, results)
    run.owner = owner
    run.messages = messages
    threads = []
    for kind in kinds:
        seed += 1
        threads.append(threading.Thread(target=run.forever, args=(getattr(run, kind), seed),
                                        daemon=True))
    if mda:
        threads.append(threading.Thread(target=run.mda, args=(random.Random(1), base),
                                         daemon=True))
    for t in threads:
        t.start()
        time.sleep(0.02)
    stop.wait()


def probe_process(port, users, stop, results):
    run = Run(port, users, stop, results)
    run.forever(run.prober, 999)


class ServerLog:
    """The daemon's syslog socket: warnings and errors kept (with their time), the rest
    only counted."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.lines = 0
        self.bad = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data = self.sock.recv(65536).decode("utf-8", "replace")
            except OSError:
                return
            self.lines += 1
            m = re.match(r"<(\d+)>", data)
            if m and int(m.group(1)) % 8 <= 4:  # emerg .. warning
                self.bad.append((time.time(), data[m.end():].strip()))


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(next(l for l in f if l.startswith("VmRSS:")).split()[1]) / 1024
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--processes", type=int, default=4, help="load client processes")
    ap.add_argument("--server-prefix", default="",
                    help="run the daemon under a tool, e.g. 'valgrind --tool=massif' "
                         "to see where its memory goes")
    a = ap.parse_args()
    owner = pwd.getpwuid(os.getuid())
    if os.geteuid() == 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "imapbench"],
                       stderr=subprocess.DEVNULL)
        owner = pwd.getpwnam("imapbench")
    base = tempfile.mkdtemp(prefix="imap-soak-")
    os.chmod(base, 0o755)
    try:
        print(f"making {a.users} users of {a.messages} messages...", flush=True)
        make_users(base, a.users, a.messages, owner)
        users_file = os.path.join(base, "passwd")
        with open(users_file, "w") as f:
            for u in range(a.users):
                f.write(f"user{u}:{{PLAIN}}{PASSWORD}::::{base}/user{u}::\n")
        os.chmod(users_file, 0o644)
        port = free_port()
        log = ServerLog(os.path.join(base, "log.sock"))
        command = [IMAPD, "--listen", f"127.0.0.1:{port}", "--users", users_file,
                   "--log-socket", log.path, "--user", owner.pw_name]
        server = subprocess.Popen(a.server_prefix.split() + command,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, timeout=120)
        stop = multiprocessing.Event()
        results = multiprocessing.Queue()
        shares = [("idle", 0.35), ("idler", 0.30), ("busy", 0.10), ("reconnecting", 0.15),
                  ("slow_reader", 0.10)]
        kinds = [kind for kind, share in shares for _ in range(max(1, int(a.clients * share)))]
        random.Random(7).shuffle(kinds)
        procs = []
        for i in range(a.processes):
            mine = kinds[i::a.processes]
            procs.append(multiprocessing.Process(
                target=load_process,
                args=(port, a.users, a.messages, base, owner, mine, 1000 * i, stop, results,
                      i == 0),
                daemon=True))
        procs.append(multiprocessing.Process(target=probe_process,
                                             args=(port, a.users, stop, results), daemon=True))
        for p in procs:
            p.start()
        probe, errors = [], []

        def drain():
            while True:
                try:
                    r = results.get_nowait()
                except queue.Empty:
                    return
                if r[0] == "probe":
                    probe.append(r[1:])
                else:
                    errors.append(r[1:])
        print(f"{len(kinds)} clients in {a.processes} processes, an MDA and a probe on "
              f"{a.users} users; one line a minute", flush=True)
        print(f"{'minute':>6} {'RSS MB':>8} {'CPU %':>6} {'NOOP p50/p99/max ms':>22} "
              f"{'SELECT p50/p99/max ms':>24} {'errors':>6} {'warnings':>8}", flush=True)
        start = time.time()
        rss0, cpu0 = proc_figures(server.pid)
        rows = []
        minute = 0
        while time.time() - start < a.minutes * 60:
            time.sleep(max(0, start + 60 * (minute + 1) - time.time()))
            minute += 1
            rss, cpu = proc_figures(server.pid)
            now = time.time()
            drain()
            recent = [p for p in probe if p[0] > now - 60]
            errs = [e for e in errors if e[0] > now - 60]
            bad = [b for b in log.bad if b[0] > now - 60]

            def fig(name):
                v = sorted(s * 1000 for _, n, s in recent if n == name)
                if not v:
                    return "-"
                return (f"{statistics.median(v):.1f}/{v[int(len(v) * 0.99)]:.1f}/"
                        f"{v[-1]:.1f}")
            print(f"{minute:>6} {rss:>8.1f} {100 * (cpu - cpu0) / 60:>6.0f} {fig('NOOP'):>22} "
                  f"{fig('SELECT'):>24} {len(errs):>6} {len(bad):>8}", flush=True)
            for _, e in errs[:3]:
                print(f"       error: {e}", flush=True)
            for _, b in bad[:3]:
                print(f"       server log: {b}", flush=True)
            rows.append(rss)
            cpu0 = cpu
        stop.set()
        drain()
        all_probe = sorted(s * 1000 for _, _, s in probe)
        warm = rows[min(2, len(rows) - 1):]
        end = time.time() + 60
        for p in procs:
            while p.is_alive() and time.time() < end:
                drain()  # a process with results still queued cannot end
                p.join(timeout=0.5)
            if p.is_alive():
                p.kill()
        # Memory should go back when the load ends (the clients are gone now).
        time.sleep(10)
        rss_after, _ = proc_figures(server.pid)
        print(f"\nRSS: start {rss0:.1f} MB, after warm-up {min(warm):.1f}-{max(warm):.1f} MB "
              f"({100 * (max(warm) - min(warm)) / max(min(warm), 1):.0f}% spread), "
              f"10 s after the load ended {rss_after:.1f} MB; "
              f"probe p99 {all_probe[int(len(all_probe) * 0.99)]:.1f} ms over "
              f"{len(all_probe)} commands; client errors {len(errors)}; server log "
              f"{log.lines} lines, {len(log.bad)} warnings or errors")
        server.terminate()
        server.wait()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
