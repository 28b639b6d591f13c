//! No secret — a password in a connection URL, an AWS secret key, a lock's
//! owner id — appears in `Debug` of a store or builder, in an error's
//! `Display`/`Debug` or source chain, or in tracing output.

use std::fmt::{Debug, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Level, span};
use verrou_conformance::require_service;
use verrou_core::{LockError, LockFactory, LockStore};
use verrou_dynamodb::DynamoDbStore;
use verrou_mysql::MysqlStore;
use verrou_postgres::PostgresStore;
use verrou_redis::RedisStore;
use verrou_sqlite::SqliteStore;

const SECRET: &str = "hunter2-secret";
const OWNER: &str = "owner-hunter2-secret-0123456789";

fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} reveals the secret:\n{text}");
}

/// `Display` and `Debug` of the error and of every source.
fn error_text(error: &LockError) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let _ = write!(text, "\n{e}\n{e:?}");
        source = e.source();
    }
    text
}

/// Builds every way a store can fail to build and checks the errors.
fn assert_error_clean<T: Debug>(what: &str, result: Result<T, LockError>) {
    match result {
        Ok(store) => assert_clean(what, &format!("{store:?}")),
        Err(error) => assert_clean(what, &error_text(&error)),
    }
}

/// Everything tracing prints at DEBUG and above while `f` runs on this thread.
fn traced<T>(f: impl FnOnce() -> T) -> (T, String) {
    traced_at(Level::DEBUG, f)
}

/// Everything tracing prints up to `level` while `f` runs on this thread.
fn traced_at<T>(level: Level, f: impl FnOnce() -> T) -> (T, String) {
    let log = Arc::new(Mutex::new(String::new()));
    let subscriber = Capture(log.clone(), level);
    let value = tracing::subscriber::with_default(subscriber, f);
    let text = log.lock().unwrap().clone();
    (value, text)
}

struct Capture(Arc<Mutex<String>>, Level);

struct Fields<'a>(&'a Mutex<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0.lock().unwrap(), "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.1
    }

    fn new_span(&self, span: &span::Attributes<'_>) -> span::Id {
        let _ = write!(self.0.lock().unwrap(), "span {} ", span.metadata().name());
        span.record(&mut Fields(&self.0));
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, values: &span::Record<'_>) {
        values.record(&mut Fields(&self.0));
    }

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Fields(&self.0));
        self.0.lock().unwrap().push('\n');
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A lock's life with a secret owner: acquire, debug, release twice (the
/// second is `NotOwned`), extend after release — nothing may show the owner.
async fn owner_stays_secret(store: impl LockStore, name: &str) {
    let locks = LockFactory::new(store)
        .with_retry(verrou_core::RetryPolicy::default().with_timeout(Some(Duration::from_secs(5))));
    let key = format!(
        "verrou-secrets:{name}:{}",
        verrou_core::random_owner().unwrap()
    );
    let lock = locks.create_lock_with_owner(&key, "5s", OWNER).unwrap();
    lock.acquire().await.unwrap();
    assert_clean("Debug of a held lock", &format!("{lock:?}"));
    assert_clean("Debug of the factory", &format!("{locks:?}"));
    lock.release().await.unwrap();
    let again = lock.release().await.unwrap_err();
    assert!(matches!(again, LockError::NotOwned { .. }), "{again:?}");
    assert_clean("a NotOwned error", &error_text(&again));
    let extend = lock.extend().await.unwrap_err();
    assert_clean("a failed extend", &error_text(&extend));
    let guard = lock.acquire_guard().await.unwrap();
    assert_clean("Debug of a guard", &format!("{guard:?}"));
    guard.release().await.unwrap();
}

fn owner_check(name: &str, store: impl LockStore) {
    let (_, log) = traced(|| runtime().block_on(owner_stays_secret(store, name)));
    assert_traced_clean(true, &log);
}

/// The capture must have seen the lock's own spans, or it proves nothing.
fn assert_traced_clean(ran: bool, log: &str) {
    if ran {
        assert!(
            log.contains("span verrou.release") && log.contains("outcome="),
            "tracing captured nothing:\n{log}"
        );
    }
    assert_clean("tracing output", log);
}

#[test]
fn postgres_hides_the_password_and_the_owner() {
    let (ran, log) = traced(|| {
        runtime().block_on(async {
            // Unreachable, with a password.
            let down = PostgresStore::builder()
                .url(&format!("postgres://postgres:{SECRET}@127.0.0.1:1/test"))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .await;
            assert!(down.is_err());
            assert_error_clean("unreachable postgres", down);
            for url in [
                format!("postgres://postgres:{SECRET}@127.0.0.1:99999999/test"),
                format!("postgres://postgres:{SECRET}@127.0.0.1:5432/test?sslmode=bogus"),
                format!("postgres://postgres:{SECRET}@[::1/test"),
                format!("host=127.0.0.1 password={SECRET} port=nope"),
            ] {
                let builder = PostgresStore::builder().url(&url);
                assert_clean("Debug of the builder", &format!("{builder:?}"));
                assert_error_clean(&format!("postgres url {url:?}"), builder.build().await);
            }
            // Trust authentication ignores the password: the store builds.
            let up = PostgresStore::builder()
                .url(&format!("postgres://postgres:{SECRET}@127.0.0.1:5432/test"))
                .build()
                .await;
            let Some(store) = require_service("postgres", up) else {
                return false;
            };
            assert_clean("Debug of the store", &format!("{store:?}"));
            owner_stays_secret(store, "postgres").await;
            true
        })
    });
    assert_traced_clean(ran, &log);
}

