//! TLS for the connections the store opens from a URL: the MySQL client's
//! own options (`ssl-mode`, `ssl-ca`) read out of the URL before the driver
//! sees it, and turned into the driver's [`SslOpts`](mysql_async::SslOpts)
//! (feature `rustls`).
//!
//! The driver has TLS parameters of its own (`require_ssl`, `verify_ca`,
//! `verify_identity`, `built_in_roots`), but they can turn the certificate
//! check off, and a URL written for the `mysql` client, MySQL Connector/J
//! or sqlx uses `ssl-mode`. The store takes `ssl-mode` only: one way to ask
//! for TLS, and none to accept a certificate nobody vouches for.

use std::path::{Path, PathBuf};

use mysql_async::Opts;
use verrou_core::LockError;

use crate::error::STORE;

/// The values of `ssl-mode`, as the `mysql` client (`--ssl-mode`) and sqlx
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, plain text otherwise: refused.
    Preferred,
    /// TLS; the store checks the chain and the host name (MySQL's client
    /// would check nothing).
    Required,
    /// TLS; the chain is checked, the host name is not.
    VerifyCa,
    /// TLS; the chain and the host name are checked.
    VerifyIdentity,
}

impl SslMode {
    /// Case-insensitive, as the `mysql` client and sqlx read it.
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value.to_ascii_uppercase().as_str() {
            "DISABLED" => SslMode::Disabled,
            "PREFERRED" => SslMode::Preferred,
            "REQUIRED" => SslMode::Required,
            "VERIFY_CA" => SslMode::VerifyCa,
            "VERIFY_IDENTITY" => SslMode::VerifyIdentity,
            _ => return None,
        })
    }

    /// The name as the `mysql` client spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disabled => "DISABLED",
            SslMode::Preferred => "PREFERRED",
            SslMode::Required => "REQUIRED",
            SslMode::VerifyCa => "VERIFY_CA",
            SslMode::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// The TLS options [`split_url`] took out of a URL.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct UrlTls {
    /// `ssl-mode`, if given.
    pub(crate) mode: Option<SslMode>,
    /// `ssl-ca`, percent-decoded.
    pub(crate) ca_file: Option<PathBuf>,
}

/// Names of the options, as the `mysql` client writes them and as sqlx
/// also accepts them (so that one URL serves both).
const SSL_MODE: [&str; 2] = ["ssl-mode", "sslmode"];
const SSL_CA: [&str; 2] = ["ssl-ca", "sslca"];
/// The driver's own TLS parameters: refused, see the module documentation.
const DRIVER_TLS: [&str; 4] = [
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];
/// Client certificates: not taken from a URL.
const CLIENT_CERT: [&str; 4] = ["ssl-cert", "sslcert", "ssl-key", "sslkey"];

