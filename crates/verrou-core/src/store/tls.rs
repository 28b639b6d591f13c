//! TLS for the connections a store opens itself (feature `rustls`): which
//! roots to trust, how much of the server's certificate to check, and the
//! rustls client settings, written once for every store crate.
//!
//! Every store crate names its TLS features the same way and forwards them
//! here: `rustls` (rustls with the *ring* crypto provider, the platform's
//! root certificates) and `webpki-roots` (also Mozilla's roots, compiled
//! in). Their builders take a `ca_file` to trust instead of the roots.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::LockError;

/// How much of the server's certificate a connection checks. Both check
/// that it chains to a trusted root and is in date: a store never accepts
/// a certificate nobody vouches for, since whoever can stand between it and
/// its server could then grant the same lock twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerCheck {
    /// The chain and the host name the client connects to
    /// (`sslmode=verify-full`, `ssl-mode=VERIFY_IDENTITY`).
    Full,
    /// The chain only, any host name (`sslmode=verify-ca`,
    /// `ssl-mode=VERIFY_CA`): for servers reached by an address their
    /// certificate does not name.
    ChainOnly,
}

/// The rustls settings of a store's own connections: trust the certificates
/// of `ca_file` only, or else the platform's roots (and Mozilla's, with the
/// `webpki-roots` feature), and check the server as `check` says.
///
/// The *ring* provider is named rather than taken from the process default:
/// if another crate in the build turns on rustls's aws-lc as well, rustls
/// cannot choose a default and would panic.
///
/// # Errors
/// [`LockError::InvalidConfig`] naming `store`: an unreadable or empty
/// `ca_file`, a certificate rustls cannot use, or no root certificates at
/// all on the platform.
pub fn client_config(
    store: &'static str,
    ca_file: Option<&Path>,
    check: ServerCheck,
) -> Result<ClientConfig, LockError> {
    let roots = Arc::new(root_certificates(store, ca_file)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(store, format!("TLS set-up: {e}")))?;
    let config = match check {
        ServerCheck::Full => builder.with_root_certificates(roots),
        ServerCheck::ChainOnly => {
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| invalid(store, format!("TLS set-up: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHostName { chain }))
        }
    };
    Ok(config.with_no_client_auth())
}

/// The roots a store's connections trust: the certificates of `ca_file`
/// only, or else the platform's (and Mozilla's, with the `webpki-roots`
/// feature).
///
/// # Errors
/// As [`client_config`].
pub fn root_certificates(
    store: &'static str,
    ca_file: Option<&Path>,
) -> Result<RootCertStore, LockError> {
    root_store(store, ca_file, trusted_certificates(store, ca_file)?)
}

/// The roots of `certificates`, which [`trusted_certificates`] (or
/// [`parse_ca_file`]) gave for `ca_file`, checked as
/// [`root_certificates`] checks them. For a store that hands the same
/// certificates, or the same file's bytes, to its driver: the file is read
/// once, so what was checked is what the driver gets.
///
/// # Errors
/// As [`client_config`].
pub fn root_store(
    store: &'static str,
    ca_file: Option<&Path>,
    certificates: Vec<CertificateDer<'static>>,
) -> Result<RootCertStore, LockError> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate).map_err(|e| {
            // Only a CA file's certificates can fail here: the platform's
            // were filtered by the same check.
            let source = ca_file.map_or_else(
                || "a platform certificate".to_owned(),
                |path| format!("ca_file {}", path.display()),
            );
            invalid(
                store,
                format!("{source}: a certificate rustls cannot use: {e}"),
            )
        })?;
    }
    #[cfg(feature = "webpki-roots")]
    if ca_file.is_none() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if roots.is_empty() {
        return Err(invalid(
            store,
            "no root certificates: the platform has none (set SSL_CERT_FILE, or install \
             ca-certificates); trust a CA with `ca_file`, or turn on the `webpki-roots` \
             feature",
        ));
    }
    Ok(roots)
}

/// The certificates a store trusts, for a driver that takes certificates
/// rather than rustls settings: those of `ca_file` (all of them, or an
/// error), or else the platform's that rustls can use — possibly none,
/// which the caller judges (Mozilla's roots are trust anchors, not
/// certificates, and are not among them).
///
/// Unusable platform entries are skipped, as browsers do: one bad file in
/// /etc/ssl/certs must not take TLS down.
///
/// # Errors
/// As [`read_ca_file`].
pub fn trusted_certificates(
    store: &'static str,
    ca_file: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, LockError> {
    match ca_file {
        Some(path) => read_ca_file(store, path),
        None => Ok(rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .filter(|certificate| RootCertStore::empty().add(certificate.clone()).is_ok())
            .collect()),
    }
}

/// The certificates of a PEM file, at least one.
///
/// # Errors
/// [`LockError::InvalidConfig`] naming `store` and the file: unreadable,
/// not PEM, or without a `BEGIN CERTIFICATE` block.
pub fn read_ca_file(
    store: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, LockError> {
    parse_ca_file(store, path, &read_ca_pem(store, path)?)
}

/// The bytes of the CA file at `path`, for a driver that takes PEM: check
/// them with [`parse_ca_file`] and [`root_store`], then hand it these same
/// bytes.
///
/// # Errors
/// [`LockError::InvalidConfig`] naming `store` and the file when it cannot
/// be read.
pub fn read_ca_pem(store: &'static str, path: &Path) -> Result<Vec<u8>, LockError> {
    std::fs::read(path).map_err(|e| invalid(store, format!("ca_file {}: {e}", path.display())))
}

/// The certificates in `pem`, the contents of the CA file at `path` (named
/// in errors), at least one.
///
/// # Errors
/// [`LockError::InvalidConfig`] naming `store` and the file: not PEM, or
/// without a `BEGIN CERTIFICATE` block.
pub fn parse_ca_file(
    store: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, LockError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(store, format!("ca_file {}: not PEM: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(invalid(
            store,
            format!("ca_file {}: no `BEGIN CERTIFICATE` block", path.display()),
        ));
    }
    Ok(certificates)
}

fn invalid(store: &'static str, reason: impl Into<String>) -> LockError {
    LockError::invalid_config(store, reason)
}

/// [`ServerCheck::ChainOnly`]: rustls's own verifier, with a name mismatch
/// forgiven and nothing else.
struct AnyHostName {
    chain: Arc<WebPkiServerVerifier>,
}

impl fmt::Debug for AnyHostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnyHostName")
    }
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // rustls checks the chain (signatures, dates, usage) before the
            // name, so this error means everything else passed.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The provider [`client_config`] uses, for a store whose driver builds its
/// own rustls settings from the process default: installs *ring* as that
/// default when the process has none yet (an application's own choice
/// stays), so the driver cannot panic on a build that has both providers.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Lost race with another installer: theirs stays, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_invalid_config_naming_it() {
        let err = client_config(
            "test",
            Some(Path::new("/nonexistent/ca.pem")),
            ServerCheck::Full,
        )
        .unwrap_err();
        assert!(matches!(err, LockError::InvalidConfig { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_invalid_config() {
        let dir = std::env::temp_dir().join(format!("verrou-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "no certificate here\n").unwrap();
        let err = read_ca_file("test", &file).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");
    }
}
