//! Does the store honour conditional requests? Everything this crate
//! promises rests on it: a store that accepts an `If-Match` on a stale ETag,
//! or an `If-None-Match: *` over an existing object, lets concurrent writers
//! overwrite each other silently (some S3 gateways do, and MinIO before
//! 2024).
//!
//! - [`ensure_conditional`]: before the first conditional write to a store
//!   (per process, and remembered for [`REMEMBERED_FOR`] in the cache
//!   directory under `stores/`), a probe object next to the database is
//!   created, created again, updated, and updated again with its first
//!   ETag; the second create and the stale update must be refused. A store
//!   that accepts either is refused for writing ([`Error::UnsafeStore`])
//!   unless the user accepts last-writer-wins
//!   ([`StoreOptions::unsafe_store`](crate::StoreOptions::unsafe_store)).
//!   The probe is removed afterwards. Local directories and memory stores
//!   are this crate's own and are not probed.
//! - [`check`]: everything `sqlite-s3 doctor` reports, for a person.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path as Key;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use serde::{Deserialize, Serialize};

use super::keys::Keys;
use super::remote::Remote;
use crate::error::{Error, Result};
use crate::location::Scheme;
use crate::token::CommitToken;

/// How long a store that passed the probe is trusted before it is probed
/// again.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// Stores that passed in this process.
static PASSED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// What is remembered of a store that passed.
#[derive(Debug, Serialize, Deserialize)]
struct Passed {
    store: String,
    /// Seconds since the Unix epoch.
    checked_at: u64,
}

/// Which store a probe speaks for: the scheme and the endpoint, spelled
/// one way.
fn store_name(remote: &Remote) -> String {
    format!(
        "{}|{}",
        remote.url().scheme_name(),
        super::identity::endpoint(remote.endpoint_name())
    )
}

fn remembered_at(dir: &Path, name: &str) -> PathBuf {
    let hash = blake3::hash(name.as_bytes()).to_hex();
    dir.join("stores").join(format!("{}.json", &hash[..24]))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Makes sure, once per store endpoint and process (and then once a month,
/// through the cache directory), that the store refuses writes whose
/// condition fails. Every conditional write calls it first; call it
/// yourself to find out before writing.
///
/// # Failure
/// [`Error::UnsafeStore`] when it accepts one; the errors of the store.
pub async fn ensure_conditional(remote: &Remote) -> Result<()> {
    if matches!(remote.url().scheme(), Scheme::File | Scheme::Memory) || remote.accepts_unsafe_store() {
        return Ok(());
    }
    let name = store_name(remote);
    if PASSED
        .lock()
        .expect("probe memo")
        .get_or_insert_default()
        .contains(&name)
    {
        return Ok(());
    }
    let file = remembered_at(&crate::options::resolve_cache_dir(remote.cache_dir()), &name);
    if let Ok(bytes) = std::fs::read(&file)
        && let Ok(passed) = serde_json::from_slice::<Passed>(&bytes)
        && passed.store == name
        && now_secs().saturating_sub(passed.checked_at) < REMEMBERED_FOR.as_secs()
    {
        PASSED.lock().expect("probe memo").get_or_insert_default().insert(name);
        return Ok(());
    }
    let conditions = probe_conditions(remote).await?;
    if let Some(failed) = conditions.failure() {
        return Err(Error::UnsafeStore {
            url: remote.url().to_string(),
            store: describe_store(remote),
            failed,
        });
    }
    let passed = Passed {
        store: name.clone(),
        checked_at: now_secs(),
    };
    if let Some(dir) = file.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = crate::atomic_file::write(&file, &serde_json::to_vec(&passed).expect("serializes"));
    }
    PASSED.lock().expect("probe memo").get_or_insert_default().insert(name);
    Ok(())
}

/// The store as a person would name it: the kind, and the endpoint.
fn describe_store(remote: &Remote) -> String {
    let kind = match remote.url().scheme() {
        Scheme::S3 => "the S3 store",
        Scheme::Azure => "the Azure store",
        Scheme::Gcs => "the Google Cloud Storage store",
        Scheme::File => "the local directory",
        Scheme::Memory => "the memory store",
    };
    match remote.endpoint_name() {
        Some(endpoint) => format!("{kind} at {endpoint}"),
        None => format!("{kind} of {}", remote.url().bucket()),
    }
}

/// What the probe of conditional writes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Conditions {
    /// `If-None-Match: *` over an existing object is refused.
    pub create_refused_over_existing: bool,
    /// `If-Match` with the current ETag is accepted.
    pub update_accepted_when_current: bool,
    /// `If-Match` with a stale ETag is refused.
    pub update_refused_when_stale: bool,
}

