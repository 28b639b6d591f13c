//! The statements under every setting a user's pool may bring: found-rows on
//! or off, connection reset on or off, any session time zone. And the
//! upsert's atomicity under a crowd of acquirers.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use verrou_core::{Acquisition, Expiry, LockError, LockStore};
use verrou_mysql::{MysqlStore, mysql_async};
use verrou_testkit::{Service, eventually, require_service, unique};

use common::{admin, drop_table, store_on, token};

const TTL: Expiry = Expiry::After(Duration::from_secs(30));

/// A store on a pool built by "the user" with the given driver settings.
async fn store_with(table: &str, opts: mysql_async::OptsBuilder) -> MysqlStore {
    let pool = mysql_async::Pool::new(opts);
    MysqlStore::from_pool(pool)
        .table_name(table)
        .build()
        .await
        .unwrap()
}

fn opts() -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&Service::Mysql.url()).unwrap())
}

/// Acquire, held, re-entry, extend (twice with the same expiry), release,
/// force release, prune, on one store.
async fn exercise(store: &MysqlStore) {
    let key = unique("k");
    let first = token(store.acquire(&key, "a", TTL).await.unwrap());
    assert_eq!(
        store.acquire(&key, "a", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert_eq!(
        store.acquire(&key, "b", TTL).await.unwrap(),
        Acquisition::Held
    );
    // "Never" twice writes the same value: zero changed rows without
    // CLIENT_FOUND_ROWS, yet both extends succeeded.
    store.extend(&key, "a", Expiry::Never).await.unwrap();
    store.extend(&key, "a", Expiry::Never).await.unwrap();
    assert!(matches!(
        store.extend(&key, "b", TTL).await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(matches!(
        store.release(&key, "b").await,
        Err(LockError::NotOwned { .. })
    ));
    store.release(&key, "a").await.unwrap();
    assert!(matches!(
        store.release(&key, "a").await,
        Err(LockError::NotOwned { .. })
    ));
    assert!(!store.is_locked(&key).await.unwrap());
    let second = token(store.acquire(&key, "b", TTL).await.unwrap());
    assert!(second > first);
    store.force_release(&key).await.unwrap();
    store.force_release(&key).await.unwrap();
    let third = token(
        store
            .acquire(&key, "c", Expiry::After(Duration::from_millis(50)))
            .await
            .unwrap(),
    );
    assert!(third > second);
    eventually(
        "the 50 ms lock to expire",
        Duration::from_secs(10),
        || async { !store.is_locked(&key).await.unwrap() },
    )
    .await;
    assert!(matches!(
        store.extend(&key, "c", TTL).await,
        Err(LockError::NotOwned { .. })
    ));
    let fourth = token(store.acquire(&key, "d", TTL).await.unwrap());
    assert!(fourth > third);
    // The prune statement too works under every setting (and leaves the
    // held lock alone).
    store.prune().await.unwrap();
    assert!(store.is_locked(&key).await.unwrap());
}

#[tokio::test]
async fn statements_do_not_depend_on_found_rows_or_connection_reset() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let table = unique("verrou_flags");
    for found_rows in [false, true] {
        for reset in [false, true] {
            let pool_opts = mysql_async::PoolOpts::default().with_reset_connection(reset);
            let store = store_with(
                &table,
                opts().client_found_rows(found_rows).pool_opts(pool_opts),
            )
            .await;
            exercise(&store).await;
        }
    }
    drop_table(&table).await;
}

#[tokio::test]
async fn statements_work_under_unusual_sql_modes() {
    let Some(mut admin) = require_service("mysql", admin().await) else {
        return;
    };
    let table = unique("verrou_modes");
    // SIMULTANEOUS_ASSIGNMENT (MariaDB) changes what later assignments of
    // the upsert see; ANSI turns `"` into an identifier quote; an empty mode
    // is non-strict (truncation instead of errors).
    for mode in [
        "SIMULTANEOUS_ASSIGNMENT",
        "ANSI",
        "",
        "NO_BACKSLASH_ESCAPES,NO_UNSIGNED_SUBTRACTION",
    ] {
        let set = format!("SET SESSION sql_mode = '{mode}'");
        if admin.query_drop(&set).await.is_err() {
            eprintln!("this server has no sql_mode {mode:?}; skipped");
            continue;
        }
        let store = store_with(&table, opts().init(vec![set])).await;
        exercise(&store).await;
    }
    admin.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn expiry_does_not_depend_on_the_session_time_zone() {
    let Some(conn) = require_service("mysql", admin().await) else {
        return;
    };
    conn.disconnect().await.ok();
    let table = unique("verrou_tz");
    // Twenty-four hours apart: a store reading local time as UTC would see
    // the other's locks as long expired, or never expiring.
    let east = store_with(&table, opts().init(vec!["SET time_zone = '+13:00'"])).await;
    let west = store_with(&table, opts().init(vec!["SET time_zone = '-11:00'"])).await;
    let key = unique("k");
    token(east.acquire(&key, "east", TTL).await.unwrap());
    assert_eq!(
        west.acquire(&key, "west", TTL).await.unwrap(),
        Acquisition::Held
    );
    assert!(west.is_locked(&key).await.unwrap());
    east.release(&key, "east").await.unwrap();

    token(
        west.acquire(&key, "west", Expiry::After(Duration::from_millis(300)))
            .await
            .unwrap(),
    );
    assert_eq!(
        east.acquire(&key, "east", TTL).await.unwrap(),
        Acquisition::Held
    );
    eventually(
        "the 300 ms lock to expire for the other zone",
        Duration::from_secs(10),
        || async { !east.is_locked(&key).await.unwrap() },
    )
    .await;
    token(east.acquire(&key, "east", TTL).await.unwrap());

    // The stored expiry is epoch milliseconds by the server's clock.
    let mut conn = admin().await.unwrap();
    let (expires_at, now): (i64, i64) = conn
        .exec_first(
            format!(
                "SELECT expires_at, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) \
                 FROM `{table}` WHERE lock_key = ?"
            ),
            (&key,),
        )
        .await
        .unwrap()
        .unwrap();
    let remaining = expires_at - now;
    assert!(
        (20_000..=30_000).contains(&remaining),
        "a 30 s lock expires in {remaining} ms"
    );
    conn.disconnect().await.ok();
    drop_table(&table).await;
}

#[tokio::test]
async fn a_crowd_racing_for_fresh_keys_gets_one_winner_each_and_distinct_tokens() {
    let table = unique("verrou_crowd");
    let Some(store) = require_service("mysql", store_on(&table).await) else {
        return;
    };
    let mut all_tokens = HashSet::new();
    for round in 0..20 {
        let key = format!("race-{round}");
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let key = key.clone();
                tokio::spawn(async move { store.acquire(&key, &format!("racer-{i}"), TTL).await })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            match racer.await.unwrap().unwrap() {
                Acquisition::Acquired { fencing_token } => winners.push(fencing_token.unwrap()),
                Acquisition::Held => {}
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let first = winners[0];
        // Now a takeover race on the same key after a force release.
        store.force_release(&key).await.unwrap();
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let key = key.clone();
                tokio::spawn(async move { store.acquire(&key, &format!("again-{i}"), TTL).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for racer in racers {
            if let Acquisition::Acquired { fencing_token } = racer.await.unwrap().unwrap() {
                tokens.push(fencing_token.unwrap());
            }
        }
        assert_eq!(tokens.len(), 1, "round {round}");
        assert!(tokens[0] > first, "round {round}: {} <= {first}", tokens[0]);
        all_tokens.insert((key, tokens[0]));
    }
    assert_eq!(all_tokens.len(), 20);
    drop_table(&table).await;
}
