//! libpq's TLS options, taken out of a connection string before
//! `tokio-postgres` parses it.
//!
//! `tokio_postgres::Config` knows `sslmode=disable|prefer|require` only and
//! refuses any option it does not know, `sslrootcert` included, so a
//! connection string written for libpq (`psql`, most drivers) would fail
//! with "unknown option". [`split`] reads `sslmode` and `sslrootcert` itself,
//! refuses the TLS options the store does not support with a message that
//! says so, and hands the rest on untouched.
//!
//! Both forms are read the way `tokio-postgres` reads them, so the split
//! happens exactly where its own parser would see each option:
//! - URL (`postgres://` or `postgresql://`): the query string starts at the
//!   first `?` after the credentials (everything up to the first `@`); it is
//!   `key=value` pairs separated by `&`, keys and values percent-decoded.
//!   The pairs that stay are passed on as they were written.
//! - key-value (`host=localhost sslmode=verify-full`): keys end at
//!   whitespace or `=`; values are either single-quoted or end at
//!   whitespace, and in both a backslash takes the next character
//!   literally. The pairs that stay are written back quoted.

use std::borrow::Cow;
use std::fmt::Write as _;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode `{other}`: expected disable, require, verify-ca or \
                     verify-full"
                ));
            }
        })
    }

    /// The value as written in a connection string.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A connection string with its TLS options taken out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ConnInfo {
    /// What `tokio-postgres` is given: the string without `sslmode` and
    /// `sslrootcert`, in the form it was written in.
    pub(crate) rest: String,
    /// The last `sslmode` given, if any (later options win, as in libpq).
    pub(crate) sslmode: Option<SslMode>,
    /// The last `sslrootcert` given, decoded: a file, or `system`.
    pub(crate) sslrootcert: Option<String>,
}

/// libpq's options for client certificates: refused by name, so that the
/// message says what is missing instead of "unknown option".
const CLIENT_CERTIFICATE_OPTIONS: [&str; 3] = ["sslcert", "sslkey", "sslpassword"];

/// libpq's other TLS options, which the store does not implement either.
const UNSUPPORTED_TLS_OPTIONS: [&str; 8] = [
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslcompression",
    "sslsni",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "sslkeylogfile",
];

/// Splits `sslmode` and `sslrootcert` out of `conn`.
///
/// # Errors
/// The reason, for [`LockError::InvalidConfig`](verrou_core::LockError):
/// an `sslmode` libpq does not know, a client-certificate or other TLS
/// option the store does not support, or a string malformed where the
/// split must read it. The reason never quotes the string (it may hold a
/// password).
pub(crate) fn split(conn: &str) -> Result<ConnInfo, String> {
    let mut found = Found::default();
    let rest = match ["postgres://", "postgresql://"]
        .into_iter()
        .find(|prefix| conn.starts_with(prefix))
    {
        Some(prefix) => split_url(conn, prefix.len(), &mut found)?,
        None => split_key_value(conn, &mut found)?,
    };
    Ok(ConnInfo {
        rest,
        sslmode: found.sslmode,
        sslrootcert: found.sslrootcert,
    })
}

#[derive(Default)]
struct Found {
    sslmode: Option<SslMode>,
    sslrootcert: Option<String>,
}

