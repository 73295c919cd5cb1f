//! COPY, UID COPY (RFC 3501 6.4.7) with COPYUID (RFC 4315), and MOVE (RFC 6851).
//! Messages go through the store interface (read, then append), so a copy between
//! any two store formats works the same way.

use super::super::parser::SeqSet;
use super::super::session::Session;
use crate::store::{Flags, NewMessage, StoreError};

/// Messages, and octets, read into memory and stored as one batch at most.
const BATCH_MESSAGES: usize = 256;
const BATCH_BYTES: usize = 8 << 20;

/// `1:3,7` for a sorted list of UIDs (as COPYUID wants them).
pub(super) fn compress(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl Session {
    pub(super) fn cmd_copy(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        raw: &[u8],
        is_move: bool,
    ) {
        let indexes = match self.resolve_set(set, uid) {
            Ok(v) => v,
            Err(e) => return self.bad(tag, &e),
        };
        let Some(dest) = self.mailbox_name(tag, raw) else {
            return;
        };
        if is_move && self.mailbox.as_ref().expect("selected").readonly() {
            return self.no(tag, "[READ-ONLY] Mailbox is read-only");
        }
        let store = self.store.as_mut().expect("authenticated");
        let m = self.mailbox.as_mut().expect("selected");
        if !store.exists(&dest) {
            return self.no(tag, "[TRYCREATE] Mailbox does not exist");
        }
        let mut src = Vec::new();
        let mut dst = Vec::new();
        let mut moved = Vec::new();
        let mut uidvalidity = 0;
        let mut missing = false;
        // In batches (BATCH_MESSAGES or BATCH_BYTES), each numbered in the destination
        // at once: one uidlist update per batch, not per message.
        let mut rest = indexes.into_iter().peekable();
        while rest.peek().is_some() {
            let mut batch = Vec::new();
            let mut batch_src = Vec::new();
            let mut bytes = 0;
            while bytes < BATCH_BYTES && batch.len() < BATCH_MESSAGES {
                let Some(i) = rest.next() else {
                    break;
                };
                let entry = m.view().entries[i].clone();
                let read = (|| -> Result<NewMessage, StoreError> {
                    let data = m.read(i)?;
                    let date = m.internal_date(i)?;
                    let keywords: Vec<String> = m
                        .keywords()
                        .iter()
                        .enumerate()
                        .filter(|(b, k)| entry.flags.keywords & (1 << b) != 0 && !k.is_empty())
                        .map(|(_, k)| k.clone())
                        .collect();
                    let flags = Flags {
                        system: entry.flags.system,
                        keywords: 0,
                    };
                    Ok(NewMessage {
                        data,
                        flags,
                        keywords,
                        date: Some(date),
                    })
                })();
                match read {
                    Ok(msg) => {
                        bytes += msg.data.len();
                        batch.push(msg);
                        batch_src.push((i, entry.uid));
                    }
                    Err(StoreError::Expunged) => missing = true,
                    Err(e) => return self.store_error(tag, &e),
                }
            }
            if batch.is_empty() {
                continue;
            }
            match store.append_batch(&dest, batch) {
                Ok((v, uids)) => {
                    uidvalidity = v;
                    for ((i, uid), new_uid) in batch_src.into_iter().zip(uids) {
                        src.push(uid);
                        dst.push(new_uid);
                        moved.push(i);
                    }
                }
                Err(e) => return self.store_error(tag, &e),
            }
        }
        let code = if src.is_empty() {
            String::new()
        } else {
            format!(
                "[COPYUID {uidvalidity} {} {}] ",
                compress(&src),
                compress(&dst)
            )
        };
        if missing && src.is_empty() {
            return self.no(tag, "[EXPUNGEISSUED] The messages no longer exist");
        }
        if is_move {
            if let Err(e) = m.expunge(&moved) {
                return self.store_error(tag, &e);
            }
            self.out(&format!("* OK {code}Moved\r\n"));
            self.complete(tag, true, "MOVE completed");
        } else {
            self.complete(tag, true, &format!("{code}COPY completed"));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_ranges() {
        assert_eq!(super::compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::compress(&[]), "");
    }
}
