//! The builder's own HTTP client: HTTPS with rustls and the *ring* crypto
//! provider (feature `rustls`, on by default), trusting the platform's
//! roots or the certificates of a `ca_file`; plain HTTP only without it.

use std::path::Path;

use aws_sdk_dynamodb::config::SharedHttpClient;
use verrou_core::LockError;

use crate::store::STORE;

/// The client for the builder's own SDK client. `https`: the endpoint (or
/// AWS's, when none is given) is reached over HTTPS.
#[cfg(feature = "rustls")]
pub(crate) fn http_client(
    _https: bool,
    ca_file: Option<&Path>,
) -> Result<SharedHttpClient, LockError> {
    use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};

    use verrou_core::store::tls::{parse_ca_file, read_ca_pem, root_certificates, root_store};

    // Checked here, with the message every store gives: an empty platform
    // set would only show as every handshake failing, and the SDK parses
    // the CA file's bytes again when it connects and would panic on a
    // certificate rustls cannot use. The file is read once, so the bytes
    // checked are the bytes the SDK gets.
    let trust = match ca_file {
        Some(path) => {
            let pem = read_ca_pem(STORE, path)?;
            root_store(STORE, ca_file, parse_ca_file(STORE, path, &pem)?)?;
            TrustStore::empty().with_pem_certificate(pem)
        }
        None => {
            root_certificates(STORE, None)?;
            TrustStore::default()
        }
    };
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| invalid(format!("TLS set-up: {e}")))?;
    // ring rather than the SDK's default aws-lc: the same TLS, much less C
    // to compile, and no cmake.
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(context)
        .build_https())
}

/// Without the `rustls` feature: plain HTTP, and HTTPS refused at build
/// time rather than failing at the first request.
#[cfg(not(feature = "rustls"))]
pub(crate) fn http_client(
    https: bool,
    ca_file: Option<&Path>,
) -> Result<SharedHttpClient, LockError> {
    if https || ca_file.is_some() {
        return Err(invalid(
            "HTTPS needs the `rustls` feature of verrou-dynamodb (on by default), or a client \
             of your own passed to `DynamoDbStore::from_client`; only `http://` endpoints work \
             without it",
        ));
    }
    Ok(aws_smithy_http_client::Builder::new().build_http())
}

fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config(STORE, reason)
}
