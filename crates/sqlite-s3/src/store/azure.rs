//! Azure Blob Storage (`az://container/key`, `azure://container/key`).
//!
//! Configured by the standard `AZURE_STORAGE_*` environment variables
//! (account name and key, SAS token, bearer token, client secret, the
//! emulator flag, the endpoint), then by the options in code: the endpoint
//! (an account URL, or an emulator's such as `http://127.0.0.1:10000/devstoreaccount1`),
//! and the credentials as account name and account key.

use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::{ClientConfigKey, RetryConfig};

use crate::error::{Error, Result};
use crate::location::DatabaseUrl;
use crate::options::StoreOptions;

/// Builds the store for an `az://` URL. Returns the account URL in use,
/// which tells accounts apart in the cache.
pub(super) fn build(url: &DatabaseUrl, options: &StoreOptions) -> Result<(MicrosoftAzure, Option<String>)> {
    let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(url.bucket());
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    if let Some(account) = &options.access_key_id {
        builder = builder.with_account(account);
    }
    if let Some(key) = &options.secret_access_key {
        builder = builder.with_access_key(key);
    }
    let endpoint = builder.get_config_value(&AzureConfigKey::Endpoint);
    if let Some(allow) = options
        .allow_http
        .or(super::identity::plain_http(endpoint.as_deref()).then_some(true))
    {
        builder = builder.with_allow_http(allow);
    }
    let account = builder.get_config_value(&AzureConfigKey::AccountName);
    let identity = endpoint.or_else(|| account.map(|a| format!("https://{a}.blob.core.windows.net")));
    // Retries: see store/s3.rs.
    builder = builder
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .with_config(AzureConfigKey::Client(ClientConfigKey::ConnectTimeout), "5s")
        .with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), "15m");
    let store = builder.build().map_err(|source| Error::Store {
        url: url.to_string(),
        operation: "configuring the Azure client (AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY, a SAS \
                    token, or --endpoint for an emulator)",
        source: Box::new(source),
    })?;
    Ok((store, identity))
}