impl Conditions {
    /// What makes the store unfit for conditional writes, if anything.
    fn failure(&self) -> Option<String> {
        let mut failed = Vec::new();
        if !self.create_refused_over_existing {
            failed.push("it accepted If-None-Match: * over an existing object");
        }
        if !self.update_refused_when_stale {
            failed.push("it accepted If-Match with a stale ETag");
        }
        if !self.update_accepted_when_current {
            failed.push("it refused If-Match with the current ETag");
        }
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

/// A new probe object's key, beside the database.
fn probe_key(remote: &Remote) -> Key {
    Keys::new(remote).probe(CommitToken::new().as_str())
}

async fn put(
    store: &dyn ObjectStore,
    key: &Key,
    body: &'static str,
    mode: PutMode,
    attributes: Attributes,
) -> object_store::Result<object_store::PutResult> {
    let options = PutOptions {
        mode,
        attributes,
        ..Default::default()
    };
    store
        .put_opts(key, PutPayload::from_static(body.as_bytes()), options)
        .await
}

/// Whether an error is the store refusing a write on its condition.
fn refused(error: &object_store::Error) -> bool {
    matches!(
        error,
        object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotFound { .. }
    )
}

/// Creates, creates again, updates, updates with a stale ETag, and removes
/// a probe object. The conditional writes are sent once each (a retried one
/// could be answered for its lost first try), so a transient failure
/// starts the probe again on a new object, within the store's retry budget.
async fn probe_conditions(remote: &Remote) -> Result<Conditions> {
    let policy = *remote.retry_policy();
    let mut attempt = 1;
    loop {
        let key = probe_key(remote);
        let result = probe_on(remote, &key).await;
        if let Err(e) = remote.store().delete(&key).await {
            tracing::debug!("could not remove the probe object {key}: {e}");
        }
        match result {
            Err(Error::Unavailable { .. }) if attempt < policy.max_attempts => {
                tokio::time::sleep(policy.backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

async fn probe_on(remote: &Remote, key: &Key) -> Result<Conditions> {
    let store = remote.store().as_ref();
    let error = |e| remote.error("checking that the store honours conditional writes", e);
    // A refusal is an answer; any other failure ends the probe.
    let answer = |result: object_store::Result<object_store::PutResult>| match result {
        Ok(put) => Ok(Some(put)),
        Err(e) if refused(&e) => Ok(None),
        Err(e) => Err(error(e)),
    };
    let first = put(store, key, "probe 1", PutMode::Create, Attributes::new())
        .await
        .map_err(error)?;
    let again = answer(put(store, key, "probe 2", PutMode::Create, Attributes::new()).await)?;
    // After a create that was wrongly accepted, the current version is its.
    let current = again.clone().unwrap_or(first);
    let update = |version: &object_store::PutResult| {
        PutMode::Update(UpdateVersion {
            e_tag: version.e_tag.clone(),
            version: version.version.clone(),
        })
    };
    let matching = answer(put(store, key, "probe 3", update(&current), Attributes::new()).await)?;
    // `current` is stale now, if the matching update was taken.
    let stale = answer(put(store, key, "probe 4", update(&current), Attributes::new()).await)?;
    Ok(Conditions {
        create_refused_over_existing: again.is_none(),
        update_accepted_when_current: matching.is_some(),
        update_refused_when_stale: matching.is_some() && stale.is_none(),
    })
}

/// What `sqlite-s3 doctor` reports of a store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    /// The store, as a person names it.
    pub store: String,
    /// The conditional writes every commit relies on.
    pub conditions: Conditions,
    /// A GET with `If-None-Match: <current ETag>` is answered 304 (what
    /// makes a warm session one cheap request).
    pub conditional_get: bool,
    /// A ranged GET returns exactly the bytes asked for (what resumes a
    /// broken download).
    pub ranged_get: bool,
    /// User metadata written with an object comes back (the lineage that
    /// recognises lost answers).
    pub user_metadata: bool,
    /// Listing under a prefix finds what was written there.
    pub listing: bool,
    /// The median round trip of a small request.
    pub round_trip_ms: f64,
    /// Whether this kind of store is tested in this project's CI.
    pub tested_in_ci: bool,
    /// What makes it unfit for writing, if anything.
    pub unfit: Option<String>,
}

/// Runs every check of [`StoreReport`] on probe objects beside the
/// database (removed afterwards), writing nothing else.
///
/// # Failure
/// The errors of the store (access denied, unreachable).
pub async fn check(remote: &Remote) -> Result<StoreReport> {
    let key = probe_key(remote);
    // Beside the probe, not under it: on a store backed by a file system an
    // object cannot be both a file and a folder.
    let listed_key = Key::from(format!("{key}-listed/item"));
    let result = check_on(remote, &key, &listed_key).await;
    for key in [&key, &listed_key] {
        let _ = remote.store().delete(key).await;
    }
    result
}

async fn check_on(remote: &Remote, key: &Key, listed_key: &Key) -> Result<StoreReport> {
    let store = remote.store().as_ref();
    let error = |e| remote.error("checking the store", e);
    let conditions = probe_on(remote, key).await?;
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata("sqlites3probe".into()), "kept".into());
    let written = put(store, key, "0123456789", PutMode::Overwrite, attributes)
        .await
        .map_err(error)?;

    let options = GetOptions {
        if_none_match: written.e_tag.clone(),
        ..Default::default()
    };
    let conditional_get = matches!(
        store.get_opts(key, options).await,
        Err(object_store::Error::NotModified { .. })
    );
    let options = GetOptions {
        range: Some(GetRange::Bounded(2..6)),
        ..Default::default()
    };
    let ranged_get = match store.get_opts(key, options).await {
        Ok(result) => result.bytes().await.ok() == Some(Bytes::from_static(b"2345")),
        Err(_) => false,
    };
    let options = GetOptions {
        head: true,
        ..Default::default()
    };
    let user_metadata = store
        .get_opts(key, options)
        .await
        .map_err(error)?
        .attributes
        .get(&Attribute::Metadata("sqlites3probe".into()))
        .is_some_and(|v| v.as_ref() == "kept");

    let listing = match put(store, listed_key, "listed", PutMode::Overwrite, Attributes::new()).await {
        Ok(_) => {
            use futures::TryStreamExt;
            let prefix = Key::from(format!("{key}-listed"));
            let listed: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap_or_default();
            listed.iter().any(|m| &m.location == listed_key)
        }
        Err(e) => {
            tracing::debug!("writing the listing probe failed: {e}");
            false
        }
    };

    let mut round_trips = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        store.head(key).await.map_err(error)?;
        round_trips.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    round_trips.sort_by(f64::total_cmp);
    let unfit = conditions.failure();
    Ok(StoreReport {
        store: describe_store(remote),
        conditions,
        conditional_get,
        ranged_get,
        user_metadata,
        listing,
        round_trip_ms: round_trips[round_trips.len() / 2],
        tested_in_ci: !matches!(remote.url().scheme(), Scheme::Gcs),
        unfit,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;
    use futures::TryStreamExt;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions, PutResult,
    };

    use super::*;
    use crate::location::DatabaseUrl;

    /// Memory, behind an S3 URL, whose first conditional write is cut short
    /// by a reset connection after it landed: the lost answer a probe must
    /// not take for the store's verdict.
    #[derive(Debug)]
    struct FirstAnswerLost {
        inner: InMemory,
        lost: AtomicBool,
    }

    impl std::fmt::Display for FirstAnswerLost {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("FirstAnswerLost")
        }
    }

    #[async_trait]
    impl ObjectStore for FirstAnswerLost {
        async fn put_opts(
            &self,
            location: &Key,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let conditional = !matches!(opts.mode, PutMode::Overwrite);
            let result = self.inner.put_opts(location, payload, opts).await;
            if conditional && !self.lost.swap(true, Ordering::SeqCst) {
                return Err(object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(object_store::client::HttpError::new(
                        object_store::client::HttpErrorKind::Interrupted,
                        std::io::Error::from(std::io::ErrorKind::ConnectionReset),
                    )),
                });
            }
            result
        }

        async fn put_multipart_opts(
            &self,
            location: &Key,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(&self, location: &Key, options: GetOptions) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Key>>,
        ) -> BoxStream<'static, object_store::Result<Key>> {
            self.inner.delete_stream(locations)
        }

        fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(&self, from: &Key, to: &Key, options: CopyOptions) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[tokio::test]
    async fn a_lost_answer_during_the_store_check_starts_it_again_on_a_new_object() {
        let store = Arc::new(FirstAnswerLost {
            inner: InMemory::new(),
            lost: AtomicBool::new(false),
        });
        let url = DatabaseUrl::parse("s3://bucket/app.db").unwrap();
        let remote = Remote::with_store(url, store.clone());
        let conditions = probe_conditions(&remote).await.expect("absorbed");
        assert_eq!(conditions.failure(), None, "{conditions:?}");
        assert!(store.lost.load(Ordering::SeqCst), "the fault happened");
        let left: Vec<_> = store.inner.list(None).try_collect().await.unwrap();
        assert!(left.is_empty(), "probe objects are removed: {left:?}");
    }
}
