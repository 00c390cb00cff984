//! Compare-and-swap on one object: the one home of conditional writes, and
//! of the question that follows a failed one, "did my write land?".
//!
//! `put` sends a PUT with `If-None-Match: *` or `If-Match: <ETag>` and
//! answers with an `Outcome`:
//!
//! - **Written**: the store said yes.
//! - **Found**: an earlier try of the same write landed (its answer was
//!   lost, and a retry then failed its condition on our own write).
//! - **Taken**: another write holds the place; ours did not land and never
//!   will (its condition can never hold again).
//! - **Unknown**: the store failed for the whole retry budget, or cannot
//!   show either way. The caller must not run the change again.
//!
//! A try that fails in a way that may pass (a reset, a timeout, a 5xx) may
//! still have landed, so it is sent again *unchanged*: same body, same
//! condition, same writer token. Of all the tries at most one can land, and
//! the token tells which. When a condition fails, the caller's `check` reads
//! the object back and says whether one of its tries is there ([`Landed`]);
//! only the caller knows where its token lives (the lineage metadata of the
//! single object, the writer field of a manifest or a lease record).
//!
//! A condition that fails on the first and only try of a write is a clean
//! refusal: the store evaluated it and said no, so nothing landed. That is
//! why object_store's own retries are off (`store/s3.rs`): a retry inside
//! it that failed on our own first try would look exactly like that.
//!
//! Tested through its callers, on every store and in both layouts, by
//! `tests/faults.rs` (lost answers, late writes, clean refusals, unknown
//! outcomes, the lineage proof) and `tests/lease.rs`.

use std::future::Future;

use object_store::path::Path;
use object_store::{Attributes, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion};

use super::failure::{is_transient, status_of};
use super::remote::Remote;
use crate::error::{Error, Result};

/// What a conditional write requires of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// That there is none (`If-None-Match: *`).
    Absent,
    /// That it is this version: its ETag (`If-Match`), and, where the store
    /// conditions on it instead (Google Cloud Storage's generation), its
    /// version.
    Matches(UpdateVersion),
}

impl Condition {
    /// That the object is the version with this ETag and store version.
    pub(crate) fn matches(e_tag: impl Into<String>, version: Option<String>) -> Self {
        Condition::Matches(UpdateVersion {
            e_tag: Some(e_tag.into()),
            version,
        })
    }

    fn mode(&self) -> PutMode {
        match self {
            Condition::Absent => PutMode::Create,
            Condition::Matches(version) => PutMode::Update(version.clone()),
        }
    }

    /// Whether an object with this ETag (`None`: no object) still allows
    /// the write.
    pub(crate) fn holds_for(&self, etag: Option<&str>) -> bool {
        match self {
            Condition::Absent => etag.is_none(),
            Condition::Matches(expected) => etag.is_some() && etag == expected.e_tag.as_deref(),
        }
    }
}

/// What reading the object back says about a write.
#[derive(Debug)]
pub enum Landed<T> {
    /// It is there; `T` is what the caller learnt of it.
    Yes(T),
    /// It did not land and never will: another write holds its place.
    Never,
    /// Not yet: the object still allows the write, so a try still on its
    /// way (or the next one) may land.
    NotYet,
    /// The object cannot show either way (the reason).
    Unknown(String),
}

/// How the tries of a write went, for the caller's check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tries {
    /// Whether a try failed without a definite answer, so it may have
    /// landed. When not, the last try was the only one sent, and a failed
    /// condition on it is a clean refusal.
    pub ambiguous: bool,
}

/// The outcome of [`put`]. See the module docs.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// The store accepted the write.
    Written(PutResult),
    /// A try whose answer was lost landed: what the check found.
    Found(T),
    /// Another write holds the place: ours did not land and never will.
    Taken,
    /// Whether it landed cannot be told; the error of the last try.
    Unknown(Error),
}

