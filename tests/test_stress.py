"""Many sessions on one mailbox at once (tests/stress.py): ten IMAP clients, an MDA
(procmail) and a POP3 client on one INBOX, in both stores and both run modes, each
client checking every response against its model of the mailbox. A short run here;
tests/bench/stress_bench.py runs it for minutes. A failure names the seed to replay
(IMAP_STRESS_SEED) and how long it ran (IMAP_STRESS_SECONDS)."""
import os
import shutil

import pytest

import stress
from conftest import IPOP3D, PASSWORD, Account, Server
from test_mbox import MboxAccount, make_base

SECONDS = float(os.environ.get("IMAP_STRESS_SECONDS", "8"))
CLIENTS = int(os.environ.get("IMAP_STRESS_CLIENTS", "10"))
SEED = os.environ.get("IMAP_STRESS_SEED")
# What a run must have done, concurrently, to have tested anything. Under qemu-user,
# with the other emulated suite beside it, 8 s of inetd mode (a qemu process per
# connection) was once 3 deliveries and no keyword STORE: a run goes on until each
# kind happened, 60 s at most.
KINDS = ("appends", "deliveries", "keyword stores", "deletes", "expunges seen", "pop3 sessions")
AT_MOST = max(SECONDS, 60)


@pytest.mark.parametrize("mode", ["daemon", "inetd"])
@pytest.mark.parametrize("store", ["maildir", "mbox"])
def test_many_sessions_on_one_mailbox_stay_consistent(store, mode, syslog):
    base = make_base()
    acc = MboxAccount(base) if store == "mbox" else Account(base)
    imap = pop = None
    try:
        rc = stress.prepare(store, acc, base)
        imap = Server(mode, acc, syslog)
        pop = Server(mode, acc, syslog, binary=IPOP3D)
        world = stress.run("127.0.0.1", imap.port, acc.name, PASSWORD, SECONDS,
                           clients=CLIENTS, seed=int(SEED) if SEED else None,
                           pop_port=pop.port, procmailrc=rc, become=acc.become,
                           kinds=KINDS, at_most=AT_MOST)
        panics = [line for line in syslog.lines if "panic" in line]
        report = (f"seed {world.seed}, {SECONDS} s, {CLIENTS} clients; counts {world.counts}")
        assert not world.violations, report + "\n" + "\n".join(world.violations[:40])
        assert not panics, report + "\n" + "\n".join(panics[:10])
        # The run did what it is for: every kind of change happened, concurrently.
        for what in KINDS:
            assert world.counts.get(what, 0) > 0, report
    finally:
        for s in (imap, pop):
            if s:
                s.stop()
        acc.remove()
        shutil.rmtree(base, ignore_errors=True)
