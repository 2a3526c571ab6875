//! rpm's own "ndb" format (`Packages.db`, SUSE): slot pages index blobs in 16-byte blocks.

/// Why an ndb database's blobs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not an rpm ndb database")]
    NotNdb,
    #[error("unsupported ndb version {0}")]
    UnsupportedVersion(u32),
    #[error("implausible slot page count {0}")]
    ImplausibleSlotPages(usize),
    #[error("slot {slot}: bad magic")]
    BadSlotMagic { slot: usize },
    #[error("slot {slot}: blob beyond the end of the file")]
    BlobBeyondEnd { slot: usize },
    #[error("slot {slot}: blob header does not match")]
    BlobHeaderMismatch { slot: usize },
    #[error("slot {slot}: blob truncated")]
    BlobTruncated { slot: usize },
    /// A fixed-size structure ends early; the text names it (`short header`, `short slot`, …).
    #[error("{0}")]
    Truncated(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const PAGE: usize = 4096;
const HEADER_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const BLOB_MAGIC: &[u8; 4] = b"BlbS";
const BLOCK: usize = 16;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn is_ndb(bytes: &[u8]) -> bool {
    bytes.len() >= 32 && &bytes[..4] == HEADER_MAGIC
}

/// The header blobs, in slot order.
pub fn package_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !is_ndb(bytes) {
        return Err(Error::NotNdb);
    }
    let version = le32(bytes, 4).ok_or(Error::Truncated("short header"))?;
    if version != 0 {
        return Err(Error::UnsupportedVersion(version));
    }
    let slot_pages = le32(bytes, 12).ok_or(Error::Truncated("short header"))? as usize;
    if slot_pages == 0 || slot_pages > 2048 {
        return Err(Error::ImplausibleSlotPages(slot_pages));
    }
    // The header takes the first two 16-byte slot positions.
    let slots = slot_pages * PAGE / 16;
    let mut blobs = Vec::new();
    for slot in 2..slots {
        let at = slot * 16;
        let entry = bytes
            .get(at..at + 16)
            .ok_or(Error::Truncated("slot pages truncated"))?;
        if &entry[..4] != SLOT_MAGIC {
            return Err(Error::BadSlotMagic { slot });
        }
        let package = le32(entry, 4).ok_or(Error::Truncated("short slot"))?;
        if package == 0 {
            continue;
        }
        let offset = le32(entry, 8).ok_or(Error::Truncated("short slot"))? as usize * BLOCK;
        let header = bytes
            .get(offset..offset + 16)
            .ok_or(Error::BlobBeyondEnd { slot })?;
        if &header[..4] != BLOB_MAGIC || le32(header, 4) != Some(package) {
            return Err(Error::BlobHeaderMismatch { slot });
        }
        let length = le32(header, 12).ok_or(Error::Truncated("short blob header"))? as usize;
        blobs.push(
            bytes
                .get(offset + 16..offset + 16 + length)
                .ok_or(Error::BlobTruncated { slot })?
                .to_vec(),
        );
    }
    Ok(blobs)
}
