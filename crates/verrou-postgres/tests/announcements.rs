//! Release announcements (`LISTEN`/`NOTIFY`) across stores, and after the
//! listening session is killed.

mod common;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::deadpool_postgres::{Manager, Pool};
use verrou_postgres::tokio_postgres::{Config, NoTls};
use verrou_testkit::{Service, require_service, unique};

use common::scenarios;
use common::{WOKEN_WITHIN, admin, drop_table, url_with_app};

async fn store(url: &str, table: &str) -> PostgresStore {
    PostgresStore::builder()
        .url(url)
        .table_name(table)
        .max_connections(2)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_release_by_another_store_wakes_the_waiter() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_announce");
    let waiter_store = store(&Service::Postgres.url(), &table).await;
    // The releasing side runs on a user's pool: it does not listen, but it
    // still announces.
    let config: Config = Service::Postgres.url().parse().unwrap();
    let pool = Pool::builder(Manager::new(config, NoTls))
        .max_size(1)
        .build()
        .unwrap();
    let holder_store = PostgresStore::from_pool(pool)
        .table_name(&table)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    assert!(holder_store.watch_release(&key).await.unwrap().is_none());

    scenarios::a_release_wakes_the_watch(
        &holder_store,
        &waiter_store,
        &key,
        "holder",
        "the release was not announced",
    )
    .await;

    // Force-release announces too.
    holder_store
        .acquire(&key, "holder", Expiry::Never)
        .await
        .unwrap();
    let watch = waiter_store.watch_release(&key).await.unwrap().unwrap();
    holder_store.force_release(&key).await.unwrap();
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect("the force-release was not announced");
    drop_table(&admin, &table).await;
}

#[tokio::test]
async fn announcements_resume_after_the_listening_session_is_killed() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_relisten");
    let app = unique("verrou_relisten_app");
    scenarios::announcements_resume_after_the_listening_session_is_killed(
        PostgresStore::builder()
            .url(&url_with_app(&app))
            .max_connections(2),
        &table,
        &app,
        &admin,
    )
    .await;
}

#[tokio::test]
async fn announcements_can_be_turned_off() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    let table = unique("verrou_quiet");
    let app = unique("verrou_quiet_app");
    let store = PostgresStore::builder()
        .url(&url_with_app(&app))
        .table_name(&table)
        .max_connections(1)
        .release_announcements(false)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    assert!(store.watch_release(&key).await.unwrap().is_none());
    assert!(matches!(
        store.acquire(&key, "o", Expiry::Never).await.unwrap(),
        Acquisition::Acquired { .. }
    ));
    store.release(&key, "o").await.unwrap();
    // No listening session: only the pooled one exists.
    let sessions: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sessions, 1);
    drop_table(&admin, &table).await;
}
