//! Every key of one database in the bucket, built in one place.
//!
//! ```text
//! KEY                                   the single object, or a move marker
//! KEY.sqlite-s3/manifests/<number>      versions (20 digits)
//! KEY.sqlite-s3/chunks/<hash>           chunks of this database's own home
//! KEY.sqlite-s3/latest                  the hint of a recent version
//! KEY.sqlite-s3/staged/<writer>         a version staged by a move
//! KEY.sqlite-s3/branches/<name>         branches that share this home's chunks
//! KEY.sqlite-s3-lease                   the lease (lease.rs)
//! KEY.sqlite-s3-probe-<token>           the store check's probe (probe.rs)
//! ```

use object_store::path::Path as Key;

use super::remote::Remote;
use crate::hash::ContentHash;
use crate::token::CommitToken;

/// The keys of one database in the versioned layout.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `KEY.sqlite-s3`.
    root: String,
}

impl Keys {
    /// The keys of the database at `remote`.
    pub(crate) fn new(remote: &Remote) -> Self {
        Self::of(remote.key().as_ref())
    }

    /// The keys of the database whose single-object key is `key`.
    pub(crate) fn of(key: &str) -> Self {
        Self {
            root: format!("{key}.sqlite-s3"),
        }
    }

    /// The lease of the database.
    pub(crate) fn lease(&self) -> Key {
        Key::from(format!("{}-lease", self.root))
    }

    /// A probe object of the store check, named by `token`.
    pub(crate) fn probe(&self, token: &str) -> Key {
        Key::from(format!("{}-probe-{token}", self.root))
    }

    /// Version `n`.
    pub(crate) fn manifest(&self, n: u64) -> Key {
        Key::from(format!("{}/manifests/{n:020}", self.root))
    }

    /// The folder of the versions, for listing.
    pub(crate) fn manifests(&self) -> Key {
        Key::from(format!("{}/manifests", self.root))
    }

    /// The hint of a recent version number.
    pub(crate) fn latest(&self) -> Key {
        Key::from(format!("{}/latest", self.root))
    }

    /// The chunk home this database writes new chunks to.
    pub(crate) fn own_home(&self) -> String {
        format!("{}/chunks", self.root)
    }

    /// Where a move by `writer` stages the version it creates.
    pub(crate) fn staged(&self, writer: &CommitToken) -> Key {
        Key::from(format!("{}/staged/{writer}", self.root))
    }

    /// The folder of the records of this database's branches.
    pub(crate) fn branches(&self) -> Key {
        Key::from(format!("{}/branches", self.root))
    }

    /// The record, in the chunk home `home`, of the branch whose keys are
    /// `branch`: named by a hash of the branch's root.
    pub(crate) fn branch_record(home: &str, branch: &Keys) -> Key {
        let root = home.strip_suffix("/chunks").unwrap_or(home);
        let name = blake3::hash(branch.root.as_bytes()).to_hex();
        Key::from(format!("{root}/branches/{}", &name[..32]))
    }

    /// The chunk `hash` in the chunk home `home`.
    pub(crate) fn chunk(home: &str, hash: &ContentHash) -> Key {
        Key::from(format!("{home}/{hash}"))
    }
}

/// Names an object of the database in messages.
pub(crate) fn object_name(remote: &Remote, key: &Key) -> String {
    format!("{} (object {key})", remote.url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        let keys = Keys::of("dir/app.db");
        assert_eq!(
            keys.manifest(7).as_ref(),
            "dir/app.db.sqlite-s3/manifests/00000000000000000007"
        );
        assert_eq!(keys.manifests().as_ref(), "dir/app.db.sqlite-s3/manifests");
        assert_eq!(keys.latest().as_ref(), "dir/app.db.sqlite-s3/latest");
        assert_eq!(keys.lease().as_ref(), "dir/app.db.sqlite-s3-lease");
        assert_eq!(keys.probe("t").as_ref(), "dir/app.db.sqlite-s3-probe-t");
        assert_eq!(keys.own_home(), "dir/app.db.sqlite-s3/chunks");
        assert_eq!(keys.staged(&"ab".into()).as_ref(), "dir/app.db.sqlite-s3/staged/ab");
        assert_eq!(keys.branches().as_ref(), "dir/app.db.sqlite-s3/branches");
        let hash = ContentHash::of(b"chunk");
        assert_eq!(
            Keys::chunk(&keys.own_home(), &hash).as_ref(),
            format!("dir/app.db.sqlite-s3/chunks/{}", hash.to_hex())
        );
        let record = Keys::branch_record(&keys.own_home(), &Keys::of("b.db"));
        assert!(record.as_ref().starts_with("dir/app.db.sqlite-s3/branches/"));
    }
}
