//! Berkeley DB hash databases (`/var/lib/rpm/Packages`, rpm < 4.16): the values of every
//! key/value pair are the header blobs, stored on overflow page chains.

use std::collections::BTreeSet;

/// Why a hash database's blobs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not a Berkeley DB hash database")]
    NotBdb,
    #[error("invalid page size {0}")]
    InvalidPageSize(usize),
    #[error("overflow chain loops at page {page}")]
    OverflowLoop { page: u32 },
    #[error("overflow page {page} beyond the end of the file")]
    OverflowBeyondEnd { page: u32 },
    #[error("page {page} is not an overflow page")]
    NotOverflowPage { page: u32 },
    #[error("page {page}: {used} bytes do not fit")]
    OverflowDoesNotFit { page: u32, used: usize },
    #[error("page {page}: odd number of hash entries")]
    OddEntries { page: u32 },
    #[error("page {page}: entry out of page")]
    EntryOutOfPage { page: u32 },
    /// A fixed-size structure ends early; the text names it (`short page`, `short entry`, …).
    #[error("{0}")]
    Truncated(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const HASH_MAGIC: u32 = 0x061561;
const PAGE_HEADER: usize = 26;
const HASH_UNSORTED: u8 = 2;
const HASH: u8 = 13;
const OVERFLOW: u8 = 7;
const H_OFFPAGE: u8 = 3;

struct Reader<'a> {
    bytes: &'a [u8],
    page_size: usize,
    big_endian: bool,
}

impl Reader<'_> {
    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }

    fn page(&self, n: u32) -> Option<&[u8]> {
        let start = n as usize * self.page_size;
        self.bytes.get(start..start + self.page_size)
    }

    fn overflow(&self, first: u32) -> Result<Vec<u8>> {
        let mut value = Vec::new();
        let mut next = first;
        let mut seen = BTreeSet::new();
        while next != 0 {
            if !seen.insert(next) {
                return Err(Error::OverflowLoop { page: next });
            }
            let page = self
                .page(next)
                .ok_or(Error::OverflowBeyondEnd { page: next })?;
            if page[25] != OVERFLOW {
                return Err(Error::NotOverflowPage { page: next });
            }
            let following = self.u32(page, 16).ok_or(Error::Truncated("short page"))?;
            let used = self.u16(page, 22).ok_or(Error::Truncated("short page"))? as usize;
            let content = if following == 0 {
                page.get(PAGE_HEADER..PAGE_HEADER + used)
            } else {
                page.get(PAGE_HEADER..)
            };
            value.extend_from_slice(content.ok_or(Error::OverflowDoesNotFit { page: next, used })?);
            next = following;
        }
        Ok(value)
    }
}

/// Whether the bytes start like a Berkeley DB hash database.
pub fn is_bdb(bytes: &[u8]) -> bool {
    bytes.len() >= 72
        && (u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default()) == HASH_MAGIC
            || u32::from_be_bytes(bytes[12..16].try_into().unwrap_or_default()) == HASH_MAGIC)
}

/// The header blobs of a hash database.
pub fn package_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !is_bdb(bytes) {
        return Err(Error::NotBdb);
    }
    let big_endian = u32::from_le_bytes(bytes[12..16].try_into().unwrap_or_default()) != HASH_MAGIC;
    let probe = Reader {
        bytes,
        page_size: 0,
        big_endian,
    };
    let page_size = probe
        .u32(bytes, 20)
        .ok_or(Error::Truncated("short metadata"))? as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(Error::InvalidPageSize(page_size));
    }
    let last_page = probe
        .u32(bytes, 32)
        .ok_or(Error::Truncated("short metadata"))?;
    let reader = Reader {
        bytes,
        page_size,
        big_endian,
    };
    let mut blobs = Vec::new();
    for n in 0..=last_page {
        let Some(page) = reader.page(n) else { break };
        if page[25] != HASH && page[25] != HASH_UNSORTED {
            continue;
        }
        let entries = reader.u16(page, 20).ok_or(Error::Truncated("short page"))? as usize;
        if !entries.is_multiple_of(2) {
            return Err(Error::OddEntries { page: n });
        }
        for pair in 0..entries / 2 {
            // Entries alternate key, value; we want the values.
            let offset = reader
                .u16(page, PAGE_HEADER + 4 * pair + 2)
                .ok_or(Error::Truncated("index out of page"))? as usize;
            if *page.get(offset).ok_or(Error::EntryOutOfPage { page: n })? != H_OFFPAGE {
                continue;
            }
            let entry = page
                .get(offset..offset + 12)
                .ok_or(Error::EntryOutOfPage { page: n })?;
            let first = reader
                .u32(entry, 4)
                .ok_or(Error::Truncated("short entry"))?;
            blobs.push(reader.overflow(first)?);
        }
    }
    Ok(blobs)
}
