"""Many sessions on one mailbox at once, each checking every response against what it
was told before (RFC 3501 7.4.1): used by tests/test_stress.py (short runs in the
suite) and tests/bench/stress_bench.py (long runs, more clients).

N IMAP clients do random SELECT/FETCH/STORE/EXPUNGE/APPEND/COPY/MOVE/IDLE/STATUS on one
INBOX while an MDA delivers and, optionally, a POP3 client takes its own messages. Each
IMAP client keeps a model of the mailbox built only from the responses it received
(sequence numbers, UIDs, flags) and reports a violation when a response contradicts it:
- a sequence number whose UID changes, an EXPUNGE or FETCH past the end, EXISTS that
  shrinks, UIDs out of order, a UID that names two messages, UIDNEXT going back;
- a flag a client set that disappears: each client owns one keyword ($cN) only it
  changes, so after its STORE completes every FLAGS it sees must agree;
- a message expunged that its owner never marked \\Deleted (or moved away); only the
  owner sets \\Deleted on its messages (client 0 owns the MDA's);
- a BYE or a BAD it did not provoke, a NO to a command that cannot fail.
At the end a fresh session checks that every message appended or delivered and not
legitimately removed is there, once. A failing run names its seed.
"""
import os
import random
import re
import socket
import subprocess
import threading
import time

ATOM_END = b" ()[]{\r\n"
KEYWORD_OWNERS = 20


class Violation(Exception):
    pass


def parse_list(data, i):
    """Parse one IMAP value at data[i:]; returns (value, next index). Lists become
    Python lists, strings and literals bytes, atoms bytes, NIL None."""
    while data[i:i + 1] == b" ":
        i += 1
    c = data[i:i + 1]
    if c == b"(":
        out = []
        i += 1
        while True:
            while data[i:i + 1] == b" ":
                i += 1
            if data[i:i + 1] == b")":
                return out, i + 1
            v, i = parse_list(data, i)
            out.append(v)
    if c == b'"':
        j = i + 1
        buf = bytearray()
        while data[j:j + 1] != b'"':
            if data[j:j + 1] == b"\\":
                j += 1
            buf += data[j:j + 1]
            j += 1
        return bytes(buf), j + 1
    if c == b"{":
        j = data.index(b"}", i)
        n = int(data[i + 1:j])
        start = j + 3  # "}\r\n"
        return data[start:start + n], start + n
    j = i
    while j < len(data) and data[j:j + 1] not in (b" ", b"(", b")", b"\r", b"\n"):
        if data[j:j + 1] == b"[":
            # BODY[HEADER.FIELDS (A B)]: the section is part of the atom.
            j = data.index(b"]", j)
        j += 1
    atom = data[i:j]
    return (None if atom.upper() == b"NIL" else atom), j


