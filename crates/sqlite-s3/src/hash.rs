//! Content hashes: the BLAKE3 of some bytes (a chunk, a working copy),
//! written as 64 hex digits wherever they are stored.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The BLAKE3 hash of some content.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ContentHash(blake3::Hash);

impl ContentHash {
    /// The hash of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self(blake3::hash(bytes))
    }

    /// The 64 hex digits.
    pub(crate) fn to_hex(self) -> String {
        self.0.to_hex().to_string()
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(hash)
    }
}

impl FromStr for ContentHash {
    type Err = String;

    fn from_str(hex: &str) -> Result<Self, String> {
        blake3::Hash::from_hex(hex)
            .map(Self)
            .map_err(|_| format!("{hex:?} is not a content hash (64 hex digits)"))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.0.to_hex()[..16])
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let hex = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        hex.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_as_hex_and_refuse_anything_else() {
        let hash = ContentHash::of(b"chunk");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", blake3::hash(b"chunk").to_hex()));
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), hash);
        assert_eq!(hash.to_hex().parse::<ContentHash>().unwrap(), hash);
        assert!(serde_json::from_str::<ContentHash>("\"abc\"").is_err());
        assert!("zz".repeat(32).parse::<ContentHash>().is_err());
    }
}
