//! Test-only helpers for fuzz runs: a small deterministic generator and the byte
//! mutations applied to a corpus of valid inputs (`session::feed_in_slices` feeds an
//! engine as a network would).

/// Rounds to run: `default`, or IMAPD_FUZZ_ROUNDS for a longer campaign
/// (`IMAPD_FUZZ_ROUNDS=100000 cargo test --release --lib fuzz`).
pub fn rounds(default: usize) -> usize {
    std::env::var("IMAPD_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Up to three random edits: a changed byte, an inserted one from `alphabet`, a cut, a
/// repeated tail, a removed byte.
pub fn mutate(cmd: &mut Vec<u8>, rng: &mut Rng, alphabet: &[u8]) {
    for _ in 0..rng.below(4) {
        if cmd.is_empty() {
            break;
        }
        let i = rng.below(cmd.len());
        match rng.below(5) {
            0 => cmd[i] = rng.next_u64() as u8,
            1 => cmd.insert(i, alphabet[rng.below(alphabet.len())]),
            2 => cmd.truncate(i),
            3 => {
                let tail = cmd[i..].to_vec();
                cmd.extend_from_slice(&tail);
            }
            _ => {
                cmd.remove(i);
            }
        }
    }
}
