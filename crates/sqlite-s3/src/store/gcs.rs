//! Google Cloud Storage (`gs://bucket/key`).
//!
//! Configured by the standard `GOOGLE_*` environment variables (a service
//! account file or key, application default credentials, a bearer token,
//! `GOOGLE_SKIP_SIGNATURE` for an emulator), then by the endpoint in the
//! options (the base URL of an emulator). Conditional writes use the
//! object's generation, which versions remember for that reason.

use object_store::gcp::{GoogleCloudStorage, GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{ClientConfigKey, ClientOptions, RetryConfig};

use crate::error::{Error, Result};
use crate::location::DatabaseUrl;
use crate::options::StoreOptions;

/// Builds the store for a `gs://` URL. Returns the endpoint in use, if any.
pub(super) fn build(url: &DatabaseUrl, options: &StoreOptions) -> Result<(GoogleCloudStorage, Option<String>)> {
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(url.bucket());
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_base_url(endpoint);
    }
    let endpoint = builder.get_config_value(&GoogleConfigKey::BaseUrl);
    let mut client = ClientOptions::new()
        .with_config(ClientConfigKey::ConnectTimeout, "5s")
        .with_config(ClientConfigKey::Timeout, "15m");
    if let Some(allow) = options
        .allow_http
        .or(super::identity::plain_http(endpoint.as_deref()).then_some(true))
    {
        client = client.with_allow_http(allow);
    }
    // Retries: see store/s3.rs.
    builder = builder.with_client_options(client).with_retry(RetryConfig {
        max_retries: 0,
        ..RetryConfig::default()
    });
    let store = builder.build().map_err(|source| Error::Store {
        url: url.to_string(),
        operation: "configuring the Google Cloud Storage client (GOOGLE_SERVICE_ACCOUNT or \
                    GOOGLE_APPLICATION_CREDENTIALS, or --endpoint for an emulator)",
        source: Box::new(source),
    })?;
    Ok((store, endpoint))
}
