#!/usr/bin/env python3
"""The many-sessions stress test (tests/stress.py) run long: N IMAP clients, procmail and
a POP3 client on one INBOX, for each store and run mode, with the release binaries.
Prints what was done per minute and every violation found; exits 1 if any.

    tests/bench/run stress [--minutes 10] [--clients 10,50] [--stores maildir,mbox]
                           [--modes daemon,inetd] [--seed N]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("IMAPD_BIN", os.path.join(ROOT, "target", "release", "imapd"))
os.environ.setdefault("IPOP3D_BIN", os.path.join(ROOT, "target", "release", "ipop3d"))
import stress  # noqa: E402
from conftest import IPOP3D, PASSWORD, Account, Server, SyslogCatcher  # noqa: E402
from test_mbox import MboxAccount, make_base  # noqa: E402


def one_run(store, mode, clients, seconds, seed):
    base = make_base()
    log_dir = tempfile.mkdtemp(prefix="imapd-log-")
    os.chmod(log_dir, 0o755)
    syslog = SyslogCatcher(os.path.join(log_dir, "log"))
    acc = MboxAccount(base) if store == "mbox" else Account(base)
    servers = []
    try:
        rc = stress.prepare(store, acc, base)
        imap = Server(mode, acc, syslog)
        servers.append(imap)
        pop = Server(mode, acc, syslog, binary=IPOP3D)
        servers.append(pop)
        start = time.time()
        world = stress.run("127.0.0.1", imap.port, acc.name, PASSWORD, seconds, clients=clients,
                           seed=seed, pop_port=pop.port, procmailrc=rc, become=acc.become)
        elapsed = time.time() - start
        panics = [line for line in syslog.lines if "panic" in line]
        return world, panics, elapsed
    finally:
        for s in servers:
            s.stop()
        syslog.close()
        acc.remove()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--clients", default="10,50")
    ap.add_argument("--stores", default="maildir,mbox")
    ap.add_argument("--modes", default="daemon,inetd")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    failed = False
    print(f"{'store':8} {'mode':7} {'clients':>7} {'minutes':>7}  per minute: "
          f"{'appends':>8} {'deliver':>8} {'stores':>8} {'expunged':>8} {'pop3':>6}  violations")
    for clients in [int(c) for c in a.clients.split(",")]:
        for store in a.stores.split(","):
            for mode in a.modes.split(","):
                world, panics, elapsed = one_run(store, mode, clients, a.minutes * 60, a.seed)
                per = lambda what: world.counts.get(what, 0) / (elapsed / 60)  # noqa: E731
                bad = len(world.violations) + len(panics)
                print(f"{store:8} {mode:7} {clients:>7} {elapsed / 60:>7.1f}  per minute: "
                      f"{per('appends'):>8.0f} {per('deliveries'):>8.0f} "
                      f"{per('keyword stores'):>8.0f} {per('expunges seen') / clients:>8.0f} "
                      f"{per('pop3 sessions'):>6.0f}  {bad} (seed {world.seed})", flush=True)
                for v in (world.violations + panics)[:20]:
                    print(f"    {v[:400]}")
                failed |= bad > 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