class World:
    """What all clients share: who owns which message, what happened to it, and the
    violations found."""

    def __init__(self, seed, log=None):
        self.lock = threading.Lock()
        self.seed = seed
        self.by_uid = {}        # INBOX uid -> token
        self.by_token = {}      # token -> {"owner", "uid", "deletable", "moved", "state"}
        self.expected = set()   # tokens that must be in INBOX at the end
        self.archived = []      # tokens COPYed or MOVEd into Archive
        self.pop_uidl = {}      # POP3 UIDL -> token
        self.violations = []
        self.counts = {}
        self.log = log

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def violation(self, who, text):
        with self.lock:
            self.violations.append(f"{who}: {text}")

    def new_token(self, owner):
        with self.lock:
            token = f"t{len(self.by_token)}x{random.getrandbits(32):08x}"
            self.by_token[token] = {"owner": owner, "uid": None, "deletable": False,
                                    "moved": False, "state": "sending", "events": []}
            return token

    def event(self, token, text):
        """Something a client did to or learned of a message (told in a violation)."""
        with self.lock:
            info = self.by_token.get(token)
            if info is not None:
                info["events"].append(f"{time.time() % 1000:.3f} {text}")

    def delivered(self, token):
        with self.lock:
            self.by_token[token]["state"] = "present"
            self.expected.add(token)

    def learn(self, who, uid, token):
        """A client saw `uid` carry `token` (header fetch or APPENDUID)."""
        with self.lock:
            have = self.by_uid.get(uid)
            info = self.by_token.get(token)
        if have is not None and have != token:
            self.violation(who, f"UID {uid} names two messages: {have} and {token}")
            return
        if info is None:
            self.violation(who, f"UID {uid} carries a token nobody sent: {token!r}")
            return
        with self.lock:
            self.by_uid[uid] = token
            if info["uid"] is None:
                info["uid"] = uid
            elif info["uid"] != uid:
                self.violations.append(
                    f"{who}: message {token} had UID {info['uid']}, now {uid}")

    def expunged(self, who, uid):
        with self.lock:
            token = self.by_uid.get(uid)
            info = self.by_token.get(token) if token else None
        if info is None:
            self.count("expunges of unknown uids")
            return
        if not (info["deletable"] or info["moved"] or info["owner"] == "pop"):
            self.violation(who, f"UID {uid} ({token}, owner {info['owner']}) expunged "
                                f"though never marked \\Deleted by its owner; "
                                f"its story: {info['events']}")
        self.event(token, f"{who} saw EXPUNGE")
        with self.lock:
            info["state"] = "gone"
            self.expected.discard(token)


