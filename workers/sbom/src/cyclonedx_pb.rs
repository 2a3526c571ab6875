//! CycloneDX 1.6 protobuf (`cyclonedx.v1_6.Bom` of `bom-1.6.proto`), encoded by hand from the
//! same [`Bom`] model the JSON is rendered from.
//!
//! The bytes are deterministic: fields in field-number order, repeated fields in the JSON's
//! order, implicit-presence (proto3 non-`optional`) fields left out at their default value as
//! every protobuf encoder does, `optional` fields written whenever the JSON has them.

use crate::Inventory;
use crate::cyclonedx::{
    Bom, BomComponent, ComponentEvidence, Dependency, HashAlg, Kind, Metadata, Property,
};

/// Renders the inventory as a CycloneDX 1.6 protobuf `Bom` message.
pub fn to_protobuf(inventory: &Inventory) -> Vec<u8> {
    let bom = Bom::new(inventory);
    let mut w = Writer {
        buf: Vec::with_capacity(512 + inventory.components.len() * 640),
    };
    w.bom(&bom);
    w.buf
}

/// `google.protobuf.Timestamp` of an RFC 3339 time: (seconds since the epoch, nanoseconds).
/// `None` when `text` is not RFC 3339 (the protobuf then has no timestamp; the JSON keeps the
/// text as the image gave it).
pub fn timestamp(text: &str) -> Option<(i64, i32)> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    // A leap second is carried in the nanoseconds by chrono; Timestamp caps them below 1 s.
    let nanos = time.timestamp_subsec_nanos().min(999_999_999);
    Some((time.timestamp(), nanos as i32))
}

// Field numbers of bom-1.6.proto.
mod field {
    pub(super) mod bom {
        pub(crate) const SPEC_VERSION: u32 = 1;
        pub(crate) const VERSION: u32 = 2;
        pub(crate) const SERIAL_NUMBER: u32 = 3;
        pub(crate) const METADATA: u32 = 4;
        pub(crate) const COMPONENTS: u32 = 5;
        pub(crate) const DEPENDENCIES: u32 = 8;
    }
    pub(super) mod metadata {
        pub(crate) const TIMESTAMP: u32 = 1;
        pub(crate) const TOOLS: u32 = 2;
        pub(crate) const COMPONENT: u32 = 4;
        pub(crate) const PROPERTIES: u32 = 8;
    }
    pub(super) mod timestamp {
        pub(crate) const SECONDS: u32 = 1;
        pub(crate) const NANOS: u32 = 2;
    }
    pub(super) mod tool {
        pub(crate) const COMPONENTS: u32 = 6;
    }
    pub(super) mod component {
        pub(crate) const TYPE: u32 = 1;
        pub(crate) const BOM_REF: u32 = 3;
        pub(crate) const PUBLISHER: u32 = 6;
        pub(crate) const NAME: u32 = 8;
        pub(crate) const VERSION: u32 = 9;
        pub(crate) const DESCRIPTION: u32 = 10;
        pub(crate) const HASHES: u32 = 12;
        pub(crate) const LICENSES: u32 = 13;
        pub(crate) const PURL: u32 = 16;
        pub(crate) const PROPERTIES: u32 = 22;
        pub(crate) const EVIDENCE: u32 = 23;
    }
    pub(super) mod hash {
        pub(crate) const ALG: u32 = 1;
        pub(crate) const VALUE: u32 = 2;
    }
    pub(super) mod license_choice {
        pub(crate) const LICENSE: u32 = 1;
    }
    pub(super) mod license {
        pub(crate) const NAME: u32 = 2;
    }
    pub(super) mod property {
        pub(crate) const NAME: u32 = 1;
        pub(crate) const VALUE: u32 = 2;
    }
    pub(super) mod evidence {
        pub(crate) const OCCURRENCES: u32 = 4;
    }
    pub(super) mod occurrence {
        pub(crate) const LOCATION: u32 = 2;
    }
    pub(super) mod dependency {
        pub(crate) const REF: u32 = 1;
        pub(crate) const DEPENDENCIES: u32 = 2;
    }
}

/// `Classification` values.
fn classification(kind: Kind) -> u64 {
    match kind {
        Kind::Application => 1,
        Kind::Library => 3,
        Kind::OperatingSystem => 4,
        Kind::File => 6,
        Kind::Container => 7,
    }
}

/// `HashAlg` values.
fn hash_alg(alg: HashAlg) -> u64 {
    match alg {
        HashAlg::Sha256 => 3,
    }
}

const VARINT: u32 = 0;
const LEN: u32 = 2;

