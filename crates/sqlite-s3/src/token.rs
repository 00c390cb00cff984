//! Commit tokens: the random names that tag each write, so that a writer
//! recognises its own version after a lost answer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The token of one write: 64 random bits as 16 hex digits when made here.
/// Tokens read from the bucket are taken as they are written (other
/// versions of this crate, or other tools, may spell them otherwise); they
/// are only ever compared.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CommitToken(String);

impl CommitToken {
    /// A new random token.
    pub(crate) fn new() -> Self {
        Self(format!("{:016x}", fastrand::u64(..)))
    }

    /// The token as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for CommitToken {
    fn from(token: &str) -> Self {
        Self(token.to_string())
    }
}

impl fmt::Display for CommitToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CommitToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_are_16_hex_digits_and_differ() {
        let (a, b) = (CommitToken::new(), CommitToken::new());
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
    }
}
