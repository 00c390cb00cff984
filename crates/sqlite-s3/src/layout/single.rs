//! The single-object layout: the object at the key is a plain SQLite file,
//! readable by `aws s3 cp` and `sqlite3`, and compatible with databases
//! written by the original PHP library.
//!
//! - Pull: one conditional GET (`If-None-Match: <ETag>`); 304 downloads nothing.
//! - Publish: one conditional PUT of the whole file, `If-Match: <ETag>`, or
//!   `If-None-Match: *` when the object did not exist. The user metadata
//!   `sqlites3lineage` lists the commit tokens of the version and its
//!   ancestors, so a retried PUT whose first answer was lost is recognised as
//!   ours instead of being reported as a conflict.

use std::path::Path;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::{Attribute, Attributes, GetOptions, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt;

use super::contract::{Base, Found, Landed, Layout, Published, Pulled, conflict, fenced, publish_unknown, with_fence};
use super::in_flight::InFlight;
use super::marker::{MARKER_MAX, Marker};
use super::version::{ObjectVersion, RemoteVersion, Version, extend_lineage};
use super::versioned::Versioned;
use crate::error::{Error, Result};
use crate::options::WriteMode;
use crate::progress::{Direction, ProgressFn, report};
use crate::store::cas::{self, Condition, Tries};
use crate::store::{LEGACY_LINEAGE_ATTRIBUTE, LINEAGE_ATTRIBUTE, Remote};
use crate::token::CommitToken;

/// See the module docs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleObject;

fn lineage_of(attributes: &Attributes) -> Vec<CommitToken> {
    [LINEAGE_ATTRIBUTE, LEGACY_LINEAGE_ATTRIBUTE]
        .into_iter()
        .find_map(|name| attributes.get(&Attribute::Metadata(name.into())))
        .map(|v| v.split(',').filter(|t| !t.is_empty()).map(CommitToken::from).collect())
        .unwrap_or_default()
}

/// A lineage as object metadata holds it: the tokens, comma-separated.
fn lineage_text(lineage: &[CommitToken]) -> String {
    lineage.iter().map(CommitToken::as_str).collect::<Vec<_>>().join(",")
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

impl SingleObject {
    /// One download of the newest version; `None` when it changed while it
    /// was read (a resumed read found another version).
    async fn pull_once(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Option<Pulled>> {
        let options = GetOptions {
            if_none_match: known.and_then(RemoteVersion::as_object).map(|v| v.etag.clone()),
            ..Default::default()
        };
        let result = match remote.store().get_opts(remote.key(), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotModified { .. }) => return Ok(Some(Pulled::Unchanged)),
            Err(object_store::Error::NotFound { .. }) => {
                remote.check_bucket().await?;
                return Ok(Some(Pulled::Absent));
            }
            Err(e) => return Err(remote.error("downloading", e)),
        };
        let etag = result.meta.e_tag.clone().ok_or_else(|| Error::Corrupt {
            url: remote.url().to_string(),
            reason: "the store served it without an ETag, and no write can be conditional on a version that has \
                     none"
                .into(),
        })?;
        let version = RemoteVersion::Object(ObjectVersion {
            etag,
            object_version: result.meta.version.clone(),
            lineage: lineage_of(&result.attributes),
        });
        let expected = result.meta.size;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io("creating", dest))?;
        let mut hasher = crate::sqlite::ContentHasher::new();
        let mut written = 0u64;
        let mut stream = if expected < MARKER_MAX {
            // Small enough to be the marker of a move to the versioned layout.
            let bytes = match result.bytes().await {
                Ok(bytes) => bytes,
                Err(object_store::Error::Precondition { .. }) => return Ok(None),
                Err(e) => return Err(remote.error("downloading", e)),
            };
            if let Some(marker) = Marker::decode(&bytes, remote)? {
                return Ok(Some(Pulled::Moved {
                    to_version: Some(marker.version),
                }));
            }
            futures::stream::once(async move { Ok(bytes) }).boxed()
        } else {
            result.into_stream()
        };
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(object_store::Error::Precondition { .. }) => return Ok(None),
                Err(e) => return Err(remote.error("downloading", e)),
            };
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
        Ok(Some(Pulled::Downloaded {
            version,
            hash: hasher.finalize().0,
            bytes: written,
        }))
    }
}