/// A protobuf writer: varints and length-delimited fields appended to one buffer. A nested
/// message is written in place and its length inserted in front of it afterwards (no buffer per
/// message).
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from(field << 3 | wire_type));
    }

    /// An implicit-presence integer or enum: absent when zero.
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.key(field, VARINT);
            self.varint(value);
        }
    }

    /// An `optional` (explicit-presence) string: written even when empty.
    fn string(&mut self, field: u32, value: &str) {
        self.key(field, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value.as_bytes());
    }

    fn optional_string(&mut self, field: u32, value: Option<&str>) {
        if let Some(value) = value {
            self.string(field, value);
        }
    }

    /// An implicit-presence string: absent when empty.
    fn implicit_string(&mut self, field: u32, value: &str) {
        if !value.is_empty() {
            self.string(field, value);
        }
    }

    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        self.key(field, LEN);
        let start = self.buf.len();
        body(self);
        let mut len = (self.buf.len() - start) as u64;
        let mut prefix = [0u8; 10];
        let mut n = 0;
        while len >= 0x80 {
            prefix[n] = len as u8 | 0x80;
            len >>= 7;
            n += 1;
        }
        prefix[n] = len as u8;
        self.buf.splice(start..start, prefix[..=n].iter().copied());
    }

    fn bom(&mut self, bom: &Bom<'_>) {
        use field::bom as f;
        self.implicit_string(f::SPEC_VERSION, bom.spec_version);
        // `optional int32 version`: present, a non-negative varint.
        self.key(f::VERSION, VARINT);
        self.varint(u64::from(bom.version));
        self.string(f::SERIAL_NUMBER, &bom.serial_number);
        self.message(f::METADATA, |w| w.metadata(&bom.metadata));
        for c in &bom.components {
            self.message(f::COMPONENTS, |w| w.component(c));
        }
        for d in &bom.dependencies {
            self.message(f::DEPENDENCIES, |w| w.dependency(d));
        }
    }

    fn metadata(&mut self, metadata: &Metadata<'_>) {
        use field::metadata as f;
        if let Some((seconds, nanos)) = metadata.timestamp.and_then(timestamp) {
            self.message(f::TIMESTAMP, |w| {
                // int64 and int32 varints: a negative value is its two's complement in 64 bits.
                w.uint(field::timestamp::SECONDS, seconds as u64);
                w.uint(field::timestamp::NANOS, i64::from(nanos) as u64);
            });
        }
        self.message(f::TOOLS, |w| {
            for c in &metadata.tools.components {
                w.message(field::tool::COMPONENTS, |w| w.component(c));
            }
        });
        self.message(f::COMPONENT, |w| w.component(&metadata.component));
        for p in &metadata.properties {
            self.message(f::PROPERTIES, |w| w.property(p));
        }
    }

    fn component(&mut self, c: &BomComponent<'_>) {
        use field::component as f;
        self.uint(f::TYPE, classification(c.kind));
        self.optional_string(f::BOM_REF, c.bom_ref.as_deref());
        self.optional_string(f::PUBLISHER, c.publisher);
        self.implicit_string(f::NAME, c.name);
        self.implicit_string(f::VERSION, c.version.unwrap_or_default());
        self.optional_string(f::DESCRIPTION, c.description);
        for h in &c.hashes {
            self.message(f::HASHES, |w| {
                w.uint(field::hash::ALG, hash_alg(h.alg));
                w.implicit_string(field::hash::VALUE, h.content);
            });
        }
        for l in &c.licenses {
            self.message(f::LICENSES, |w| {
                w.message(field::license_choice::LICENSE, |w| {
                    // `oneof license { string id = 1; string name = 2; }`: set, so written.
                    w.string(field::license::NAME, l.license.name);
                });
            });
        }
        self.optional_string(f::PURL, c.purl.as_deref());
        for p in &c.properties {
            self.message(f::PROPERTIES, |w| w.property(p));
        }
        if let Some(evidence) = &c.evidence {
            self.message(f::EVIDENCE, |w| w.evidence(evidence));
        }
    }

    fn evidence(&mut self, evidence: &ComponentEvidence) {
        for o in &evidence.occurrences {
            self.message(field::evidence::OCCURRENCES, |w| {
                w.implicit_string(field::occurrence::LOCATION, &o.location);
            });
        }
    }

    fn property(&mut self, p: &Property<'_>) {
        self.implicit_string(field::property::NAME, &p.name);
        self.string(field::property::VALUE, &p.value);
    }

    fn dependency(&mut self, d: &Dependency<'_>) {
        use field::dependency as f;
        self.implicit_string(f::REF, &d.reference);
        for r in &d.depends_on {
            self.message(f::DEPENDENCIES, |w| w.implicit_string(f::REF, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_lengths_follow_the_wire_format() {
        let mut w = Writer { buf: vec![] };
        w.varint(300);
        assert_eq!(w.buf, [0xac, 0x02]);
        let mut w = Writer { buf: vec![] };
        w.uint(1, u64::MAX);
        assert_eq!(w.buf.len(), 11);
        // A 200-byte nested message: a two-byte length prefix inserted before its body.
        let mut w = Writer { buf: vec![] };
        w.message(5, |w| w.string(1, &"x".repeat(197)));
        assert_eq!(&w.buf[..3], [5 << 3 | 2, 0xc8, 0x01]);
        assert_eq!(&w.buf[3..6], [1 << 3 | 2, 0xc5, 0x01]);
        assert_eq!(w.buf.len(), 3 + 200);
        let mut w = Writer { buf: vec![] };
        w.uint(2, 0);
        w.implicit_string(3, "");
        assert!(w.buf.is_empty());
    }

    #[test]
    fn timestamps_are_the_rfc3339_instant() {
        assert_eq!(
            timestamp("2024-05-01T10:20:30.123456789Z"),
            Some((1_714_558_830, 123_456_789))
        );
        assert_eq!(
            timestamp("2024-05-01T12:20:30+02:00"),
            Some((1_714_558_830, 0))
        );
        assert_eq!(
            timestamp("0001-01-01T00:00:00Z"),
            Some((-62_135_596_800, 0))
        );
        assert_eq!(timestamp("yesterday"), None);
    }
}
