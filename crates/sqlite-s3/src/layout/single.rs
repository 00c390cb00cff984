//! The single-object layout: the object at the key is a plain SQLite file,
//! readable by `aws s3 cp` and `sqlite3`, and compatible with databases
//! written by the original PHP library.
//!
//! - Pull: one conditional GET (`If-None-Match: <ETag>`); 304 downloads nothing.
//! - Publish: one conditional PUT of the whole file, `If-Match: <ETag>`, or
//!   `If-None-Match: *` when the object did not exist. The user metadata
//!   `sqlite-s3-lineage` lists the commit tokens of the version and its
//!   ancestors, so a retried PUT whose first answer was lost is recognised as
//!   ours instead of being reported as a conflict.

use std::path::Path;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::{Attribute, Attributes, GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use tokio::io::AsyncWriteExt;

use super::convert::{MARKER_MAX, Marker};
use super::{Layout, Published, Pulled, RemoteVersion, extend_lineage};
use crate::error::{Error, Result};
use crate::options::WriteMode;
use crate::progress::{Direction, ProgressFn, report};
use crate::store::{LINEAGE_ATTRIBUTE, Remote};

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleObject;

fn lineage_of(attributes: &Attributes) -> Vec<String> {
    attributes
        .get(&Attribute::Metadata(LINEAGE_ATTRIBUTE.into()))
        .map(|v| v.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

impl SingleObject {
    /// Whether the object is the marker of a move to the versioned layout.
    async fn is_marker(&self, remote: &Remote) -> Result<bool> {
        if remote.head().await?.is_none_or(|meta| meta.size >= MARKER_MAX) {
            return Ok(false);
        }
        let result = match remote.store().get_opts(remote.key(), GetOptions::default()).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(remote.error("checking the current version", e)),
        };
        let bytes = result
            .bytes()
            .await
            .map_err(|e| remote.error("checking the current version", e))?;
        Ok(Marker::decode(&bytes, remote)?.is_some())
    }
}

#[async_trait]
impl Layout for SingleObject {
    fn name(&self) -> &'static str {
        "single"
    }

    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        _base_file: Option<super::Base<'_>>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        let options = GetOptions {
            if_none_match: known.map(|v| v.etag.clone()),
            ..Default::default()
        };
        let result = match remote.store().get_opts(remote.key(), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotModified { .. }) => return Ok(Pulled::Unchanged),
            Err(object_store::Error::NotFound { .. }) => {
                remote.check_bucket().await?;
                return Ok(Pulled::Absent);
            }
            Err(e) => return Err(remote.error("downloading", e)),
        };
        let etag = result.meta.e_tag.clone().ok_or_else(|| {
            Error::InvalidState(format!(
                "the store returned no ETag for {}: conditional writes are impossible without one",
                remote.url()
            ))
        })?;
        let version = RemoteVersion {
            etag,
            lineage: lineage_of(&result.attributes),
            manifest: None,
        };
        let expected = result.meta.size;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io("creating", dest))?;
        let mut hasher = crate::sqlite::ContentHasher::new();
        let mut written = 0u64;
        let mut stream = if expected < MARKER_MAX {
            // Small enough to be the marker of a move to the versioned layout.
            let bytes = result.bytes().await.map_err(|e| remote.error("downloading", e))?;
            if Marker::decode(&bytes, remote)?.is_some() {
                return Ok(Pulled::Moved);
            }
            futures::stream::once(async move { Ok(bytes) }).boxed()
        } else {
            result.into_stream()
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| remote.error("downloading", e))?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(Error::io("writing", dest))?;
            report(progress, Direction::Download, written, expected);
        }
        file.sync_all().await.map_err(Error::io("writing", dest))?;
        if written != expected {
            return Err(Error::Corrupt {
                url: remote.url().to_string(),
                reason: format!("the download ended after {written} of {expected} bytes"),
            });
        }
        Ok(Pulled::Downloaded {
            version,
            hash: hasher.finalize().0,
            bytes: written,
        })
    }

    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        token: &str,
        progress: Option<&ProgressFn>,
    ) -> Result<Published> {
        let bytes = tokio::fs::read(file).await.map_err(Error::io("reading", file))?;
        let total = bytes.len() as u64;
        report(progress, Direction::Upload, 0, total);
        let lineage = extend_lineage(token, base);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::Metadata(LINEAGE_ATTRIBUTE.into()), lineage.join(",").into());
        attributes.insert(Attribute::ContentType, "application/vnd.sqlite3".into());
        // Last writer wins, too, tries the condition first: it may write over
        // anything but the marker of a move to the versioned layout.
        let condition = match base {
            None => PutMode::Create,
            Some(base) => PutMode::Update(UpdateVersion {
                e_tag: Some(base.etag.clone()),
                version: None,
            }),
        };
        let payload = PutPayload::from(bytes);
        let put = |mode: PutMode| {
            let options = PutOptions {
                mode,
                attributes: attributes.clone(),
                ..Default::default()
            };
            remote.store().put_opts(remote.key(), payload.clone(), options)
        };
        let mut result = put(condition).await;
        if mode == WriteMode::LastWriterWins
            && matches!(
                result,
                Err(object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. }
                    | object_store::Error::NotFound { .. })
            )
            && !self.is_marker(remote).await?
        {
            result = put(PutMode::Overwrite).await;
        }
        match result {
            Ok(put) => {
                let etag = put.e_tag.ok_or_else(|| {
                    Error::InvalidState(format!("the store returned no ETag after publishing {}", remote.url()))
                })?;
                Ok(Published::Current(RemoteVersion {
                    etag,
                    lineage,
                    manifest: None,
                }))
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. }
                | object_store::Error::NotFound { .. },
            ) => match self.landed(remote, token, None).await? {
                Some(published) => Ok(published),
                None => Err(Error::Conflict {
                    url: remote.url().to_string(),
                    attempts: 1,
                }),
            },
            Err(e) => Err(remote.error("uploading", e)),
        }
    }

    async fn landed(&self, remote: &Remote, token: &str, _base: Option<&str>) -> Result<Option<Published>> {
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        let head = match remote.store().get_opts(remote.key(), options).await {
            Ok(head) => head,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote.error("checking the current version", e)),
        };
        let lineage = lineage_of(&head.attributes);
        Ok(match lineage.iter().position(|t| t == token) {
            Some(0) => Some(Published::Current(RemoteVersion {
                etag: head.meta.e_tag.clone().unwrap_or_default(),
                lineage,
                manifest: None,
            })),
            Some(_) => Some(Published::Superseded),
            None => None,
        })
    }
}
