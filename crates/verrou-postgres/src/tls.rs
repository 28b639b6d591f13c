//! TLS for the connections the store opens itself (its pool and its
//! `LISTEN` session): what the connection string or `Config` asks for, and
//! (feature `rustls`) a `tokio-postgres` connector over rustls that checks
//! the server as asked.
//!
//! **Channel binding.** The connector reports no channel binding
//! ([`ChannelBinding::none`]): SCRAM then runs as `SCRAM-SHA-256` rather
//! than `SCRAM-SHA-256-PLUS`, and a connection string with
//! `channel_binding=require` fails to log in. `tls-server-end-point` needs
//! the hash named by the certificate's signature algorithm, which this
//! small connector does not parse; what channel binding guards against (a
//! man in the middle presenting its own certificate) the certificate check
//! already refuses, since every TLS mode checks the chain.

mod conninfo;

use std::path::{Path, PathBuf};

use tokio_postgres::Config;
use tokio_postgres::config::SslMode as DriverSslMode;
use verrou_core::LockError;

use crate::error::STORE;

pub(crate) use conninfo::{SslMode, split};

/// What the store's own connections do about TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// Plain TCP (or a Unix socket).
    Plain,
    /// TLS, never anything else.
    Tls {
        /// What asked for it, for messages (`sslmode=verify-full`).
        asked_by: String,
        check: Check,
        roots: Roots,
    },
}

/// How much of the server's certificate is checked (see
/// `verrou_core::store::tls::ServerCheck`, which needs the `rustls`
/// feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Chain and host name.
    Full,
    /// Chain only.
    ChainOnly,
}

/// The certificates the connection trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The CA certificates of this PEM file, and no others.
    File(PathBuf),
    /// The platform's (and Mozilla's, with the `webpki-roots` feature).
    Platform,
}

impl Wanted {
    /// The driver's mode for it: `Require` (TLS or fail) or `Disable`
    /// (never `Prefer`, which could fall back to plain text).
    pub(crate) fn driver_mode(&self) -> DriverSslMode {
        match self {
            Wanted::Plain => DriverSslMode::Disable,
            Wanted::Tls { .. } => DriverSslMode::Require,
        }
    }
}

/// What a URL's `sslmode` and `sslrootcert`, and the builder's `ca_file`,
/// ask for together.
///
/// # Errors
/// [`LockError::InvalidConfig`]: `prefer` or `allow` (either can fall back
/// to plain text unnoticed); roots named twice (`sslrootcert` and
/// `ca_file`); roots named without a TLS mode; `verify-ca` without a CA
/// file (any certificate a public CA issued, for any name, would pass).
pub(crate) fn from_url(
    sslmode: Option<SslMode>,
    sslrootcert: Option<&str>,
    ca_file: Option<&Path>,
) -> Result<Wanted, LockError> {
    let roots = match (sslrootcert, ca_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "the connection string's sslrootcert and the builder's ca_file both name the \
                 certificates to trust: give one",
            ));
        }
        (Some("system"), None) => Some(Roots::Platform),
        (Some(file), None) => Some(Roots::File(PathBuf::from(file))),
        (None, Some(file)) => Some(Roots::File(file.to_owned())),
        (None, None) => None,
    };
    let check = match sslmode {
        None | Some(SslMode::Disable) => {
            if roots.is_some() {
                let named = if ca_file.is_some() {
                    "ca_file is set"
                } else {
                    "sslrootcert is given"
                };
                return Err(invalid(format!(
                    "{named} but the connection string asks for no TLS: add \
                     sslmode=verify-full (or require, verify-ca)"
                )));
            }
            return Ok(Wanted::Plain);
        }
        Some(mode @ (SslMode::Prefer | SslMode::Allow)) => {
            return Err(invalid(format!(
                "sslmode={} can fall back to plain text without telling: use \
                 sslmode=verify-full (or require) for TLS, or sslmode=disable",
                mode.name()
            )));
        }
        Some(SslMode::Require | SslMode::VerifyFull) => Check::Full,
        Some(SslMode::VerifyCa) => Check::ChainOnly,
    };
    let roots = roots.unwrap_or(Roots::Platform);
    if check == Check::ChainOnly && roots == Roots::Platform {
        return Err(invalid(
            "sslmode=verify-ca needs a CA file (sslrootcert=<file> or ca_file): checking the \
             chain alone against public roots would accept any certificate they issued, for \
             any name",
        ));
    }
    Ok(Wanted::Tls {
        asked_by: format!("sslmode={}", sslmode.map_or("", SslMode::name)),
        check,
        roots,
    })
}

