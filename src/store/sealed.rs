//! The framing both stores' cache files share (Maildir `imapd.cache`, mbox
//! `imapd.index`): an 8-byte magic, big-endian fields, and a checksum of everything
//! before it as the last 8 bytes. A file written on x86_64 reads the same on s390x,
//! and a damaged or foreign one is refused, never decoded.

/// Checksum of the file bytes, a word at a time (a byte-wise hash cost more than the
/// rest of decoding a 100,000-message cache). Words are read big-endian, so the value
/// is the same on every host.
pub fn checksum(data: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = data.len() as u64 ^ 0xcbf2_9ce4_8422_2325;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes(c.try_into().expect("8 bytes"));
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_be_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 32)
}

/// Ends a file: appends the checksum of everything written so far.
pub fn seal(out: &mut Vec<u8>) {
    let sum = checksum(out);
    out.extend_from_slice(&sum.to_be_bytes());
}

/// The fields of a sealed file after its magic, or None when the magic or the
/// checksum is wrong.
pub fn open<'a>(b: &'a [u8], magic: &[u8; 8]) -> Option<Reader<'a>> {
    if b.len() < magic.len() + 8 || &b[..magic.len()] != magic {
        return None;
    }
    let (body, sum) = b.split_at(b.len() - 8);
    if checksum(body) != u64::from_be_bytes(sum.try_into().ok()?) {
        return None;
    }
    Some(Reader {
        b: body,
        i: magic.len(),
    })
}

/// Big-endian fields, in order; None past the end.
pub struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    /// Bytes of fields in the file (bounds a record count read from it).
    pub fn field_bytes(&self) -> usize {
        self.b.len()
    }
    /// Every field read: a longer file is not one we wrote.
    pub fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
}
