//! Where local working copies live when no directory is given.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the default cache directory.
pub const CACHE_DIR_ENV: &str = "SQLITE_S3_CACHE_DIR";

/// The cache directory to use: the option, then `SQLITE_S3_CACHE_DIR`, then
/// `/tmp/sqlite-s3` on AWS Lambda (the only writable place there), then the
/// platform's cache directory, then the temporary directory.
pub fn resolve_cache_dir(option: Option<&Path>) -> PathBuf {
    if let Some(dir) = option {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        return PathBuf::from("/tmp/sqlite-s3");
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("sqlite-s3")
}
