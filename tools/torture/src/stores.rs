//! How a worker connects to the store under test: every store opens through
//! `verrou_testkit`'s builder shortcuts (the bench's defaults), pointed at
//! the run's server, with the torture's own table or key prefix.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use verrou_core::{Acquisition, LeasePolicy, LockError, LockFactory, LockStore, async_trait};
use verrou_testkit::{Service, StoreKind};

use crate::case::{Case, Target};
use crate::worker::error_chain;

/// The table (or key prefix) the torture uses, apart from the tests' own.
pub const TABLE: &str = "verrou_torture_locks";
/// The Redis key prefix of the torture's locks.
const REDIS_PREFIX: &str = "verrou-torture:";

/// Connects a worker to `case`'s store at `url` (what the runner's
/// [`StoreSetup`](crate::setup::StoreSetup) says); a renewal run's leases
/// renew themselves.
///
/// # Errors
/// A target workers cannot connect to, or a failed connection, displayed.
pub async fn connect(case: Case, url: &str) -> Result<LockFactory, String> {
    let failed = |e: LockError| format!("{}: {}", case.target, error_chain(&e));
    let locks = match case.target {
        Target::Broken => LockFactory::new(BrokenStore::default()),
        Target::VolatileRedis => {
            LockFactory::new(redis(Service::Redis, url).await.map_err(failed)?)
        }
        Target::Store(kind) => match kind {
            StoreKind::Memory => {
                LockFactory::from_arc(verrou_testkit::open(kind).await.map_err(failed)?)
            }
            StoreKind::Sqlite => LockFactory::new(
                verrou_testkit::sqlite(Path::new(url))
                    .table_name(TABLE)
                    .busy_timeout(Duration::from_secs(10))
                    .build()
                    .await
                    .map_err(failed)?,
            ),
            StoreKind::Postgres => LockFactory::new(
                verrou_testkit::postgres()
                    .url(url)
                    .table_name(TABLE)
                    .max_connections(2)
                    .build()
                    .await
                    .map_err(failed)?,
            ),
            StoreKind::Mysql => LockFactory::new(
                verrou_testkit::mysql()
                    .url(url)
                    .table_name(TABLE)
                    .max_connections(2)
                    .build()
                    .await
                    .map_err(failed)?,
            ),
            StoreKind::Redis => LockFactory::new(redis(Service::Redis, url).await.map_err(failed)?),
            StoreKind::RedisCluster => {
                LockFactory::new(redis(Service::RedisCluster, url).await.map_err(failed)?)
            }
            StoreKind::DynamoDb => LockFactory::new(
                // No clock-skew margin: the store's takeover rule (a lease
                // seen unchanged for its whole length) does not compare
                // clocks, and half the workers' clocks run ahead to prove it.
                verrou_testkit::dynamodb()
                    .endpoint(url)
                    .table_name(TABLE)
                    .build()
                    .await
                    .map_err(failed)?,
            ),
            other => return Err(format!("the torture does not run {other}")),
        },
    };
    Ok(match case.mode {
        crate::mode::Mode::Plain => locks,
        crate::mode::Mode::Renewal => locks.with_lease(LeasePolicy::renewing()),
    })
}

/// A Redis store (one server or a cluster, as `service` says) at `url`.
async fn redis(service: Service, url: &str) -> Result<impl LockStore + use<>, LockError> {
    verrou_testkit::redis(service)
        .url(url)
        .prefix(REDIS_PREFIX)
        .build()
        .await
}

/// A store that grants every acquire, held or not, with increasing tokens:
/// the harness's own test that it notices two holders.
#[derive(Debug, Default)]
pub struct BrokenStore {
    token: AtomicU64,
}

#[async_trait]
impl LockStore for BrokenStore {
    async fn acquire(
        &self,
        _: &str,
        _: &str,
        _: verrou_core::Expiry,
    ) -> Result<Acquisition, LockError> {
        Ok(Acquisition::Acquired {
            fencing_token: Some(self.token.fetch_add(1, Ordering::SeqCst) + 1),
        })
    }

    async fn release(&self, _: &str, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn force_release(&self, _: &str) -> Result<(), LockError> {
        Ok(())
    }

    async fn is_locked(&self, _: &str) -> Result<bool, LockError> {
        Ok(false)
    }

    async fn extend(&self, _: &str, _: &str, _: verrou_core::Expiry) -> Result<(), LockError> {
        Ok(())
    }
}
