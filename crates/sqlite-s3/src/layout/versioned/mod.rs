//! The versioned layout: a database costs what changed.
//!
//! ```text
//! KEY.sqlite-s3/
//!   manifests/00000000000000000001    immutable, zstd JSON: one complete version each
//!   manifests/00000000000000000002
//!   chunks/<blake3 of the bytes>       immutable, zstd: 256 KiB of the database file
//!   latest                             a hint: a recent version number (advisory)
//! ```
//!
//! - **Commit**: cut the file into 256 KiB chunks, upload the chunks the base
//!   version lacks (a plain overwrite: content-addressed, so rewriting an
//!   existing one is harmless, and makes it young again for gc), then create
//!   manifest N+1 with `If-None-Match: *`. Exactly one of several concurrent
//!   committers on N wins; the others get a conflict. Only create-if-absent
//!   is needed, which every store has.
//! - **Warm pull**: GET manifest N+1; 404 means N is still the newest: one
//!   request, nothing downloaded. Otherwise walk forward to the newest and
//!   download only the chunks whose hash changed, patched into a copy of the
//!   working copy; every chunk is checked against its hash.
//! - **Cold pull**: GET the `latest` hint, then walk forward from it; with no
//!   hint, one LIST of the manifests. The hint is rewritten every
//!   [`HINT_EVERY`](commit::HINT_EVERY) versions, so a commit costs no request for it most of the
//!   time, and a cold open walks at most that many versions forward.

mod chunk_cache;
mod chunks;
mod commit;
mod layout;
mod moves;
mod plan;
mod pull;
#[cfg(test)]
pub(crate) mod tests;
mod versions;

pub(crate) use chunk_cache::ChunkCache;
pub use commit::DEFAULT_GRACE;
pub(crate) use versions::Versioned;
