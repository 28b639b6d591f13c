//! Scenarios that more than one test runs, each on a store built its own way
//! (on the store's own pool, on a sqlx pool, over TLS). What differs comes in
//! as arguments: the store's builder (or the built stores), the sessions
//! that inspect and block on the server, the names; what happens and what is
//! checked is written once, here.

use std::time::{Duration, Instant};

use verrou_core::{Acquisition, Expiry, LockError, LockStore, ReleaseWatch};
use verrou_postgres::tokio_postgres::Client;
use verrou_postgres::{PostgresStore, PostgresStoreBuilder};
use verrou_testkit::{eventually, unique};

use super::{TTL, WOKEN_WITHIN, drop_table, kill_sessions, lock_row_on};

/// `holder` takes `key` as `owner`, `waiter` watches it, and `holder`'s
/// release wakes that watch within [`WOKEN_WITHIN`]; `unheard` is the
/// failure when it does not.
pub async fn a_release_wakes_the_watch(
    holder: &PostgresStore,
    waiter: &PostgresStore,
    key: &str,
    owner: &str,
    unheard: &str,
) {
    holder.acquire(key, owner, Expiry::Never).await.unwrap();
    let watch = waiter
        .watch_release(key)
        .await
        .unwrap()
        .expect("the waiter's store listens");
    holder.release(key, owner).await.unwrap();
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect(unheard);
}

/// A watch on `key` as soon as `store` offers one: it offers none while
/// its listening session is down. Panics with `what` after `bound`.
pub async fn watch_once_listening(
    store: &PostgresStore,
    key: &str,
    bound: Duration,
    what: &str,
) -> ReleaseWatch {
    let started = Instant::now();
    loop {
        if let Some(watch) = store.watch_release(key).await.unwrap() {
            return watch;
        }
        assert!(started.elapsed() < bound, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store from `builder` on `table`, its sessions named `app`: its
/// listening session is killed from `admin`, the loss wakes every waiter,
/// the session comes back, and a release after that wakes a new watch.
/// Drops `table`.
pub async fn announcements_resume_after_the_listening_session_is_killed(
    builder: PostgresStoreBuilder,
    table: &str,
    app: &str,
    admin: &Client,
) {
    let store = builder.table_name(table).build().await.unwrap();
    let key = unique("key");
    store.acquire(&key, "holder", Expiry::Never).await.unwrap();
    let waiting = store.watch_release(&key).await.unwrap().unwrap();

    assert!(kill_sessions(admin, app).await >= 1);
    // Notifications sent while the session was down are lost, so its loss
    // wakes every waiter (they then look at the lock again).
    tokio::time::timeout(WOKEN_WITHIN, waiting)
        .await
        .expect("waiters were not woken when the listening session died");

    // Once the session is back, watches are offered and releases wake them.
    let watch = watch_once_listening(
        &store,
        &key,
        WOKEN_WITHIN,
        "the listening session did not come back",
    )
    .await;
    // The pool's sessions were killed too: the first call may fail once
    // (sqlx tests idle connections before handing them out).
    if store.release(&key, "holder").await.is_err() {
        store.release(&key, "holder").await.unwrap();
    }
    tokio::time::timeout(WOKEN_WITHIN, watch)
        .await
        .expect("the release after reconnecting was not announced");
    drop_table(admin, table).await;
}

/// Whether a scenario ends by checking that the next call on its store
/// works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextCall {
    /// "b", whose acquire was cut short, then takes the lock and releases
    /// it.
    Works,
    /// Not checked.
    Unchecked,
}

/// A statement stuck on a row lock: a store from `builder` (one
/// connection, its sessions named `app`) on `table`, with a 2 s operation
/// timeout, takes a fresh key with a short lease; `blocker` holds the row
/// locked; once the lease is over, an acquire by "b" waits on the row until
/// the timeout makes it a `Store` error. `observer` then sees the statement
/// cancelled on the server, not left waiting on the row (closing the socket
/// would not stop it), so that once `blocker` rolls back the lock is still
/// "a"'s: the timed-out acquire never applies. Then `next_call`, and
/// `observer` drops `table`.
pub async fn a_stuck_statement_is_cancelled_and_never_applies(
    builder: PostgresStoreBuilder,
    table: &str,
    app: &str,
    observer: &Client,
    blocker: &Client,
    next_call: NextCall,
) {
    let store = builder
        .table_name(table)
        .operation_timeout(Some(Duration::from_secs(2)))
        .build()
        .await
        .unwrap();
    let key = unique("key");
    store
        .acquire(&key, "a", Expiry::After(Duration::from_millis(200)))
        .await
        .unwrap();
    lock_row_on(blocker, table, &key).await;
    eventually("a's lock to expire", Duration::from_secs(10), || async {
        !store.is_locked(&key).await.unwrap()
    })
    .await;
    // b's acquire would take the expired lock, but waits on the row.
    let stuck = tokio::time::timeout(Duration::from_secs(30), store.acquire(&key, "b", TTL))
        .await
        .expect("the operation timeout did not fire");
    assert!(matches!(stuck, Err(LockError::Store { .. })), "{stuck:?}");
    // Cancelled on the server, not left waiting on the row...
    eventually(
        "the timed-out statement to be cancelled",
        Duration::from_secs(10),
        || async {
            let row = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                     AND state <> 'idle'",
                    &[&app],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) == 0
        },
    )
    .await;
    // ...so it does not take the lock once the row is free.
    blocker.batch_execute("ROLLBACK").await.unwrap();
    let owner: Option<String> = observer
        .query_one(
            &format!("SELECT owner FROM \"{table}\" WHERE key = $1"),
            &[&key],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        owner.as_deref(),
        Some("a"),
        "the timed-out acquire took effect"
    );
    if next_call == NextCall::Works {
        assert!(matches!(
            store.acquire(&key, "b", TTL).await.unwrap(),
            Acquisition::Acquired { .. }
        ));
        store.release(&key, "b").await.unwrap();
    }
    drop_table(observer, table).await;
}
