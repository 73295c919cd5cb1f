//! Dates without a dependency: civil calendar arithmetic (proleptic Gregorian),
//! RFC 3501 date-time and date, RFC 5322 Date: parsing, syslog time stamps.

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month 1-12, day 1-31) of days since the epoch.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Local time zone offset in seconds east of UTC at `t`.
pub fn local_offset(t: i64) -> i32 {
    crate::sys::utc_offset(t)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3501 date-time: `"23-Nov-2026 07:25:05 +0000"` (without the quotes), in local time.
pub fn imap_datetime(t: i64) -> String {
    let off = local_offset(t);
    let lt = t + off as i64;
    let (y, m, d) = civil_from_days(lt.div_euclid(86400));
    let s = lt.rem_euclid(86400);
    let sign = if off < 0 { '-' } else { '+' };
    let a = off.unsigned_abs();
    format!(
        "{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
        d,
        MONTHS[(m - 1) as usize],
        y,
        s / 3600,
        s / 60 % 60,
        s % 60,
        sign,
        a / 3600,
        a / 60 % 60
    )
}

/// `Nov 23 07:25:05` in local time, for syslog.
pub fn syslog_timestamp() -> String {
    let t = now();
    let lt = t + local_offset(t) as i64;
    let (_, m, d) = civil_from_days(lt.div_euclid(86400));
    let s = lt.rem_euclid(86400);
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[(m - 1) as usize],
        d,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn month_index(name: &[u8]) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

fn valid_day(y: i64, m: u32, d: u32) -> bool {
    if !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    d <= dim[(m - 1) as usize]
}

/// RFC 3501 `date` (`1-Feb-1994`): days since the epoch.
pub fn parse_imap_date(s: &[u8]) -> Option<i64> {
    let mut it = s.split(|&c| c == b'-');
    let d = std::str::from_utf8(it.next()?).ok()?.parse::<u32>().ok()?;
    let m = month_index(it.next()?)?;
    let ys = it.next()?;
    if it.next().is_some() || ys.len() != 4 {
        return None;
    }
    let y = std::str::from_utf8(ys).ok()?.parse::<i64>().ok()?;
    valid_day(y, m, d).then(|| days_from_civil(y, m, d))
}

/// RFC 3501 `date-time` (`17-Jul-1996 02:44:25 -0700`, day may be space-padded): Unix time.
pub fn parse_imap_datetime(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.trim_start();
    let mut parts = s.split(' ').filter(|p| !p.is_empty());
    let date = parse_imap_date(parts.next()?.as_bytes())?;
    let time = parts.next()?;
    let zone = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let secs = parse_hms(time)?;
    let off = parse_zone_numeric(zone)?;
    Some(date * 86400 + secs - off)
}

fn parse_hms(t: &str) -> Option<i64> {
    let v: Vec<&str> = t.split(':').collect();
    if v.len() < 2 || v.len() > 3 || v.iter().any(|p| p.len() != 2) {
        return None;
    }
    let h: i64 = v[0].parse().ok()?;
    let m: i64 = v[1].parse().ok()?;
    let s: i64 = if v.len() == 3 { v[2].parse().ok()? } else { 0 };
    (h < 24 && m < 60 && s <= 60).then_some(h * 3600 + m * 60 + s)
}

fn parse_zone_numeric(z: &str) -> Option<i64> {
    let b = z.as_bytes();
    if b.len() != 5 || (b[0] != b'+' && b[0] != b'-') || !b[1..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let h: i64 = z[1..3].parse().ok()?;
    let m: i64 = z[3..5].parse().ok()?;
    let v = h * 3600 + m * 60;
    Some(if b[0] == b'-' { -v } else { v })
}

/// RFC 5322 `Date:` (with the obsolete forms mail really carries): Unix time.
pub fn parse_rfc5322(s: &[u8]) -> Option<i64> {
    rfc5322_parts(s).map(|(days, secs, off)| days * 86400 + secs - off)
}

/// The calendar day a `Date:` names in its own zone (for SENTBEFORE/SENTON/SENTSINCE,
/// which RFC 3501 compares disregarding time and timezone).
pub fn rfc5322_day(s: &[u8]) -> Option<i64> {
    rfc5322_parts(s).map(|(days, _, _)| days)
}

/// (days since epoch of the civil date, seconds into the day, zone offset in seconds).
fn rfc5322_parts(s: &[u8]) -> Option<(i64, i64, i64)> {
    let s = String::from_utf8_lossy(s);
    // Drop comments such as "(PDT)" and the day name.
    let mut clean = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => clean.push(if c == ',' { ' ' } else { c }),
            _ => {}
        }
    }
    let mut toks: Vec<&str> = clean.split_whitespace().collect();
    if toks
        .first()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        && toks.len() > 4
    {
        toks.remove(0);
    }
    if toks.len() < 4 {
        return None;
    }
    let d: u32 = toks[0].parse().ok()?;
    let m = month_index(toks[1].as_bytes())?;
    let mut y: i64 = toks[2].parse().ok()?;
    if toks[2].len() <= 2 {
        y += if y < 50 { 2000 } else { 1900 };
    } else if toks[2].len() == 3 {
        y += 1900;
    }
    if !valid_day(y, m, d) {
        return None;
    }
    let secs = parse_hms(toks[3])?;
    let off = match toks.get(4) {
        Some(z) => parse_zone_numeric(z).unwrap_or(match z.to_ascii_uppercase().as_str() {
            "EDT" => -4 * 3600,
            "EST" | "CDT" => -5 * 3600,
            "CST" | "MDT" => -6 * 3600,
            "MST" | "PDT" => -7 * 3600,
            "PST" => -8 * 3600,
            _ => 0,
        }),
        None => 0,
    };
    Some((days_from_civil(y, m, d), secs, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_roundtrip() {
        for z in [-719468i64, -1, 0, 1, 10957, 20000, 2932896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }

    #[test]
    fn imap_datetime_parse() {
        assert_eq!(
            parse_imap_datetime(b"17-Jul-1996 02:44:25 -0700"),
            Some(837596665)
        );
        assert_eq!(
            parse_imap_datetime(b" 7-Jul-1996 02:44:25 +0000"),
            Some(836707465)
        );
        assert_eq!(parse_imap_datetime(b"31-Feb-1996 02:44:25 -0700"), None);
        assert_eq!(
            parse_imap_date(b"1-Feb-1994"),
            Some(days_from_civil(1994, 2, 1))
        );
        assert_eq!(parse_imap_date(b"1-Foo-1994"), None);
    }

    #[test]
    fn rfc5322_parse() {
        assert_eq!(
            parse_rfc5322(b"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)"),
            Some(837595405)
        );
        assert_eq!(parse_rfc5322(b"17 Jul 96 02:23 PDT"), Some(837595380));
        assert_eq!(parse_rfc5322(b"garbage"), None);
    }
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// (weekday, year, month, day, seconds into the day) of Unix time `t`.
fn broken_down(t: i64) -> (&'static str, i64, &'static str, u32, i64) {
    let days = t.div_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let wd = WEEKDAYS[days.rem_euclid(7) as usize];
    (wd, y, MONTHS[(m - 1) as usize], d, t.rem_euclid(86400))
}

/// RFC 5322 date-time in UTC: `Mon, 23 Nov 2026 10:00:00 +0000`.
pub fn rfc5322_datetime(t: i64) -> String {
    let (wd, y, mon, d, s) = broken_down(t);
    let (h, mi, s) = (s / 3600, s / 60 % 60, s % 60);
    format!("{wd}, {d} {mon} {y:04} {h:02}:{mi:02}:{s:02} +0000")
}

/// The asctime(3) form mbox `From ` lines carry, in local time: `Mon Nov 23 10:00:00 2026`.
pub fn ctime(t: i64) -> String {
    let (wd, y, mon, d, s) = broken_down(t + local_offset(t) as i64);
    let (h, mi, s) = (s / 3600, s / 60 % 60, s % 60);
    format!("{wd} {mon} {d:2} {h:02}:{mi:02}:{s:02} {y:04}")
}

/// The date of an mbox `From sender date` line: asctime form in local time, with the
/// variants writers use (no seconds, a zone name or offset before the year, a trailing
/// `remote from host`). Unix time; None if the line carries no such date.
pub fn parse_from_line_date(line: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(line).ok()?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    // The date is the last `Www Mmm dd hh:mm[:ss] [zone] yyyy` in the line: the sender
    // may itself contain spaces (quoted local parts).
    for i in (1..tokens.len().saturating_sub(3)).rev() {
        if !WEEKDAYS.iter().any(|w| w.eq_ignore_ascii_case(tokens[i])) {
            continue;
        }
        let Some(m) = month_index(tokens[i + 1].as_bytes()) else {
            continue;
        };
        let Ok(d) = tokens[i + 2].parse::<u32>() else {
            continue;
        };
        let Some(secs) = parse_hms(tokens[i + 3]) else {
            continue;
        };
        let mut zone: Option<i64> = None;
        for tok in tokens.iter().skip(i + 4).take(3) {
            if tok.len() == 4 && tok.bytes().all(|c| c.is_ascii_digit()) {
                let y: i64 = tok.parse().ok()?;
                if !valid_day(y, m, d) {
                    return None;
                }
                let local = days_from_civil(y, m, d) * 86400 + secs;
                return Some(match zone {
                    Some(off) => local - off,
                    None => local - local_offset(local) as i64,
                });
            }
            zone = parse_zone_numeric(tok).or(zone);
        }
    }
    None
}

#[cfg(test)]
mod from_line_tests {
    use super::*;

    #[test]
    fn from_line_dates() {
        let t = parse_from_line_date(b"From MAILER-DAEMON Mon Nov 23 10:00:00 2026").unwrap();
        assert_eq!(ctime(t), "Mon Nov 23 10:00:00 2026");
        assert!(parse_from_line_date(b"From a@b Mon Jan  1 00:00 +0100 2001").is_some());
        assert!(
            parse_from_line_date(b"From \"a b\"@c Tue Feb  2 10:11:12 2010 remote from x")
                .is_some()
        );
        assert!(parse_from_line_date(b"From here to eternity").is_none());
        assert!(parse_from_line_date(b"From a Thu Feb 31 10:00:00 2026").is_none());
    }
}