class ImapClient:
    def __init__(self, world, n, host, port, user, password, rng, clients):
        self.world, self.n, self.rng = world, n, rng
        self.who = f"imap{n}"
        # One keyword of its own per client, for the first KEYWORD_OWNERS: a Maildir holds
        # 26 keywords, an mbox 32, and fifty clients' would overflow them (NO [LIMIT]).
        self.kw = f"$c{n}" if n < KEYWORD_OWNERS else None
        self.clients = clients
        self.sock = socket.create_connection((host, port), timeout=60)
        self.buf = b""
        self.tagn = 0
        self.uids = []           # sequence -> UID (None: not learned yet)
        self.flags = {}          # UID -> set of lower-case flags
        self.mine = {}           # UID -> True/False: our keyword on it, as we set it
        self.inflight = set()    # UIDs whose keyword we are changing now
        self.uidvalidity = None
        self.uidnext = 0
        self.box = "INBOX"
        self.leaving = False
        self.greeting = self.line()
        self.cmd(f'LOGIN {user} "{password}"')

    # --- wire ---------------------------------------------------------------------
    def line(self):
        """One response with its literals inside."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise Violation(f"connection closed; after {out[-200:]!r}")
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\r\n", 1)
            out += raw
            m = re.search(rb"\{(\d+)\}$", raw)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise Violation("connection closed in a literal")
                self.buf += chunk
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, text, ok=True, literal=None):
        """Send a command, handle every response; returns (status, text, untagged)."""
        self.tagn += 1
        tag = f"a{self.tagn}"
        self.current = text
        if literal is None:
            self.send(f"{tag} {text}\r\n".encode())
        else:
            self.send(f"{tag} {text} {{{len(literal)}}}\r\n".encode())
            cont = self.line()
            if not cont.startswith(b"+"):
                raise Violation(f"no continuation for {text!r}: {cont!r}")
            self.send(literal + b"\r\n")
        return self.until(tag, text, ok)

    def until(self, tag, text, ok=True):
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag.encode() + b" "):
                status = line.split(b" ", 2)[1].decode()
                # RFC 2180 4.1.2: a FETCH naming a message another session expunged may
                # answer NO [EXPUNGEISSUED] (the others' data comes first), as Dovecot does.
                fetch_gone = (status == "NO" and b"[EXPUNGEISSUED]" in line
                              and re.match(r"(UID )?FETCH ", text))
                if fetch_gone:
                    self.world.count("fetch of expunged")
                elif status == "BAD" or (ok and status != "OK"):
                    raise Violation(f"{text!r} -> {line[:300]!r}")
                return status, line, untagged
            untagged.append(line)
            self.handle(line)

    # --- the model ------------------------------------------------------------------
    def check(self, cond, text):
        if not cond:
            self.world.violation(self.who, text)

    def handle(self, line):
        if not line.startswith(b"* "):
            return
        m = re.match(rb"\* (\d+) (EXISTS|EXPUNGE|RECENT|FETCH)\b", line)
        if m:
            n, what = int(m.group(1)), m.group(2)
            if what == b"EXISTS":
                self.check(n >= len(self.uids), f"EXISTS {n} below {len(self.uids)} known")
                self.uids.extend([None] * (n - len(self.uids)))
            elif what == b"EXPUNGE":
                if not 1 <= n <= len(self.uids):
                    self.check(False, f"EXPUNGE {n} with {len(self.uids)} messages")
                    return
                uid = self.uids.pop(n - 1)
                if uid is not None:
                    self.flags.pop(uid, None)
                    self.mine.pop(uid, None)
                    self.world.expunged(self.who, uid)
                self.world.count("expunges seen")
            elif what == b"FETCH":
                self.fetch(n, line)
            return
        if line.startswith(b"* BYE") and not self.leaving:
            self.check(False, f"unexpected {line!r}")
        m = re.search(rb"\[UIDVALIDITY (\d+)\]", line)
        if m:
            v = int(m.group(1))
            self.check(self.uidvalidity in (None, v), f"UIDVALIDITY {self.uidvalidity} -> {v}")
            self.uidvalidity = v
        m = re.search(rb"UIDNEXT (\d+)", line)
        if m:
            v = int(m.group(1))
            self.check(v >= self.uidnext, f"UIDNEXT went back: {self.uidnext} -> {v}")
            self.uidnext = v

    def fetch(self, n, line):
        if not 1 <= n <= len(self.uids):
            self.check(False, f"FETCH {n} with {len(self.uids)} messages: {line[:200]!r}")
            return
        items, _ = parse_list(line, line.index(b"FETCH") + 5)
        d = {}
        for k, v in zip(items[::2], items[1::2]):
            key = k.upper()
            if key.startswith(b"BODY[HEADER.FIELDS"):
                key = b"HEADER"
            d[key] = v
        uid = self.uids[n - 1]
        if b"UID" in d:
            got = int(d[b"UID"])
            if uid is None:
                before = [u for u in self.uids[:n - 1] if u is not None]
                after = [u for u in self.uids[n:] if u is not None]
                self.check(not before or before[-1] < got, f"UID {got} at {n} not above {before[-1:]}")
                self.check(not after or got < after[0], f"UID {got} at {n} not below {after[:1]}")
                self.uids[n - 1] = uid = got
            elif got != uid:
                self.check(False, f"UID changed for sequence {n}: {uid} -> {got}")
                return
        if uid is None:
            return
        if b"FLAGS" in d:
            flags = {f.decode().lower() for f in d[b"FLAGS"]}
            self.flags[uid] = flags
            want = self.mine.get(uid)
            if want is not None and self.kw and uid not in self.inflight:
                with self.world.lock:
                    token = self.world.by_uid.get(uid)
                    story = self.world.by_token[token]["events"] if token else []
                self.check((self.kw.lower() in flags) == want,
                           f"UID {uid}: our {self.kw} should be {'set' if want else 'clear'}, "
                           f"FLAGS {sorted(flags)} in a response to {self.current!r}; "
                           f"its story: {story}")
        if b"HEADER" in d and self.box == "INBOX":
            token = re.search(rb"X-Token: (\S+)", d[b"HEADER"] or b"", re.I)
            if token:
                self.world.learn(self.who, uid, token.group(1).decode())

    def learn_new(self):
        """UIDs, flags and tokens of messages this client has not identified yet."""
        if None in self.uids:
            first = self.uids.index(None) + 1
            self.cmd(f"FETCH {first}:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (X-Token X-Owner)])")

    def known(self):
        return [u for u in self.uids if u is not None]

    def owner_of(self, uid):
        with self.world.lock:
            t = self.world.by_uid.get(uid)
            return self.world.by_token[t]["owner"] if t else None

    def my_messages(self):
        owners = {f"c{self.n}"} | ({"mda"} if self.n == 0 else set())
        return [u for u in self.known() if self.owner_of(u) in owners]

    # --- operations -----------------------------------------------------------------
    def select(self):
        self.uids, self.flags = [], {}
        self.cmd("SELECT INBOX")
        self.learn_new()

    def op_noop(self):
        self.cmd("NOOP")

    def op_fetch_flags(self):
        if self.uids:
            self.cmd("FETCH 1:* (UID FLAGS)")

    def op_fetch_body(self):
        known = self.known()
        if not known:
            return
        uid = self.rng.choice(known)
        st, _, untagged = self.cmd(f"UID FETCH {uid} (UID BODY[])")
        with self.world.lock:
            token = self.world.by_uid.get(uid)
        for line in untagged:
            if re.match(rb"\* \d+ FETCH .*UID %d\b" % uid, line) and b"BODY[]" in line:
                self.check(token is None or token.encode() in line, f"UID {uid} body lacks {token}")

    def op_keyword(self):
        known = self.known()
        if not known or self.kw is None:
            return
        chosen = self.rng.sample(known, min(len(known), self.rng.randint(1, 4)))
        add = self.rng.random() < 0.6
        by_seq = self.rng.random() < 0.3
        self.inflight.update(chosen)
        try:
            if by_seq:
                seqs = ",".join(str(self.uids.index(u) + 1) for u in chosen)
                text = f"STORE {seqs} {'+' if add else '-'}FLAGS ({self.kw})"
            else:
                silent = ".SILENT" if self.rng.random() < 0.3 else ""
                text = (f"UID STORE {','.join(map(str, chosen))} "
                        f"{'+' if add else '-'}FLAGS{silent} ({self.kw})")
            _, tagged, untagged = self.cmd(text)
        finally:
            self.inflight.difference_update(chosen)
        # What the store answered for: a message expunged meanwhile gets no FETCH (its
        # EXPUNGE follows), and .SILENT answers only where the result differs.
        answered = {}  # UID -> the flags the STORE answered with
        for line in untagged:
            f = re.search(rb"FLAGS \(([^)]*)\)", line)
            flags = {x.decode().lower() for x in f.group(1).split()} if f else set()
            m = re.match(rb"\* (\d+) FETCH .*?\bUID (\d+)", line)
            if m:
                answered[int(m.group(2))] = flags
            else:
                m = re.match(rb"\* (\d+) FETCH ", line)
                if m and int(m.group(1)) <= len(self.uids):
                    answered[self.uids[int(m.group(1)) - 1]] = flags
        for u in chosen:
            with self.world.lock:
                token = self.world.by_uid.get(u)
            if token:
                self.world.event(token, f"{self.who} {text}: {tagged!r}")
            if u in answered:
                self.check((self.kw.lower() in answered[u]) == add,
                           f"UID {u}: {text!r} answered FLAGS {sorted(answered[u])}")
                self.mine[u] = add
            else:
                self.mine[u] = None  # applied, or gone meanwhile: not known
        self.world.count("keyword stores")

    def op_flagged(self):
        known = self.known()
        if known:
            u = self.rng.choice(known)
            self.cmd(f"UID STORE {u} {self.rng.choice('+-')}FLAGS (\\Flagged)")

    def op_delete(self):
        """Mark one of our messages \\Deleted, or clear it again."""
        mine = self.my_messages()
        if not mine:
            return
        u = self.rng.choice(mine)
        with self.world.lock:
            info = self.world.by_token[self.world.by_uid[u]]
        token = self.world.by_uid[u]
        if self.rng.random() < 0.75:
            info["deletable"] = True  # from the moment the command is sent
            _, tagged, _ = self.cmd(f"UID STORE {u} +FLAGS (\\Deleted)")
            self.world.event(token, f"{self.who} +Deleted: {tagged!r}")
            self.world.count("deletes")
        else:
            _, tagged, untagged = self.cmd(f"UID STORE {u} -FLAGS (\\Deleted)")
            # Cleared only if the store says so for a message still there.
            for line in untagged:
                if re.search(rb"FETCH \(.*UID %d\b" % u, line) and b"\\Deleted" not in line:
                    info["deletable"] = False
            self.world.event(token, f"{self.who} -Deleted: {untagged} {tagged!r} "
                                    f"deletable={info['deletable']}")

    def op_expunge(self):
        if self.rng.random() < 0.5:
            self.cmd("EXPUNGE")
        else:
            known = self.known()
            if known:
                self.cmd(f"UID EXPUNGE {self.rng.choice(known)}:*")
        self.expunged_by_me = True

    def op_append(self):
        token = self.world.new_token(f"c{self.n}")
        with_kw = self.kw is not None and self.rng.random() < 0.5
        flags = f"({self.kw} \\Seen)" if with_kw else "()"
        msg = (f"From: c{self.n}@example.org\r\nTo: box@example.org\r\nSubject: from c{self.n}\r\n"
               f"X-Owner: c{self.n}\r\nX-Token: {token}\r\n\r\nbody of {token}\r\n").encode()
        _, tagged, _ = self.cmd(f"APPEND INBOX {flags}", literal=msg)
        self.world.delivered(token)
        m = re.search(rb"APPENDUID (\d+) (\d+)", tagged)
        self.check(m is not None, f"APPEND without APPENDUID: {tagged!r}")
        if m:
            uid = int(m.group(2))
            self.world.learn(self.who, uid, token)
            if with_kw:
                self.mine[uid] = True
        self.world.count("appends")

    def op_copy(self):
        known = self.known()
        if not known:
            return
        u = self.rng.choice(known)
        with self.world.lock:
            token = self.world.by_uid.get(u)
        status, _, _ = self.cmd(f"UID COPY {u} Archive", ok=False)
        if status == "OK" and token:
            with self.world.lock:
                self.world.archived.append(token)
        self.world.count("copies")

    def op_move(self):
        mine = self.my_messages()
        if not mine:
            return
        u = self.rng.choice(mine)
        with self.world.lock:
            token = self.world.by_uid[u]
            self.world.by_token[token]["moved"] = True
        status, tagged, untagged = self.cmd(f"UID MOVE {u} Archive", ok=False)
        self.world.event(token, f"{self.who} MOVE: {untagged} {tagged!r}")
        with self.world.lock:
            if status == "OK":
                self.world.archived.append(token)
            else:
                self.world.by_token[token]["moved"] = False
        self.world.count("moves")

    def op_idle(self):
        self.tagn += 1
        tag = f"a{self.tagn}"
        self.send(f"{tag} IDLE\r\n".encode())
        line = self.line()
        while not line.startswith(b"+"):
            self.handle(line)
            line = self.line()
        self.sock.settimeout(0.05)
        end = time.time() + self.rng.uniform(0.05, 0.4)
        while time.time() < end:
            try:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise Violation("connection closed in IDLE")
                self.buf += chunk
            except socket.timeout:
                pass
            # Only EXISTS, EXPUNGE, RECENT and FETCH FLAGS come in IDLE: no literals.
            while b"\r\n" in self.buf:
                self.handle(self.line())
        self.sock.settimeout(60)
        self.send(b"DONE\r\n")
        self.until(tag, "IDLE")

    def op_status(self):
        _, _, untagged = self.cmd("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")

    def op_reselect(self):
        self.select()

    OPS = [(op_noop, 8), (op_fetch_flags, 8), (op_fetch_body, 6), (op_keyword, 20),
           (op_flagged, 5), (op_delete, 8), (op_expunge, 5), (op_append, 10), (op_copy, 3),
           (op_move, 2), (op_idle, 4), (op_status, 3), (op_reselect, 2)]

    def run(self, stop):
        self.select()
        ops = [op for op, w in self.OPS for _ in range(w)]
        while stop.running():
            self.rng.choice(ops)(self)
            self.learn_new()
        self.leaving = True
        self.cmd("LOGOUT")
        self.sock.close()


class PopClient:
    """Takes its own messages (X-Owner: pop) from the maildrop, as fetchmail would."""

    def __init__(self, world, host, port, user, password, rng):
        self.world, self.host, self.port = world, host, port
        self.user, self.password, self.rng = user, password, rng

    def session(self):
        s = socket.create_connection((self.host, self.port), timeout=60)
        f = s.makefile("rb")

        def cmd(text, multi=False):
            s.sendall(text.encode() + b"\r\n")
            first = f.readline()
            if not first.startswith(b"+OK"):
                return first, None
            if not multi:
                return first, None
            lines = []
            while True:
                line = f.readline()
                if line == b".\r\n":
                    return first, lines
                lines.append(line[1:] if line.startswith(b"..") else line)

        if not f.readline().startswith(b"+OK"):
            raise Violation("pop3: no greeting")
        cmd(f"USER {self.user}")
        ok, _ = cmd(f"PASS {self.password}")
        if not ok.startswith(b"+OK"):
            # Another POP3 session holds the maildrop: allowed, try later.
            self.world.count("pop3 maildrop busy")
            s.close()
            return
        _, uidl = cmd("UIDL", multi=True)
        deleted = []
        for entry in uidl:
            num, u = entry.decode().split()
            first, head = cmd(f"TOP {num} 0", multi=True)
            if head is None:
                continue  # expunged by IMAP meanwhile
            text = b"".join(head)
            t = re.search(rb"X-Token: (\S+)", text, re.I)
            owner = re.search(rb"X-Owner: (\S+)", text, re.I)
            if not t:
                continue
            token = t.group(1).decode()
            with self.world.lock:
                was = self.world.pop_uidl.setdefault(u, token)
            if was != token:
                self.world.violation("pop3", f"UIDL {u} was {was}, now {token}")
            if owner and owner.group(1) == b"pop" and self.rng.random() < 0.7:
                r, _ = cmd(f"DELE {num}")
                if r.startswith(b"+OK"):
                    deleted.append(token)
        if uidl and self.rng.random() < 0.5:
            num = self.rng.randint(1, len(uidl))
            cmd(f"RETR {num}", multi=True)
        r, _ = cmd("QUIT")
        if r.startswith(b"+OK"):
            with self.world.lock:
                for token in deleted:
                    self.world.expected.discard(token)
                    self.world.by_token[token]["state"] = "gone"
            self.world.count("pop3 deletes", len(deleted))
        s.close()
        self.world.count("pop3 sessions")

    def run(self, stop):
        while stop.running():
            self.session()
            time.sleep(self.rng.uniform(0.1, 0.5))


class Mda:
    """Delivers with procmail, as the MTA would, every few tens of milliseconds."""

    def __init__(self, world, rcfile, become, rng, with_pop):
        self.world, self.rcfile, self.become = world, rcfile, become
        self.rng, self.with_pop = rng, with_pop

    def run(self, stop):
        while stop.running():
            owner = "pop" if self.with_pop and self.rng.random() < 0.5 else "mda"
            token = self.world.new_token(owner)
            text = (f"From: sender@example.com\nTo: box@example.org\nSubject: delivered\n"
                    f"X-Owner: {owner}\nX-Token: {token}\n\nFrom the MDA: {token}\n")
            p = subprocess.run(["procmail", "-f", "mda@example.com", "-m", self.rcfile],
                               input=text.encode(), preexec_fn=self.become,
                               capture_output=True, timeout=120)
            if p.returncode != 0:
                self.world.violation("mda", f"procmail failed: {p.stderr!r}")
                return
            self.world.delivered(token)
            self.world.count("deliveries")
            time.sleep(self.rng.uniform(0.02, 0.1))


def prepare(store, acc, base):
    """An empty INBOX for `acc` in `store` ("maildir" or "mbox") and the procmailrc
    that delivers to it (in `base`): `:0:` (a lock file) for mbox, as an MTA's
    procmail delivers; a Maildir needs none. LOCKSLEEP: retry a busy lock each second."""
    rc = os.path.join(base, "procmailrc")
    target = acc.spool if store == "mbox" else acc.maildir + "/"
    with open(rc, "w") as f:
        f.write(f"LOCKSLEEP=1\n:0{':' if store == 'mbox' else ''}\n{target}\n")
    os.chmod(rc, 0o644)
    if store == "mbox":
        acc.write_spool(b"")
    else:
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(acc.maildir, sub), exist_ok=True)
        acc.fix_owner()
    return rc


class Stop:
    """When the clients stop: after `seconds`, or, if `kinds` are given, once each of
    those counts has happened too (a slow machine, qemu-user, gets through fewer
    operations in the same time), but never after `at_most` seconds."""

    def __init__(self, world, seconds, kinds=(), at_most=None):
        start = time.time()
        self.world, self.kinds = world, kinds
        self.soonest = start + seconds
        self.latest = start + max(seconds, at_most or seconds)

    def running(self):
        now = time.time()
        if now < self.soonest:
            return True
        return now < self.latest and any(self.world.counts.get(k, 0) == 0 for k in self.kinds)


def run(host, imap_port, user, password, seconds, clients=10, seed=None, pop_port=None,
        procmailrc=None, become=None, kinds=(), at_most=None):
    """One stress run; returns the World (violations, counts). It runs `seconds`, and on
    until every count in `kinds` has happened, `at_most` seconds in all."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    world = World(seed)
    stop = Stop(world, seconds, kinds, at_most)
    workers = []
    errors = []

    def guarded(name, fn):
        try:
            fn(stop)
        except Violation as e:
            world.violation(name, str(e))
        except Exception as e:  # a crash of the test client is a failure too
            errors.append(f"{name}: {type(e).__name__}: {e}")

    # The Archive folder that COPY and MOVE fill.
    setup = ImapClient(world, 99, host, imap_port, user, password, random.Random(seed), clients)
    setup.cmd("CREATE Archive", ok=False)
    setup.leaving = True
    setup.cmd("LOGOUT")
    for n in range(clients):
        c = ImapClient(world, n, host, imap_port, user, password,
                       random.Random(seed * 1000 + n), clients)
        workers.append(threading.Thread(target=guarded, args=(c.who, c.run)))
    if procmailrc:
        mda = Mda(world, procmailrc, become, random.Random(seed + 7), pop_port is not None)
        workers.append(threading.Thread(target=guarded, args=("mda", mda.run)))
    if pop_port:
        pop = PopClient(world, host, pop_port, user, password, random.Random(seed + 11))
        workers.append(threading.Thread(target=guarded, args=("pop3", pop.run)))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=max(0, stop.latest - time.time()) + 300)
        if w.is_alive():
            errors.append(f"a client hung past the end ({w.name})")
    for e in errors:
        world.violation("harness", e)
    final_check(world, host, imap_port, user, password)
    return world