/// `url` without its TLS options, and those options. Everything else in the
/// URL is left as written, for the driver to parse.
///
/// The query is where the `url` crate (the driver's parser) finds it: after
/// the first `?` that comes before any `#`. Values are decoded as the
/// driver decodes every query value (`%2B` is `+`, a bare `+` a space).
///
/// # Errors
/// The reason, for [`LockError::InvalidConfig`]: `ssl-mode=PREFERRED`, an
/// unknown `ssl-mode`, an option given twice, an empty `ssl-ca`, the
/// driver's TLS parameters, client certificate options.
pub(crate) fn split_url(url: &str) -> Result<(String, UrlTls), String> {
    let (before_fragment, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let Some((base, query)) = before_fragment.split_once('?') else {
        return Ok((url.to_owned(), UrlTls::default()));
    };
    let mut tls = UrlTls::default();
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(raw_key).unwrap_or_else(|_| raw_key.to_owned());
        if SSL_MODE.contains(&key.as_str()) {
            let value = decode(raw_value)?;
            let mode = SslMode::parse(&value).ok_or_else(|| {
                format!(
                    "unknown ssl-mode `{value}`: use DISABLED, REQUIRED, VERIFY_CA or \
                     VERIFY_IDENTITY"
                )
            })?;
            if mode == SslMode::Preferred {
                return Err(
                    "ssl-mode=PREFERRED is refused: it falls back to plain text when \
                            the server offers no TLS, which anyone between the store and its \
                            server can arrange; use VERIFY_IDENTITY (or REQUIRED, VERIFY_CA) \
                            for TLS or nothing, or DISABLED"
                        .to_owned(),
                );
            }
            if tls.mode.replace(mode).is_some() {
                return Err("ssl-mode is given twice in the URL".to_owned());
            }
        } else if SSL_CA.contains(&key.as_str()) {
            let value = decode(raw_value)?;
            if value.is_empty() {
                return Err("ssl-ca is empty: give the path of a PEM file".to_owned());
            }
            if tls.ca_file.replace(PathBuf::from(value)).is_some() {
                return Err("ssl-ca is given twice in the URL".to_owned());
            }
        } else if DRIVER_TLS.contains(&key.as_str()) {
            return Err(format!(
                "the URL parameter `{key}` is not taken: ask for TLS with \
                 ssl-mode=VERIFY_IDENTITY (or REQUIRED, VERIFY_CA) and name the CA with \
                 ssl-ca=<path> (or the builder's ca_file); certificate checks cannot be \
                 turned off"
            ));
        } else if CLIENT_CERT.contains(&key.as_str()) {
            return Err(format!(
                "the URL parameter `{key}` is not taken: for a client certificate, build \
                 mysql_async options with `SslOpts::with_client_identity` and pass them to \
                 `config()`"
            ));
        } else if !pair.is_empty() {
            kept.push(pair);
        }
    }
    let mut plain = base.to_owned();
    if !kept.is_empty() {
        plain.push('?');
        plain.push_str(&kept.join("&"));
    }
    plain.push_str(fragment);
    Ok((plain, tls))
}

