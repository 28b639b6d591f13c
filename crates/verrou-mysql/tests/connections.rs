//! Losing connections and starting many stores at once. A call cut short by a
//! killed connection is a `Store` error (never `Held` or `NotOwned`), and the
//! next call works on the same store.

mod common;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, builder, drop_table, scenarios, store_on};

const TTL: Expiry = Expiry::After(Duration::from_secs(60));

/// Whether the server still lists connection `id`.
async fn connection_alive(admin: &mut mysql_async::Conn, id: u64) -> bool {
    let found: Option<u64> = admin
        .exec_first(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?",
            (id,),
        )
        .await
        .unwrap();
    found.is_some()
}

#[tokio::test]
async fn a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works() {
    let Some(admin) = require_service("mysql", admin().await) else {
        return;
    };
    scenarios::a_connection_killed_mid_call_is_a_store_error_and_the_next_call_works(
        builder().max_connections(1),
        &unique("verrou_kill"),
        admin,
    )
    .await;
}

#[tokio::test]
async fn idle_connections_killed_by_the_server_are_replaced() {
    let Some(mut admin) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_idle_kill");
    // Exactly one connection, kept open while idle (the default pool closes
    // idle connections above its minimum of zero now and then, which would
    // race with the KILL below).
    let constraints = mysql_async::PoolConstraints::new(1, 1).unwrap();
    let opts = mysql_async::OptsBuilder::from_opts(
        mysql_async::Opts::from_url(&Service::Mysql.url()).unwrap(),
    )
    .pool_opts(mysql_async::PoolOpts::default().with_constraints(constraints));
    let store = MysqlStore::from_pool(mysql_async::Pool::new(opts))
        .table_name(&table)
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store.acquire(&key, "a", TTL).await.unwrap();

    // With one connection in the pool, this is the one the store uses.
    let id = u64::from(store.pool().unwrap().get_conn().await.unwrap().id());
    admin.query_drop(format!("KILL {id}")).await.unwrap();
    eventually(
        "the killed connection to be gone",
        Duration::from_secs(10),
        || async {
            let mut admin = common::admin().await.unwrap();
            let alive = connection_alive(&mut admin, id).await;
            admin.disconnect().await.ok();
            !alive
        },
    )
    .await;

    // The pool notices the closed socket before handing the connection out.
    assert!(store.is_locked(&key).await.unwrap());
    let now = u64::from(store.pool().unwrap().get_conn().await.unwrap().id());
    assert_ne!(now, id, "a new connection replaced the killed one");
    store.release(&key, "a").await.unwrap();

    admin.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn many_stores_created_at_once_on_a_fresh_table_all_work() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let table = unique("verrou_first_use");
    let starting: Vec<_> = (0..8)
        .map(|_| {
            let table = table.clone();
            tokio::spawn(async move { store_on(&table).await })
        })
        .collect();
    let mut stores: Vec<MysqlStore> = Vec::new();
    for store in starting {
        stores.push(
            store
                .await
                .unwrap()
                .expect("every concurrent build succeeds"),
        );
    }
    // They all share the one table: one lock, seen by all.
    let key = unique("key");
    assert!(matches!(
        stores[0].acquire(&key, "first", TTL).await.unwrap(),
        Acquisition::Acquired {
            fencing_token: Some(_)
        }
    ));
    for store in &stores[1..] {
        assert_eq!(
            store.acquire(&key, "other", TTL).await.unwrap(),
            Acquisition::Held
        );
    }
    drop_table(&table).await;
}

#[tokio::test]
async fn the_store_reuses_its_connections() {
    let table = unique("verrou_reuse");
    let Some(store) = require_service(
        "mysql",
        builder()
            .table_name(&table)
            .max_connections(1)
            .build()
            .await,
    ) else {
        return;
    };
    let key = unique("key");
    store.acquire(&key, "a", TTL).await.unwrap();
    let first = store.pool().unwrap().get_conn().await.unwrap().id();
    for _ in 0..20 {
        store.extend(&key, "a", TTL).await.unwrap();
        assert!(store.is_locked(&key).await.unwrap());
    }
    // One connection did it all: no connect-and-login per operation.
    let last = store.pool().unwrap().get_conn().await.unwrap().id();
    assert_eq!(first, last);
    drop_table(&table).await;
}

#[tokio::test]
async fn a_statement_abandoned_on_timeout_or_cancel_is_killed_and_never_applies() {
    let Some(admin) = require_service("mysql", admin().await) else {
        return;
    };
    admin.disconnect().await.ok();
    scenarios::a_statement_abandoned_on_timeout_or_cancel_is_killed_and_never_applies(
        builder(),
        &unique("verrou_abandon"),
        || async { common::admin().await.unwrap() },
    )
    .await;
}
