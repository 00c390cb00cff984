//! A version of the remote database, as a layout identifies it, and the
//! lineage of commit tokens that lets a writer recognise its own version.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

/// A version of a remote database, as a session knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// A version of a database in the single-object layout: the store's
    /// ETag of the object.
    Object {
        /// The ETag, as the store gives it (quotes included, if any).
        etag: String,
    },
    /// Version `n` of a database in the versioned layout.
    Numbered(u64),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Object { etag } => f.write_str(etag),
            Version::Numbered(n) => write!(f, "{n}"),
        }
    }
}

/// How `state.json` writes a [`Version`]: a number, or the ETag as a
/// string. Records written before versions had a type held a string for
/// both; a string of digits was a number then.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum VersionRecord {
    Numbered(u64),
    Etag(String),
    Tagged { etag: String },
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Version::Numbered(n) => VersionRecord::Numbered(*n),
            // An ETag of digits alone is written so that it cannot be read
            // back as a number.
            Version::Object { etag } if etag.parse::<u64>().is_ok() => VersionRecord::Tagged { etag: etag.clone() },
            Version::Object { etag } => VersionRecord::Etag(etag.clone()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match VersionRecord::deserialize(deserializer)? {
            VersionRecord::Numbered(n) => Version::Numbered(n),
            VersionRecord::Etag(etag) => match etag.parse::<u64>() {
                Ok(n) => Version::Numbered(n),
                Err(_) => Version::Object { etag },
            },
            VersionRecord::Tagged { etag } => Version::Object { etag },
        })
    }
}

/// One version, as `log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Its number.
    pub version: u64,
    /// When it was committed (written as RFC 3339 in JSON).
    #[serde(serialize_with = "rfc3339")]
    pub committed_at: SystemTime,
    /// Size of the database.
    pub size: u64,
    /// Chunk bytes its commit uploaded (compressed).
    pub uploaded_bytes: u64,
    /// The commit token of its writer.
    pub writer: String,
    /// The version it was made from.
    pub parent: Option<u64>,
    /// Whether the database moved to the single-object layout after it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub moved_to_single: bool,
}

impl From<&Manifest> for VersionInfo {
    fn from(m: &Manifest) -> Self {
        Self {
            version: m.version,
            committed_at: m.committed_at.system_time(),
            size: m.size,
            uploaded_bytes: m.uploaded_bytes,
            writer: m.writer.to_string(),
            parent: m.parent,
            moved_to_single: m.moved_to_single,
        }
    }
}

/// Writes a time as RFC 3339 in UTC with milliseconds.
fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    Timestamp::from(*time).serialize(serializer)
}

/// A version of the remote database, as a layout knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RemoteVersionRecord", into = "RemoteVersionRecord")]
pub(crate) enum RemoteVersion {
    /// A version of the single object.
    Object(ObjectVersion),
    /// A version of the versioned layout: its manifest, so that the next
    /// pull and publish need not fetch it.
    Manifest(Box<Manifest>),
}

/// A version of the single object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectVersion {
    /// The store's ETag of the object.
    pub etag: String,
    /// The store's own version of the object, where it has one (S3 with
    /// versioning, Google Cloud Storage's generation, which its conditional
    /// writes need).
    pub object_version: Option<String>,
    /// Commit tokens of this version and its recent ancestors, newest first,
    /// as recorded by the writers (empty for objects written by other tools).
    pub lineage: Vec<CommitToken>,
}

impl RemoteVersion {
    /// Which version it is.
    pub(crate) fn id(&self) -> Version {
        match self {
            RemoteVersion::Object(object) => Version::Object {
                etag: object.etag.clone(),
            },
            RemoteVersion::Manifest(manifest) => Version::Numbered(manifest.version),
        }
    }

    /// The commit token of its writer, when it has one (objects written by
    /// other tools have none): the mark by which its successor is found in
    /// a lineage.
    pub(crate) fn token(&self) -> Option<&CommitToken> {
        match self {
            RemoteVersion::Object(object) => object.lineage.first(),
            RemoteVersion::Manifest(manifest) => Some(&manifest.writer),
        }
    }

    /// The commit tokens of this version and its recent ancestors, newest
    /// first, as far as they are known.
    pub(crate) fn lineage(&self) -> &[CommitToken] {
        match self {
            RemoteVersion::Object(object) => &object.lineage,
            RemoteVersion::Manifest(manifest) => std::slice::from_ref(&manifest.writer),
        }
    }

    /// The object version, for the single-object layout.
    pub(crate) fn as_object(&self) -> Option<&ObjectVersion> {
        match self {
            RemoteVersion::Object(object) => Some(object),
            RemoteVersion::Manifest(_) => None,
        }
    }

    /// What `log` shows of it (versioned layout).
    pub(crate) fn info(&self) -> Option<VersionInfo> {
        self.as_manifest().map(VersionInfo::from)
    }

    /// The manifest, for the versioned layout.
    pub(crate) fn as_manifest(&self) -> Option<&Manifest> {
        match self {
            RemoteVersion::Object(_) => None,
            RemoteVersion::Manifest(manifest) => Some(manifest),
        }
    }
}

