//! Publishes whose outcome is not known yet, as the cache records them.

use serde::{Deserialize, Serialize};

use super::version::{RemoteVersion, Version};

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
    pub base_token: Option<String>,
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
    pub token: String,
    /// BLAKE3 (hex) of the file it uploads.
    pub hash: String,
}

impl InFlight {
    /// A record for tries over `base` (`None`: creating the database).
    pub fn over(base: Option<&RemoteVersion>, last_writer_wins: bool) -> Self {
        Self {
            base: base.map(RemoteVersion::id),
            base_token: base.and_then(|v| v.token().map(str::to_string)),
            last_writer_wins,
            attempts: Vec::new(),
        }
    }

    /// The record with one more try, `token`, uploading content `hash`.
    pub fn with_attempt(mut self, token: impl Into<String>, hash: impl Into<String>) -> Self {
        self.attempts.push(Attempt {
            token: token.into(),
            hash: hash.into(),
        });
        self
    }

    /// Whether `token` is one of the tries, and which.
    pub fn attempt(&self, token: &str) -> Option<usize> {
        self.attempts.iter().position(|a| a.token == token)
    }
}

/// What `state.json` may hold for [`InFlight`]: also the single try that
/// earlier versions recorded (`token`, `hash`).
#[derive(Deserialize)]
struct InFlightRecord {
    #[serde(default)]
    base: Option<Version>,
    #[serde(default)]
    base_token: Option<String>,
    #[serde(default)]
    last_writer_wins: bool,
    #[serde(default)]
    attempts: Vec<Attempt>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    hash: Option<String>,
}

impl From<InFlightRecord> for InFlight {
    fn from(r: InFlightRecord) -> Self {
        let mut attempts = r.attempts;
        if let (Some(token), Some(hash)) = (r.token, r.hash) {
            attempts.push(Attempt { token, hash });
        }
        Self {
            base: r.base,
            base_token: r.base_token,
            last_writer_wins: r.last_writer_wins,
            attempts,
        }
    }
}
