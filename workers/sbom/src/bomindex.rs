//! The BOM-Index sidecar (seeds, Appendix B): an image's purls as a sorted table and, per purl,
//! a roaring bitmap of the components carrying it (and of those the entrypoint uses), so the
//! scheduler can find the images a new advisory touches without reading any SBOM. Also
//! [`ImpactIndex`], those indexes of many images joined into one.
//!
//! # Layout (version 2)
//!
//! All integers little-endian; a *string* is a `u32` byte length then that many UTF-8 bytes; a
//! *map* is a `u32` entry count then, per entry in strictly ascending purl index order, the
//! `u32` purl index, a `u32` byte length and a non-empty roaring bitmap in its portable
//! serialization (`RoaringBitmap::serialize_into`, the RoaringFormatSpec) of component
//! ordinals (positions in the inventory's `components`).
//!
//! ```text
//! magic                14 bytes  "STELLA-BOMIDX\0"
//! version              u16       1
//! image digest         string
//! created-at present   u8        0 or 1, then (1) the image's `created` as a string
//! purl count           u32
//! purls                string × count, strictly ascending (byte order)
//! components           map
//! used-by-entrypoint   u8        0 (no component is flagged) or 1, then a map
//! match keys present   u8        0 or 1, then (1) a u32 count and that many strings,
//!                                strictly ascending: the `ecosystem/package` keys advisories
//!                                name the image's packages by (`Debian:12/openssl` for
//!                                `libssl3`, whose source package it is; `PyPI/requests`)
//! ```
//!
//! Nothing follows. The same inventory always gives the same bytes. Version 1 (without the
//! match keys) is still read: its images have no keys, so any feed delta may touch them.

use crate::Inventory;
use roaring::RoaringBitmap;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// The first bytes of every BOM-Index.
pub const MAGIC: [u8; 14] = *b"STELLA-BOMIDX\0";
/// The layout version written.
pub const VERSION: u16 = 2;
/// The oldest layout version read.
pub const OLDEST_VERSION: u16 = 1;