impl Found {
    /// Takes `key` if it is one of ours (`Ok(true)`), refuses it if it is a
    /// TLS option the store does not support, leaves it otherwise.
    fn take(
        &mut self,
        key: &str,
        value: impl FnOnce() -> Result<String, String>,
    ) -> Result<bool, String> {
        match key {
            "sslmode" => self.sslmode = Some(SslMode::parse(&value()?)?),
            "sslrootcert" => {
                let value = value()?;
                if value.is_empty() {
                    return Err("sslrootcert is empty: name a CA file, or `system`".to_owned());
                }
                self.sslrootcert = Some(value);
            }
            key if CLIENT_CERTIFICATE_OPTIONS.contains(&key) => {
                return Err(format!(
                    "`{key}`: client certificates are not supported by verrou-postgres; \
                     authenticate with a password (or trust), over TLS"
                ));
            }
            key if UNSUPPORTED_TLS_OPTIONS.contains(&key) => {
                return Err(format!(
                    "`{key}`: this TLS option of libpq is not supported by verrou-postgres"
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The URL form: only the query string is read (see the module's doc).
fn split_url(url: &str, prefix_len: usize, found: &mut Found) -> Result<String, String> {
    let body = &url[prefix_len..];
    // tokio-postgres takes the credentials up to the first `@` before
    // anything else, so a `?` in them does not start the query.
    let after_credentials = body.find('@').map_or(0, |at| at + 1);
    let Some(mark) = body[after_credentials..].find('?') else {
        return Ok(url.to_owned());
    };
    let query_at = prefix_len + after_credentials + mark;
    let (head, mut query) = (&url[..query_at], &url[query_at + 1..]);
    let mut kept = Vec::new();
    // The same loop as tokio-postgres's: a key runs to the next `=`, its
    // value to the next `&`.
    while !query.is_empty() {
        let Some(equals) = query.find('=') else {
            return Err("invalid connection URL: a query parameter without `=`".to_owned());
        };
        let end = query[equals + 1..]
            .find('&')
            .map_or(query.len(), |amp| equals + 1 + amp);
        let (pair, key, value) = (&query[..end], &query[..equals], &query[equals + 1..end]);
        query = query.get(end + 1..).unwrap_or("");
        let key = percent_decode(key)?;
        if !found.take(&key, || percent_decode(value).map(Cow::into_owned))? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    })
}

/// `%XX` decoded as a byte, anything else kept, then read as UTF-8 (as the
/// `percent-encoding` crate that tokio-postgres uses does).
fn percent_decode(text: &str) -> Result<Cow<'_, str>, String> {
    if !text.contains('%') {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits: at most 255.
                decoded.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded)
        .map(Cow::Owned)
        .map_err(|_| "invalid connection URL: a percent-encoded option is not UTF-8".to_owned())
}

/// The key-value form: every pair is read, the ones that stay are written
/// back quoted (see the module's doc).
fn split_key_value(conn: &str, found: &mut Found) -> Result<String, String> {
    let mut chars = conn.chars().peekable();
    let mut rest = String::with_capacity(conn.len());
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| !c.is_whitespace() && c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            // The end, or a stray `=`, which tokio-postgres ignores too.
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "invalid connection string: `=` expected after `{key}`"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "invalid connection string: the quoted value of `{key}` is not \
                             closed"
                        ));
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(format!("invalid connection string: `{key}` has no value"));
            }
        }
        if !found.take(&key, || Ok(value.clone()))? {
            if !rest.is_empty() {
                rest.push(' ');
            }
            let _ = write!(rest, "{key}='");
            for c in value.chars() {
                if c == '\'' || c == '\\' {
                    rest.push('\\');
                }
                rest.push(c);
            }
            rest.push('\'');
        }
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(conn: &str) -> ConnInfo {
        split(conn).unwrap_or_else(|e| panic!("{conn}: {e}"))
    }

    #[test]
    fn a_url_without_tls_options_is_passed_on_as_it_is() {
        for url in [
            "postgres://u:p@host:5432/db",
            "postgresql://host/db?application_name=app&connect_timeout=3",
            "postgres://host",
            "postgres://u@host/db?",
        ] {
            let info = ok(url);
            assert_eq!(info.sslmode, None, "{url}");
            assert_eq!(info.sslrootcert, None, "{url}");
            assert_eq!(info.rest, url.trim_end_matches('?'), "{url}");
        }
    }

    #[test]
    fn a_url_loses_its_tls_options_and_keeps_the_rest_as_written() {
        let info = ok(
            "postgres://u:p%40ss@db.internal:5432/app?application_name=my%20app\
             &sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(info.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(info.sslrootcert.as_deref(), Some("/etc/ca dir/ca.pem"));
        assert_eq!(
            info.rest,
            "postgres://u:p%40ss@db.internal:5432/app?application_name=my%20app&connect_timeout=3"
        );
    }

    #[test]
    fn a_url_with_only_tls_options_loses_its_query() {
        let info = ok("postgres://host/db?sslmode=require&sslrootcert=system");
        assert_eq!(info.rest, "postgres://host/db");
        assert_eq!(info.sslmode, Some(SslMode::Require));
        assert_eq!(info.sslrootcert.as_deref(), Some("system"));
    }

    #[test]
    fn percent_encoded_keys_and_the_last_value_count() {
        let info = ok("postgres://host/db?ssl%6Dode=disable&sslmode=verify%2Dca");
        assert_eq!(info.sslmode, Some(SslMode::VerifyCa));
        assert_eq!(info.rest, "postgres://host/db");
    }

    #[test]
    fn a_question_mark_in_the_password_does_not_start_the_query() {
        let info = ok("postgres://u:a?b@host/db?sslmode=require");
        assert_eq!(info.rest, "postgres://u:a?b@host/db");
        assert_eq!(info.sslmode, Some(SslMode::Require));
    }

    #[test]
    fn a_url_with_the_tls_options_only_in_the_path_is_untouched() {
        let info = ok("postgres://host/sslmode=require");
        assert_eq!(info.sslmode, None);
        assert_eq!(info.rest, "postgres://host/sslmode=require");
    }

    #[test]
    fn key_values_lose_their_tls_options_and_keep_the_rest() {
        let info = ok("host=localhost  port = 5433 sslmode=verify-full \
                       sslrootcert='/p a/c\\'a.pem' user=me");
        assert_eq!(info.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(info.sslrootcert.as_deref(), Some("/p a/c'a.pem"));
        assert_eq!(info.rest, "host='localhost' port='5433' user='me'");
        let config: tokio_postgres::Config = info.rest.parse().unwrap();
        assert_eq!(config.get_ports(), [5433]);
        assert_eq!(config.get_user(), Some("me"));
    }

    #[test]
    fn key_values_are_quoted_back_with_escapes() {
        let info = ok(r"host=h sslmode=require password=a\ b\\c\'d dbname='x y'");
        assert_eq!(info.rest, r"host='h' password='a b\\c\'d' dbname='x y'");
        let config: tokio_postgres::Config = info.rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a b\\c'd"[..]));
        assert_eq!(config.get_dbname(), Some("x y"));
    }

    #[test]
    fn backslashes_in_key_values_escape_in_plain_values_too() {
        let info = ok(r"sslrootcert=/p\ a/ca.pem sslmode=verify-ca");
        assert_eq!(info.sslrootcert.as_deref(), Some("/p a/ca.pem"));
        assert_eq!(info.sslmode, Some(SslMode::VerifyCa));
        assert_eq!(info.rest, "");
    }

    #[test]
    fn no_sslmode_is_none_in_both_forms() {
        assert_eq!(ok("host=localhost dbname=test").sslmode, None);
        assert_eq!(ok("").sslmode, None);
        assert_eq!(ok("postgres://localhost/test").sslmode, None);
    }

    #[test]
    fn every_libpq_mode_is_read_and_unknown_ones_are_refused() {
        for mode in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let info = ok(&format!("host=h sslmode={mode}"));
            assert_eq!(info.sslmode.map(SslMode::name), Some(mode));
        }
        let error = split("postgres://h/d?sslmode=verify_full").unwrap_err();
        assert!(
            error.contains("verify_full") && error.contains("verify-full"),
            "{error}"
        );
    }

    #[test]
    fn client_certificates_are_refused_by_name() {
        for conn in [
            "host=h sslmode=verify-full sslcert=/c.pem",
            "postgres://h/d?sslkey=%2Fk.pem",
            "host=h sslpassword=secret",
        ] {
            let error = split(conn).unwrap_err();
            assert!(
                error.contains("client certificates are not supported"),
                "{error}"
            );
            assert!(!error.contains("secret"), "{error}");
        }
        let error = split("postgres://h/d?sslcrl=x").unwrap_err();
        assert!(
            error.contains("`sslcrl`") && error.contains("not supported"),
            "{error}"
        );
    }

    #[test]
    fn malformed_strings_are_refused_without_quoting_them() {
        for conn in [
            "host=h password='hunter2",
            "host=h password",
            "host=h password=",
            "postgres://u:hunter2@h/d?sslmode",
            "postgres://u:hunter2@h/d?sslrootcert=%ff",
        ] {
            let error = split(conn).unwrap_err();
            assert!(!error.contains("hunter2"), "{conn}: {error}");
        }
        assert!(
            split("host=h sslrootcert=''")
                .unwrap_err()
                .contains("empty")
        );
    }

    #[test]
    fn a_lone_percent_is_kept_as_it_is() {
        let info = ok("postgres://h/d?sslrootcert=/ca%.pem%2");
        assert_eq!(info.sslrootcert.as_deref(), Some("/ca%.pem%2"));
    }
}
