//! TLS for the connections the store opens itself (`rediss://`,
//! `rediss-cluster://`, `valkeys://`...): rustls with the *ring* crypto
//! provider, and the roots the builder was told to trust.

#[cfg(feature = "rustls")]
use std::path::Path;

use verrou_core::LockError;

use crate::error::STORE;

/// The URL schemes that ask for TLS: fred's, each an `s` after the plain
/// one (`rediss-cluster`, `valkeys-sentinel`...).
const TLS_SCHEMES: [&str; 2] = ["rediss", "valkeys"];

/// `url` with a TLS scheme turned into its plain twin, and whether it asked
/// for TLS.
///
/// fred parses `rediss://` itself, but what it then does depends on fred's
/// features, which any crate in the build may turn on: without one it
/// connects *in plain text*, with native-tls it prefers OpenSSL, and with
/// rustls it fails on any unreadable platform certificate. The store
/// decides TLS itself instead, from the scheme, so `rediss://` always means
/// TLS with this crate's settings.
pub(crate) fn strip_tls_scheme(url: &str) -> (String, bool) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), false);
    };
    let lower = scheme.to_ascii_lowercase();
    for tls in TLS_SCHEMES {
        if let Some(suffix) = lower.strip_prefix(tls)
            && (suffix.is_empty() || suffix.starts_with('-'))
        {
            let plain = &tls[..tls.len() - 1];
            return (format!("{plain}{suffix}://{rest}"), true);
        }
    }
    (url.to_owned(), false)
}

/// The TLS settings of a connection the store opens: trust the
/// certificates of `ca_file` only, or else the platform's roots (and
/// Mozilla's, with the `webpki-roots` feature); check the chain and the
/// host name.
#[cfg(feature = "rustls")]
pub(crate) fn connector(
    ca_file: Option<&Path>,
) -> Result<fred::types::config::TlsConnector, LockError> {
    use verrou_core::store::tls::{ServerCheck, client_config};

    Ok(client_config(STORE, ca_file, ServerCheck::Full)?.into())
}

#[cfg(not(feature = "rustls"))]
fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config(STORE, reason)
}

/// Without TLS support, a `rediss://` URL is refused rather than connected
/// in plain text.
#[cfg(not(feature = "rustls"))]
pub(crate) fn unsupported(what: &str) -> LockError {
    invalid(format!(
        "{what} needs the `rustls` feature of verrou-redis (on by default); refusing to \
         connect without TLS"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_schemes_become_their_plain_twins() {
        for (url, plain, tls) in [
            ("rediss://h:1", "redis://h:1", true),
            ("REDISS://h:1", "redis://h:1", true),
            ("rediss-cluster://h:1", "redis-cluster://h:1", true),
            ("rediss-sentinel://h:1", "redis-sentinel://h:1", true),
            ("valkeys://h:1", "valkey://h:1", true),
            ("valkeys-cluster://h:1", "valkey-cluster://h:1", true),
            ("redis://h:1", "redis://h:1", false),
            ("redis-cluster://h:1", "redis-cluster://h:1", false),
            ("valkey://h:1", "valkey://h:1", false),
            ("redissx://h:1", "redissx://h:1", false),
            ("not a url", "not a url", false),
        ] {
            assert_eq!(strip_tls_scheme(url), (plain.to_owned(), tls), "{url}");
        }
    }
}
