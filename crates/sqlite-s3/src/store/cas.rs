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

use std::future::Future;

use object_store::path::Path;
use object_store::{Attributes, PutMode, PutOptions, PutPayload, PutResult, UpdateVersion};

use super::Remote;
use super::retry::is_transient;
use crate::error::{Error, Result};

/// What a conditional write requires of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// That there is none (`If-None-Match: *`).
    Absent,
    /// That its ETag is this (`If-Match`).
    Matches(String),
}

impl Condition {
    fn mode(&self) -> PutMode {
        match self {
            Condition::Absent => PutMode::Create,
            Condition::Matches(etag) => PutMode::Update(UpdateVersion {
                e_tag: Some(etag.clone()),
                version: None,
            }),
        }
    }

    /// Whether an object with this ETag (`None`: no object) still allows
    /// the write.
    pub(crate) fn holds_for(&self, etag: Option<&str>) -> bool {
        match self {
            Condition::Absent => etag.is_none(),
            Condition::Matches(expected) => etag == Some(expected.as_str()),
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
        object_store::Error::Generic { .. } => {
            super::retry::status_of(error).is_some_and(|status| (400..500).contains(&status))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
        PutMultipartOptions,
    };

    use super::*;
    use crate::location::DatabaseUrl;
    use crate::store::RequestRetry;

    /// Lands the first `lose` PUTs but answers each with a reset.
    #[derive(Debug)]
    struct LoseAnswers {
        inner: InMemory,
        lose: AtomicU32,
        puts: AtomicU32,
    }

    impl std::fmt::Display for LoseAnswers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("LoseAnswers")
        }
    }

    fn reset() -> object_store::Error {
        object_store::Error::Generic {
            store: "test",
            source: Box::new(object_store::client::HttpError::new(
                object_store::client::HttpErrorKind::Interrupted,
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            )),
        }
    }

    #[async_trait]
    impl ObjectStore for LoseAnswers {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let result = self.inner.put_opts(location, payload, opts).await?;
            let lose = self.lose.load(Ordering::SeqCst);
            if lose > 0 {
                self.lose.store(lose - 1, Ordering::SeqCst);
                return Err(reset());
            }
            Ok(result)
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn remote(lose: u32) -> (Remote, Arc<LoseAnswers>) {
        let store = Arc::new(LoseAnswers {
            inner: InMemory::new(),
            lose: AtomicU32::new(lose),
            puts: AtomicU32::new(0),
        });
        let url = DatabaseUrl::parse("memory://cas/app.db").unwrap();
        let fast = RequestRetry {
            max_attempts: 3,
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(1),
        };
        (Remote::with_store(url, store.clone()).request_retry(fast), store)
    }

    /// A check that finds the body `mine` as ours.
    async fn check(remote: &Remote, key: &Path, mine: &'static [u8], condition: &Condition) -> Result<Landed<()>> {
        match remote.store().get(key).await {
            Ok(r) => {
                let etag = r.meta.e_tag.clone();
                if r.bytes().await.unwrap().as_ref() == mine {
                    Ok(Landed::Yes(()))
                } else if condition.holds_for(etag.as_deref()) {
                    Ok(Landed::NotYet)
                } else {
                    Ok(Landed::Never)
                }
            }
            Err(_) if condition.holds_for(None) => Ok(Landed::NotYet),
            Err(_) => Ok(Landed::Never),
        }
    }

    async fn create(remote: &Remote, body: &'static [u8]) -> Outcome<()> {
        let key = Path::from("k");
        let condition = Condition::Absent;
        put(
            remote,
            &key,
            body.into(),
            Attributes::new(),
            &condition,
            "writing",
            |_| check(remote, &key, body, &condition),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_write_whose_answer_was_lost_is_found_ours() {
        let (remote, store) = remote(1);
        assert!(matches!(create(&remote, b"mine").await, Outcome::Found(())));
        assert_eq!(store.puts.load(Ordering::SeqCst), 2, "sent again, unchanged");
    }

    #[tokio::test]
    async fn a_clean_refusal_is_taken_without_a_retry() {
        let (remote, store) = remote(0);
        assert!(matches!(create(&remote, b"theirs").await, Outcome::Written(_)));
        assert!(matches!(create(&remote, b"mine").await, Outcome::Taken));
        assert_eq!(store.puts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_store_that_never_answers_leaves_the_outcome_unknown() {
        let (remote, _) = remote(u32::MAX);
        // Every try lands (the first creates, the rest fail their
        // condition) but no answer arrives: the check finds it ours.
        assert!(matches!(create(&remote, b"mine").await, Outcome::Found(())));
        // A store that refuses to say anything: unknown, never taken.
        let (remote, _) = remote_failing();
        let key = Path::from("k");
        let outcome = put(
            &remote,
            &key,
            b"x".as_ref().into(),
            Attributes::new(),
            &Condition::Absent,
            "writing",
            |_| async { Ok(Landed::<()>::NotYet) },
        )
        .await
        .unwrap();
        assert!(
            matches!(outcome, Outcome::Unknown(Error::Unavailable { .. })),
            "{outcome:?}"
        );
    }

    fn remote_failing() -> (Remote, ()) {
        #[derive(Debug)]
        struct Down;
        impl std::fmt::Display for Down {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Down")
            }
        }
        #[async_trait]
        impl ObjectStore for Down {
            async fn put_opts(&self, _: &Path, _: PutPayload, _: PutOptions) -> object_store::Result<PutResult> {
                Err(reset())
            }
            async fn put_multipart_opts(
                &self,
                _: &Path,
                _: PutMultipartOptions,
            ) -> object_store::Result<Box<dyn MultipartUpload>> {
                Err(reset())
            }
            async fn get_opts(&self, _: &Path, _: GetOptions) -> object_store::Result<GetResult> {
                Err(reset())
            }
            fn delete_stream(
                &self,
                _: BoxStream<'static, object_store::Result<Path>>,
            ) -> BoxStream<'static, object_store::Result<Path>> {
                futures::stream::empty().boxed()
            }
            fn list(&self, _: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
                futures::stream::empty().boxed()
            }
            async fn list_with_delimiter(&self, _: Option<&Path>) -> object_store::Result<ListResult> {
                Err(reset())
            }
            async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
                Err(reset())
            }
        }
        use futures::StreamExt;
        let url = DatabaseUrl::parse("memory://cas-down/app.db").unwrap();
        let fast = RequestRetry {
            max_attempts: 2,
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(1),
        };
        (Remote::with_store(url, Arc::new(Down)).request_retry(fast), ())
    }
}
