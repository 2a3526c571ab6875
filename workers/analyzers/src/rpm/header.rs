//! rpm header blobs, as stored in every rpmdb format: `il` index entries of (tag, type,
//! offset, count) over a `dl`-byte data store, big-endian. Every read is bounds-checked.

use std::collections::BTreeMap;

/// Why a header blob could not be decoded, or its file list not assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("header shorter than 8 bytes")]
    TooShort,
    #[error("implausible header: {entries} entries, {data} data bytes")]
    Implausible { entries: u32, data: u32 },
    #[error(
        "header truncated: {entries} entries and {data} data bytes need {needed} bytes, have {have}"
    )]
    Truncated {
        entries: u32,
        data: u32,
        needed: usize,
        have: usize,
    },
    #[error("index entry truncated")]
    IndexEntryTruncated,
    #[error("tag {tag}: offset {offset} or count {count} out of range")]
    EntryOutOfRange { tag: i32, offset: usize, count: u32 },
    #[error("tag {tag}: unterminated string")]
    UnterminatedString { tag: i32 },
    #[error("tag {tag}: integers out of range")]
    IntegersOutOfRange { tag: i32 },
    #[error("tag {tag}: binary out of range")]
    BinaryOutOfRange { tag: i32 },
    #[error("{basenames} basenames but {dirindexes} dirindexes")]
    FileListMismatch { basenames: usize, dirindexes: usize },
    #[error("dirindex {0} out of range")]
    DirindexOutOfRange(i64),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const NAME: i32 = 1000;
pub const VERSION: i32 = 1001;
pub const RELEASE: i32 = 1002;
pub const EPOCH: i32 = 1003;
pub const SUMMARY: i32 = 1004;
pub const SIZE: i32 = 1009;
pub const VENDOR: i32 = 1011;
pub const LICENSE: i32 = 1014;
pub const ARCH: i32 = 1022;
pub const OLDFILENAMES: i32 = 1027;
pub const SOURCERPM: i32 = 1044;
pub const PROVIDENAME: i32 = 1047;
pub const REQUIRENAME: i32 = 1049;
pub const DIRINDEXES: i32 = 1116;
pub const BASENAMES: i32 = 1117;
pub const DIRNAMES: i32 = 1118;
pub const MODULARITYLABEL: i32 = 5096;

const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_BIN: u32 = 7;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Most index entries and data bytes a header may claim (rpm's own limits).
const MAX_ENTRIES: u32 = 0x0000_ffff;
const MAX_DATA: u32 = 0x0fff_ffff;

/// A tag's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Bytes(Vec<u8>),
}

/// A decoded header: tag → value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub tags: BTreeMap<i32, Value>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Header {
    /// Decodes a header blob.
    pub fn parse(blob: &[u8]) -> Result<Header> {
        let il = be32(blob, 0).ok_or(Error::TooShort)?;
        let dl = be32(blob, 4).ok_or(Error::TooShort)?;
        if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
            return Err(Error::Implausible {
                entries: il,
                data: dl,
            });
        }
        let index_end = 8 + 16 * il as usize;
        let data = blob
            .get(index_end..index_end + dl as usize)
            .ok_or(Error::Truncated {
                entries: il,
                data: dl,
                needed: index_end + dl as usize,
                have: blob.len(),
            })?;
        let mut header = Header::default();
        for i in 0..il as usize {
            let at = 8 + 16 * i;
            let (Some(tag), Some(kind), Some(offset), Some(count)) = (
                be32(blob, at),
                be32(blob, at + 4),
                be32(blob, at + 8),
                be32(blob, at + 12),
            ) else {
                return Err(Error::IndexEntryTruncated);
            };
            let tag = tag as i32;
            // Region tags (61–63) describe the header itself.
            if (61..=63).contains(&tag) {
                continue;
            }
            let offset = offset as usize;
            if offset > data.len() || count > MAX_DATA {
                return Err(Error::EntryOutOfRange { tag, offset, count });
            }
            let rest = &data[offset..];
            let value = match kind {
                TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
                    let n = if kind == TYPE_STRING {
                        1
                    } else {
                        count as usize
                    };
                    let mut strings = Vec::with_capacity(n.min(1 << 16));
                    let mut position = 0;
                    for _ in 0..n {
                        let end = rest[position..]
                            .iter()
                            .position(|&b| b == 0)
                            .ok_or(Error::UnterminatedString { tag })?;
                        strings.push(
                            String::from_utf8_lossy(&rest[position..position + end]).into_owned(),
                        );
                        position += end + 1;
                    }
                    Value::Strings(strings)
                }
                TYPE_INT32 | TYPE_INT16 | TYPE_INT64 | TYPE_INT8 | TYPE_CHAR => {
                    let width = match kind {
                        TYPE_INT64 => 8,
                        TYPE_INT32 => 4,
                        TYPE_INT16 => 2,
                        _ => 1,
                    };
                    let bytes = rest
                        .get(..width * count as usize)
                        .ok_or(Error::IntegersOutOfRange { tag })?;
                    Value::Ints(
                        bytes
                            .chunks(width)
                            .map(|c| match width {
                                8 => i64::from_be_bytes(c.try_into().unwrap_or([0; 8])),
                                4 => i64::from(i32::from_be_bytes(c.try_into().unwrap_or([0; 4]))),
                                2 => i64::from(i16::from_be_bytes(c.try_into().unwrap_or([0; 2]))),
                                _ => i64::from(c[0]),
                            })
                            .collect(),
                    )
                }
                TYPE_BIN => Value::Bytes(
                    rest.get(..count as usize)
                        .ok_or(Error::BinaryOutOfRange { tag })?
                        .to_vec(),
                ),
                _ => continue,
            };
            header.tags.insert(tag, value);
        }
        Ok(header)
    }

    pub fn string(&self, tag: i32) -> Option<&str> {
        match self.tags.get(&tag)? {
            Value::Strings(s) => s.first().map(String::as_str),
            _ => None,
        }
    }

    pub fn strings(&self, tag: i32) -> &[String] {
        match self.tags.get(&tag) {
            Some(Value::Strings(s)) => s,
            _ => &[],
        }
    }

    pub fn int(&self, tag: i32) -> Option<i64> {
        match self.tags.get(&tag)? {
            Value::Ints(v) => v.first().copied(),
            _ => None,
        }
    }

    pub fn ints(&self, tag: i32) -> &[i64] {
        match self.tags.get(&tag) {
            Some(Value::Ints(v)) => v,
            _ => &[],
        }
    }

    /// Installed file paths: DIRNAMES[DIRINDEXES[i]] + BASENAMES[i] (or OLDFILENAMES).
    pub fn files(&self) -> Result<Vec<String>> {
        let old = self.strings(OLDFILENAMES);
        if !old.is_empty() {
            return Ok(old.to_vec());
        }
        let (bases, dirs, indexes) = (
            self.strings(BASENAMES),
            self.strings(DIRNAMES),
            self.ints(DIRINDEXES),
        );
        if bases.len() != indexes.len() {
            return Err(Error::FileListMismatch {
                basenames: bases.len(),
                dirindexes: indexes.len(),
            });
        }
        bases
            .iter()
            .zip(indexes)
            .map(|(base, &i)| {
                let dir = usize::try_from(i)
                    .ok()
                    .and_then(|i| dirs.get(i))
                    .ok_or(Error::DirindexOutOfRange(i))?;
                Ok(format!("{dir}{base}"))
            })
            .collect()
    }
}
