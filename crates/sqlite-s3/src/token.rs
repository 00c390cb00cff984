//! Commit tokens: the random names that tag each write, so that a writer
//! recognises its own version after a lost answer.

/// A token for a new write: 64 random bits as 16 hex digits.
pub(crate) fn new_token() -> String {
    format!("{:016x}", fastrand::u64(..))
}
