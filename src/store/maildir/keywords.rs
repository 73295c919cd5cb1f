//! `dovecot-keywords`: which lowercase flag letter (a..z) means which IMAP keyword in
//! this folder. Lines `<index> <keyword>`. At most 26 keywords fit in file names.

use std::path::Path;

pub const MAX_KEYWORDS: usize = 26;

pub fn parse(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((i, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if i >= MAX_KEYWORDS || name.is_empty() {
            continue;
        }
        if out.len() <= i {
            out.resize(i + 1, String::new());
        }
        out[i] = name.to_string();
    }
    out
}

pub fn serialize(keywords: &[String]) -> String {
    keywords
        .iter()
        .enumerate()
        .filter(|(_, k)| !k.is_empty())
        .map(|(i, k)| format!("{i} {k}\n"))
        .collect()
}

pub fn read(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("dovecot-keywords"))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let k = super::parse("0 $Forwarded\n2 Junk\nbad line\n30 toolarge\n");
        assert_eq!(
            k,
            vec!["$Forwarded".to_string(), String::new(), "Junk".to_string()]
        );
        assert_eq!(super::serialize(&k), "0 $Forwarded\n2 Junk\n");
    }
}