/// Why bytes are not a BOM-Index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not a BOM-Index (bad magic)")]
    BadMagic,
    #[error(
        "unsupported BOM-Index version {0} (this build reads versions {OLDEST_VERSION} to {VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error(
        "truncated BOM-Index: {what} at offset {offset} needs {needed} bytes, {remaining} remain"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        remaining: usize,
    },
    #[error(
        "invalid BOM-Index: {what} at offset {offset} claims {claimed} bytes or entries, more than the {remaining} bytes that remain"
    )]
    Oversized {
        what: &'static str,
        offset: usize,
        claimed: u64,
        remaining: usize,
    },
    #[error(
        "invalid BOM-Index: purl index {index} at offset {offset} is outside the purl table ({purls} purls)"
    )]
    PurlIndex {
        index: u32,
        offset: usize,
        purls: usize,
    },
    #[error("invalid BOM-Index: {what} at offset {offset} is not UTF-8")]
    Utf8 { what: &'static str, offset: usize },
    #[error("invalid BOM-Index: roaring bitmap at offset {offset}: {reason}")]
    Bitmap { offset: usize, reason: String },
    #[error("invalid BOM-Index: {reason} at offset {offset}")]
    Invalid { reason: &'static str, offset: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Identifies the image an index describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 14],
    /// [`VERSION`].
    pub version: u16,
    /// `sha256:…` of the image.
    pub image_digest: String,
    /// The image's own `created` (RFC 3339), never the time the index was built.
    pub created_at: Option<String>,
}

/// One image's purls and which components carry them.
#[derive(Clone, Debug, PartialEq)]
pub struct BomIndex {
    pub header: Header,
    /// Sorted (byte order), unique.
    pub purls: Vec<String>,
    /// Purl index → ordinals of the inventory components with that purl.
    pub components: BTreeMap<u32, RoaringBitmap>,
    /// The same, only components the entrypoint uses; `None` when no component is flagged.
    pub used_by_entrypoint: Option<BTreeMap<u32, RoaringBitmap>>,
    /// The `ecosystem/package` keys advisories name the packages by, sorted and unique;
    /// `None` in a version 1 index (unknown).
    pub match_keys: Option<Vec<String>>,
}

impl BomIndex {
    /// The index of an inventory's components (ordinals are positions in `components`).
    pub fn build(inventory: &Inventory) -> BomIndex {
        let components = &inventory.components;
        let purl = |ordinal: u32| components[ordinal as usize].package.purl.as_str();
        // Ordinals by purl; stable, so each purl's ordinals stay ascending (and an inventory
        // already sorted by purl, as scans produce, is one linear pass).
        let count = u32::try_from(components.len()).expect("fewer than 2^32 components");
        let mut order: Vec<u32> = (0..count).collect();
        order.sort_by(|&a, &b| purl(a).cmp(purl(b)));
        let mut purls = Vec::new();
        let mut carried = BTreeMap::new();
        let mut used = BTreeMap::new();
        for group in order.chunk_by(|&a, &b| purl(a) == purl(b)) {
            let index = u32::try_from(purls.len()).expect("fewer than 2^32 purls");
            purls.push(purl(group[0]).to_string());
            let all = RoaringBitmap::from_sorted_iter(group.iter().copied());
            carried.insert(index, all.expect("ascending ordinals"));
            let flagged = group
                .iter()
                .copied()
                .filter(|&o| components[o as usize].used_by_entrypoint);
            let flagged = RoaringBitmap::from_sorted_iter(flagged).expect("ascending ordinals");
            if !flagged.is_empty() {
                used.insert(index, flagged);
            }
        }
        BomIndex {
            header: Header {
                magic: MAGIC,
                version: VERSION,
                image_digest: inventory.image.digest.clone(),
                created_at: inventory.image.created.clone(),
            },
            purls,
            match_keys: None,
            components: carried,
            used_by_entrypoint: (!used.is_empty()).then_some(used),
        }
    }

    /// The same index with the image's advisory match keys (`ecosystem/package`; sorted and
    /// deduplicated here).
    pub fn with_match_keys(mut self, keys: impl IntoIterator<Item = String>) -> BomIndex {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        self.match_keys = Some(keys);
        self
    }

    /// Whether some component has exactly this purl.
    pub fn contains(&self, purl: &str) -> bool {
        self.purls
            .binary_search_by(|p| p.as_str().cmp(purl))
            .is_ok()
    }

    /// Whether some component's purl starts with `prefix` (`pkg:npm/lodash@`,
    /// `pkg:deb/debian/openssl`).
    pub fn contains_prefix(&self, prefix: &str) -> bool {
        !prefix_range(&self.purls, prefix).is_empty()
    }

    /// The layout in the module documentation.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64 + self.purls.iter().map(|p| p.len() + 12).sum::<usize>());
        out.extend_from_slice(&self.header.magic);
        out.extend_from_slice(&self.header.version.to_le_bytes());
        put_string(&mut out, &self.header.image_digest);
        match &self.header.created_at {
            Some(created) => {
                out.push(1);
                put_string(&mut out, created);
            }
            None => out.push(0),
        }
        put_u32(&mut out, self.purls.len());
        for purl in &self.purls {
            put_string(&mut out, purl);
        }
        put_map(&mut out, &self.components);
        match &self.used_by_entrypoint {
            Some(used) => {
                out.push(1);
                put_map(&mut out, used);
            }
            None => out.push(0),
        }
        if self.header.version >= 2 {
            match &self.match_keys {
                Some(keys) => {
                    out.push(1);
                    put_u32(&mut out, keys.len());
                    for key in keys {
                        put_string(&mut out, key);
                    }
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Parses and checks the layout in the module documentation. Every length and count is
    /// checked against the bytes that remain before anything is allocated for it.
    pub fn from_bytes(bytes: &[u8]) -> Result<BomIndex> {
        let mut r = Reader { bytes, offset: 0 };
        let magic: [u8; 14] = r
            .take(MAGIC.len(), "magic")
            .map_err(|_| Error::BadMagic)?
            .try_into()
            .expect("14 bytes");
        if magic != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = r.u16("version")?;
        if !(OLDEST_VERSION..=VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion(version));
        }
        let image_digest = r.string("image digest")?;
        let created_at = match r.flag("created-at flag")? {
            true => Some(r.string("created-at")?),
            false => None,
        };
        // Each purl takes at least its 4-byte length.
        let count = r.count("purl count", 4)?;
        let mut purls: Vec<String> = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = r.offset;
            let purl = r.string("purl")?;
            if purls.last().is_some_and(|last| *last >= purl) {
                return Err(Error::Invalid {
                    reason: "purls not strictly ascending",
                    offset,
                });
            }
            purls.push(purl);
        }
        let components = r.map(purls.len())?;
        let used_by_entrypoint = match r.flag("used-by-entrypoint flag")? {
            true => Some(r.map(purls.len())?),
            false => None,
        };
        let match_keys = match version >= 2 && r.flag("match-keys flag")? {
            true => {
                let count = r.count("match key count", 4)?;
                let mut keys: Vec<String> = Vec::with_capacity(count);
                for _ in 0..count {
                    let offset = r.offset;
                    let key = r.string("match key")?;
                    if keys.last().is_some_and(|last| *last >= key) {
                        return Err(Error::Invalid {
                            reason: "match keys not strictly ascending",
                            offset,
                        });
                    }
                    keys.push(key);
                }
                Some(keys)
            }
            false => None,
        };
        if r.offset != bytes.len() {
            return Err(Error::Invalid {
                reason: "trailing bytes",
                offset: r.offset,
            });
        }
        Ok(BomIndex {
            header: Header {
                magic,
                version,
                image_digest,
                created_at,
            },
            purls,
            components,
            used_by_entrypoint,
            match_keys,
        })
    }
}

/// Positions in `sorted` of the strings starting with `prefix` (contiguous in a sorted table).
pub fn prefix_range(sorted: &[String], prefix: &str) -> Range<usize> {
    let start = sorted.partition_point(|p| p.as_str() < prefix);
    let len = sorted[start..].partition_point(|p| p.starts_with(prefix));
    start..start + len
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("lengths and counts below 4 GiB");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_map(out: &mut Vec<u8>, map: &BTreeMap<u32, RoaringBitmap>) {
    put_u32(out, map.len());
    for (index, bitmap) in map {
        out.extend_from_slice(&index.to_le_bytes());
        put_u32(out, bitmap.serialized_size());
        bitmap
            .serialize_into(&mut *out)
            .expect("writing to a Vec cannot fail");
    }
}

/// Reads the layout, bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated {
                what,
                offset: self.offset,
                needed: n,
                remaining: self.remaining(),
            });
        }
        let taken = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(taken)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2, what)?.try_into().expect("2 bytes"),
        ))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    fn flag(&mut self, what: &'static str) -> Result<bool> {
        let offset = self.offset;
        match self.take(1, what)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Invalid {
                reason: "a flag other than 0 or 1",
                offset,
            }),
        }
    }

    /// A `u32` count of items each at least `min_size` bytes long, checked against what remains.
    fn count(&mut self, what: &'static str, min_size: u64) -> Result<usize> {
        let offset = self.offset;
        let count = self.u32(what)?;
        if u64::from(count) * min_size > self.remaining() as u64 {
            return Err(Error::Oversized {
                what,
                offset,
                claimed: u64::from(count),
                remaining: self.remaining(),
            });
        }
        Ok(count as usize)
    }

    /// A `u32` byte length, checked against what remains.
    fn length(&mut self, what: &'static str) -> Result<usize> {
        self.count(what, 1)
    }

    fn string(&mut self, what: &'static str) -> Result<String> {
        let len = self.length(what)?;
        let offset = self.offset;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Utf8 { what, offset })
    }

    fn map(&mut self, purls: usize) -> Result<BTreeMap<u32, RoaringBitmap>> {
        // Each entry takes at least its index, its length and a roaring cookie.
        let count = self.count("map entry count", 12)?;
        let mut map = BTreeMap::new();
        let mut last: Option<u32> = None;
        for _ in 0..count {
            let offset = self.offset;
            let index = self.u32("purl index")?;
            if index as usize >= purls {
                return Err(Error::PurlIndex {
                    index,
                    offset,
                    purls,
                });
            }
            if last.is_some_and(|last| last >= index) {
                return Err(Error::Invalid {
                    reason: "map entries not in strictly ascending purl order",
                    offset,
                });
            }
            last = Some(index);
            let len = self.length("bitmap length")?;
            let offset = self.offset;
            let mut blob = self.take(len, "bitmap")?;
            let bitmap = RoaringBitmap::deserialize_from(&mut blob).map_err(|e| Error::Bitmap {
                offset,
                reason: e.to_string(),
            })?;
            if !blob.is_empty() {
                return Err(Error::Bitmap {
                    offset,
                    reason: format!("{} bytes after the bitmap", blob.len()),
                });
            }
            if bitmap.is_empty() {
                return Err(Error::Bitmap {
                    offset,
                    reason: "empty".into(),
                });
            }
            map.insert(index, bitmap);
        }
        Ok(map)
    }
}

