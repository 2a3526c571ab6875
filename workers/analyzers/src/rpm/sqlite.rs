//! A read-only reader of the one thing rpm keeps in `rpmdb.sqlite`: the `Packages` table's
//! blobs. It walks the SQLite file format's table b-tree and overflow chains directly (no
//! SQLite library), with every offset checked and every page visited at most once.

use std::collections::BTreeSet;

/// Why the `Packages` table's blobs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an SQLite database")]
    NotSqlite,
    #[error("invalid page size {0}")]
    InvalidPageSize(u16),
    #[error("invalid reserved space")]
    InvalidReservedSpace,
    #[error("page 0 referenced")]
    PageZero,
    #[error("page {0} beyond the end of the file")]
    PageBeyondEnd(u32),
    #[error("b-tree cycle at page {0}")]
    Cycle(u32),
    #[error("page {page}: not a table b-tree page (type {kind:#x})")]
    NotTablePage { page: u32, kind: u8 },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("payload of {0} bytes")]
    ImplausiblePayload(usize),
    #[error("broken overflow chain")]
    BrokenOverflowChain,
    #[error("reserved serial type {0}")]
    ReservedSerialType(u64),
    #[error("sqlite_master row without rootpage")]
    NoRootpage,
    #[error("rootpage is not an integer")]
    RootpageNotInteger,
    #[error("rootpage out of range")]
    RootpageOutOfRange,
    #[error("no Packages table")]
    NoPackagesTable,
    /// A varint that runs off the end of its page or record; the text names which one
    /// (`bad cell`, `bad record header`, `bad serial type`).
    #[error("{0}")]
    BadVarint(&'static str),
    /// A structure that ends early; the text names it (`short page`, `cell out of page`, …).
    #[error("{0}")]
    Truncated(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn varint(b: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at)?;
        at += 1;
        if i == 8 {
            return Some(((value << 8) | u64::from(byte), at));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    usable: usize,
}

impl<'a> Db<'a> {
    fn page(&self, number: u32) -> Result<&'a [u8]> {
        let n = number as usize;
        if n == 0 {
            return Err(Error::PageZero);
        }
        self.bytes
            .get((n - 1) * self.page_size..n * self.page_size)
            .ok_or(Error::PageBeyondEnd(number))
    }

    /// Every (rowid, payload) of the table rooted at `root`.
    fn table(&self, root: u32) -> Result<Vec<Vec<u8>>> {
        let mut rows = Vec::new();
        let mut stack = vec![root];
        let mut seen = BTreeSet::new();
        while let Some(number) = stack.pop() {
            if !seen.insert(number) || seen.len() > 1 << 22 {
                return Err(Error::Cycle(number));
            }
            let page = self.page(number)?;
            let header_at = if number == 1 { 100 } else { 0 };
            let kind = *page.get(header_at).ok_or(Error::Truncated("empty page"))?;
            let cells = u16::from_be_bytes([
                *page
                    .get(header_at + 3)
                    .ok_or(Error::Truncated("short page"))?,
                *page
                    .get(header_at + 4)
                    .ok_or(Error::Truncated("short page"))?,
            ]) as usize;
            let (header_len, interior) = match kind {
                0x0d => (8, false),
                0x05 => (12, true),
                other => {
                    return Err(Error::NotTablePage {
                        page: number,
                        kind: other,
                    });
                }
            };
            for c in 0..cells {
                let p = header_at + header_len + 2 * c;
                let offset = u16::from_be_bytes([
                    *page
                        .get(p)
                        .ok_or(Error::Truncated("cell pointer out of page"))?,
                    *page
                        .get(p + 1)
                        .ok_or(Error::Truncated("cell pointer out of page"))?,
                ]) as usize;
                if interior {
                    let child = page
                        .get(offset..offset + 4)
                        .ok_or(Error::Truncated("cell out of page"))?;
                    stack.push(u32::from_be_bytes([child[0], child[1], child[2], child[3]]));
                } else {
                    rows.push(self.payload(page, offset)?);
                }
            }
            if interior {
                let right = page
                    .get(header_at + 8..header_at + 12)
                    .ok_or(Error::Truncated("short interior page"))?;
                stack.push(u32::from_be_bytes([right[0], right[1], right[2], right[3]]));
            }
        }
        Ok(rows)
    }

    /// The full payload of a table-leaf cell, following overflow pages.
    fn payload(&self, page: &[u8], offset: usize) -> Result<Vec<u8>> {
        let (length, at) = varint(page, offset).ok_or(Error::BadVarint("bad cell"))?;
        let (_rowid, at) = varint(page, at).ok_or(Error::BadVarint("bad cell"))?;
        let length = usize::try_from(length).map_err(|_| Error::PayloadTooLarge)?;
        if length > 1 << 30 {
            return Err(Error::ImplausiblePayload(length));
        }
        let u = self.usable;
        let x = u - 35;
        let local = if length <= x {
            length
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + (length - m) % (u - 4);
            if k <= x { k } else { m }
        };
        let mut payload = page
            .get(at..at + local)
            .ok_or(Error::Truncated("payload out of page"))?
            .to_vec();
        if local < length {
            let next = page
                .get(at + local..at + local + 4)
                .ok_or(Error::Truncated("overflow pointer out of page"))?;
            let mut next = u32::from_be_bytes([next[0], next[1], next[2], next[3]]);
            let mut seen = BTreeSet::new();
            while payload.len() < length {
                if next == 0 || !seen.insert(next) {
                    return Err(Error::BrokenOverflowChain);
                }
                let overflow = self.page(next)?;
                next = u32::from_be_bytes([overflow[0], overflow[1], overflow[2], overflow[3]]);
                let take = (length - payload.len()).min(u - 4);
                payload.extend_from_slice(
                    overflow
                        .get(4..4 + take)
                        .ok_or(Error::Truncated("short overflow page"))?,
                );
            }
        }
        Ok(payload)
    }
}

/// A record's column values: (serial type, bytes).
fn record(payload: &[u8]) -> Result<Vec<(u64, &[u8])>> {
    let (header_len, mut at) = varint(payload, 0).ok_or(Error::BadVarint("bad record header"))?;
    let header_len = header_len as usize;
    let mut types = Vec::new();
    while at < header_len {
        let (t, next) = varint(payload, at).ok_or(Error::BadVarint("bad serial type"))?;
        types.push(t);
        at = next;
    }
    let mut body = header_len;
    let mut values = Vec::new();
    for t in types {
        let size = match t {
            0 | 8 | 9 => 0,
            1 => 1,
            2 => 2,
            3 => 3,
            4 => 4,
            5 => 6,
            6 | 7 => 8,
            n if n >= 12 => ((n - 12) / 2) as usize,
            n => return Err(Error::ReservedSerialType(n)),
        };
        values.push((
            t,
            payload
                .get(body..body + size)
                .ok_or(Error::Truncated("record value out of range"))?,
        ));
        body += size;
    }
    Ok(values)
}

/// The blobs of rpm's `Packages` table.
pub fn package_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if bytes.len() < 100 || &bytes[..16] != b"SQLite format 3\0" {
        return Err(Error::NotSqlite);
    }
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => n as usize,
        n => return Err(Error::InvalidPageSize(n)),
    };
    let reserved = bytes[20] as usize;
    if reserved >= page_size - 480 {
        return Err(Error::InvalidReservedSpace);
    }
    let db = Db {
        bytes,
        page_size,
        usable: page_size - reserved,
    };
    let mut root = None;
    for payload in db.table(1)? {
        let values = record(&payload)?;
        let text = |i: usize| {
            values
                .get(i)
                .filter(|(t, _)| *t >= 13 && t % 2 == 1)
                .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        };
        if text(0).as_deref() == Some("table") && text(1).as_deref() == Some("Packages") {
            let (t, b) = values.get(3).ok_or(Error::NoRootpage)?;
            let n = match t {
                1..=6 => b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
                8 => 0,
                9 => 1,
                _ => return Err(Error::RootpageNotInteger),
            };
            root = Some(u32::try_from(n).map_err(|_| Error::RootpageOutOfRange)?);
        }
    }
    let root = root.ok_or(Error::NoPackagesTable)?;
    let mut blobs = Vec::new();
    for payload in db.table(root)? {
        let values = record(&payload)?;
        // (hnum INTEGER PRIMARY KEY, blob BLOB): the blob is the first BLOB column.
        if let Some((_, blob)) = values.iter().find(|(t, _)| *t >= 12 && t % 2 == 0) {
            blobs.push(blob.to_vec());
        }
    }
    Ok(blobs)
}