/// What a `tokio_postgres::Config` and the builder's `ca_file` ask for:
/// `Require` is TLS with the full check; `Disable` and `Prefer` (the
/// `Config` default, which cannot be told from "not set") are plain text,
/// as `Prefer` never tried TLS on the store's connections before either.
///
/// # Errors
/// [`LockError::InvalidConfig`]: `ca_file` with a plain-text mode, or a
/// mode this crate does not know.
pub(crate) fn from_config(config: &Config, ca_file: Option<&Path>) -> Result<Wanted, LockError> {
    match config.get_ssl_mode() {
        DriverSslMode::Disable | DriverSslMode::Prefer => match ca_file {
            Some(_) => Err(invalid(
                "ca_file is set but the Config does not ask for TLS: set \
                 ssl_mode(SslMode::Require) on it",
            )),
            None => Ok(Wanted::Plain),
        },
        DriverSslMode::Require => Ok(Wanted::Tls {
            asked_by: "ssl_mode Require".to_owned(),
            check: Check::Full,
            roots: ca_file.map_or(Roots::Platform, |file| Roots::File(file.to_owned())),
        }),
        other => Err(invalid(format!("unsupported ssl_mode {other:?}"))),
    }
}

fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config(STORE, reason)
}

#[cfg(feature = "rustls")]
pub(crate) use with_rustls::MakeTls;
#[cfg(not(feature = "rustls"))]
pub(crate) use without_rustls::MakeTls;

/// The connector when TLS is compiled in.
#[cfg(feature = "rustls")]
mod with_rustls {
    use std::fmt;
    use std::future::Future;
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
    use tokio_postgres::Socket;
    use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{self, CertificateError};
    use verrou_core::store::tls::{ServerCheck, client_config};
    use verrou_core::{BoxError, LockError};

    use super::{Check, Roots, Wanted};
    use crate::error::STORE;

    /// The TLS side of the store's connections: rustls with the settings
    /// [`Wanted`] asked for, or nothing for plain ones (whose `Config` then
    /// says `Disable`, so the driver never asks for a handshake).
    #[derive(Clone)]
    pub(crate) struct MakeTls {
        connector: Option<TlsConnector>,
    }

    impl MakeTls {
        /// No TLS: for a `Config` whose mode is `Disable`.
        pub(crate) fn plain() -> MakeTls {
            MakeTls { connector: None }
        }

        /// The connector for `wanted`.
        ///
        /// # Errors
        /// [`LockError::InvalidConfig`]: an unusable CA file, or no root
        /// certificates on the platform.
        pub(crate) fn new(wanted: &Wanted) -> Result<MakeTls, LockError> {
            let Wanted::Tls { check, roots, .. } = wanted else {
                return Ok(MakeTls::plain());
            };
            let ca_file = match roots {
                Roots::File(file) => Some(file.as_path()),
                Roots::Platform => None,
            };
            let check = match check {
                Check::Full => ServerCheck::Full,
                Check::ChainOnly => ServerCheck::ChainOnly,
            };
            let mut config = client_config(STORE, ca_file, check)?;
            // What libpq sends, and what PostgreSQL 17 requires of a direct
            // TLS connection (`sslnegotiation=direct`); older servers ignore it.
            config.alpn_protocols = vec![b"postgresql".to_vec()];
            Ok(MakeTls {
                connector: Some(TlsConnector::from(Arc::new(config))),
            })
        }
    }

    impl MakeTlsConnect<Socket> for MakeTls {
        type Stream = RustlsStream;
        type TlsConnect = RustlsConnect;
        type Error = BoxError;

        /// The driver calls this for every connection, plain ones and Unix
        /// sockets (`host` empty) included, before it knows whether TLS
        /// will be used: whatever cannot be set up fails in
        /// [`RustlsConnect::connect`], when (and only if) a handshake is due.
        fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, BoxError> {
            let setup = match &self.connector {
                // A plain `Config` says `Disable`: no handshake will be due.
                None => Err("TLS was not set up for this connection"),
                Some(connector) => ServerName::try_from(host.to_owned())
                    .map(|name| (connector.clone(), name))
                    .map_err(|_| "not a host name or address that TLS can check"),
            };
            Ok(RustlsConnect {
                setup,
                host: host.to_owned(),
            })
        }
    }

