"""Replays protocol transcripts against the real servers: tests/transcripts/*.txt
against imapd, tests/transcripts/pop3/*.txt against ipop3d, in both run modes.

Format: `C: text` is sent with CRLF; `C+ text` is sent without waiting (pipelined);
`S: regex` must match the next server line in full; `S* regex` skips server lines
until one matches; `M: text` delivers a message (`\n` escapes) to INBOX before the
connection opens. `{user}` and `{password}` stand for the test account."""
import glob
import os
import re

import pytest

from conftest import PASSWORD

HERE = os.path.join(os.path.dirname(__file__), "transcripts")
TRANSCRIPTS = sorted(glob.glob(os.path.join(HERE, "*.txt")))
POP3_TRANSCRIPTS = sorted(glob.glob(os.path.join(HERE, "pop3", "*.txt")))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: os.path.basename(p)[:-4])
def test_transcript(server, path):
    replay(server, path)


@pytest.mark.parametrize("path", POP3_TRANSCRIPTS, ids=lambda p: os.path.basename(p)[:-4])
def test_pop3_transcript(pop3, path):
    replay(pop3, path)


def replay(server, path):
    subst = {"{user}": server.account.name, "{password}": PASSWORD}
    with open(path) as f:
        steps = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    assert steps, path
    for step in steps:
        if step.startswith("M: "):
            server.account.deliver(step[3:].encode().decode("unicode_escape"))
    steps = [s for s in steps if not s.startswith("M: ")]
    r = server.raw()
    for n, step in enumerate(steps, 1):
        kind, _, text = step.partition(" ")
        for k, v in subst.items():
            text = text.replace(k, v)
        if kind in ("C:", "C+"):
            r.send(text.encode("utf-8").decode("unicode_escape").encode("latin-1") + b"\r\n")
        elif kind == "S:":
            line = r.line()
            assert re.fullmatch(text, line, re.S), f"{os.path.basename(path)} step {n}: {line!r} !~ {text!r}"
        elif kind == "S*":
            while True:
                line = r.line()
                if re.fullmatch(text, line, re.S):
                    break
        else:
            raise AssertionError(f"bad transcript line {n}: {step!r}")
    r.close()
