//! Publishes whose outcome is not known yet, as the cache records them.

use serde::{Deserialize, Serialize};

use super::version::{RemoteVersion, Version};
use crate::hash::ContentHash;
use crate::token::CommitToken;

/// Publishes whose outcome is not known yet: tries of the working copy's
/// changes over one base version. Each is conditional on that base, so at
/// most one of them can ever land, and its token says which (last-writer-
/// wins tries are not conditional: only their tokens can tell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "InFlightRecord")]
pub struct InFlight {
    /// The version they were published over, if any.
    pub base: Option<Version>,
    /// The commit token of that version (the first of its lineage), if it
    /// has one: the mark by which its successor is found in a lineage.
    #[serde(default)]
    pub base_token: Option<CommitToken>,
    /// Whether they were last-writer-wins publishes (not conditional on
    /// the base).
    #[serde(default)]
    pub last_writer_wins: bool,
    /// The tries, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

/// One publish whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its commit token.
    pub token: CommitToken,
    /// The content hash of the file it uploads; `None` for a try that
    /// uploads no file of the session's (a fence, a move).
    #[serde(with = "maybe_hash")]
    pub hash: Option<ContentHash>,
}

/// How `state.json` writes an attempt's hash: hex, or `""` for none (what
/// earlier versions wrote, and can still read).
mod maybe_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::hash::ContentHash;

    pub fn serialize<S: Serializer>(hash: &Option<ContentHash>, serializer: S) -> Result<S::Ok, S::Error> {
        match hash {
            Some(hash) => serializer.collect_str(hash),
            None => serializer.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ContentHash>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?.unwrap_or_default();
        match text.as_str() {
            "" => Ok(None),
            hex => hex.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

impl InFlight {
    /// A record for tries over `base` (`None`: creating the database).
    pub fn over(base: Option<&RemoteVersion>, last_writer_wins: bool) -> Self {
        Self {
            base: base.map(RemoteVersion::id),
            base_token: base.and_then(|v| v.token().cloned()),
            last_writer_wins,
            attempts: Vec::new(),
        }
    }

    /// The record with one more try, `token`, uploading content `hash`.
    pub fn with_attempt(mut self, token: CommitToken, hash: Option<ContentHash>) -> Self {
        self.attempts.push(Attempt { token, hash });
        self
    }

    /// The try being made (the last recorded), and its token. A layout's
    /// publish is only ever called with it recorded.
    pub fn current(&self) -> (usize, &CommitToken) {
        let this = self
            .attempts
            .len()
            .checked_sub(1)
            .expect("the try being made is recorded");
        (this, &self.attempts[this].token)
    }

    /// Whether `token` is one of the tries, and which.
    pub fn attempt(&self, token: &CommitToken) -> Option<usize> {
        self.attempts.iter().position(|a| a.token == *token)
    }
}

/// What `state.json` may hold for [`InFlight`]: also the single try that
/// earlier versions recorded (`token`, `hash`).
#[derive(Deserialize)]
struct InFlightRecord {
    #[serde(default)]
    base: Option<Version>,
    #[serde(default)]
    base_token: Option<CommitToken>,
    #[serde(default)]
    last_writer_wins: bool,
    #[serde(default)]
    attempts: Vec<Attempt>,
    #[serde(default)]
    token: Option<CommitToken>,
    #[serde(default, with = "maybe_hash")]
    hash: Option<ContentHash>,
}

impl From<InFlightRecord> for InFlight {
    fn from(r: InFlightRecord) -> Self {
        let mut attempts = r.attempts;
        if let Some(token) = r.token {
            attempts.push(Attempt { token, hash: r.hash });
        }
        Self {
            base: r.base,
            base_token: r.base_token,
            last_writer_wins: r.last_writer_wins,
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_earlier_versions_are_read() {
        let hash = ContentHash::of(b"copy");
        // One try, as the first versions wrote it; the base as a string.
        let old = format!(r#"{{"base": "\"e1\"", "token": "t1", "hash": "{}"}}"#, hash.to_hex());
        let record: InFlight = serde_json::from_str(&old).unwrap();
        assert_eq!(record.base, Some(Version::Object { etag: "\"e1\"".into() }));
        assert_eq!(
            record.attempts,
            [Attempt {
                token: "t1".into(),
                hash: Some(hash)
            }]
        );
        // A fence's try had an empty hash; a number was a manifest's.
        let fenced = r#"{"base": "7", "attempts": [{"token": "t2", "hash": ""}]}"#;
        let record: InFlight = serde_json::from_str(fenced).unwrap();
        assert_eq!(record.base, Some(Version::Numbered(7)));
        assert_eq!(record.attempts[0].hash, None);
        // What is written now reads back the same.
        let again: InFlight = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(again, record);
    }
}
