//! ENABLE (RFC 5161): the client turns on extensions that change how the server answers
//! (CONDSTORE, QRESYNC). `* ENABLED` lists those turned on by this command; names the
//! server does not know, or that need no enabling, are ignored (3.1). Enabled stays
//! enabled for the connection; there is no way back (3.2).

use super::super::registry::ENABLEABLE;
use super::super::state::Session;

impl Session {
    pub(super) fn cmd_enable(&mut self, tag: &str, names: &[String]) {
        let mut line = String::from("* ENABLED");
        for name in names {
            let Some(&ext) = ENABLEABLE.iter().find(|e| **e == name.as_str()) else {
                continue;
            };
            // Listed once, and only by the command that turned it on (3.1).
            if !self.enabled.contains(&ext) {
                self.enabled.push(ext);
                line.push(' ');
                line.push_str(ext);
            }
        }
        line.push_str("\r\n");
        self.out(&line);
        self.ok(tag, "ENABLE completed");
    }
}
