//! Turning fred's errors into verrou's.

use std::fmt;

use verrou_core::{BoxError, LockError};

pub(crate) const STORE: &str = "redis";

/// Every driver failure is a `Store` error: never `NotOwned` or `Held`.
pub(crate) fn store_error(error: fred::error::Error) -> LockError {
    LockError::store(STORE, error)
}

/// The server named in the configuration could not be reached at start-up:
/// the driver's error, or [`TimedOut`](verrou_core::store::TimedOut) when it
/// never answered.
#[derive(Debug)]
pub(crate) struct ConnectError {
    pub(crate) endpoint: String,
    /// The connection was to use TLS.
    pub(crate) tls: bool,
    pub(crate) source: BoxError,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let over = if self.tls { " over TLS" } else { "" };
        write!(
            f,
            "could not connect to redis at {}{over}: {}",
            self.endpoint, self.source
        )?;
        if let Some(hint) = self.tls.then(|| certificate_hint(&self.source)).flatten() {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// What a refused server certificate means, in words. fred keeps only the
/// text of rustls's error (`InvalidCertificate(UnknownIssuer)`), so the
/// text is what can be read.
fn certificate_hint(source: &BoxError) -> Option<&'static str> {
    let text = source.to_string();
    if !text.contains("InvalidCertificate") {
        None
    } else if text.contains("UnknownIssuer") {
        Some(
            "the server's certificate is not signed by a CA this client trusts: \
             pass the CA that signed it to `ca_file`",
        )
    } else if text.contains("NotValidForName") {
        Some(
            "the server's certificate is not for the host name in the URL: connect \
             with a name the certificate carries",
        )
    } else if text.contains("Expired") {
        Some("the server's certificate has expired")
    } else {
        Some("the server's TLS certificate was refused")
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
