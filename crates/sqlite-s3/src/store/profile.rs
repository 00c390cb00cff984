//! Named AWS profiles (feature `aws-config`): credentials, region and
//! endpoint read by the AWS SDK's own loader, so every kind of profile the
//! AWS CLI understands works (static keys, SSO, assumed roles, credential
//! processes).
//!
//! object_store asks for credentials through its [`CredentialProvider`];
//! [`ProfileCredentials`] answers from the profile's provider and keeps the
//! answer until five minutes before it expires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::{ProfileFileCredentialsProvider, ProfileFileRegionProvider};
use aws_credential_types::provider::ProvideCredentials;
use aws_runtime::env_config::file::EnvConfigFiles;
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

use crate::error::{Error, Result};

/// How long before expiry temporary credentials are renewed.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// What a profile says.
#[derive(Debug)]
pub(super) struct Profile {
    /// Its `region`, if any.
    pub region: Option<String>,
    /// Its `endpoint_url` (or `AWS_ENDPOINT_URL`), if any.
    pub endpoint: Option<String>,
    /// Its credentials.
    pub credentials: Arc<ProfileCredentials>,
}

/// Reads profile `name`, and fetches its credentials once so that a missing
/// or broken profile is reported now, naming it.
///
/// The SDK's loader is async and this is called from synchronous code that
/// may itself run inside a runtime, so it runs on a thread of its own.
pub(super) fn load(name: &str) -> Result<Profile> {
    load_with(name, None)
}

/// [`load`], from `files` instead of the standard ones.
fn load_with(name: &str, files: Option<EnvConfigFiles>) -> Result<Profile> {
    let (name, profile) = (name.to_string(), name.to_string());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Credentials {
                profile: name.clone(),
                reason: format!("no runtime could be started to read it ({e})"),
            })?;
        runtime.block_on(load_async(name, files))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(Error::Credentials {
            profile,
            reason: "reading it panicked in the AWS SDK".into(),
        })
    })
}

async fn load_async(name: String, files: Option<EnvConfigFiles>) -> Result<Profile> {
    let mut region = ProfileFileRegionProvider::builder().profile_name(&name);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).profile_name(&name);
    let mut provider = ProfileFileCredentialsProvider::builder().profile_name(&name);
    if let Some(files) = files {
        region = region.profile_files(files.clone());
        loader = loader.profile_files(files.clone());
        provider = provider.profile_files(files);
    }
    let region = region.build().region().await.map(|r| r.to_string());
    // The region is given so that the loader never asks the EC2 instance
    // metadata service for one; only the endpoint is taken from it.
    let config = loader
        .region(aws_config::Region::new(
            region.clone().unwrap_or_else(|| "us-east-1".into()),
        ))
        .load()
        .await;
    let endpoint = config.endpoint_url().map(str::to_string);
    let credentials = Arc::new(ProfileCredentials {
        name: name.clone(),
        provider: provider.build(),
        cached: tokio::sync::Mutex::new(None),
    });
    credentials
        .fetch()
        .await
        .map_err(|reason| Error::Credentials { profile: name, reason })?;
    Ok(Profile {
        region,
        endpoint,
        credentials,
    })
}

/// The credentials of a profile, for object_store. See the module docs.
#[derive(Debug)]
pub(super) struct ProfileCredentials {
    name: String,
    provider: ProfileFileCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl ProfileCredentials {
    /// The credentials, from the cache while they are fresh. Errors are the
    /// SDK's, with their causes, and never hold a secret.
    async fn fetch(&self) -> std::result::Result<Arc<AwsCredential>, String> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = &*cached
            && expiry.is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(credential.clone());
        }
        let fresh = self.provider.provide_credentials().await.map_err(|e| {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            reason
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: fresh.access_key_id().to_string(),
            secret_key: fresh.secret_access_key().to_string(),
            token: fresh.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), fresh.expiry()));
        Ok(credential)
    }
}

#[async_trait::async_trait]
impl CredentialProvider for ProfileCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        self.fetch().await.map_err(|reason| object_store::Error::Generic {
            store: "S3",
            source: format!("AWS profile {}: {reason}", self.name).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_runtime::env_config::file::EnvConfigFileKind;

    use super::*;

    fn files(config: &str, credentials: &str) -> EnvConfigFiles {
        EnvConfigFiles::builder()
            .with_contents(EnvConfigFileKind::Config, config)
            .with_contents(EnvConfigFileKind::Credentials, credentials)
            .build()
    }

    #[test]
    fn a_profile_gives_its_keys_region_and_endpoint() {
        let files = files(
            "[profile dev]\nregion = eu-west-3\nendpoint_url = http://127.0.0.1:9\n",
            "[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
        );
        let profile = load_with("dev", Some(files)).unwrap();
        assert_eq!(profile.region.as_deref(), Some("eu-west-3"));
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            assert_eq!(profile.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let credential = runtime.block_on(profile.credentials.get_credential()).unwrap();
        assert_eq!(credential.key_id, "AKIDPROFILE");
        assert_eq!(credential.secret_key, "profile-secret");
    }

    #[test]
    fn a_missing_profile_is_named() {
        let files = files("[profile dev]\nregion = eu-west-3\n", "[dev]\n");
        let err = load_with("nope", Some(files)).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("AWS profile nope gives no credentials"), "{shown}");
    }
}
