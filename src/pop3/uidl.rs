//! UIDL strings (RFC 1939 7: 1 to 70 characters in 0x21..0x7E, unique and persistent).
//! Made from the mailbox's UIDVALIDITY and the message's UID, which the store keeps
//! stable across restarts, by a template in Dovecot's pop3_uidl_format syntax:
//! `%u` the UID, `%v` the UIDVALIDITY, `%%` a percent sign; a zero-padded width and the
//! `X` modifier (hexadecimal, lowercase, as Dovecot prints it) may come between.
//! Dovecot's default `%08Xu%08Xv` gives `0000002a5f3e1b00`.

pub fn format(template: &str, uid: u32, uidvalidity: u32) -> String {
    let mut out = String::with_capacity(16);
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let hex = chars.next_if_eq(&'X').is_some();
        let value = match chars.next() {
            Some('u') => uid,
            Some('v') => uidvalidity,
            Some('%') => {
                out.push('%');
                continue;
            }
            // Not a variable: keep the text as written.
            other => {
                out.push('%');
                out.push_str(&width);
                if hex {
                    out.push('X');
                }
                out.extend(other);
                continue;
            }
        };
        let w: usize = width.parse().unwrap_or(0).min(32);
        let text = if hex {
            format!("{value:x}")
        } else {
            value.to_string()
        };
        let pad = if width.starts_with('0') { '0' } else { ' ' };
        for _ in text.len()..w {
            out.push(pad);
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn dovecot_and_uw_styles() {
        assert_eq!(format("%08Xu%08Xv", 42, 0x5f3e1b00), "0000002a5f3e1b00");
        assert_eq!(format("%08Xv%08Xu", 42, 0x5f3e1b00), "5f3e1b000000002a");
        assert_eq!(format("%v.%u", 7, 1600000000), "1600000000.7");
        assert_eq!(format("100%%-%u-%q", 1, 2), "100%-1-%q");
        // The default template: valid UIDL characters, at most 70 of them.
        let u = format(crate::config::POP3_UIDL_FORMAT, u32::MAX, u32::MAX);
        assert!(!u.is_empty() && u.len() <= 70);
        assert!(u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
}