def final_check(world, host, port, user, password):
    """Every message appended or delivered, and not removed by its owner, is in INBOX
    once; Archive holds every copy."""
    c = ImapClient(world, 98, host, port, user, password, random.Random(0), 0)
    for box in ("INBOX", "Archive"):
        c.uids, c.flags, c.box = [], {}, box
        c.uidvalidity, c.uidnext = None, 0
        c.cmd(f"EXAMINE {box}")
        tokens = []
        if c.uids:
            _, _, untagged = c.cmd("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (X-Token)])")
            for line in untagged:
                m = re.search(rb"X-Token: (\S+)", line, re.I)
                if m:
                    tokens.append(m.group(1).decode())
        with world.lock:
            if box == "INBOX":
                expected = sorted(world.expected)
            else:
                expected = sorted(world.archived)
        if sorted(tokens) != expected:
            missing = sorted(set(expected) - set(tokens))
            extra = sorted(set(tokens) - set(expected))
            dup = sorted({t for t in tokens if tokens.count(t) > 1})
            world.violation("final", f"{box}: {len(tokens)} messages, {len(expected)} expected; "
                                     f"missing {missing[:10]} extra {extra[:10]} twice {dup[:10]}")
        world.count(f"final {box}", len(tokens))
    c.leaving = True
    c.cmd("LOGOUT")
