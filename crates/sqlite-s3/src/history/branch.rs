//! Branches: a new database whose first version is a version of another,
//! sharing its chunks, made in a few requests whatever the size.

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::log::{no_version, not_versioned};
use crate::error::{Error, Result};
use crate::layout::conflict;
use crate::layout::manifest::Manifest;
use crate::layout::versioned::Versioned;
use crate::store::Remote;
use crate::store::cas;
use crate::store::keys::Keys;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

/// A database that shares this one's chunks, recorded under
/// `ROOT/branches/` so that gc keeps what it uses.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BranchRecord {
    /// The key of the branch's database.
    pub key: String,
}

/// Creates a new database at `target` whose first version is `version` (or
/// the newest) of `source`. The two share chunks; writes to either never
/// show in the other. A few requests, whatever the size.
///
/// # Failure
/// [`Error::Conflict`] when a database of either layout exists at `target`;
/// [`Error::NotVersioned`] or [`Error::VersionNotFound`] when `source` has
/// no such version; [`Error::Misuse`] when the two are in different stores.
pub async fn branch(source: &Remote, target: &Remote, version: Option<u64>) -> Result<u64> {
    if !source.same_bucket(target) {
        return Err(Error::Misuse {
            url: target.url().to_string(),
            reason: format!(
                "it is in another store than {}, and a branch shares its chunks, so it must live in the same \
                 bucket",
                source.url()
            ),
        });
    }
    let layout = Versioned::default();
    let token = CommitToken::new();
    let keys = Keys::new(source);
    let from = match version {
        Some(n) => layout
            .manifest(source, &keys, n)
            .await?
            .ok_or_else(|| no_version(source, n))?,
        None => layout
            .latest(source, &keys)
            .await?
            .ok_or_else(|| not_versioned(source))?,
    };
    let target_keys = Keys::new(target);
    // A database of either layout at the target: nothing to record.
    if target.head().await?.is_some() {
        return Err(conflict(target));
    }
    // Record the branch in every home its chunks live in, before the
    // branch exists, so that gc there keeps them.
    let record = serde_json::to_vec(&BranchRecord {
        key: target.key().to_string(),
    })
    .expect("a record serializes");
    for home in &from.homes {
        source
            .store()
            .put(
                &Keys::branch_record(home, &target_keys),
                PutPayload::from(record.clone()),
            )
            .await
            .map_err(|e| source.error("recording a branch", e))?;
    }
    let mut homes = from.homes.clone();
    homes.push(target_keys.own_home());
    let first = Manifest {
        version: 1,
        parent: None,
        homes,
        committed_at: Timestamp::now(),
        writer: token.clone(),
        uploaded_bytes: 0,
        moved_to_single: false,
        ..from
    };
    // Behind a marker at the target's key, as any new database, so that
    // no single-object database can appear there too. No hint: readers
    // find version 1 with one listing.
    let outcome = layout
        .create_first(target, &target_keys, &first, false, |writer| {
            (*writer == token).then_some(0)
        })
        .await?;
    match outcome {
        cas::Outcome::Written(_) | cas::Outcome::Found(_) => Ok(1),
        cas::Outcome::Taken => Err(conflict(target)),
        cas::Outcome::Unknown(error) => Err(Error::OutcomeUnknown {
            url: target.url().to_string(),
            operation: "creating the branch",
            detail: error.to_string(),
            next: "Run sqlite-s3 info on the branch's URL before branching again",
        }),
    }
}