/// A query value decoded as `application/x-www-form-urlencoded`, which is
/// how the driver reads the URL's other parameters: `%XX` is a byte, `+` a
/// space, and a `%` not followed by two hex digits stays as it is.
fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|b| hex(*b));
                match (digit(i + 1), digit(i + 2)) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{value}` is not UTF-8 once percent-decoded"))
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn invalid(reason: impl Into<String>) -> LockError {
    LockError::invalid_config(STORE, reason)
}

/// The driver options of a URL with the TLS it asked for: `ssl-mode` and
/// `ssl-ca` from the URL, or the builder's `ca_file`.
///
/// # Errors
/// [`LockError::InvalidConfig`]: a CA given both ways, a CA without a TLS
/// mode, a TLS mode with a `socket` (which has no TLS), a CA file that
/// cannot be used, no root certificates, or a TLS mode without the
/// `rustls` feature.
pub(crate) fn apply(opts: Opts, tls: &UrlTls, ca_file: Option<&Path>) -> Result<Opts, LockError> {
    let ca = match (tls.ca_file.as_deref(), ca_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "a CA is given twice, as ssl-ca in the URL and as ca_file: keep one",
            ));
        }
        (url, builder) => url.or(builder),
    };
    let mode = tls.mode.unwrap_or(SslMode::Disabled);
    match mode {
        SslMode::Disabled => {
            if ca.is_some() {
                return Err(invalid(
                    "a CA (ssl-ca or ca_file) is given but the URL does not ask for TLS: add \
                     ssl-mode=VERIFY_IDENTITY",
                ));
            }
            Ok(opts)
        }
        SslMode::Preferred => Err(invalid("ssl-mode=PREFERRED is refused")),
        SslMode::Required | SslMode::VerifyCa | SslMode::VerifyIdentity => {
            if opts.socket().is_some() {
                return Err(invalid(format!(
                    "ssl-mode={} with a `socket`: a Unix socket connection has no TLS; drop one \
                     of them",
                    mode.as_str()
                )));
            }
            with_tls(opts, mode, ca)
        }
    }
}

#[cfg(feature = "rustls")]
fn with_tls(opts: Opts, mode: SslMode, ca_file: Option<&Path>) -> Result<Opts, LockError> {
    use mysql_async::{OptsBuilder, SslOpts};

    let (roots, built_in) = roots(ca_file)?;
    let ssl = SslOpts::default()
        .with_root_certs(roots.into_iter().map(Into::into).collect())
        .with_disable_built_in_roots(!built_in)
        // REQUIRED checks the name as VERIFY_IDENTITY does: unlike MySQL's
        // client, the store never accepts a certificate nobody vouches for.
        .with_danger_skip_domain_validation(mode == SslMode::VerifyCa);
    Ok(OptsBuilder::from_opts(opts)
        .ssl_opts(ssl)
        // Otherwise the driver, once connected, asks the server for its Unix
        // socket path and tries to reconnect through that path on this
        // machine: a socket has no TLS, and whatever server listens there is
        // not the one whose certificate was checked. (mysql_async 0.37 asks
        // for TLS on the socket and gives up, so today the attempt only
        // costs a connection and an "Aborted connection" in the server's
        // log.) The connection whose certificate was checked is the one
        // used.
        .prefer_socket(false)
        .into())
}

#[cfg(not(feature = "rustls"))]
fn with_tls(_opts: Opts, mode: SslMode, _ca_file: Option<&Path>) -> Result<Opts, LockError> {
    Err(unsupported(&format!("ssl-mode={}", mode.as_str())))
}

/// Without the `rustls` feature, TLS is refused rather than connected in
/// plain text (or left to the driver, which panics without a TLS feature).
#[cfg(not(feature = "rustls"))]
pub(crate) fn unsupported(what: &str) -> LockError {
    invalid(format!(
        "{what} needs the `rustls` feature of verrou-mysql (on by default); refusing to \
         connect without TLS"
    ))
}

/// The certificates to trust, as DER, and whether the driver should add
/// its compiled-in (Mozilla) roots: the CA file's certificates only, or the
/// platform's (plus Mozilla's with the `webpki-roots` feature).
///
/// verrou-core checks them first, so a bad CA file or an empty platform
/// store is the same `InvalidConfig` in every store; the driver, which
/// takes certificates rather than verrou-core's trust anchors, then gets
/// the same ones.
#[cfg(feature = "rustls")]
fn roots(ca_file: Option<&Path>) -> Result<(Vec<Vec<u8>>, bool), LockError> {
    use verrou_core::store::tls::{root_store, trusted_certificates};

    // Read once: what is checked is what the driver gets.
    let trusted = trusted_certificates(STORE, ca_file)?;
    let certificates: Vec<Vec<u8>> = trusted
        .iter()
        .map(|certificate| certificate.to_vec())
        .collect();
    root_store(STORE, ca_file, trusted)?;
    if ca_file.is_some() {
        return Ok((certificates, false));
    }
    let platform = certificates;
    let built_in = cfg!(feature = "webpki-roots");
    if platform.is_empty() && !built_in {
        // verrou-core found roots only because its own `webpki-roots`
        // feature is on (turned on by another crate); the driver adds
        // Mozilla's roots only when this crate's feature is.
        return Err(invalid(
            "no root certificates: the platform has none (set SSL_CERT_FILE, or install \
             ca-certificates); trust a CA with ssl-ca or ca_file, or turn on the `webpki-roots` \
             feature of verrou-mysql",
        ));
    }
    Ok((platform, built_in))
}

/// What the first connection of a TLS store was asked to do, to say so
/// when it fails.
#[cfg(feature = "rustls")]
#[derive(Debug, Clone)]
pub(crate) struct TlsTarget {
    /// `host:port`: never the URL, which may hold a password.
    endpoint: String,
    /// `ssl-mode=...`, or the config's own settings.
    how: String,
    /// The host name check was to be skipped (see [`name_hint`]).
    skip_name_check: bool,
}

#[cfg(feature = "rustls")]
impl TlsTarget {
    /// The target of `opts` if they ask for TLS; `how` says who asked.
    pub(crate) fn of(opts: &Opts, how: impl Into<String>) -> Option<TlsTarget> {
        let ssl = opts.ssl_opts()?;
        Some(TlsTarget {
            endpoint: format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
            how: how.into(),
            skip_name_check: ssl.skip_domain_validation(),
        })
    }

    /// `error`, if the driver's, with where it was connecting to and, for
    /// a refused certificate or a server without TLS, what that means. A
    /// time-out is left as it is (its source stays
    /// [`TimedOut`](verrou_core::store::TimedOut)).
    pub(crate) fn explain(&self, error: LockError) -> LockError {
        match error {
            LockError::Store { store, source } if source.is::<mysql_async::Error>() => {
                let hint = hint(&*source, self.skip_name_check);
                LockError::store(
                    store,
                    TlsConnectError {
                        target: self.clone(),
                        hint,
                        source,
                    },
                )
            }
            other => other,
        }
    }
}

/// The first connection of a store that was to use TLS failed.
#[cfg(feature = "rustls")]
#[derive(Debug)]
struct TlsConnectError {
    target: TlsTarget,
    hint: Option<&'static str>,
    source: verrou_core::BoxError,
}

#[cfg(feature = "rustls")]
impl std::fmt::Display for TlsConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "could not connect to mysql at {} over TLS ({})",
            self.target.endpoint, self.target.how
        )?;
        if let Some(hint) = self.hint {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "rustls")]
impl std::error::Error for TlsConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// What a failed TLS connection means, in words, when the driver's error
/// says: a certificate rustls refused, or a server without TLS.
#[cfg(feature = "rustls")]
fn hint(error: &(dyn std::error::Error + 'static), skip_name_check: bool) -> Option<&'static str> {
    use rustls::CertificateError as Cert;
    use rustls::Error as Tls;

    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(mysql_async::Error::Driver(
            mysql_async::DriverError::NoClientSslFlagFromServer,
        )) = error.downcast_ref::<mysql_async::Error>()
        {
            return Some(
                "the server does not offer TLS (`have_ssl` is not YES): give it a certificate \
                 (`ssl_cert`, `ssl_key`); the store never falls back to plain text",
            );
        }
        // tokio-rustls reports a handshake failure as an `io::Error`
        // around rustls's, whose `source()` skips the rustls error itself.
        let tls = error.downcast_ref::<Tls>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<Tls>())
        });
        if let Some(Tls::InvalidCertificate(certificate)) = tls {
            return Some(match certificate {
                Cert::UnknownIssuer => {
                    "the server's certificate is not signed by a CA this client trusts: pass \
                     the CA that signed it as ssl-ca in the URL or with ca_file"
                }
                Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                    name_hint(skip_name_check)
                }
                Cert::Expired | Cert::ExpiredContext { .. } => {
                    "the server's certificate has expired"
                }
                Cert::NotValidYet | Cert::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet (is this machine's clock right?)"
                }
                _ => "the server's TLS certificate was refused",
            });
        }
        next = error.source();
    }
    None
}

/// A certificate for another host name. With VERIFY_CA the driver was told
/// not to check the name, but mysql_async 0.37.1 checks it anyway: it looks
/// for the text `NotValidForName` in rustls's error, which rustls 0.23 no
/// longer writes (blackbeam/mysql_async#404, fixed upstream in #408, not
/// yet released). Failing is the safe side of that bug; say so.
#[cfg(feature = "rustls")]
fn name_hint(skip_name_check: bool) -> &'static str {
    if skip_name_check {
        "the server's certificate is not for the host name in the URL, and mysql_async 0.37 \
         checks the name even with ssl-mode=VERIFY_CA (blackbeam/mysql_async#404): connect \
         with a name the certificate carries"
    } else {
        "the server's certificate is not for the host name in the URL: connect with a name \
         the certificate carries"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, UrlTls) {
        split_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn refused(url: &str) -> String {
        match split_url(url) {
            Err(reason) => reason,
            Ok(parts) => panic!("{url}: accepted as {parts:?}"),
        }
    }

    #[test]
    fn a_url_without_tls_options_is_left_as_it_is() {
        for url in [
            "mysql://root@127.0.0.1:3306/test",
            "mysql://root@127.0.0.1:3306/test?pool_max=3",
            "mysql://root@127.0.0.1:3306/test?pool_max=3&prefer_socket=false#frag",
            "mysql://u:p%3Fw@h/db",
        ] {
            assert_eq!(split(url), (url.to_owned(), UrlTls::default()), "{url}");
        }
    }

    #[test]
    fn tls_options_are_taken_out_and_the_rest_kept_in_order() {
        let (plain, tls) = split(
            "mysql://u:pw@h:3307/db?pool_min=1&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ca.pem&pool_max=4",
        );
        assert_eq!(plain, "mysql://u:pw@h:3307/db?pool_min=1&pool_max=4");
        assert_eq!(tls.mode, Some(SslMode::VerifyIdentity));
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));

        let (plain, tls) = split("mysql://h/db?ssl-mode=REQUIRED#x");
        assert_eq!(plain, "mysql://h/db#x");
        assert_eq!(tls.mode, Some(SslMode::Required));
    }

    #[test]
    fn ssl_mode_is_case_insensitive_and_takes_sqlx_spellings() {
        for (query, mode) in [
            ("ssl-mode=DISABLED", SslMode::Disabled),
            ("ssl-mode=disabled", SslMode::Disabled),
            ("ssl-mode=REQUIRED", SslMode::Required),
            ("ssl-mode=Required", SslMode::Required),
            ("ssl-mode=VERIFY_CA", SslMode::VerifyCa),
            ("ssl-mode=verify_ca", SslMode::VerifyCa),
            ("ssl-mode=VERIFY_IDENTITY", SslMode::VerifyIdentity),
            ("ssl-mode=verify_identity", SslMode::VerifyIdentity),
            ("sslmode=verify_identity", SslMode::VerifyIdentity),
            ("ssl%2Dmode=verify_identity", SslMode::VerifyIdentity),
        ] {
            let (plain, tls) = split(&format!("mysql://h/db?{query}"));
            assert_eq!(plain, "mysql://h/db", "{query}");
            assert_eq!(tls.mode, Some(mode), "{query}");
        }
        let (_, tls) = split("mysql://h/db?sslca=/a.pem");
        assert_eq!(tls.ca_file, Some(PathBuf::from("/a.pem")));
    }

    #[test]
    fn ssl_ca_is_percent_decoded() {
        for (value, path) in [
            ("%2Fetc%2Fmy%20ca%2Fca.pem", "/etc/my ca/ca.pem"),
            ("/etc/my+ca/ca.pem", "/etc/my ca/ca.pem"),
            ("/etc/ca%2Bbundle.pem", "/etc/ca+bundle.pem"),
            ("/etc/caf%C3%A9.pem", "/etc/café.pem"),
            ("/etc/100%.pem", "/etc/100%.pem"),
            ("/etc/x%4", "/etc/x%4"),
            ("/etc/x%zz", "/etc/x%zz"),
        ] {
            let (_, tls) = split(&format!("mysql://h/db?ssl-mode=REQUIRED&ssl-ca={value}"));
            assert_eq!(tls.ca_file, Some(PathBuf::from(path)), "{value}");
        }
        assert!(refused("mysql://h/db?ssl-ca=%FF").contains("UTF-8"));
    }

    #[test]
    fn preferred_unknown_and_repeated_modes_are_refused() {
        assert!(refused("mysql://h/db?ssl-mode=PREFERRED").contains("plain text"));
        assert!(refused("mysql://h/db?ssl-mode=preferred").contains("PREFERRED"));
        let unknown = refused("mysql://h/db?ssl-mode=VERIFY");
        assert!(unknown.contains("unknown ssl-mode `VERIFY`"), "{unknown}");
        assert!(refused("mysql://h/db?ssl-mode=").contains("unknown ssl-mode"));
        assert!(refused("mysql://h/db?ssl-mode=REQUIRED&ssl-mode=DISABLED").contains("twice"));
        assert!(refused("mysql://h/db?ssl-ca=/a&sslca=/b").contains("twice"));
        assert!(refused("mysql://h/db?ssl-mode=REQUIRED&ssl-ca=").contains("empty"));
    }

    #[test]
    fn the_drivers_own_tls_parameters_point_to_ssl_mode() {
        for param in [
            "require_ssl=true",
            "require_ssl=false",
            "verify_ca=false",
            "verify_identity=false",
            "built_in_roots=true",
        ] {
            let reason = refused(&format!("mysql://h/db?{param}"));
            assert!(
                reason.contains("ssl-mode=VERIFY_IDENTITY") && reason.contains("ssl-ca"),
                "{param}: {reason}"
            );
        }
        for param in ["ssl-cert=/c.pem", "ssl-key=/k.pem", "sslcert=/c.pem"] {
            let reason = refused(&format!("mysql://h/db?{param}"));
            assert!(reason.contains("with_client_identity"), "{param}: {reason}");
        }
    }

    /// A `?` or `&` inside the fragment is not part of the query, as the
    /// `url` crate reads it.
    #[test]
    fn only_the_query_is_read() {
        let url = "mysql://h/db#?ssl-mode=PREFERRED";
        assert_eq!(split(url), (url.to_owned(), UrlTls::default()));
    }

    #[test]
    fn a_ca_needs_a_tls_mode_and_is_given_once() {
        let opts = || Opts::from_url("mysql://h/db").unwrap();
        let with_ca = UrlTls {
            mode: None,
            ca_file: Some("/ca.pem".into()),
        };
        let err = apply(opts(), &with_ca, None).unwrap_err();
        assert!(err.to_string().contains("does not ask for TLS"), "{err}");
        let err = apply(opts(), &UrlTls::default(), Some(Path::new("/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("does not ask for TLS"), "{err}");
        let both = UrlTls {
            mode: Some(SslMode::VerifyIdentity),
            ca_file: Some("/ca.pem".into()),
        };
        let err = apply(opts(), &both, Some(Path::new("/other.pem"))).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
        let disabled = apply(opts(), &UrlTls::default(), None).unwrap();
        assert!(disabled.ssl_opts().is_none());
    }

    #[test]
    fn a_tls_mode_with_a_socket_is_refused() {
        let opts = Opts::from_url("mysql://h/db?socket=/run/mysqld/mysqld.sock").unwrap();
        let tls = UrlTls {
            mode: Some(SslMode::Required),
            ca_file: None,
        };
        let err = apply(opts, &tls, None).unwrap_err();
        assert!(err.to_string().contains("socket"), "{err}");
    }

    #[cfg(not(feature = "rustls"))]
    #[test]
    fn without_rustls_every_tls_mode_is_invalid_config() {
        for mode in [
            SslMode::Required,
            SslMode::VerifyCa,
            SslMode::VerifyIdentity,
        ] {
            let tls = UrlTls {
                mode: Some(mode),
                ca_file: None,
            };
            let err = apply(Opts::from_url("mysql://h/db").unwrap(), &tls, None).unwrap_err();
            assert!(
                matches!(&err, LockError::InvalidConfig { reason, .. } if reason.contains("`rustls` feature")),
                "{mode:?}: {err:?}"
            );
        }
    }

    #[cfg(feature = "rustls")]
    #[test]
    fn tls_modes_set_the_drivers_options() {
        for (mode, skip_name) in [
            (SslMode::Required, false),
            (SslMode::VerifyIdentity, false),
            (SslMode::VerifyCa, true),
        ] {
            let tls = UrlTls {
                mode: Some(mode),
                ca_file: None,
            };
            let opts = match apply(Opts::from_url("mysql://h/db").unwrap(), &tls, None) {
                Ok(opts) => opts,
                // A machine without any root certificate: nothing to set.
                Err(LockError::InvalidConfig { reason, .. }) if reason.contains("no root") => {
                    return;
                }
                Err(other) => panic!("{mode:?}: {other:?}"),
            };
            let ssl = opts.ssl_opts().expect("TLS options");
            assert_eq!(ssl.skip_domain_validation(), skip_name, "{mode:?}");
            assert!(!ssl.accept_invalid_certs(), "{mode:?}");
            assert_eq!(
                ssl.disable_built_in_roots(),
                !cfg!(feature = "webpki-roots")
            );
            assert!(!opts.prefer_socket(), "{mode:?}");
        }
    }
}
