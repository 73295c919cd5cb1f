"""Replays protocol transcripts (tests/transcripts/*.txt) against the real imapd.

Format: `C: text` is sent with CRLF; `C+ text` is sent without waiting (pipelined);
`S: regex` must match the next server line in full; `S* regex` skips server lines
until one matches. `{user}` and `{password}` stand for the test account."""
import glob
import os
import re

import pytest

from conftest import PASSWORD

TRANSCRIPTS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "transcripts", "*.txt")))


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: os.path.basename(p)[:-4])
def test_transcript(server, path):
    r = server.raw()
    subst = {"{user}": server.account.name, "{password}": PASSWORD}
    with open(path) as f:
        steps = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]
    assert steps, path
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
