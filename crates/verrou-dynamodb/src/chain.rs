//! `load_aws_config` (feature `aws-config`): the region and credentials of
//! the AWS SDK's default chain, as `aws_config::load_defaults` finds them,
//! loaded with the builder's own HTTP client (rustls with *ring*) rather
//! than the SDK's default one (aws-lc).

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedHttpClient};
use verrou_core::LockError;
use verrou_core::store::within;

use crate::store::STORE;

/// What the builder sets itself, which wins over the chain.
pub(crate) struct Overrides<'a> {
    pub(crate) region: Option<&'a str>,
    pub(crate) credentials: Option<&'a Credentials>,
    pub(crate) endpoint: Option<&'a str>,
}

/// Loads the SDK configuration, bounded by `limit` (finding the region may
/// ask the instance metadata service, which is slow to give up off EC2).
///
/// # Errors
/// [`LockError::InvalidConfig`] when no region is found;
/// [`LockError::Store`] when loading runs out of time. Missing credentials
/// only show at the first request, as a `Store` error of the build.
pub(crate) async fn load(
    overrides: Overrides<'_>,
    http_client: SharedHttpClient,
    timeouts: TimeoutConfig,
    limit: Option<Duration>,
) -> Result<SdkConfig, LockError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts);
    if let Some(region) = overrides.region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(credentials) = overrides.credentials {
        loader = loader.credentials_provider(credentials.clone());
    }
    if let Some(endpoint) = overrides.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = within(STORE, limit, "loading the AWS configuration", async {
        Ok(loader.load().await)
    })
    .await?;
    if sdk.region().is_none() {
        return Err(LockError::invalid_config(
            STORE,
            "no region in the AWS configuration chain: set AWS_REGION, a `region` in the \
             profile, or call `.region(..)`",
        ));
    }
    Ok(sdk)
}
