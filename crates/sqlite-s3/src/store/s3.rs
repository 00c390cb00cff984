//! S3 and S3-compatible servers.

use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{ClientConfigKey, RetryConfig};

use crate::error::{Error, Result};
use crate::location::DatabaseUrl;
use crate::options::StoreOptions;

/// Builds the store for an `s3://` URL: the AWS environment first, then the
/// options in code. Returns the endpoint in use, if any.
pub(super) fn build(url: &DatabaseUrl, options: &StoreOptions) -> Result<(AmazonS3, Option<String>)> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(url.bucket());
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &options.session_token {
        builder = builder.with_token(token);
    }
    #[cfg(feature = "aws-config")]
    {
        builder = with_profile(builder, options)?;
    }
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let plain_http = super::identity::plain_http(endpoint.as_deref());
    if let Some(allow) = options.allow_http.or(plain_http.then_some(true)) {
        builder = builder.with_allow_http(allow);
    }
    // No retries inside object_store: each request is sent once, and
    // `store/retry.rs` and `store/cas.rs` retry what failed, knowing which
    // requests are conditional (a retried conditional PUT whose first try
    // landed fails its condition, and only the caller can tell it is its
    // own). Requests may take long enough to move a large database in one PUT.
    builder = builder
        .with_retry(RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::from_secs(20),
            ..RetryConfig::default()
        })
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "15m");
    let store = builder.build().map_err(|source| Error::Store {
        url: url.to_string(),
        operation: "configuring the S3 client",
        source: Box::new(source),
    })?;
    Ok((store, endpoint))
}

/// Applies the AWS profile in use, if any: `StoreOptions::profile`, else
/// `AWS_PROFILE` when no credentials are given in code or the environment.
/// Its credentials win over the environment's; its region and endpoint
/// apply where neither the options nor the environment set one.
#[cfg(feature = "aws-config")]
fn with_profile(mut builder: AmazonS3Builder, options: &StoreOptions) -> Result<AmazonS3Builder> {
    let explicit_keys = options.access_key_id.is_some();
    let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    let name = match &options.profile {
        Some(name) => name.clone(),
        None => match std::env::var("AWS_PROFILE") {
            Ok(name) if !name.is_empty() && !explicit_keys && !env_keys => name,
            _ => return Ok(builder),
        },
    };
    let profile = super::profile::load(&name)?;
    if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none()
        && let Some(region) = &profile.region
    {
        builder = builder.with_region(region);
    }
    if builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_none()
        && let Some(endpoint) = &profile.endpoint
    {
        builder = builder.with_endpoint(endpoint);
    }
    if !explicit_keys {
        builder = builder.with_credentials(profile.credentials);
    }
    Ok(builder)
}
