//! SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8), run as a job in slices so a search
//! over 100,000 messages never blocks other clients of the daemon; answered as ESEARCH
//! (RFC 4731) when the client asked `RETURN (...)`.

use super::super::parser::{SearchKey, SearchReturn};
use super::super::response::{Code, sequence_set};
use super::super::search::{Candidate, matches_or_skip, optimize};
use super::super::state::Job;
use super::super::state::Session;

pub struct SearchJob {
    tag: String,
    uid: bool,
    ret: Option<SearchReturn>,
    key: SearchKey,
    /// Keys in `key` (each may scan the text once).
    keys: usize,
    pos: usize,
    found: Vec<u32>,
}

/// Messages examined per step at most.
const SLICE: usize = 200;

/// Work per step, in octets read times keys matched against them: about 20 ms of
/// substring matching. A step ends at SLICE messages or this, whichever comes first,
/// so a 3,000-key TEXT search runs in many short steps, not 200 long messages at once.
const STEP_COST: usize = 8_000_000;

/// How many keys a search key holds (nested ones included).
fn key_count(k: &SearchKey) -> usize {
    match k {
        SearchKey::And(v) => 1 + v.iter().map(key_count).sum::<usize>(),
        SearchKey::Or(a, b) => 1 + key_count(a) + key_count(b),
        SearchKey::Not(a) => 1 + key_count(a),
        _ => 1,
    }
}

impl Session {
    pub(super) fn cmd_search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: Option<SearchReturn>,
        charset: Option<&str>,
        mut key: SearchKey,
    ) {
        // RFC 3501 6.4.4: strings are matched as UTF-8; another charset is NO [BADCHARSET].
        if !matches!(charset, None | Some("UTF-8") | Some("US-ASCII")) {
            return self.no_code(
                tag,
                Code::BadCharset("UTF-8 US-ASCII"),
                "Charset not supported",
            );
        }
        optimize(&mut key);
        self.job = Some(Box::new(SearchJob {
            tag: tag.to_string(),
            uid,
            ret,
            keys: key_count(&key),
            key,
            pos: 0,
            found: Vec::new(),
        }));
    }

    fn run_search(&mut self, mut job: SearchJob) {
        let m = self.selected();
        let n = m.view().len();
        let end = (job.pos + SLICE).min(n);
        let mut cost = 0usize;
        let mut index = job.pos;
        while index < end && cost < STEP_COST {
            let uid = m.view().entries[index].uid;
            let mut c = Candidate::new(m, index);
            match matches_or_skip(&job.key, &mut c) {
                Ok(true) => job.found.push(if job.uid { uid } else { index as u32 + 1 }),
                Ok(false) => {}
                Err(e) if self.waits_for_lock(&e) => {
                    // Parked at this message: those before it are counted already.
                    job.pos = index;
                    return self.park(Box::new(job));
                }
                Err(e) => return self.store_error(&job.tag, &e),
            }
            cost = cost.saturating_add((c.bytes_examined() + 64).saturating_mul(job.keys));
            index += 1;
        }
        job.pos = index;
        if job.pos < n {
            self.job = Some(Box::new(job));
            return;
        }
        let line = match job.ret {
            Some(ret) => esearch(&job.tag, job.uid, ret, &job.found),
            None => {
                let mut line = String::from("* SEARCH");
                for v in &job.found {
                    line.push(' ');
                    line.push_str(&v.to_string());
                }
                line.push_str("\r\n");
                line
            }
        };
        self.out(&line);
        self.complete(&job.tag, job.uid, "SEARCH completed");
        if let Some(m) = self.mailbox_mut() {
            m.flush();
        }
    }
}

/// RFC 4731 3.1: `* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]`;
/// with nothing found, only COUNT 0 (MIN, MAX and ALL are left out). `found` ascends.
/// A tag holds no quoted-specials (RFC 3501 9 `tag`), so it is quoted as it is.
fn esearch(tag: &str, uid: bool, ret: SearchReturn, found: &[u32]) -> String {
    let mut line = format!("* ESEARCH (TAG \"{tag}\")");
    if uid {
        line.push_str(" UID");
    }
    if let (Some(first), Some(last)) = (found.first(), found.last()) {
        if ret.min {
            line.push_str(&format!(" MIN {first}"));
        }
        if ret.max {
            line.push_str(&format!(" MAX {last}"));
        }
    }
    if ret.count {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    if ret.all && !found.is_empty() {
        line.push_str(" ALL ");
        line.push_str(&sequence_set(found));
    }
    line.push_str("\r\n");
    line
}

impl Job for SearchJob {
    fn run(self: Box<Self>, session: &mut Session) {
        session.run_search(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esearch_answers_as_rfc4731_shows() {
        let r = |min, max, all, count| SearchReturn {
            min,
            max,
            all,
            count,
        };
        assert_eq!(
            esearch("A283", false, r(false, false, true, false), &[2, 10, 11]),
            "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
        );
        assert_eq!(
            esearch("A285", true, r(true, true, false, false), &[7, 9, 3800]),
            "* ESEARCH (TAG \"A285\") UID MIN 7 MAX 3800\r\n"
        );
        assert_eq!(
            esearch("A286", false, r(true, true, true, true), &[]),
            "* ESEARCH (TAG \"A286\") COUNT 0\r\n"
        );
        assert_eq!(
            esearch("t", false, r(true, false, false, false), &[]),
            "* ESEARCH (TAG \"t\")\r\n"
        );
    }
}