#[async_trait]
impl Layout for SingleObject {
    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        _base_file: Option<Base<'_>>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        // A download that broke off is resumed on the same version; when
        // that version was replaced meanwhile, the download starts over.
        for _ in 0..5 {
            if let Some(pulled) = self.pull_once(remote, known, dest, progress).await? {
                return Ok(pulled);
            }
            tracing::debug!("{} changed while it was downloaded; downloading again", remote.url());
        }
        Err(Error::TryAgain {
            url: remote.url().to_string(),
            reason: "it kept changing while it was downloaded (5 times)".into(),
        })
    }
    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        in_flight: &InFlight,
        progress: Option<&ProgressFn>,
    ) -> Result<Found> {
        let (this, token) = in_flight.current();
        let bytes = tokio::fs::read(file).await.map_err(Error::io("reading", file))?;
        let total = bytes.len() as u64;
        if base.is_none() && Versioned::default().exists(remote).await? {
            // A database in the versioned layout that predates markers
            // (layout/convert.rs) has no object at the key: never create a
            // second database beside it, unless it is moving to this layout.
            let moving = Versioned::default()
                .newest(remote)
                .await?
                .is_some_and(|m| m.moved_to_single);
            if !moving {
                return Err(conflict(remote));
            }
        }
        report(progress, Direction::Upload, 0, total);
        let lineage = extend_lineage(token, base);
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(LINEAGE_ATTRIBUTE.into()),
            lineage_text(&lineage).into(),
        );
        attributes.insert(Attribute::ContentType, "application/vnd.sqlite3".into());
        // Last writer wins, too, tries the condition first: it may write over
        // anything but the marker of a move to the versioned layout.
        let condition = match base.map(RemoteVersion::as_object) {
            None => Condition::Absent,
            Some(Some(base)) => Condition::matches(&base.etag, base.object_version.clone()),
            // A version of the other layout: the database moved since.
            Some(None) => return Err(conflict(remote)),
        };
        let payload = PutPayload::from(bytes);
        let outcome = cas::put(
            remote,
            remote.key(),
            payload.clone(),
            attributes.clone(),
            &condition,
            "uploading",
            |tries| self.check(remote, in_flight, tries),
        )
        .await?;
        let written = match outcome {
            cas::Outcome::Written(put) => put,
            cas::Outcome::Found(found) => return Ok(found),
            cas::Outcome::Taken if mode == WriteMode::LastWriterWins && !self.is_marker(remote).await? => {
                let options = PutOptions {
                    mode: PutMode::Overwrite,
                    attributes,
                    ..Default::default()
                };
                match remote.store().put_opts(remote.key(), payload, options).await {
                    Ok(put) => put,
                    // Not conditional: whether it landed cannot be told.
                    Err(e) => {
                        return Err(publish_unknown(remote, remote.error("uploading", e)));
                    }
                }
            }
            cas::Outcome::Taken => return Err(conflict(remote)),
            cas::Outcome::Unknown(error) => return Err(publish_unknown(remote, error)),
        };
        report(progress, Direction::Upload, total, total);
        // It landed. Without an ETag its version cannot be named: the next
        // pull downloads whatever is newest.
        let published = match written.e_tag {
            Some(etag) => Published::Current(RemoteVersion::Object(ObjectVersion {
                etag,
                object_version: written.version,
                lineage,
            })),
            None => Published::Superseded,
        };
        Ok(Found {
            attempt: this,
            published,
        })
    }

    async fn landed(&self, remote: &Remote, in_flight: &InFlight) -> Result<Landed<Found>> {
        self.check(remote, in_flight, Tries { ambiguous: true }).await
    }

    async fn fence(
        &self,
        remote: &Remote,
        base: Option<&RemoteVersion>,
        in_flight: &InFlight,
    ) -> Result<Landed<Found>> {
        let Some(base) = base else {
            return Ok(Landed::Unknown(
                "a first publish of a database cannot be fenced off without creating it".into(),
            ));
        };
        // A version of the other layout: the database moved since, and
        // no try made over it can land here.
        let Some(object) = base.as_object() else {
            return self.landed(remote, in_flight).await;
        };
        // The base's bytes, with the change counter moved on: the same
        // database, but another object (S3's ETag is the MD5 of the bytes,
        // so the very same bytes would bring the base's ETag back).
        let options = GetOptions {
            if_match: Some(object.etag.clone()),
            ..Default::default()
        };
        let mut bytes = match remote.store().get_opts(remote.key(), options).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| remote.error("downloading", e))?
                .to_vec(),
            Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {
                return self.landed(remote, in_flight).await;
            }
            Err(e) => return Err(remote.error("downloading", e)),
        };
        if bytes.len() < 100 {
            return Ok(Landed::Unknown("the version to fence is not a database".into()));
        }
        let counter = u32::from_be_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]).wrapping_add(1);
        bytes[24..28].copy_from_slice(&counter.to_be_bytes());
        bytes[92..96].copy_from_slice(&counter.to_be_bytes());
        let token = CommitToken::new();
        let fence = with_fence(in_flight, &token);
        let mut attributes = Attributes::new();
        let lineage = extend_lineage(&token, Some(base));
        attributes.insert(
            Attribute::Metadata(LINEAGE_ATTRIBUTE.into()),
            lineage_text(&lineage).into(),
        );
        attributes.insert(Attribute::ContentType, "application/vnd.sqlite3".into());
        let outcome = cas::put(
            remote,
            remote.key(),
            PutPayload::from(bytes),
            attributes,
            &Condition::matches(&object.etag, object.object_version.clone()),
            "fencing off an earlier publish",
            |tries| self.check(remote, &fence, tries),
        )
        .await?;
        Ok(fenced(outcome, fence.attempts.len() - 1))
    }
}