    /// One handshake with the host the driver connects to.
    pub(crate) struct RustlsConnect {
        setup: Result<(TlsConnector, ServerName<'static>), &'static str>,
        host: String,
    }

    impl TlsConnect<Socket> for RustlsConnect {
        type Stream = RustlsStream;
        type Error = HandshakeFailed;
        type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, HandshakeFailed>> + Send>>;

        fn connect(self, stream: Socket) -> Self::Future {
            let RustlsConnect { setup, host } = self;
            Box::pin(async move {
                let (connector, name) = setup.map_err(|why| HandshakeFailed {
                    host: host.clone(),
                    hint: None,
                    source: why.into(),
                })?;
                match connector.connect(name, stream).await {
                    Ok(stream) => Ok(RustlsStream(stream)),
                    Err(source) => Err(HandshakeFailed {
                        hint: certificate_hint(&source),
                        host,
                        source: source.into(),
                    }),
                }
            })
        }
    }

    /// A failed handshake, with what a refused certificate means in words.
    #[derive(Debug)]
    pub(crate) struct HandshakeFailed {
        host: String,
        hint: Option<&'static str>,
        source: BoxError,
    }

    impl fmt::Display for HandshakeFailed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "TLS with `{}` failed", self.host)?;
            if let Some(hint) = self.hint {
                write!(f, ": {hint}")?;
            }
            Ok(())
        }
    }

    impl std::error::Error for HandshakeFailed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.source)
        }
    }

    /// tokio-rustls hands rustls's error inside an `io::Error`.
    fn certificate_hint(error: &io::Error) -> Option<&'static str> {
        let rustls::Error::InvalidCertificate(refused) =
            error.get_ref()?.downcast_ref::<rustls::Error>()?
        else {
            return None;
        };
        Some(match refused {
            CertificateError::UnknownIssuer => {
                "the server's certificate is not signed by a CA this client trusts: name the CA \
                 that signed it with sslrootcert or ca_file"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate does not name the host connected to: connect with a \
                 name it carries (or, trusting only your own CA, use sslmode=verify-ca)"
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired"
            }
            _ => "the server's certificate was refused",
        })
    }

    /// A TLS connection to the server.
    pub(crate) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

    impl AsyncRead for RustlsStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for RustlsStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.0.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl TlsStream for RustlsStream {
        /// None: see the module's doc.
        fn channel_binding(&self) -> ChannelBinding {
            ChannelBinding::none()
        }
    }
}

/// Without TLS compiled in: plain connections only.
#[cfg(not(feature = "rustls"))]
mod without_rustls {
    use tokio_postgres::Socket;
    use tokio_postgres::tls::{MakeTlsConnect, NoTls, NoTlsError, NoTlsStream};
    use verrou_core::LockError;

    use super::{Wanted, invalid};

    /// `NoTls`, for `Config`s whose mode is `Disable`.
    #[derive(Clone)]
    pub(crate) struct MakeTls;

    impl MakeTls {
        /// No TLS.
        pub(crate) fn plain() -> MakeTls {
            MakeTls
        }

        /// Plain connections, or an error: TLS is never replaced by plain
        /// text.
        ///
        /// # Errors
        /// [`LockError::InvalidConfig`] for any TLS.
        pub(crate) fn new(wanted: &Wanted) -> Result<MakeTls, LockError> {
            match wanted {
                Wanted::Plain => Ok(MakeTls),
                Wanted::Tls { asked_by, .. } => Err(invalid(format!(
                    "TLS ({asked_by}) needs the `rustls` feature of verrou-postgres, which is \
                     off in this build"
                ))),
            }
        }
    }

    impl MakeTlsConnect<Socket> for MakeTls {
        type Stream = NoTlsStream;
        type TlsConnect = NoTls;
        type Error = NoTlsError;