/// How `state.json` and pull records hold a [`RemoteVersion`] (the format
/// of earlier versions of this crate, which they can still read).
#[derive(Serialize, Deserialize)]
struct RemoteVersionRecord {
    /// The ETag, or the number of a version of the versioned layout.
    etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object_version: Option<String>,
    #[serde(default)]
    lineage: Vec<CommitToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<Box<Manifest>>,
}

/// A record whose manifest fails [`Manifest::check`] is refused, as one
/// that does not parse: `state.json` is then unreadable (its working copy is
/// set aside), a pull record is not used. The rest of the crate may then
/// trust the manifest of every version it knows, as it trusts those it
/// decodes.
impl TryFrom<RemoteVersionRecord> for RemoteVersion {
    type Error = String;

    fn try_from(record: RemoteVersionRecord) -> Result<Self, String> {
        Ok(match record.manifest {
            Some(manifest) => {
                manifest.check()?;
                RemoteVersion::Manifest(manifest)
            }
            // A number without its manifest never stood for a version of
            // the versioned layout; read it as what it says.
            None => RemoteVersion::Object(ObjectVersion {
                etag: record.etag,
                object_version: record.object_version,
                lineage: record.lineage,
            }),
        })
    }
}

impl From<RemoteVersion> for RemoteVersionRecord {
    fn from(version: RemoteVersion) -> Self {
        match version {
            RemoteVersion::Object(object) => RemoteVersionRecord {
                etag: object.etag,
                object_version: object.object_version,
                lineage: object.lineage,
                manifest: None,
            },
            RemoteVersion::Manifest(manifest) => RemoteVersionRecord {
                etag: manifest.version.to_string(),
                object_version: None,
                lineage: vec![manifest.writer.clone()],
                manifest: Some(manifest),
            },
        }
    }
}

/// The lineage of a new version of the single object: its token, then its
/// parent's lineage, up to [`LINEAGE_LEN`] tokens.
pub(crate) fn extend_lineage(token: &CommitToken, parent: Option<&RemoteVersion>) -> Vec<CommitToken> {
    std::iter::once(token.clone())
        .chain(parent.into_iter().flat_map(|p| p.lineage().iter().cloned()))
        .take(LINEAGE_LEN)
        .collect()
}

/// How many commit tokens a version remembers: enough to recognise our own
/// write after a lost answer, and to prove that it did not land, even if
/// dozens of writers published on top of it before we looked. 64 tokens of
/// 16 characters fit S3's 2 KiB of user metadata.
pub(crate) const LINEAGE_LEN: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_back_as_written_and_as_earlier_records_wrote_them() {
        for version in [
            Version::Numbered(7),
            Version::Object { etag: "\"abc\"".into() },
            Version::Object { etag: "123".into() },
        ] {
            let json = serde_json::to_string(&version).unwrap();
            assert_eq!(serde_json::from_str::<Version>(&json).unwrap(), version, "{json}");
        }
        // Earlier records: a string for both.
        assert_eq!(
            serde_json::from_str::<Version>("\"12\"").unwrap(),
            Version::Numbered(12)
        );
        assert_eq!(
            serde_json::from_str::<Version>("\"\\\"e1\\\"\"").unwrap(),
            Version::Object { etag: "\"e1\"".into() }
        );
    }

    #[test]
    fn an_object_version_keeps_its_lineage_through_a_record() {
        let version = RemoteVersion::Object(ObjectVersion {
            etag: "\"e\"".into(),
            object_version: Some("3".into()),
            lineage: vec!["b".into(), "a".into()],
        });
        let json = serde_json::to_string(&version).unwrap();
        let back: RemoteVersion = serde_json::from_str(&json).unwrap();
        assert_eq!(back, version);
        assert_eq!(back.token(), Some(&CommitToken::from("b")));
        assert_eq!(
            extend_lineage(&"c".into(), Some(&back)),
            [CommitToken::from("c"), "b".into(), "a".into()]
        );
    }

    #[test]
    fn a_kept_manifest_that_makes_no_sense_is_refused_as_unreadable() {
        let manifest = Manifest {
            format: super::super::manifest::FORMAT,
            version: 3,
            parent: Some(2),
            size: 4096,
            page_size: 4096,
            chunk_size: 4096,
            homes: vec!["app.db.sqlite-s3/chunks".into()],
            chunks: vec![super::super::manifest::ChunkRef {
                hash: crate::hash::ContentHash::of(b"00"),
                home: 0,
            }],
            committed_at: serde_json::from_str("\"2026-01-01T00:00:00Z\"").unwrap(),
            writer: "w".into(),
            uploaded_bytes: 0,
            moved_to_single: false,
        };
        let good = serde_json::to_string(&RemoteVersion::Manifest(Box::new(manifest.clone()))).unwrap();
        assert!(serde_json::from_str::<RemoteVersion>(&good).is_ok());
        let mut bad = manifest;
        bad.chunks[0].home = 1;
        let bad = serde_json::to_string(&RemoteVersion::Manifest(Box::new(bad))).unwrap();
        let err = serde_json::from_str::<RemoteVersion>(&bad).unwrap_err();
        assert!(err.to_string().contains("home 1"), "{err}");
    }
}
