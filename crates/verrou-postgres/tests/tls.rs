//! TLS: against the PostgreSQL that `cargo xtask services up postgres-tls`
//! starts on 5433 ([`Service::PostgresTls`]), which takes TCP connections
//! over TLS only, with the test CA ([`TestCa`]). What must hold: locks work
//! over TLS, `LISTEN` wake-ups and statement cancels included; a
//! certificate the connection must not trust (another CA, another host
//! name, a server's snakeoil) fails the build with a `Store` error, in
//! bounded time; a TLS mode never talks plain text; TLS options that cannot
//! be honoured are `InvalidConfig` before any connection.

mod common;

use verrou_core::LockError;
use verrou_postgres::PostgresStore;

/// Asserts that `result` is `InvalidConfig` whose reason says each of
/// `says`.
fn invalid_config_saying<T: std::fmt::Debug>(result: Result<T, LockError>, says: &[&str]) {
    match result {
        Err(LockError::InvalidConfig { reason, .. }) => {
            for words in says {
                assert!(reason.contains(words), "{words:?} not in: {reason}");
            }
        }
        other => panic!("expected InvalidConfig saying {says:?}, got {other:?}"),
    }
}

/// Port 1 of loopback: were the options accepted, the build would fail
/// differently (a `Store` error), not with `InvalidConfig`.
const NOWHERE: &str = "postgres://postgres@127.0.0.1:1/postgres";

/// Refused whatever the features: they could fall back to plain text, or
/// ask for what the store does not do.
#[tokio::test]
async fn prefer_allow_and_client_certificates_are_invalid_config_before_connecting() {
    for (options, says) in [
        ("sslmode=prefer", &["sslmode=prefer", "plain text"][..]),
        ("sslmode=allow", &["sslmode=allow", "plain text"]),
        (
            "sslmode=verify-full&sslcert=%2Fc.pem&sslkey=%2Fk.pem",
            &["`sslcert`", "client certificates are not supported"],
        ),
        (
            "sslkey=/k.pem",
            &["`sslkey`", "client certificates are not supported"],
        ),
        ("sslmode=verify_full", &["invalid sslmode `verify_full`"]),
    ] {
        let result = PostgresStore::builder()
            .url(&format!("{NOWHERE}?{options}"))
            .build()
            .await;
        invalid_config_saying(result, says);
    }
    let result = PostgresStore::builder()
        .url("host=127.0.0.1 port=1 sslmode=require sslcert='/p a/c.pem'")
        .build()
        .await;
    invalid_config_saying(result, &["client certificates are not supported"]);
}

#[cfg(feature = "rustls")]
mod over_tls {
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use verrou_conformance::Capabilities;
    use verrou_core::{Acquisition, LockStore};
    use verrou_postgres::PostgresStoreBuilder;
    use verrou_postgres::deadpool_postgres::{Manager, Pool};
    use verrou_postgres::tokio_postgres::config::SslMode;
    use verrou_postgres::tokio_postgres::{Config, NoTls};
    use verrou_testkit::servers::TestCa;
    use verrou_testkit::{Service, eventually, require_service, unique};

    use super::common::scenarios::{self, NextCall};
    use super::common::{TTL, drop_table};
    use super::*;

    const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The connect timeout, the listening session's start on top of it,
    /// and scheduling slack on a loaded machine.
    const BUILD_BOUND: Duration = Duration::from_secs(8);

    fn ca() -> TestCa {
        TestCa::from_env()
    }