        fn make_tls_connect(&mut self, host: &str) -> Result<NoTls, NoTlsError> {
            <NoTls as MakeTlsConnect<Socket>>::make_tls_connect(&mut NoTls, host)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(result: Result<Wanted, LockError>) -> String {
        match result {
            Err(LockError::InvalidConfig { reason, .. }) => reason,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    fn tls(check: Check, roots: Roots) -> impl Fn(Wanted) -> bool {
        move |wanted| matches!(wanted, Wanted::Tls { check: c, roots: r, .. } if c == check && r == roots)
    }

    #[test]
    fn no_mode_and_disable_are_plain_text() {
        assert_eq!(from_url(None, None, None).unwrap(), Wanted::Plain);
        assert_eq!(
            from_url(Some(SslMode::Disable), None, None).unwrap(),
            Wanted::Plain
        );
        assert_eq!(Wanted::Plain.driver_mode(), DriverSslMode::Disable);
    }

    #[test]
    fn require_and_verify_full_check_everything() {
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            let wanted = from_url(Some(mode), None, None).unwrap();
            assert_eq!(wanted.driver_mode(), DriverSslMode::Require);
            assert!(tls(Check::Full, Roots::Platform)(wanted));
            let wanted = from_url(Some(mode), Some("/ca.pem"), None).unwrap();
            assert!(tls(Check::Full, Roots::File("/ca.pem".into()))(wanted));
            let wanted = from_url(Some(mode), None, Some(Path::new("/b.pem"))).unwrap();
            assert!(tls(Check::Full, Roots::File("/b.pem".into()))(wanted));
            let wanted = from_url(Some(mode), Some("system"), None).unwrap();
            assert!(tls(Check::Full, Roots::Platform)(wanted));
        }
    }

    #[test]
    fn verify_ca_checks_the_chain_of_a_named_ca_only() {
        let wanted = from_url(Some(SslMode::VerifyCa), Some("/ca.pem"), None).unwrap();
        assert!(tls(Check::ChainOnly, Roots::File("/ca.pem".into()))(wanted));
        for roots in [None, Some("system")] {
            let reason = refused(from_url(Some(SslMode::VerifyCa), roots, None));
            assert!(reason.contains("needs a CA file"), "{reason}");
        }
    }

    #[test]
    fn prefer_and_allow_are_refused() {
        for mode in [SslMode::Prefer, SslMode::Allow] {
            let reason = refused(from_url(Some(mode), None, None));
            assert!(
                reason.contains(mode.name()) && reason.contains("plain text"),
                "{reason}"
            );
        }
    }

    #[test]
    fn roots_twice_or_without_tls_are_refused() {
        let reason = refused(from_url(
            Some(SslMode::VerifyFull),
            Some("/a.pem"),
            Some(Path::new("/b.pem")),
        ));
        assert!(reason.contains("give one"), "{reason}");
        let reason = refused(from_url(None, Some("/a.pem"), None));
        assert!(
            reason.contains("sslrootcert") && reason.contains("sslmode"),
            "{reason}"
        );
        let reason = refused(from_url(
            Some(SslMode::Disable),
            None,
            Some(Path::new("/b")),
        ));
        assert!(reason.contains("ca_file"), "{reason}");
    }

    #[test]
    fn a_config_asks_for_tls_with_require_only() {
        let mut config = Config::new();
        assert_eq!(from_config(&config, None).unwrap(), Wanted::Plain);
        config.ssl_mode(DriverSslMode::Disable);
        assert_eq!(from_config(&config, None).unwrap(), Wanted::Plain);
        let reason = refused(from_config(&config, Some(Path::new("/ca.pem"))));
        assert!(reason.contains("Require"), "{reason}");
        config.ssl_mode(DriverSslMode::Require);
        assert!(tls(Check::Full, Roots::Platform)(
            from_config(&config, None).unwrap()
        ));
        let wanted = from_config(&config, Some(Path::new("/ca.pem"))).unwrap();
        assert!(tls(Check::Full, Roots::File("/ca.pem".into()))(wanted));
    }

    #[cfg(not(feature = "rustls"))]
    #[test]
    fn without_rustls_every_tls_mode_is_invalid_config() {
        assert!(MakeTls::new(&Wanted::Plain).is_ok());
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            let wanted = from_url(Some(mode), None, None).unwrap();
            let Err(LockError::InvalidConfig { reason, .. }) = MakeTls::new(&wanted) else {
                panic!("{mode:?}: expected InvalidConfig");
            };
            assert!(
                reason.contains("`rustls` feature") && reason.contains(mode.name()),
                "{reason}"
            );
        }
    }
}
