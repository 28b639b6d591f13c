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

    let trust = match ca_file {
        Some(path) => TrustStore::empty().with_pem_certificate(read_ca_file(path)?),
        None => {
            // The SDK loads them itself, but an empty set would only show as
            // every handshake failing (or a debug assertion): say it here.
            if rustls_native_certs::load_native_certs().certs.is_empty() {
                return Err(invalid(
                    "no root certificates: the platform has none (set SSL_CERT_FILE, or install \
                     ca-certificates), or trust a CA with `ca_file`",
                ));
            }
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

/// The PEM text of `path`, once rustls has accepted every certificate in it
/// (the SDK parses it again when it connects, and would panic on one it
/// cannot use).
#[cfg(feature = "rustls")]
fn read_ca_file(path: &Path) -> Result<Vec<u8>, LockError> {
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("ca_file {}: {e}", path.display())))?;
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        let certificate = certificate
            .map_err(|e| invalid(format!("ca_file {}: not PEM: {e}", path.display())))?;
        roots.add(certificate).map_err(|e| {
            invalid(format!(
                "ca_file {}: a certificate rustls cannot use: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(invalid(format!(
            "ca_file {}: no `BEGIN CERTIFICATE` block",
            path.display()
        )));
    }
    Ok(pem)
}

fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config(STORE, reason)
}
