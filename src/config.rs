//! Compile-time configuration, in the spirit of UW imapd's `make lnx`:
//! every path, limit and policy is a constant here, each overridable by an
//! environment variable of the same name at build time, e.g.
//! `IMAP_USERS_FILE=/etc/dovecot/users cargo build --release`.
//! There is no runtime configuration file; README lists every setting.

/// Parse a decimal number at compile time (build-time overrides are strings).
const fn parse_num(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut n: u64 = 0;
    assert!(!b.is_empty(), "empty numeric setting");
    while i < b.len() {
        assert!(
            b[i] >= b'0' && b[i] <= b'9',
            "numeric setting must be decimal digits"
        );
        n = n * 10 + (b[i] - b'0') as u64;
        i += 1;
    }
    n
}

macro_rules! text_setting {
    ($(#[$doc:meta])* $name:ident = $default:expr) => {
        $(#[$doc])*
        pub const $name: &str = match option_env!(concat!("IMAP_", stringify!($name))) {
            Some(v) => v,
            None => $default,
        };
    };
}

macro_rules! num_setting {
    ($(#[$doc:meta])* $name:ident : $ty:ty = $default:expr) => {
        $(#[$doc])*
        pub const $name: $ty = match option_env!(concat!("IMAP_", stringify!($name))) {
            Some(v) => parse_num(v) as $ty,
            None => $default,
        };
    };
}

/// Parse a yes/no setting at compile time.
const fn parse_bool(s: &str) -> bool {
    match s.as_bytes() {
        b"1" | b"yes" | b"true" => true,
        b"0" | b"no" | b"false" => false,
        _ => panic!("boolean setting must be yes or no"),
    }
}

macro_rules! bool_setting {
    ($(#[$doc:meta])* $name:ident = $default:expr) => {
        $(#[$doc])*
        pub const $name: bool = match option_env!(concat!("IMAP_", stringify!($name))) {
            Some(v) => parse_bool(v),
            None => $default,
        };
    };
}

text_setting!(
    /// Dovecot-format passwd-file of virtual users (`--users FILE` overrides at run time).
    USERS_FILE = "/etc/imap/passwd"
);
text_setting!(
    /// Default mail location: `~` is the user's home, `%u` the user name, `%%` a percent
    /// sign. A `maildir:` prefix is accepted as in Dovecot. Per-user override: the
    /// passwd-file extra field `userdb_mail=` (or `mail=`).
    MAIL_LOCATION = "~/Maildir"
);
text_setting!(
    /// Where mbox users' INBOX lives: the spool file `SPOOL_DIR/USER` that Postfix
    /// local(8) and procmail deliver to (an `mbox:` mail location without `INBOX=`).
    SPOOL_DIR = "/var/mail"
);
text_setting!(
    /// Where mbox users' other folders live, under their home (a bare `mbox` location).
    MBOX_FOLDER_DIR = "mail"
);
text_setting!(
    /// The group that may create `USER.lock` in the spool directory (Debian: `mail`,
    /// with /var/mail `drwxrwsr-x root:mail`). A session keeps it only as its saved
    /// group and takes it only to create and remove the dot-lock. Empty: none.
    MBOX_PRIVILEGED_GROUP = "mail"
);
text_setting!(
    /// Syslog socket; log lines are RFC 3164 datagrams, facility below.
    LOG_SOCKET = "/dev/log"
);
text_setting!(
    /// Syslog ident of the IMAP server.
    LOG_IDENT = "imapd"
);
text_setting!(
    /// Syslog facility: mail, daemon, auth, authpriv, local0..local7, user.
    LOG_FACILITY = "mail"
);
num_setting!(
    /// Longest command line, in octets, before the connection is closed with BYE.
    /// RFC 7162 section 4 asks for at least 8192.
    MAX_LINE: usize = 65536
);
num_setting!(
    /// Largest literal accepted inside a command other than APPEND (a password, a
    /// search string, a mailbox name).
    MAX_LITERAL: usize = 65536
);
num_setting!(
    /// Largest message APPEND accepts (advertised as APPENDLIMIT, RFC 7889).
    APPEND_LIMIT: u64 = 268_435_456
);
num_setting!(
    /// Seconds from connecting within which a client must log in, or the connection
    /// is closed (counted from the start: bytes sent meanwhile do not extend it).
    LOGIN_TIMEOUT_SECS: u64 = 120
);
num_setting!(
    /// Seconds of silence before an authenticated session is logged out
    /// (RFC 3501 5.4: at least 30 minutes; IDLE counts as activity every 29 minutes).
    AUTOLOGOUT_SECS: u64 = 1800
);
num_setting!(
    /// How often the daemon hands the memory its sessions freed back to the system
    /// (after a burst of load its size goes back down).
    MALLOC_TRIM_SECS: u64 = 5
);
num_setting!(
    /// How many malloc arenas the daemon's threads share (0: glibc's default, 8 per
    /// core). Each arena keeps the pages its own frees leave partly used: under steady
    /// load the daemon's size grows with their number (README, Performance: Soak).
    MALLOC_ARENAS: usize = 2
);
num_setting!(
    /// How often a selected mailbox is checked for changes while in IDLE.
    IDLE_POLL_MS: u64 = 500
);
num_setting!(
    /// Delay before the answer to a failed login; the same for an unknown user
    /// and a wrong password.
    AUTH_FAIL_DELAY_MS: u64 = 1000
);
num_setting!(
    /// The delay doubles with each further failure from the same address within
    /// AUTH_FAIL_WINDOW_SECS (across a daemon's connections), up to this.
    AUTH_FAIL_DELAY_MAX_MS: u64 = 16000
);
num_setting!(
    /// Failures from an address are forgotten after this long without another.
    AUTH_FAIL_WINDOW_SECS: u64 = 600
);
num_setting!(
    /// Failed logins allowed on one connection before BYE.
    MAX_AUTH_FAILURES: u32 = 3
);
num_setting!(
    /// Deepest nesting of parenthesised/NOT/OR search keys accepted.
    MAX_SEARCH_DEPTH: usize = 64
);
num_setting!(
    /// Deepest MIME nesting parsed for BODYSTRUCTURE and sections; deeper parts are
    /// treated as opaque leaves.
    MAX_MIME_DEPTH: usize = 32
);
num_setting!(
    /// Most MIME parts parsed in one message; the rest are treated as one opaque leaf.
    MAX_MIME_PARTS: usize = 1000
);
num_setting!(
    /// Daemon mode: most simultaneous connections; more are greeted with BYE.
    MAX_CONNECTIONS: usize = 20000
);
num_setting!(
    /// Daemon mode: most connections from one address that have not logged in yet
    /// (a slowloris from one host cannot take the daemon's descriptors); more are
    /// greeted with BYE. Logged-in sessions do not count.
    MAX_PRELOGIN_PER_ADDRESS: usize = 64
);
num_setting!(
    /// Daemon: worker threads running session steps. Not tied to the cores: a step
    /// mostly waits on the disk (fsync of an APPEND, a lock), and a waiting worker must
    /// not hold up the sessions queued behind it. At least 2.
    WORKERS: usize = 16
);
num_setting!(
    /// Daemon: worker threads running the steps of sessions not logged in yet (password
    /// hashes, PAM and its modules, which may wait on LDAP or sleep): a flood of logins
    /// or a slow directory then delays other logins, never a logged-in session.
    LOGIN_WORKERS: usize = 4
);
num_setting!(
    /// Maildir: folders with fewer messages keep no `imapd.cache` (listing them is as
    /// quick as reading it, and each write is a new file).
    MAILDIR_CACHE_MIN_MESSAGES: usize = 1000
);
num_setting!(
    /// Seconds after which a dot-lock (dovecot-uidlist.lock) left by a dead process is broken.
    DOTLOCK_STALE_SECS: u64 = 120
);
num_setting!(
    /// Seconds a command waits for a lock another program holds (an MDA delivering,
    /// mutt rewriting an mbox, Dovecot) before it is answered NO [INUSE]. The session
    /// asks again from its timer meanwhile; no worker sleeps.
    LOCK_WAIT_SECS: u64 = 30
);
text_setting!(
    /// The program a root daemon runs for a logged-in session (`PROGRAM --handoff
    /// imapd|ipop3d`); empty: its own executable. Either binary serves both protocols.
    /// A wrapper goes here, e.g. to run s390x binaries under qemu-user in tests.
    SESSION_PROGRAM = ""
);
text_setting!(
    /// TLS certificate chain (PEM); `--cert` overrides. Debian's snakeoil by default
    /// (package ssl-cert), so a fresh install serves TLS.
    TLS_CERT_FILE = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
);
text_setting!(
    /// TLS private key (PEM); `--key` overrides. Read before privileges are dropped.
    TLS_KEY_FILE = "/etc/ssl/private/ssl-cert-snakeoil.key"
);
text_setting!(
    /// Where passwords may be sent in the clear (LOGIN, AUTHENTICATE PLAIN, USER/PASS),
    /// as UW's SSLTYPE: `loopback` (default: only from 127.0.0.0/8, ::1 and pipes, and,
    /// once TLS exists, on encrypted connections), `yes` (anywhere), `no` (never on an
    /// unencrypted connection). Elsewhere IMAP says LOGINDISABLED and POP3 drops USER.
    PLAINTEXT_AUTH = "loopback"
);
bool_setting!(
    /// Accept system accounts (passwd + shadow through crypt(3)) besides the users file.
    SYSTEM_ACCOUNTS = true
);
text_setting!(
    /// PAM service of IMAP logins (a build with `--features pam`).
    PAM_SERVICE_IMAP = "imap"
);
text_setting!(
    /// PAM service of POP3 logins (a build with `--features pam`).
    PAM_SERVICE_POP3 = "pop3"
);
num_setting!(
    /// Lowest uid of a system account that may log in (root and daemons below it).
    FIRST_VALID_UID: u32 = 1000
);
num_setting!(
    /// An mbox dot-lock (`USER.lock`) older than this is taken to be left by a crashed
    /// program and removed (Postfix: 500 s, procmail: 1024 s).
    MBOX_DOTLOCK_STALE_SECS: u64 = 600
);
num_setting!(
    /// Output buffered for one connection before its command pauses until the client reads.
    OUTPUT_HIGH_WATER: usize = 262_144
);

text_setting!(
    /// Syslog ident of the POP3 server.
    POP3_LOG_IDENT = "ipop3d"
);
num_setting!(
    /// POP3: seconds of silence before the session ends (RFC 1939 3: at least 10 minutes).
    POP3_AUTOLOGOUT_SECS: u64 = 600
);
num_setting!(
    /// POP3: longest command line; longer ones are refused with -ERR and skipped.
    /// RFC 2449 4 allows 255 octets; SASL PLAIN responses may be longer.
    POP3_MAX_LINE: usize = 2048
);
num_setting!(
    /// POP3: least number of seconds between two logins of one user (RFC 2449
    /// LOGIN-DELAY, answered with `-ERR [LOGIN-DELAY]`); 0 turns it off.
    POP3_LOGIN_DELAY_SECS: u64 = 0
);
text_setting!(
    /// POP3 UIDL of a message, from the mailbox's UIDVALIDITY (`%v`) and the message's
    /// UID (`%u`), printf-style widths and `X`/`x` for hex, as Dovecot's
    /// pop3_uidl_format. The default is Dovecot's, so its users' fetchers download
    /// nothing twice after a switch; UW ipop3d's is `%08Xv%08Xu`.
    POP3_UIDL_FORMAT = "%08Xu%08Xv"
);
bool_setting!(
    /// POP3: offer APOP (RFC 1939 7) when the users file keeps some secret in the
    /// clear ({PLAIN}); APOP can't work with hashed passwords.
    POP3_APOP = true
);
bool_setting!(
    /// POP3: messages retrieved with RETR become \Seen for IMAP when the session QUITs.
    POP3_MARK_SEEN = true
);

/// A boolean setting as it is written (`IMAP_POP3_APOP=no`).
fn yes_no(v: bool) -> String {
    if v { "yes" } else { "no" }.to_string()
}

/// Every setting with its value, for `imapd --settings` and README (a test checks that
/// every `*_setting!` above is here).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("IMAP_USERS_FILE", USERS_FILE.to_string()),
        ("IMAP_MAIL_LOCATION", MAIL_LOCATION.to_string()),
        ("IMAP_LOG_SOCKET", LOG_SOCKET.to_string()),
        ("IMAP_LOG_IDENT", LOG_IDENT.to_string()),
        ("IMAP_LOG_FACILITY", LOG_FACILITY.to_string()),
        ("IMAP_MAX_LINE", MAX_LINE.to_string()),
        ("IMAP_MAX_LITERAL", MAX_LITERAL.to_string()),
        ("IMAP_APPEND_LIMIT", APPEND_LIMIT.to_string()),
        ("IMAP_LOGIN_TIMEOUT_SECS", LOGIN_TIMEOUT_SECS.to_string()),
        ("IMAP_AUTOLOGOUT_SECS", AUTOLOGOUT_SECS.to_string()),
        ("IMAP_MALLOC_TRIM_SECS", MALLOC_TRIM_SECS.to_string()),
        ("IMAP_MALLOC_ARENAS", MALLOC_ARENAS.to_string()),
        ("IMAP_IDLE_POLL_MS", IDLE_POLL_MS.to_string()),
        ("IMAP_AUTH_FAIL_DELAY_MS", AUTH_FAIL_DELAY_MS.to_string()),
        (
            "IMAP_AUTH_FAIL_DELAY_MAX_MS",
            AUTH_FAIL_DELAY_MAX_MS.to_string(),
        ),
        (
            "IMAP_AUTH_FAIL_WINDOW_SECS",
            AUTH_FAIL_WINDOW_SECS.to_string(),
        ),
        ("IMAP_MAX_AUTH_FAILURES", MAX_AUTH_FAILURES.to_string()),
        ("IMAP_MAX_SEARCH_DEPTH", MAX_SEARCH_DEPTH.to_string()),
        ("IMAP_MAX_MIME_DEPTH", MAX_MIME_DEPTH.to_string()),
        ("IMAP_MAX_MIME_PARTS", MAX_MIME_PARTS.to_string()),
        ("IMAP_MAX_CONNECTIONS", MAX_CONNECTIONS.to_string()),
        ("IMAP_WORKERS", WORKERS.to_string()),
        (
            "IMAP_MAX_PRELOGIN_PER_ADDRESS",
            MAX_PRELOGIN_PER_ADDRESS.to_string(),
        ),
        ("IMAP_LOGIN_WORKERS", LOGIN_WORKERS.to_string()),
        (
            "IMAP_MAILDIR_CACHE_MIN_MESSAGES",
            MAILDIR_CACHE_MIN_MESSAGES.to_string(),
        ),
        ("IMAP_DOTLOCK_STALE_SECS", DOTLOCK_STALE_SECS.to_string()),
        ("IMAP_LOCK_WAIT_SECS", LOCK_WAIT_SECS.to_string()),
        (
            "IMAP_MBOX_DOTLOCK_STALE_SECS",
            MBOX_DOTLOCK_STALE_SECS.to_string(),
        ),
        ("IMAP_SESSION_PROGRAM", SESSION_PROGRAM.to_string()),
        ("IMAP_TLS_CERT_FILE", TLS_CERT_FILE.to_string()),
        ("IMAP_TLS_KEY_FILE", TLS_KEY_FILE.to_string()),
        ("IMAP_PLAINTEXT_AUTH", PLAINTEXT_AUTH.to_string()),
        ("IMAP_SYSTEM_ACCOUNTS", yes_no(SYSTEM_ACCOUNTS)),
        ("IMAP_FIRST_VALID_UID", FIRST_VALID_UID.to_string()),
        ("IMAP_PAM_SERVICE_IMAP", PAM_SERVICE_IMAP.to_string()),
        ("IMAP_PAM_SERVICE_POP3", PAM_SERVICE_POP3.to_string()),
        ("IMAP_SPOOL_DIR", SPOOL_DIR.to_string()),
        ("IMAP_MBOX_FOLDER_DIR", MBOX_FOLDER_DIR.to_string()),
        (
            "IMAP_MBOX_PRIVILEGED_GROUP",
            MBOX_PRIVILEGED_GROUP.to_string(),
        ),
        ("IMAP_OUTPUT_HIGH_WATER", OUTPUT_HIGH_WATER.to_string()),
        ("IMAP_POP3_LOG_IDENT", POP3_LOG_IDENT.to_string()),
        (
            "IMAP_POP3_AUTOLOGOUT_SECS",
            POP3_AUTOLOGOUT_SECS.to_string(),
        ),
        ("IMAP_POP3_MAX_LINE", POP3_MAX_LINE.to_string()),
        (
            "IMAP_POP3_LOGIN_DELAY_SECS",
            POP3_LOGIN_DELAY_SECS.to_string(),
        ),
        ("IMAP_POP3_UIDL_FORMAT", POP3_UIDL_FORMAT.to_string()),
        ("IMAP_POP3_APOP", yes_no(POP3_APOP)),
        ("IMAP_POP3_MARK_SEEN", yes_no(POP3_MARK_SEEN)),
        ("IMAP_TEST_TIMINGS", yes_no(TEST_TIMINGS)),
    ]
}

const _: () = assert!(
    POP3_MAX_LINE >= 255,
    "RFC 2449 4: POP3 command lines of up to 255 octets"
);
bool_setting!(
    /// Allow timeouts below the RFCs' minimums; only the test suite's short-timeout
    /// build sets it (tests/run).
    TEST_TIMINGS = false
);
const _: () = assert!(
    POP3_AUTOLOGOUT_SECS >= 600 || TEST_TIMINGS,
    "RFC 1939 3: the POP3 autologout timer is at least 10 minutes"
);
const _: () = assert!(
    MAX_LINE >= 8192,
    "RFC 7162 section 4: command lines of at least 8192 octets"
);

#[cfg(test)]
mod tests {
    /// Every setting declared in this file is listed by `all()` (and so by --settings,
    /// which the README test compares with README's table).
    #[test]
    fn every_setting_is_listed() {
        let source = include_str!("config.rs");
        let listed: Vec<String> = super::all()
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        let mut rest = source;
        while let Some(i) = rest.find("_setting!(") {
            rest = &rest[i + 10..];
            let body: String = rest
                .lines()
                .map(str::trim)
                .find(|l| !l.starts_with("///") && !l.is_empty())
                .unwrap_or("")
                .to_string();
            let name: String = body
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.is_empty() {
                continue; // the macro definitions themselves
            }
            assert!(
                listed.contains(&format!("IMAP_{name}")),
                "IMAP_{name} not in all()"
            );
        }
    }
}
