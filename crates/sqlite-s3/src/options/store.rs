//! How to reach a store: credentials, endpoint, retries of transient
//! failures, and whether a store that ignores conditional requests may be
//! written to.

use std::fmt;
use std::time::Duration;

/// How to reach an S3 or S3-compatible store. Anything left unset comes from
/// the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`); what is set here wins.
///
/// Its `Debug` output hides the secret key and the session token.
#[derive(Clone, Default)]
pub struct StoreOptions {
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key: Option<String>,
    pub(crate) session_token: Option<String>,
    pub(crate) allow_http: Option<bool>,
    #[cfg(feature = "aws-config")]
    pub(crate) profile: Option<String>,
    pub(crate) request_retry: RequestRetry,
    pub(crate) unsafe_store: bool,
}

impl StoreOptions {
    /// Options taken from the environment only.
    pub fn new() -> Self {
        Self::default()
    }

    /// The region, such as `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint of an S3-compatible server, such as
    /// `http://127.0.0.1:9000` or `https://ACCOUNT.r2.cloudflarestorage.com`.
    /// An `http://` endpoint is allowed without further settings.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Static credentials.
    pub fn credentials(mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.secret_access_key = Some(secret_access_key.into());
        self
    }

    /// A session token, for temporary credentials.
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// A named AWS profile (feature `aws-config`): its credentials (static,
    /// SSO, an assumed role or a credential process) win over the
    /// `AWS_ACCESS_KEY_ID` variables, and its `region` and `endpoint_url`
    /// apply unless set here or in `AWS_REGION` / `AWS_ENDPOINT_URL`, as with
    /// `aws --profile`. Without this option, `AWS_PROFILE` is used when set
    /// and no credentials are given in code or in the environment.
    #[cfg(feature = "aws-config")]
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// Allows or forbids plain HTTP. By default it is allowed exactly when the
    /// endpoint starts with `http://`.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = Some(allow);
        self
    }

    /// Writes even to a store that does not honour conditional requests
    /// (one that accepts an `If-Match` on a stale ETag, or an
    /// `If-None-Match: *` over an existing object): concurrent writers then
    /// overwrite each other silently, last writer wins. Off by default:
    /// such a store is refused for writing with
    /// [`Error::UnsafeStore`](crate::Error::UnsafeStore) (see
    /// `store/probe.rs`).
    pub fn unsafe_store(mut self, accept: bool) -> Self {
        self.unsafe_store = accept;
        self
    }

    /// How requests that fail in a way that may pass (a reset connection, a
    /// body cut short, a timeout, 500, 503 SlowDown, 429) are sent again.
    /// The default tries eight times over about five seconds.
    pub fn request_retry(mut self, retry: RequestRetry) -> Self {
        self.request_retry = retry;
        self
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<hidden>");
        let mut f = f.debug_struct("StoreOptions");
        f.field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .field("allow_http", &self.allow_http)
            .field("request_retry", &self.request_retry)
            .field("unsafe_store", &self.unsafe_store);
        #[cfg(feature = "aws-config")]
        f.field("profile", &self.profile);
        f.finish()
    }
}

/// How often, and how patiently, a request is sent again after a
/// transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRetry {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Upper bound of the first pause; it doubles after each failure.
    pub base_delay: Duration,
    /// Upper bound of any pause.
    pub max_delay: Duration,
}

impl Default for RequestRetry {
    /// Eight tries, pauses of up to 50 ms doubling to 2 s: about 5 s at
    /// most before a store that stays down is reported.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RequestRetry {
    /// The pause after failed try `attempt` (1-based): a random duration
    /// up to `min(max_delay, base_delay * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::full_jitter(self.base_delay, self.max_delay, attempt)
    }
}