#[test]
fn mysql_hides_the_password_and_the_owner() {
    let (ran, log) = traced(|| {
        runtime().block_on(async {
            for url in [
                format!("mysql://root:{SECRET}@127.0.0.1:1/test"),
                // Root has no password here: the server refuses this one.
                format!("mysql://root:{SECRET}@127.0.0.1:3306/test"),
                format!("mysql://root:{SECRET}@127.0.0.1:3306/test?bogus_option=1"),
                format!("mysql://root:{SECRET}@127.0.0.1:nope/test"),
                format!("mysql://root:{SECRET}@[::1/test"),
            ] {
                let builder = MysqlStore::builder()
                    .url(&url)
                    .connect_timeout(Duration::from_secs(2));
                assert_clean("Debug of the builder", &format!("{builder:?}"));
                assert_error_clean(&format!("mysql url {url:?}"), builder.build().await);
            }
            let up = MysqlStore::builder()
                .url("mysql://root@127.0.0.1:3306/test")
                .build()
                .await;
            let Some(store) = require_service("mariadb", up) else {
                return false;
            };
            assert_clean("Debug of the store", &format!("{store:?}"));
            owner_stays_secret(store, "mysql").await;
            true
        })
    });
    assert_traced_clean(ran, &log);
}

#[test]
fn redis_hides_the_password_and_the_owner() {
    let (ran, log) = traced(|| {
        runtime().block_on(async {
            for url in [
                format!("redis://:{SECRET}@127.0.0.1:1"),
                format!("redis://default:{SECRET}@127.0.0.1:1/0"),
                // The server has no password: AUTH fails.
                format!("redis://default:{SECRET}@127.0.0.1:6379"),
                format!("redis://:{SECRET}@127.0.0.1:nope"),
                format!("redis-cluster://:{SECRET}@127.0.0.1:1"),
                format!("bogus://:{SECRET}@127.0.0.1:6379"),
            ] {
                let builder = RedisStore::builder()
                    .url(url.clone())
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Some(Duration::from_secs(1)));
                assert_clean("Debug of the builder", &format!("{builder:?}"));
                assert_error_clean(&format!("redis url {url:?}"), builder.build().await);
            }
            let up = RedisStore::builder()
                .url("redis://127.0.0.1:6379")
                .build()
                .await;
            let Some(store) = require_service("redis", up) else {
                return false;
            };
            assert_clean("Debug of the store", &format!("{store:?}"));
            owner_stays_secret(store, "redis").await;
            true
        })
    });
    assert_traced_clean(ran, &log);
}

#[test]
fn redis_hides_a_password_with_a_slash() {
    let builder = RedisStore::builder().url(format!("redis://:{SECRET}/x@127.0.0.1:1"));
    assert_clean("Debug of the builder", &format!("{builder:?}"));
}

#[test]
fn dynamodb_hides_the_secret_key_and_the_owner() {
    dynamodb_secrets(Level::DEBUG);
}

// At TRACE the AWS SDK logs request and response bodies, which carry the
// owner id (documented in verrou-dynamodb's README), so only DEBUG and above
// are checked.

fn dynamodb_secrets(level: Level) {
    let (ran, log) = traced_at(level, || {
        runtime().block_on(async {
            for endpoint in ["http://127.0.0.1:1", "https://127.0.0.1:1", "not a url"] {
                let options = DynamoDbStore::builder()
                    .endpoint(endpoint)
                    .region("us-east-1")
                    .credentials("AKIDEXAMPLE", SECRET)
                    .operation_timeout(Some(Duration::from_secs(2)))
                    .connect_timeout(Duration::from_secs(1));
                assert_clean("Debug of the options", &format!("{options:?}"));
                assert_error_clean(&format!("dynamodb at {endpoint}"), options.build().await);
            }
            let up = DynamoDbStore::builder()
                .endpoint("http://127.0.0.1:8000")
                .region("us-east-1")
                .credentials("AKIDEXAMPLE", SECRET)
                .build()
                .await;
            let Some(store) = require_service("dynamodb", up) else {
                return false;
            };
            assert_clean("Debug of the store", &format!("{store:?}"));
            owner_stays_secret(store, "dynamodb").await;
            true
        })
    });
    assert_traced_clean(ran, &log);
}

#[test]
fn sqlite_and_memory_hide_the_owner() {
    let store = runtime().block_on(SqliteStore::open_in_memory()).unwrap();
    assert_clean("Debug of the store", &format!("{store:?}"));
    owner_check("sqlite", store);
    owner_check("memory", verrou_memory::MemoryStore::new());
}
