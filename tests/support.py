"""Helpers shared by the test suite and the benchmark (tests/bench): ports on
loopback, and a Dovecot instance on a given Maildir for side-by-side runs."""
import os
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, what="server", timeout=20):
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}")
            time.sleep(0.05)


def start_dovecot(base, maildir, user, password, uid, gid, home, tuning="", pop3_port=None,
                  mail_location=None):
    """Dovecot (Debian's dovecot-imapd) on `maildir` (or any `mail_location`) for one
    passwd-file user, on a free loopback port, in the foreground; with `pop3_port`,
    dovecot-pop3d on that port too. Returns (process, port)."""
    port = free_port()
    protocols = "imap pop3" if pop3_port else "imap"
    pop3 = f"""service pop3-login {{
  inet_listener pop3 {{
    port = {pop3_port}
  }}
}}
""" if pop3_port else ""
    d = os.path.join(base, "dovecot")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)  # Dovecot's auth process runs as the dovecot user
    users = os.path.join(d, "users")
    with open(users, "w") as f:
        f.write(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
    conf = os.path.join(d, "dovecot.conf")
    with open(conf, "w") as f:
        f.write(f"""protocols = {protocols}
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log
ssl = no
disable_plaintext_auth = no
mail_location = {mail_location or "maildir:" + maildir}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
}}
{pop3}{tuning}
""")
    proc = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, "dovecot")
    if pop3_port:
        wait_port(pop3_port, "dovecot pop3")
    return proc, port


class OurDaemon:
    """imapd or ipop3d (`binary`) as a daemon on a free loopback port, serving `maildir`
    to the virtual user bench/bench; run as `user` when started by root."""

    def __init__(self, binary, base, maildir, user, location=None):
        self.port = free_port()
        users = os.path.join(base, os.path.basename(binary) + "-passwd")
        with open(users, "w") as f:
            f.write(f"bench:{{PLAIN}}bench:::::: userdb_mail={location or 'maildir:' + maildir}\n")
        os.chmod(users, 0o644)
        args = [binary, "--listen", f"127.0.0.1:{self.port}", "--users", users, "--log-socket", "/nonexistent"]
        if os.geteuid() == 0:
            args += ["--user", user]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
