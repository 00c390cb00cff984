//! A store that refuses, once, the next PUT to a key a test names: how a
//! process that stops between two writes is simulated. Or, armed with
//! [`FailPuts::arm_landed`], lets it land and then answers as a retry of it
//! would: the condition failed.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};
use sqlite_s3::Remote;

type Rule = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// See the module docs.
pub struct FailPuts {
    inner: Arc<dyn ObjectStore>,
    rule: Mutex<Option<Rule>>,
    /// What the armed PUT does: refused, or landed and answered 412.
    lands: Mutex<bool>,
}

impl FailPuts {
    /// `remote` behind a store that fails the next PUT whose key `rule`
    /// accepts (armed with [`FailPuts::arm`]).
    pub fn wrap(remote: &Remote) -> (Remote, Arc<FailPuts>) {
        let store = Arc::new(FailPuts {
            inner: remote.store().clone(),
            rule: Mutex::new(None),
            lands: Mutex::new(false),
        });
        let wrapped = store.clone();
        (remote.clone().map_store(move |_| wrapped), store)
    }

    /// Fails the next PUT to a key for which `rule` holds.
    pub fn arm(&self, rule: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.lands.lock().unwrap() = false;
        *self.rule.lock().unwrap() = Some(Box::new(rule));
    }

    /// Lets the next PUT to a key for which `rule` holds land, then answers
    /// "precondition failed", as the retry of a request whose first answer
    /// was lost gets.
    pub fn arm_landed(&self, rule: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self.lands.lock().unwrap() = true;
        *self.rule.lock().unwrap() = Some(Box::new(rule));
    }
}

impl fmt::Debug for FailPuts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailPuts({})", self.inner)
    }
}

impl fmt::Display for FailPuts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailPuts({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FailPuts {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fail = {
            let mut rule = self.rule.lock().unwrap();
            let hit = rule.as_ref().is_some_and(|r| r(location.as_ref()));
            if hit {
                *rule = None;
            }
            hit
        };
        if fail && *self.lands.lock().unwrap() {
            self.inner.put_opts(location, payload, opts).await?;
            return Err(object_store::Error::Precondition {
                path: location.to_string(),
                source: "412 (the retry of a request that landed)".into(),
            });
        }
        if fail {
            return Err(object_store::Error::Generic {
                store: "test",
                source: format!("the process stopped before writing {location}").into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
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
