"""curl as an IMAP client: list, fetch, search, upload, in both modes."""
import subprocess

from conftest import PASSWORD, message


def curl(server, path, *extra, data=None):
    url = f"imap://127.0.0.1:{server.port}/{path}"
    cmd = ["curl", "-sS", "--max-time", "20", "-u", f"{server.account.name}:{PASSWORD}", url, *extra]
    p = subprocess.run(cmd, input=data, capture_output=True)
    assert p.returncode == 0, (cmd, p.stderr)
    return p.stdout.decode("utf-8", "replace")


def test_curl_session(server, tmp_path):
    server.account.deliver(message("curl one", "first body\r\n"))
    server.account.deliver(message("curl two", "second body\r\n"))
    listing = curl(server, "")
    assert '"." INBOX' in listing
    assert "first body" in curl(server, "INBOX;UID=1")
    assert "Subject: curl two" in curl(server, "INBOX;UID=2;SECTION=HEADER")
    assert "* SEARCH 2" in curl(server, "INBOX", "-X", "SEARCH SUBJECT two")
    # Upload (APPEND) and read it back.
    upload = tmp_path / "upload.eml"
    upload.write_bytes(message("uploaded", "via curl\r\n").encode())
    curl(server, "INBOX", "-T", str(upload))
    assert "via curl" in curl(server, "INBOX;UID=3")
    out = curl(server, "INBOX", "-X", "FETCH 1:* (FLAGS)")
    assert out.count("FETCH") == 3
    # SASL PLAIN, as curl does when asked.
    assert "first body" in curl(server, "INBOX;UID=1", "--login-options", "AUTH=PLAIN")