    /// A path as a URL query value: everything but unreserved characters
    /// and `/` percent-encoded, so the store's decoding is exercised too.
    fn url_encode(path: &std::path::Path) -> String {
        path.to_str()
            .expect("a UTF-8 CA path")
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'_' | b'-' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// The TLS server's URL with `options` added to its query.
    fn tls_url(options: &str) -> String {
        let url = Service::PostgresTls.url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{options}")
    }

    /// `sslmode=verify-full`, trusting the test CA through `sslrootcert`.
    fn verify_full_url(extra: &str) -> String {
        tls_url(&format!(
            "sslmode=verify-full&sslrootcert={}{extra}",
            url_encode(&ca().ca_file())
        ))
    }

    /// The TLS server as a driver config (its host, port, user, database).
    fn tls_config() -> Config {
        Service::PostgresTls
            .url()
            .parse()
            .expect("a valid postgres-tls URL")
    }

    fn port() -> u16 {
        tls_config().get_ports().first().copied().unwrap_or(5432)
    }

    /// `value` quoted for libpq's key-value form.
    fn quoted(value: &str) -> String {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    fn builder(url: &str, table: &str) -> PostgresStoreBuilder {
        PostgresStore::builder()
            .url(url)
            .table_name(table)
            .max_connections(2)
            .connect_timeout(CONNECT_TIMEOUT)
    }

    /// A store on the TLS server, or `None` (skipped) when it is not there.
    async fn store_on(table: &str) -> Option<PostgresStore> {
        require_service(
            "postgres-tls",
            builder(&verify_full_url(""), table).build().await,
        )
    }

    /// Whether the TLS server is there at all: the failure tests below would
    /// pass against a closed port for the wrong reason.
    async fn tls_server_is_up() -> bool {
        store_on("verrou").await.is_some()
    }

    /// A raw client on the TLS server (one of a store's pooled
    /// connections), for setting up and inspecting.
    async fn admin(store: &PostgresStore) -> verrou_postgres::deadpool_postgres::Object {
        store.pool().expect("the store's pool").get().await.unwrap()
    }

    async fn store_error_in_time<S, F>(what: &str, build: F) -> String
    where
        S: std::fmt::Debug,
        F: Future<Output = Result<S, LockError>>,
    {
        verrou_conformance::builders::store_error_within(what, BUILD_BOUND, build).await
    }

    async fn shared_store() -> Option<Arc<dyn LockStore>> {
        store_on("verrou").await.map(|s| Arc::new(s) as _)
    }

    #[tokio::test]
    async fn locks_over_tls_acquire_and_exclude() {
        let Some(store) = shared_store().await else {
            return;
        };
        verrou_conformance::acquire_locks_the_key(store.clone(), Capabilities::default()).await;
        verrou_conformance::exclusivity(store, Capabilities::default()).await;
    }

    #[tokio::test]
    async fn fencing_tokens_rise_over_tls() {
        let Some(store) = shared_store().await else {
            return;
        };
        verrou_conformance::fencing_tokens_strictly_increase(store, Capabilities::default()).await;
    }

    /// The waiter's retry delay is 30 s (`release_announcements: true`), so
    /// only a wake-up from the `LISTEN` session, which must then be TLS
    /// with the same trust, meets the conformance test's bound.
    #[tokio::test]
    async fn a_release_over_tls_wakes_a_waiter() {
        let Some(store) = shared_store().await else {
            return;
        };
        verrou_conformance::release_wakes_a_waiter(
            store,
            Capabilities {
                fencing_tokens: true,
                release_announcements: true,
            },
        )
        .await;
    }

    /// Two stores: one's release wakes the other's watch, and the server
    /// shows the listening session as a TLS one.
    #[tokio::test]
    async fn the_listening_session_is_tls_and_hears_releases_from_another_store() {
        let table = unique("verrou_tls_listen");
        let app = unique("verrou_tls_listen_app");
        let Some(waiter) = require_service(
            "postgres-tls",
            builder(
                &verify_full_url(&format!("&application_name={app}")),
                &table,
            )
            .build()
            .await,
        ) else {
            return;
        };
        let holder = builder(&verify_full_url(""), &table).build().await.unwrap();
        let client = admin(&holder).await;
        let row = client
            .query_one(
                "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = $1 AND a.query LIKE 'LISTEN%'",
                &[&app],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 1, "one listening session");
        assert_eq!(row.get::<_, Option<bool>>(1), Some(true), "over TLS");

        let key = unique("key");
        scenarios::a_release_wakes_the_watch(
            &holder,
            &waiter,
            &key,
            "holder",
            "the release was not announced",
        )
        .await;
        drop_table(&client, &table).await;
    }

    #[tokio::test]
    async fn the_ca_file_option_trusts_the_ca_for_a_url_and_a_config() {
        if !tls_server_is_up().await {
            return;
        }
        let from_url = PostgresStore::builder()
            .url(&tls_url("sslmode=verify-full"))
            .ca_file(ca().ca_file())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .unwrap();
        let mut config = tls_config();
        config.ssl_mode(SslMode::Require);
        let from_config = PostgresStore::builder()
            .config(config)
            .ca_file(ca().ca_file())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .unwrap();
        let key = unique("tls-ca-file");
        assert!(matches!(
            from_url.acquire(&key, "a", TTL).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        assert!(matches!(
            from_config.acquire(&key, "b", TTL).await.unwrap(),
            Acquisition::Held
        ));
        from_url.release(&key, "a").await.unwrap();
        assert!(matches!(
            from_config.acquire(&key, "b", TTL).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        from_config.release(&key, "b").await.unwrap();
    }

    /// libpq's key-value form, the CA path quoted with escapes.
    #[tokio::test]
    async fn a_key_value_string_with_a_quoted_sslrootcert_connects() {
        if !tls_server_is_up().await {
            return;
        }
        let config = tls_config();
        let conn = format!(
            "host=localhost port={} user={} dbname={} sslmode = verify-full sslrootcert={}",
            port(),
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres"),
            quoted(ca().ca_file().to_str().unwrap()),
        );
        let store = PostgresStore::builder()
            .url(&conn)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .unwrap();
        let key = unique("tls-key-value");
        store.acquire(&key, "a", TTL).await.unwrap();
        store.release(&key, "a").await.unwrap();
    }

    #[tokio::test]
    async fn a_certificate_from_another_ca_is_a_store_error_at_build() {
        if !tls_server_is_up().await {
            return;
        }
        let url = tls_url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            url_encode(&ca().other_ca_file())
        ));
        let chain = store_error_in_time("another CA", builder(&url, "verrou").build()).await;
        assert!(
            chain.contains("not signed by a CA this client trusts"),
            "{chain}"
        );
        // The same through `ca_file`.
        let chain = store_error_in_time(
            "another CA as ca_file",
            builder(&tls_url("sslmode=verify-full"), "verrou")
                .ca_file(ca().other_ca_file())
                .build(),
        )
        .await;
        assert!(
            chain.contains("not signed by a CA this client trusts"),
            "{chain}"
        );
    }

    /// `require` checks the chain too (libpq's checks nothing), and the
    /// platform's roots do not know the test CA.
    #[tokio::test]
    async fn require_without_the_ca_refuses_a_private_certificate() {
        if !tls_server_is_up().await {
            return;
        }
        for options in ["sslmode=require", "sslmode=verify-full&sslrootcert=system"] {
            let chain =
                store_error_in_time(options, builder(&tls_url(options), "verrou").build()).await;
            assert!(
                chain.contains("not signed by a CA this client trusts"),
                "{options}: {chain}"
            );
        }
    }

    /// The certificate names `localhost` and `127.0.0.1`, and the server
    /// listens on 127.0.0.1 only: `hostaddr` connects there while the host
    /// name the connection checks (`host`) is one the certificate does not
    /// carry, as a server reached by an unexpected name would be.
    fn misnamed(mode: &str) -> String {
        let config = tls_config();
        format!(
            "host=verrou-not-in-the-certificate.invalid hostaddr=127.0.0.1 port={} user={} \
             dbname={} sslmode={mode} sslrootcert={}",
            port(),
            config.get_user().unwrap_or("postgres"),
            config.get_dbname().unwrap_or("postgres"),
            quoted(ca().ca_file().to_str().unwrap()),
        )
    }

    #[tokio::test]
    async fn a_certificate_for_another_host_name_is_a_store_error_under_verify_full_and_require() {
        if !tls_server_is_up().await {
            return;
        }
        for mode in ["verify-full", "require"] {
            let chain = store_error_in_time(mode, builder(&misnamed(mode), "verrou").build()).await;
            assert!(
                chain.contains("does not name the host connected to"),
                "{mode}: {chain}"
            );
        }
    }

    #[tokio::test]
    async fn verify_ca_accepts_the_ca_s_certificate_under_another_name() {
        if !tls_server_is_up().await {
            return;
        }
        let store = PostgresStore::builder()
            .url(&misnamed("verify-ca"))
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .await
            .unwrap();
        let key = unique("tls-verify-ca");
        store.acquire(&key, "a", TTL).await.unwrap();
        store.release(&key, "a").await.unwrap();
        // But not a certificate of another CA.
        let other = misnamed("verify-ca").replace(
            &quoted(ca().ca_file().to_str().unwrap()),
            &quoted(ca().other_ca_file().to_str().unwrap()),
        );
        let chain =
            store_error_in_time("verify-ca, another CA", builder(&other, "verrou").build()).await;
        assert!(
            chain.contains("not signed by a CA this client trusts"),
            "{chain}"
        );
    }

    /// The machine's plain-text server (which also offers TLS, with a
    /// certificate nobody here vouches for): `require` is a `Store` error,
    /// where a fallback to plain text would have connected.
    #[tokio::test]
    async fn require_against_the_plain_server_is_a_store_error_never_plain_text() {
        let plain = Service::Postgres.url();
        let Some(_) = require_service(
            "postgres",
            PostgresStore::builder()
                .url(&plain)
                .max_connections(1)
                .build()
                .await,
        ) else {
            return;
        };
        let sep = if plain.contains('?') { '&' } else { '?' };
        for options in [
            "sslmode=require".to_owned(),
            format!(
                "sslmode=verify-full&sslrootcert={}",
                url_encode(&ca().ca_file())
            ),
        ] {
            let chain = store_error_in_time(
                &options,
                PostgresStore::builder()
                    .url(&format!("{plain}{sep}{options}"))
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .await;
            assert!(chain.contains("TLS with"), "{options}: {chain}");
        }
    }

    /// A server that answers the TLS request with "no" (`N`, as one with
    /// `ssl = off` does): a `Store` error, and not one byte more is sent
    /// to it, so no startup message (user, database) in plain text.
    #[tokio::test]
    async fn a_server_refusing_tls_is_a_store_error_and_gets_nothing_in_plain_text() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Connections accepted, connections done with, and what came
        // in besides an SSLRequest.
        let accepted = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let other_bytes = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn({
            let (accepted, done, other_bytes) =
                (accepted.clone(), done.clone(), other_bytes.clone());
            async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (done, other_bytes) = (done.clone(), other_bytes.clone());
                    tokio::spawn(async move {
                        // SSLRequest: length 8, code 80877103.
                        let mut request = [0u8; 8];
                        let mut unexpected = 0;
                        if socket.read_exact(&mut request).await.is_ok()
                            && request == [0, 0, 0, 8, 4, 210, 22, 47]
                        {
                            let _ = socket.write_all(b"N").await;
                        } else {
                            unexpected += request.len();
                        }
                        // Then the client must hang up without a word.
                        let mut rest = Vec::new();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(5),
                            socket.read_to_end(&mut rest),
                        )
                        .await;
                        other_bytes.fetch_add(unexpected + rest.len(), Ordering::SeqCst);
                        done.fetch_add(1, Ordering::SeqCst);
                    });
                }
            }
        });
        let url = format!(
            "postgres://postgres:hunter2@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
            address.port(),
            url_encode(&ca().ca_file())
        );
        let chain = store_error_in_time(
            "a server without TLS",
            PostgresStore::builder()
                .url(&url)
                .connect_timeout(CONNECT_TIMEOUT)
                .build(),
        )
        .await;
        assert!(chain.contains("server does not support TLS"), "{chain}");
        assert!(!chain.contains("hunter2"), "{chain}");
        // Each reader sees the client hang up (or gives up after 5 s) and
        // counts what came besides the SSLRequest.
        eventually(
            "the fake server to see the sockets close",
            Duration::from_secs(10),
            || async { done.load(Ordering::SeqCst) == accepted.load(Ordering::SeqCst) },
        )
        .await;
        assert!(accepted.load(Ordering::SeqCst) >= 1);
        assert_eq!(
            other_bytes.load(Ordering::SeqCst),
            0,
            "bytes sent in plain text"
        );
        server.abort();
    }

    /// A statement that runs out of time is cancelled on the server with a
    /// cancel request over TLS, as the connection's mode demands (the
    /// driver would not send it without a connector), so it cannot take
    /// the lock later.
    #[tokio::test]
    async fn a_timed_out_statement_is_cancelled_over_tls() {
        let table = unique("verrou_tls_cancel");
        let app = unique("verrou_tls_cancel_app");
        // Another store on the same table, for connections to inspect
        // the server and to hold the row locked, as a long transaction
        // would.
        let Some(helper) = require_service(
            "postgres-tls",
            builder(&verify_full_url(""), &table).build().await,
        ) else {
            return;
        };
        let observer = admin(&helper).await;
        let blocker = admin(&helper).await;
        scenarios::a_stuck_statement_is_cancelled_and_never_applies(
            PostgresStore::builder()
                .url(&verify_full_url(&format!("&application_name={app}")))
                .max_connections(1)
                .release_announcements(false)
                .connect_timeout(CONNECT_TIMEOUT),
            &table,
            &app,
            &observer,
            &blocker,
            NextCall::Unchecked,
        )
        .await;
    }

    #[tokio::test]
    async fn ca_file_where_it_cannot_apply_is_invalid_config() {
        let ca_file = ca().ca_file();
        // A plain-text connection string.
        let result = PostgresStore::builder()
            .url(NOWHERE)
            .ca_file(&ca_file)
            .build()
            .await;
        invalid_config_saying(result, &["ca_file", "sslmode=verify-full"]);
        // Two places naming the roots.
        let result = PostgresStore::builder()
            .url(&format!(
                "{NOWHERE}?sslmode=verify-full&sslrootcert=%2Fa.pem"
            ))
            .ca_file(&ca_file)
            .build()
            .await;
        invalid_config_saying(result, &["sslrootcert", "ca_file", "give one"]);
        // A config that asks for no TLS.
        let config: Config = NOWHERE.parse().unwrap();
        let result = PostgresStore::builder()
            .config(config)
            .ca_file(&ca_file)
            .build()
            .await;
        invalid_config_saying(result, &["ca_file", "Require"]);
        // A pool of yours keeps its own TLS.
        let config: Config = NOWHERE.parse().unwrap();
        let pool = Pool::builder(Manager::new(config, NoTls)).build().unwrap();
        let result = PostgresStore::from_pool(pool)
            .ca_file(&ca_file)
            .build()
            .await;
        invalid_config_saying(result, &["ca_file", "pool"]);
        // verify-ca against public roots.
        let result = PostgresStore::builder()
            .url(&format!("{NOWHERE}?sslmode=verify-ca"))
            .build()
            .await;
        invalid_config_saying(result, &["verify-ca", "CA file"]);
    }

    #[tokio::test]
    async fn an_unusable_ca_file_is_invalid_config_before_connecting() {
        verrou_conformance::builders::rejects_unusable_ca_files(&["ca_file"], |file| {
            PostgresStore::builder()
                .url(&format!("{NOWHERE}?sslmode=verify-full"))
                .ca_file(file)
                .build()
        })
        .await;
        verrou_conformance::builders::rejects_unusable_ca_files(&[], |file| {
            PostgresStore::builder()
                .url(&format!(
                    "{NOWHERE}?sslmode=verify-ca&sslrootcert={}",
                    url_encode(&file)
                ))
                .build()
        })
        .await;
    }

    #[test]
    fn debug_shows_the_ca_file_and_never_the_url() {
        let builder = PostgresStore::builder()
            .url("postgres://user:hunter2@db.internal/app?sslmode=verify-full")
            .ca_file("/etc/verrou/pg-ca.pem");
        let shown = format!("{builder:?}");
        assert!(shown.contains("/etc/verrou/pg-ca.pem"), "{shown}");
        assert!(!shown.contains("db.internal"), "{shown}");
        verrou_conformance::builders::debug_hides(&builder, "hunter2");
    }
}
