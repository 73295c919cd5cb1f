#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/TARGET: the client lines of the IMAP and POP3
transcripts in tests/transcripts, and samples of each file format. Run again after
adding a transcript; libFuzzer grows the corpus from these (tests/fuzz)."""
import base64
import glob
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    data = data.encode() if isinstance(data, str) else data
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def client_lines(path):
    out = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("C: "):
            text = line[3:].rstrip("\n").replace("{user}", "fuzz").replace("{password}", "pw")
            out.append(text.replace("\\r\\n", "\r\n").encode() + b"\r\n")
    return out


imap = [p for p in glob.glob(os.path.join(ROOT, "tests/transcripts/*.txt"))]
pop3 = glob.glob(os.path.join(ROOT, "tests/transcripts/pop3/*.txt"))
for p in imap:
    lines = client_lines(p)
    # Sessions: chunk size byte, then the whole conversation (LOGIN dropped for the
    # logged-in targets, which start authenticated).
    put("imap_session", b"\x07" + b"".join(lines))
    after = b"".join(l for l in lines if b" login " not in l.lower())
    put("imap_session_maildir", b"\x20" + after)
    put("imap_session_mbox", b"\x20" + after)
    for l in lines:
        put("imap_command", l.rstrip(b"\r\n"))
for p in pop3:
    lines = client_lines(p)
    put("pop3_session", b"\x05" + b"".join(lines))
    for l in lines:
        put("pop3_command", l.rstrip(b"\r\n"))
for extra in [b"a SELECT INBOX\r\na FETCH 1:* (FLAGS BODY.PEEK[1.2.MIME] BODYSTRUCTURE ENVELOPE)\r\n"
              b"a UID SEARCH OR FROM alice (SUBJECT \"x\" NOT SEEN) CHARSET UTF-8 TEXT {3+}\r\ncaf\r\n"
              b"a STORE 1 +FLAGS ($Junk \\Deleted)\r\na EXPUNGE\r\na COPY 1:* Sent\r\n"
              b"a CREATE \"a/&AOk-t&AOk-\"\r\na RENAME a b\r\na LIST \"\" \"*%\"\r\n"
              b"a APPEND INBOX (\\Seen) \"02-Nov-2026 10:00:00 +0000\" {12}\r\nSubject: x\r\n\r\n"
              b"a IDLE\r\nDONE\r\na MOVE 1 Sent\r\na STATUS Sent (MESSAGES UIDNEXT UNSEEN)\r\n"]:
    put("imap_session_maildir", b"\x11" + extra)
    put("imap_session_mbox", b"\x11" + extra)
put("imap_session", b"\x03a AUTHENTICATE PLAIN\r\n" + base64.b64encode(b"\0fuzz\0pw") + b"\r\n"
    b"b STARTTLS\r\nc CAPABILITY\r\nd LOGIN {4}\r\nfuzz {2}\r\npw\r\n")
put("pop3_session", b"\x02CAPA\r\nUSER fuzz\r\nPASS pw\r\nAPOP fuzz 0123456789abcdef0123456789abcdef\r\n"
    b"AUTH PLAIN\r\n" + base64.b64encode(b"\0fuzz\0pw") + b"\r\nSTLS\r\nQUIT\r\n")
put("sasl_plain", base64.b64encode(b"authz\0fuzz\0password"))
put("sasl_plain", base64.b64encode(b"\0fuzz\0"))
MSG = (b"From: \"Alice\" <alice@example.com>, bob@x.org (Bob), group: c@d, e@f;\r\n"
       b"To: undisclosed-recipients:;\r\nSubject: =?utf-8?B?Y2Fmw6k=?= =?iso-8859-1?q?=E9t=E9?=\r\n"
       b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a@b>\r\nIn-Reply-To: <c@d>\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
       b"preamble\r\n--XX\r\nContent-Type: text/plain; charset*=utf-8''%C3%A9; name*0=a; name*1=b\r\n"
       b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9=\r\n\r\n--XX\r\n"
       b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative;"
       b" boundary=YY\r\n\r\n--YY\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n"
       b"PGI+aGk8L2I+\r\n--YY--\r\n--XX--\r\nepilogue\r\n")
put("mime", MSG)
put("mime", b"Subject: plain\r\n\r\nbody\r\n")
MBOX = (b"From alice@example.com  Mon Nov 23 10:00:00 2026\nX-IMAPbase: 1700000000 0000000003 $Junk\n"
        b"Subject: one\nX-UID: 1\nStatus: RO\nX-Status: AF\nX-Keywords: $Junk\n\nbody\n>From quoted\n\n"
        b"From bob@example.com  Mon Nov 23 10:01:00 2026\nContent-Length: 5\nSubject: two\n\nabcd\n\n"
        b"From MAILER-DAEMON Mon Nov 23 10:02:00 2026\nX-IMAP: 1 2\nSubject: DON'T DELETE THIS MESSAGE"
        b" -- FOLDER INTERNAL DATA\n\ntext\n\n")
put("mbox_parse", MBOX)
put("mbox_parse", b"junk before\nFrom a Mon Nov 23 10:00:00 2026\n\nx")
put("mbox_journal", b"IMAPDJ01" + bytes(64))
put("store_indexes", b"IMAPDMB2" + bytes(80))
put("store_indexes", b"IMAPDCA3" + bytes(80))
put("maildir_uidlist", "3 V1700000000 N4 G0123456789abcdef\n1 :1700000000.M1P1.host\n"
    "2 S2152 W2200 :1700000001.M2P1.host\n3 :1700000002.M3P1.host\n")
put("maildir_uidlist", "1 1700000000 3\n1 1700000000.M1P1.host\n")
for n in ["1700000000.M1P1.host:2,FRS", "1700000000.M1P1.host,S=2152,W=2200:2,ab",
          "1700000000.M1P1.host", "x:2,", ".hidden:2,S"]:
    put("maildir_names", n)
put("users_file", "alice:{PLAIN}pw:1000:1000::/home/alice::userdb_mail=mbox:~/mail:INBOX=/var/mail/%u\n"
    "bob:{SHA512-CRYPT}$6$salt$hash:::Bob:/home/bob\n# comment\n\ncarol:$y$j9T$salt$hash\n")
for loc in ["maildir:~/Maildir\nalice\n/home/alice", "mbox:~/mail:INBOX=/var/mail/%u\nbob\n/home/bob",
            "~/Maildir\n../x\n/home/y", "mbox\nu\n"]:
    put("mail_location", loc)
for n in [b"INBOX", b"a/b/c", b"%\0a/b", b"*\0&AOk-t&AOk-", b"../x", b"~root/x", b"#news.x", b"a..b"]:
    put("mailbox_names", n)
