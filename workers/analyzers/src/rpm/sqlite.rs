//! A read-only reader of the one thing rpm keeps in `rpmdb.sqlite`: the `Packages` table's
//! blobs. It walks the SQLite file format's table b-tree and overflow chains directly (no
//! SQLite library), with every offset checked and every page visited at most once.

use std::collections::BTreeSet;

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
    fn page(&self, number: u32) -> Result<&'a [u8], String> {
        let n = number as usize;
        if n == 0 {
            return Err("page 0 referenced".into());
        }
        self.bytes
            .get((n - 1) * self.page_size..n * self.page_size)
            .ok_or_else(|| format!("page {n} beyond the end of the file"))
    }

    /// Every (rowid, payload) of the table rooted at `root`.
    fn table(&self, root: u32) -> Result<Vec<Vec<u8>>, String> {
        let mut rows = Vec::new();
        let mut stack = vec![root];
        let mut seen = BTreeSet::new();
        while let Some(number) = stack.pop() {
            if !seen.insert(number) || seen.len() > 1 << 22 {
                return Err(format!("b-tree cycle at page {number}"));
            }
            let page = self.page(number)?;
            let header_at = if number == 1 { 100 } else { 0 };
            let kind = *page.get(header_at).ok_or("empty page")?;
            let cells = u16::from_be_bytes([
                *page.get(header_at + 3).ok_or("short page")?,
                *page.get(header_at + 4).ok_or("short page")?,
            ]) as usize;
            let (header_len, interior) = match kind {
                0x0d => (8, false),
                0x05 => (12, true),
                other => {
                    return Err(format!(
                        "page {number}: not a table b-tree page (type {other:#x})"
                    ));
                }
            };
            for c in 0..cells {
                let p = header_at + header_len + 2 * c;
                let offset = u16::from_be_bytes([
                    *page.get(p).ok_or("cell pointer out of page")?,
                    *page.get(p + 1).ok_or("cell pointer out of page")?,
                ]) as usize;
                if interior {
                    let child = page.get(offset..offset + 4).ok_or("cell out of page")?;
                    stack.push(u32::from_be_bytes([child[0], child[1], child[2], child[3]]));
                } else {
                    rows.push(self.payload(page, offset)?);
                }
            }
            if interior {
                let right = page
                    .get(header_at + 8..header_at + 12)
                    .ok_or("short interior page")?;
                stack.push(u32::from_be_bytes([right[0], right[1], right[2], right[3]]));
            }
        }
        Ok(rows)
    }

    /// The full payload of a table-leaf cell, following overflow pages.
    fn payload(&self, page: &[u8], offset: usize) -> Result<Vec<u8>, String> {
        let (length, at) = varint(page, offset).ok_or("bad cell")?;
        let (_rowid, at) = varint(page, at).ok_or("bad cell")?;
        let length = usize::try_from(length).map_err(|_| "payload too large")?;
        if length > 1 << 30 {
            return Err(format!("payload of {length} bytes"));
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
            .ok_or("payload out of page")?
            .to_vec();
        if local < length {
            let next = page
                .get(at + local..at + local + 4)
                .ok_or("overflow pointer out of page")?;
            let mut next = u32::from_be_bytes([next[0], next[1], next[2], next[3]]);
            let mut seen = BTreeSet::new();
            while payload.len() < length {
                if next == 0 || !seen.insert(next) {
                    return Err("broken overflow chain".into());
                }
                let overflow = self.page(next)?;
                next = u32::from_be_bytes([overflow[0], overflow[1], overflow[2], overflow[3]]);
                let take = (length - payload.len()).min(u - 4);
                payload.extend_from_slice(overflow.get(4..4 + take).ok_or("short overflow page")?);
            }
        }
        Ok(payload)
    }
}

/// A record's column values: (serial type, bytes).
fn record(payload: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let (header_len, mut at) = varint(payload, 0).ok_or("bad record header")?;
    let header_len = header_len as usize;
    let mut types = Vec::new();
    while at < header_len {
        let (t, next) = varint(payload, at).ok_or("bad serial type")?;
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
            n => return Err(format!("reserved serial type {n}")),
        };
        values.push((
            t,
            payload
                .get(body..body + size)
                .ok_or("record value out of range")?,
        ));
        body += size;
    }
    Ok(values)
}

/// The blobs of rpm's `Packages` table.
pub fn package_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.len() < 100 || &bytes[..16] != b"SQLite format 3\0" {
        return Err("not an SQLite database".into());
    }
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65536,
        n if n >= 512 && n.is_power_of_two() => n as usize,
        n => return Err(format!("invalid page size {n}")),
    };
    let reserved = bytes[20] as usize;
    if reserved >= page_size - 480 {
        return Err("invalid reserved space".into());
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
            let (t, b) = values.get(3).ok_or("sqlite_master row without rootpage")?;
            let n = match t {
                1..=6 => b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
                8 => 0,
                9 => 1,
                _ => return Err("rootpage is not an integer".into()),
            };
            root = Some(u32::try_from(n).map_err(|_| "rootpage out of range")?);
        }
    }
    let root = root.ok_or("no Packages table")?;
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