/// The BOM-Indexes of many images joined: one sorted purl table over all of them and, per purl,
/// the images (by ordinal) that carry it — and those whose entrypoint uses it. Answers "which
/// images does this advisory touch" with binary searches and bitmap unions.
#[derive(Clone, Debug, Default)]
pub struct ImpactIndex {
    /// Image digests; an image's ordinal is its position.
    images: Vec<String>,
    /// Sorted, unique.
    purls: Vec<String>,
    /// Parallel to `purls`.
    carried: Vec<RoaringBitmap>,
    /// Parallel to `purls`; empty bitmaps where no image's entrypoint uses the purl.
    used: Vec<RoaringBitmap>,
    /// Advisory match keys (`ecosystem/package`), sorted, unique.
    keys: Vec<String>,
    /// Parallel to `keys`: the images whose packages advisories name by the key.
    keyed: Vec<RoaringBitmap>,
    /// Images whose index has no match keys (version 1): any delta may touch them.
    unkeyed: RoaringBitmap,
}

impl ImpactIndex {
    /// Joins `(image digest, index)` pairs; a digest given twice is one image (its indexes
    /// united).
    pub fn build<'a>(indexes: impl IntoIterator<Item = (&'a str, &'a BomIndex)>) -> ImpactIndex {
        let mut images: Vec<String> = Vec::new();
        let mut ordinals: HashMap<&'a str, u32, Fx> = HashMap::default();
        // Purl → slot; per slot the images carrying it and those using it. Ordinals only grow,
        // so inserts append.
        let mut slots: HashMap<&'a str, u32, Fx> = HashMap::default();
        let mut bitmaps: Vec<(RoaringBitmap, RoaringBitmap)> = Vec::new();
        let mut key_slots: HashMap<&'a str, RoaringBitmap, Fx> = HashMap::default();
        let mut unkeyed = RoaringBitmap::new();
        for (digest, index) in indexes {
            let ordinal = *ordinals.entry(digest).or_insert_with(|| {
                images.push(digest.to_string());
                u32::try_from(images.len() - 1).expect("fewer than 2^32 images")
            });
            match &index.match_keys {
                Some(keys) => {
                    for key in keys {
                        let images = key_slots.entry(key.as_str()).or_default();
                        if images.try_push(ordinal).is_err() {
                            images.insert(ordinal);
                        }
                    }
                }
                None => {
                    unkeyed.insert(ordinal);
                }
            }
            let mut used = index
                .used_by_entrypoint
                .iter()
                .flat_map(|u| u.keys())
                .peekable();
            for &i in index.components.keys() {
                let purl = index.purls[i as usize].as_str();
                let slot = *slots.entry(purl).or_insert_with(|| {
                    bitmaps.push(Default::default());
                    (bitmaps.len() - 1) as u32
                });
                let (carried, using) = &mut bitmaps[slot as usize];
                // `push` appends (the common case: a new image has the highest ordinal so far);
                // a digest seen before needs the general insert.
                if carried.try_push(ordinal).is_err() {
                    carried.insert(ordinal);
                }
                // Both maps are in purl-index order: walk them together.
                while used.next_if(|&&u| u < i).is_some() {}
                if used.next_if(|&&u| u == i).is_some() && using.try_push(ordinal).is_err() {
                    using.insert(ordinal);
                }
            }
        }
        let mut order: Vec<(&str, u32)> = slots.into_iter().collect();
        order.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut bitmaps: Vec<Option<(RoaringBitmap, RoaringBitmap)>> =
            bitmaps.into_iter().map(Some).collect();
        let mut keyed: Vec<(&str, RoaringBitmap)> = key_slots.into_iter().collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let (keys, keyed): (Vec<String>, Vec<RoaringBitmap>) =
            keyed.into_iter().map(|(k, b)| (k.to_string(), b)).unzip();
        let mut index = ImpactIndex {
            images,
            purls: Vec::with_capacity(order.len()),
            carried: Vec::with_capacity(order.len()),
            used: Vec::with_capacity(order.len()),
            keys,
            keyed,
            unkeyed,
        };
        for (purl, slot) in order {
            let (carried, used) = bitmaps[slot as usize].take().expect("one slot per purl");
            index.purls.push(purl.to_string());
            index.carried.push(carried);
            index.used.push(used);
        }
        index
    }

    /// The digests (sorted) of the images carrying any of `purls` exactly or any purl starting
    /// with one of `prefixes`; with `used_only`, only images whose entrypoint uses it.
    pub fn query(&self, purls: &[&str], prefixes: &[&str], used_only: bool) -> Vec<String> {
        let bitmaps = if used_only { &self.used } else { &self.carried };
        let mut hits = RoaringBitmap::new();
        for purl in purls {
            if let Ok(i) = self.purls.binary_search_by(|p| p.as_str().cmp(purl)) {
                hits |= &bitmaps[i];
            }
        }
        for prefix in prefixes {
            for bitmap in &bitmaps[prefix_range(&self.purls, prefix)] {
                hits |= bitmap;
            }
        }
        let mut digests: Vec<String> = hits
            .iter()
            .map(|ordinal| self.images[ordinal as usize].clone())
            .collect();
        digests.sort_unstable();
        digests
    }

    /// The digests (sorted) of the images whose packages advisories name by any of `keys`
    /// (`ecosystem/package`, as feed deltas list them) — and of those whose index has no
    /// keys, which any delta may touch.
    pub fn query_keys(&self, keys: &[&str]) -> Vec<String> {
        let mut hits = self.unkeyed.clone();
        for key in keys {
            if let Ok(i) = self.keys.binary_search_by(|k| k.as_str().cmp(key)) {
                hits |= &self.keyed[i];
            }
        }
        let mut digests: Vec<String> = hits
            .iter()
            .map(|ordinal| self.images[ordinal as usize].clone())
            .collect();
        digests.sort_unstable();
        digests
    }

    /// Digests of the joined images, in the order given.
    pub fn images(&self) -> &[String] {
        &self.images
    }

    /// The distinct purls over all images, sorted.
    pub fn purls(&self) -> &[String] {
        &self.purls
    }
}

/// A fast, non-cryptographic hasher (FxHash: a word at a time) for the purl table: the keys are
/// our own purls, not attacker-chosen, and SipHash would dominate joining thousands of images.
#[derive(Clone, Copy, Debug, Default)]
struct FxHasher(u64);

type Fx = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefix_ranges_are_contiguous_in_a_sorted_table() {
        let table = sorted(&[
            "pkg:a/x@1",
            "pkg:a/y@1",
            "pkg:b/x@1",
            "pkg:b/x@2",
            "pkg:c/z@1",
        ]);
        assert_eq!(prefix_range(&table, "pkg:b/x@"), 2..4);
        assert_eq!(prefix_range(&table, "pkg:"), 0..5);
        assert_eq!(prefix_range(&table, "pkg:d"), 5..5);
        assert_eq!(prefix_range(&table, "pkg:a/x@1"), 0..1);
        assert!(prefix_range(&[], "x").is_empty());
    }

    #[test]
    fn lengths_are_checked_before_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            BomIndex::from_bytes(&bytes),
            Err(Error::Oversized {
                what: "image digest",
                claimed: 4_294_967_295,
                ..
            })
        ));
    }
}