/// Writes `payload` at `key` if `condition` holds, retrying what may pass;
/// `check` reads the object back when a condition failed or the answer
/// stayed unknown. See the module docs.
///
/// # Failure
/// The store's refusal (access denied, say) of a write that cannot have
/// landed; the errors of `check` after a clean refusal.
pub(crate) async fn put<T, C, Fut>(
    remote: &Remote,
    key: &Path,
    payload: PutPayload,
    attributes: Attributes,
    condition: &Condition,
    operation: &'static str,
    check: C,
) -> Result<Outcome<T>>
where
    C: Fn(Tries) -> Fut,
    Fut: Future<Output = Result<Landed<T>>>,
{
    super::probe::ensure_conditional(remote).await?;
    let policy = *remote.retry_policy();
    let options = PutOptions {
        mode: condition.mode(),
        attributes,
        ..Default::default()
    };
    let mut ambiguous = false;
    let mut attempt = 1;
    loop {
        let sent = remote.raw_store().put_opts(key, payload.clone(), options.clone()).await;
        let error = match sent {
            Ok(result) => return Ok(Outcome::Written(result)),
            Err(e) => e,
        };
        let last = attempt >= policy.max_attempts;
        let refused = matches!(
            error,
            object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. }
        );
        if refused {
            match check(Tries { ambiguous }).await {
                Ok(Landed::Yes(found)) => return Ok(Outcome::Found(found)),
                Ok(Landed::Never) => return Ok(Outcome::Taken),
                // Refused although the object allows the write: a write of
                // someone else was under way (S3's 409
                // ConditionalRequestConflict). Ours was refused; try again.
                Ok(Landed::NotYet) if !last => {}
                // Only the check can prove that nothing landed (it knows
                // about tries made before this call): anything short of
                // that proof is unknown.
                Ok(Landed::NotYet) => {
                    tracing::debug!("{operation} of {}: refused while allowed, every try", remote.url());
                    return Ok(Outcome::Unknown(remote.error(operation, error)));
                }
                Ok(Landed::Unknown(reason)) => {
                    tracing::debug!("{operation} of {}: outcome unknown: {reason}", remote.url());
                    return Ok(Outcome::Unknown(remote.error(operation, error)));
                }
                Err(e) if ambiguous => return Ok(Outcome::Unknown(e)),
                Err(e) => return Err(e),
            }
        } else if is_transient(&error) || !is_answer(&error) {
            // No answer from the store (or one from an unknown failure,
            // after which the write may have happened): only the object
            // can tell. Failures that may pass are tried again.
            ambiguous = true;
            if last || !is_transient(&error) {
                return Ok(match check(Tries { ambiguous }).await {
                    Ok(Landed::Yes(found)) => Outcome::Found(found),
                    Ok(Landed::Never) => Outcome::Taken,
                    Ok(Landed::NotYet | Landed::Unknown(_)) | Err(_) => {
                        Outcome::Unknown(remote.error(operation, error))
                    }
                });
            }
        } else if !ambiguous {
            return Err(remote.error(operation, error));
        } else {
            // Refused now (access denied, say), after a try that may have landed.
            return Ok(match check(Tries { ambiguous }).await {
                Ok(Landed::Yes(found)) => Outcome::Found(found),
                Ok(Landed::Never) => return Err(remote.error(operation, error)),
                Ok(Landed::NotYet | Landed::Unknown(_)) | Err(_) => Outcome::Unknown(remote.error(operation, error)),
            });
        }
        let pause = policy.backoff(attempt);
        tracing::debug!(
            "{operation} of {}: try {attempt} failed, again in {pause:?}",
            remote.url()
        );
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// Whether an error is the store's definite refusal of the request, after
/// which it did not happen: access denied, a 4xx answer.
fn is_answer(error: &object_store::Error) -> bool {
    match error {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. }
        | object_store::Error::NotSupported { .. }
        | object_store::Error::NotImplemented { .. }
        | object_store::Error::InvalidPath { .. } => true,
        object_store::Error::Generic { .. } => status_of(error).is_some_and(|status| (400..500).contains(&status)),
        _ => false,
    }
}
