//! The store interface: what the IMAP (and POP3) engines ask of a mail store. Drivers
//! (Maildir, mbox) implement `Store` and `Mailbox`; protocol code
//! never learns which format it talks to.

pub mod dotlock;
pub mod filelock;
pub mod location;
pub mod maildir;
pub mod mbox;
pub mod names;
pub mod record;
pub mod sealed;
pub mod uidvalidity;
pub mod undo;
pub mod view;

pub use location::MailLocation;
pub use names::MailboxName;
pub use view::{FlagChange, Flags, Update};

use std::fmt;

pub type Uid = u32;

/// Errors of the store layer; each protocol says them its own way (IMAP: a NO with the
/// RFC 5530 code `imap::response::Code::of_store_error` picks).
#[derive(Debug)]
pub enum StoreError {
    NoSuchMailbox,
    AlreadyExists,
    InvalidName(&'static str),
    /// INBOX cannot be deleted, and the like.
    NotAllowed(&'static str),
    /// The message's file vanished: another session expunged it.
    Expunged,
    ReadOnly,
    TooManyKeywords,
    /// The POP3 maildrop lock is held by another session.
    InUse,
    /// Other processes kept changing the message while we tried (a transient race).
    Busy,
    /// Another program holds a lock this needs (`filelock::Holders::Anyone`, inside a
    /// session's step): nothing was changed; the session asks again later.
    Locked {
        op: &'static str,
        mailbox: String,
    },
    /// An I/O failure: what was being done, to which mailbox, and the OS error.
    Io {
        op: &'static str,
        mailbox: String,
        err: std::io::Error,
    },
    Corrupt(String),
}

impl StoreError {
    pub fn io(op: &'static str, mailbox: &str, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::WouldBlock {
            return StoreError::Locked {
                op,
                mailbox: mailbox.to_string(),
            };
        }
        StoreError::Io {
            op,
            mailbox: mailbox.to_string(),
            err,
        }
    }

    /// Text for the client: no paths or internals.
    pub fn client_text(&self) -> String {
        match self {
            StoreError::NoSuchMailbox => "Mailbox does not exist".into(),
            StoreError::AlreadyExists => "Mailbox already exists".into(),
            StoreError::InvalidName(why) => format!("Invalid mailbox name: {why}"),
            StoreError::NotAllowed(why) => (*why).into(),
            StoreError::Expunged => "Message was expunged by another session".into(),
            StoreError::ReadOnly => "Mailbox is read-only".into(),
            StoreError::TooManyKeywords => "No room for more keywords in this mailbox".into(),
            StoreError::InUse => "Mailbox is in use by another POP3 session".into(),
            StoreError::Busy => "Other sessions kept changing the message; try again".into(),
            StoreError::Locked { .. } => {
                "The mailbox is locked by another program; try again later".into()
            }
            StoreError::Io { op, .. } => {
                format!("Internal error while trying to {op}; see the server log")
            }
            StoreError::Corrupt(_) => "Mailbox data is damaged; see the server log".into(),
        }
    }

    /// Does this deserve a log line (as opposed to an ordinary client mistake)?
    pub fn is_server_side(&self) -> bool {
        matches!(
            self,
            StoreError::Io { .. } | StoreError::Corrupt(_) | StoreError::Locked { .. }
        )
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { op, mailbox, err } => write!(f, "{op} on mailbox {mailbox:?}: {err}"),
            StoreError::Locked { op, mailbox } => {
                write!(f, "{op} on mailbox {mailbox:?}: held by another program")
            }
            StoreError::Corrupt(what) => write!(f, "corrupt data: {what}"),
            other => f.write_str(&other.client_text()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One mailbox in a LIST answer.
#[derive(Debug, Clone)]
pub struct ListEntry {
    /// Full name in modified UTF-7, hierarchy delimiter `DELIMITER`.
    pub name: String,
    /// A name that exists only because it has children (RFC 3501 \Noselect).
    pub noselect: bool,
    pub has_children: bool,
}

/// STATUS data (RFC 3501 6.3.10).
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusInfo {
    pub messages: u32,
    pub recent: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub unseen: u32,
    pub size: u64,
}

/// The hierarchy delimiter of Maildir++ (mbox stores use `/`: `Store::delimiter`).
pub const DELIMITER: char = '.';

/// Add or remove `name` in a subscriptions file (one name a line, the format Dovecot
/// and Courier both read), under its dot-lock; `current` reads the list as it is.
pub fn update_subscriptions(
    path: &std::path::Path,
    current: impl FnOnce() -> Result<Vec<String>>,
    name: &str,
    subscribed: bool,
) -> Result<()> {
    let lock = dotlock::DotLock::acquire(path, filelock::Holders::Anyone)
        .map_err(|e| StoreError::io("lock subscriptions", "", e))?;
    let mut subs = current()?;
    subs.retain(|s| s != name);
    if subscribed {
        subs.push(name.to_string());
    }
    let mut text = String::new();
    for s in subs {
        text.push_str(&s);
        text.push('\n');
    }
    lock.replace(text.as_bytes())
        .map_err(|e| StoreError::io("write subscriptions", "", e))
}

/// A user's whole mail store.
pub trait Store: Send {
    /// The hierarchy delimiter of mailbox names in this store.
    fn delimiter(&self) -> char {
        DELIMITER
    }
    fn list(&mut self) -> Result<Vec<ListEntry>>;
    fn create(&mut self, name: &MailboxName) -> Result<()>;
    fn delete(&mut self, name: &MailboxName) -> Result<()>;
    fn rename(&mut self, from: &MailboxName, to: &MailboxName) -> Result<()>;
    fn subscriptions(&mut self) -> Result<Vec<String>>;
    fn set_subscribed(&mut self, name: &str, subscribed: bool) -> Result<()>;
    fn open(&mut self, name: &MailboxName, readonly: bool) -> Result<Box<dyn Mailbox>>;
    /// STATUS figures; the size (RFC 8438) only `with_size`: a Maildir may have to read
    /// every message for it.
    fn status(&mut self, name: &MailboxName, with_size: bool) -> Result<StatusInfo>;
    /// Start storing a new message in `name`; the caller writes the bytes and commits.
    fn append(&mut self, name: &MailboxName) -> Result<Box<dyn AppendSink>>;
    /// Begin a COPY or MOVE into `name`: batches of messages stored as `append` would,
    /// each numbered together, and all of them taken back unless committed.
    fn copy_into(&mut self, name: &MailboxName) -> Result<Box<dyn CopyInto>>;
    fn exists(&mut self, name: &MailboxName) -> bool;
    /// A directory of the user's own (private, made if missing) where a front end keeps
    /// small files of its own: the POP3 maildrop lock.
    fn state_dir(&mut self) -> Result<std::path::PathBuf>;
}

/// A COPY or MOVE into one mailbox under way, all or nothing (RFC 3501 6.4.7; see
/// `undo`): each batch is visible once stored, one update of the store's UID records
/// for the batch (a 3,000-message COPY into a Maildir once rewrote and synced
/// dovecot-uidlist 3,000 times); `commit` keeps them all. Dropped uncommitted (an
/// error halfway, the client gone) it takes them all back; after a crash, the next open
/// of the mailbox does.
pub trait CopyInto: Send {
    /// Store a batch; their new UIDs in order. `Locked`: none of the batch was stored.
    fn add(&mut self, messages: Vec<NewMessage>) -> Result<Vec<Uid>>;
    /// The destination's UIDVALIDITY (for COPYUID), once a batch is stored.
    fn uidvalidity(&self) -> u32;
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A message for `CopyInto::add`: its content, flags (system flags; keywords by name)
/// and internal date.
pub struct NewMessage {
    pub content: Content,
    pub flags: Flags,
    pub keywords: Vec<String>,
    pub date: Option<i64>,
}

/// A message opened to be read in pieces, and from its start again if need be (FETCH
/// of `BODY[] BODY[]`).
pub trait MessageReader: std::io::Read + std::io::Seek + Send {}
impl<T: std::io::Read + std::io::Seek + Send> MessageReader for T {}

/// What a copied message is made of.
pub enum Content {
    /// Its bytes as stored (a message of an mbox).
    Bytes(Vec<u8>),
    /// Its own file, the whole file (a Maildir message): a Maildir on the same
    /// filesystem links it (MOVE and COPY keep the inode, and nothing is read); other
    /// destinations read it in pieces. `size` is the file's length, `vsize` its
    /// RFC822.SIZE (CRLF line ends).
    File {
        file: std::fs::File,
        size: u64,
        vsize: u64,
    },
}

impl Content {
    /// Octets held in memory (a batch is bounded by them).
    pub fn in_memory(&self) -> usize {
        match self {
            Content::Bytes(b) => b.len(),
            Content::File { .. } => 0,
        }
    }
}

/// A message being appended: written through to disk as it arrives.
pub trait AppendSink: Send {
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Make the message visible with these flags (system flags and keyword names)
    /// and internal date; returns (UIDVALIDITY, UID) for APPENDUID. `Locked`: nothing
    /// is visible, and the sink may commit again later; after anything else it is
    /// spent (dropped uncommitted, the message is thrown away).
    fn commit(
        &mut self,
        flags: Flags,
        keywords: &[String],
        internal_date: Option<i64>,
    ) -> Result<(u32, Uid)>;
    /// Throw the partial message away.
    fn abort(self: Box<Self>);
}

/// A selected mailbox as one session sees it: sequence numbers are positions in the
/// session's view, which changes only at `sync`.
pub trait Mailbox: Send {
    fn name(&self) -> &str;
    fn uidvalidity(&self) -> u32;
    fn uidnext(&self) -> u32;
    fn readonly(&self) -> bool;
    fn view(&self) -> &view::View;
    /// Keyword names, indexed by the bits of `Flags::keywords`.
    fn keywords(&self) -> &[String];
    /// Index of a keyword, defining it in the mailbox if new.
    fn keyword_index(&mut self, name: &str) -> Result<usize>;
    /// Bring the view up to date; expunges are held back unless `report_expunges`.
    /// Never `Locked`: while another program holds a lock, new mail waits for a later
    /// sync and this session's own expunges are reported.
    fn sync(&mut self, report_expunges: bool) -> Result<Vec<Update>>;
    /// The message's bytes as stored.
    fn read(&mut self, index: usize) -> Result<Vec<u8>>;
    /// The message's bytes as stored, to be read in pieces (a 50 MB RETR must not be
    /// held in memory whole).
    fn open_message(&mut self, index: usize) -> Result<Box<dyn MessageReader>> {
        Ok(Box::new(std::io::Cursor::new(self.read(index)?)))
    }
    /// The message to copy elsewhere: its own file where the store keeps one per
    /// message (Maildir), else its bytes.
    fn copy_content(&mut self, index: usize) -> Result<Content> {
        Ok(Content::Bytes(self.read(index)?))
    }
    /// RFC822.SIZE: octets with CRLF line ends.
    fn size(&mut self, index: usize) -> Result<u64>;
    /// Does the message's last line end with a line end? (True for an empty message.)
    fn ends_with_newline(&mut self, index: usize) -> Result<bool> {
        let data = self.read(index)?;
        Ok(data.is_empty() || data.ends_with(b"\n"))
    }
    fn internal_date(&mut self, index: usize) -> Result<i64>;
    /// Change the flags of one message as they are in the store now (another session's
    /// change since this one's last sync stays). The view entry then holds the result
    /// (for mbox once `commit` has written it). Err(Expunged): gone meanwhile.
    fn change_flags(&mut self, index: usize, change: FlagChange) -> Result<()>;
    /// Remove these messages whatever their flags (MOVE, POP3 DELE); they leave the view
    /// at the next `sync(true)`.
    fn expunge(&mut self, indexes: &[usize]) -> Result<()>;
    /// EXPUNGE (RFC 3501 6.4.3): remove those of `candidates` that are \Deleted in the
    /// store at this moment, not as the view last saw them (another session may have
    /// cleared or set \Deleted since). Messages already gone are no error.
    fn expunge_deleted(&mut self, candidates: &[usize]) -> Result<()>;
    /// Write changes a driver collects during a command (mbox flags) now, so that a
    /// failure reaches the client as NO; Maildir writes at once and has none.
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
    /// Persist caches; called when a command ends.
    fn flush(&mut self) {}
}
