//! Statements abandoned half-way (operation timeout, or the caller dropping
//! the future) are killed on the server.
//!
//! Closing the socket is not enough: the server does not watch the client's
//! socket while a statement waits on a row lock, so an abandoned `UPDATE` or
//! upsert would still run once the lock frees, granting or releasing a lock
//! long after the caller was told the call failed. `KILL` interrupts the wait
//! and rolls the statement back.

use std::time::Duration;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

/// Where the `KILL` is sent from.
#[derive(Clone, Copy)]
pub(crate) enum Killer<'a> {
    /// Another connection of the same `mysql_async` pool.
    Native(&'a Pool),
    /// A connection of its own, opened with a sqlx pool's connect options
    /// (the pool's connections may all be busy; that is no reason to let
    /// the statement run on).
    #[cfg(feature = "sqlx")]
    Sqlx(&'a sqlx::MySqlPool),
}

/// Sends `KILL <id>` from another connection when dropped while armed.
pub(crate) struct KillOnDrop<'a> {
    killer: Killer<'a>,
    connection_id: u64,
    timeout: Duration,
    armed: bool,
}

impl<'a> KillOnDrop<'a> {
    /// Armed: dropping it kills connection `connection_id`.
    pub(crate) fn new(killer: Killer<'a>, connection_id: u64, timeout: Duration) -> Self {
        KillOnDrop {
            killer,
            connection_id,
            timeout,
            armed: true,
        }
    }

    /// The statement finished (successfully or not): nothing to kill.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (id, timeout) = (self.connection_id, self.timeout);
        // Killing one's own user's connections needs no privilege. Best
        // effort: if the server is unreachable, the statement dies with the
        // server's own lock wait timeout or the connection anyway.
        match self.killer {
            Killer::Native(pool) => {
                let pool = pool.clone();
                runtime.spawn(async move {
                    let _ = tokio::time::timeout(timeout, async {
                        let mut conn = pool.get_conn().await?;
                        conn.query_drop(format!("KILL {id}")).await
                    })
                    .await;
                });
            }
            #[cfg(feature = "sqlx")]
            Killer::Sqlx(pool) => {
                use sqlx::{Connection, Executor};

                let options = pool.connect_options();
                runtime.spawn(async move {
                    let _ = tokio::time::timeout(timeout, async {
                        let mut conn = sqlx::MySqlConnection::connect_with(&options).await?;
                        conn.execute(sqlx::AssertSqlSafe(format!("KILL {id}")))
                            .await?;
                        conn.close().await
                    })
                    .await;
                });
            }
        }
    }
}