impl SingleObject {
    /// Whether one of the tries of `in_flight` is in the object's lineage.
    /// It proves that none is, and none ever will be, only when the
    /// lineage reaches back to the version they were made over and names
    /// another successor; or when the only try was refused cleanly.
    async fn check(&self, remote: &Remote, in_flight: &InFlight, tries: Tries) -> Result<Landed<Found>> {
        let options = GetOptions {
            head: true,
            ..Default::default()
        };
        let head = match remote.store().get_opts(remote.key(), options).await {
            Ok(head) => head,
            Err(object_store::Error::NotFound { .. }) if in_flight.base.is_none() => return Ok(Landed::NotYet),
            // The object it was to replace is gone: an `If-Match` on it
            // can never succeed.
            Err(object_store::Error::NotFound { .. }) => return Ok(Landed::Never),
            Err(e) => return Err(remote.error("checking the current version", e)),
        };
        let lineage = lineage_of(&head.attributes);
        for (position, token) in lineage.iter().enumerate() {
            if let Some(attempt) = in_flight.attempt(token) {
                // Without an ETag the version cannot be named: the next
                // pull downloads whatever is newest.
                let published = match (position, head.meta.e_tag.clone()) {
                    (0, Some(etag)) => Published::Current(RemoteVersion::Object(ObjectVersion {
                        etag,
                        object_version: head.meta.version.clone(),
                        lineage,
                    })),
                    _ => Published::Superseded,
                };
                return Ok(Landed::Yes(Found { attempt, published }));
            }
        }
        if in_flight.last_writer_wins {
            // Not conditional on anything: only its token can tell.
            return Ok(match tries.ambiguous || in_flight.attempts.len() > 1 {
                true => Landed::Unknown("a last-writer-wins publish leaves no proof that it did not land".into()),
                false => Landed::Never,
            });
        }
        let Some(base) = &in_flight.base else {
            // Created by another writer; an object is never deleted.
            return Ok(Landed::Never);
        };
        if let Version::Object { etag } = base
            && head.meta.e_tag.as_deref() == Some(etag.as_str())
        {
            return Ok(Landed::NotYet);
        }
        if !tries.ambiguous && in_flight.attempts.len() == 1 {
            return Ok(Landed::Never);
        }
        // Every writer since the base put its token before the base's: none
        // of them is ours, so the base's successor is someone else's.
        if let Some(base_token) = &in_flight.base_token
            && lineage.contains(base_token)
        {
            return Ok(Landed::Never);
        }
        Ok(Landed::Unknown(format!(
            "the lineage of the current version lists its last {} writers, and does not reach back to the \
             version the change was made over",
            lineage.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lineage_is_read_under_its_new_and_its_old_name() {
        for name in [LINEAGE_ATTRIBUTE, LEGACY_LINEAGE_ATTRIBUTE] {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::Metadata(name.into()), "b,a".into());
            assert_eq!(lineage_of(&attributes), [CommitToken::from("b"), "a".into()], "{name}");
        }
        assert!(lineage_of(&Attributes::new()).is_empty());
    }
}
