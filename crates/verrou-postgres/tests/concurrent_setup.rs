//! Many processes starting at once on an empty database.

mod common;

use std::sync::Arc;
use std::time::Duration;

use verrou_core::{Acquisition, Expiry, LockStore};
use verrou_postgres::PostgresStore;
use verrou_postgres::deadpool_postgres::{Manager, Pool};
use verrou_postgres::tokio_postgres::{Config, NoTls};
use verrou_testkit::{Service, require_service, unique};

use common::{admin, drop_table};

const STORES: usize = 8;

/// A pool with one connection already open, so that the builds below race
/// on creating the table rather than on connecting.
async fn warm_pool() -> Pool {
    let config: Config = Service::Postgres.url().parse().unwrap();
    let pool = Pool::builder(Manager::new(config, NoTls))
        .max_size(1)
        .build()
        .unwrap();
    drop(pool.get().await.unwrap());
    pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_stores_created_at_once_on_a_fresh_table_all_work() {
    let Some(admin) = require_service("postgres", admin().await) else {
        return;
    };
    for _ in 0..10 {
        let table = unique("verrou_race");
        let mut pools = Vec::new();
        for _ in 0..STORES {
            pools.push(warm_pool().await);
        }
        let start = Arc::new(tokio::sync::Barrier::new(STORES));
        let builds: Vec<_> = pools
            .into_iter()
            .map(|pool| {
                let (table, start) = (table.clone(), start.clone());
                // Separate tasks, separate pools: like separate processes.
                tokio::spawn(async move {
                    start.wait().await;
                    PostgresStore::from_pool(pool)
                        .table_name(&table)
                        .build()
                        .await
                })
            })
            .collect();
        let mut stores = Vec::new();
        for build in builds {
            stores.push(build.await.unwrap().expect("a concurrent first use failed"));
        }
        // All eight see the same table: exactly one of them gets the lock.
        let key = unique("key");
        let mut winners = 0;
        for (i, store) in stores.iter().enumerate() {
            let ttl = Expiry::After(Duration::from_secs(30));
            if let Acquisition::Acquired { .. } =
                store.acquire(&key, &format!("o{i}"), ttl).await.unwrap()
            {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
        drop_table(&admin, &table).await;
    }
}
