//! The axum example over real HTTP: a report on a locked account is a 409
//! at once, a transfer waits for the holder and then runs, and a transfer
//! whose wait runs out is a 503 at its deadline.
//!
//! The store is the example's own choice: `LOCK_STORE_URL`, or memory.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use verrou::Verrou;
use verrou_testkit::{eventually, unique};

// The example itself, so that the test drives the code users run; its
// `main` is for `cargo run` only.
#[allow(dead_code)]
#[path = "../examples/axum_service.rs"]
mod axum_service;

use axum_service::{Timing, app, verrou_from_env};

/// A request that takes longer than this is a hang, not a slow machine.
const HANG: Duration = Duration::from_secs(20);

/// The service on an ephemeral port of the loopback, until the test ends.
struct Service {
    addr: SocketAddr,
    verrou: Verrou,
    server: tokio::task::JoinHandle<()>,
}

impl Service {
    async fn start(timing: Timing) -> Service {
        let verrou = verrou_from_env().await.expect("the configured store");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(&verrou, timing);
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the server runs");
        });
        Service {
            addr,
            verrou,
            server,
        }
    }

    /// `POST path` over a fresh connection: the status and the body, and
    /// when the answer arrived.
    async fn post(&self, path: &str) -> Answer {
        let request = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.addr
            );
            stream.write_all(head.as_bytes()).await?;
            // `Connection: close`: the answer ends where the stream does.
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
        };
        let raw = tokio::time::timeout(HANG, request)
            .await
            .unwrap_or_else(|_| panic!("POST {path} hung for {HANG:?}"))
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let arrived = Instant::now();
        let status = raw
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {raw:?}"));
        let body = raw
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        Answer {
            status,
            body,
            arrived,
        }
    }

    /// Until `id`'s account is locked by a request in flight.
    async fn until_locked(&self, id: &str) {
        let lock = self
            .verrou
            .create_lock(format!("account:{id}"), "1s")
            .unwrap();
        eventually("the first request holds the lock", HANG, || async {
            lock.is_locked().await.unwrap()
        })
        .await;
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    arrived: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_on_a_locked_account_is_a_conflict_at_once() {
    let work = Duration::from_secs(2);
    let service = Service::start(Timing {
        work,
        transfer_wait: Duration::from_secs(5),
    })
    .await;
    let id = unique("acct");
    let (transfer, report) = (format!("/transfer/{id}"), format!("/report/{id}"));
    let (first, (asked, conflict)) = tokio::join!(service.post(&transfer), async {
        service.until_locked(&id).await;
        let asked = Instant::now();
        (asked, service.post(&report).await)
    });
    assert_eq!(conflict.status, 409, "{conflict:?}");
    assert!(conflict.body.contains("busy"), "{conflict:?}");
    // It did not wait for the holder: it answered while the holder still
    // worked.
    let took = conflict.arrived - asked;
    assert!(took < work, "the 409 took {took:?}");
    assert!(
        conflict.arrived < first.arrived,
        "the 409 came after the holder was done"
    );

    assert_eq!(first.status, 200, "{first:?}");
    // The holder is done: the account is free for a report again.
    let free = service.post(&report).await;
    assert_eq!(free.status, 200, "{free:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_waits_for_the_holder_then_runs() {
    let work = Duration::from_secs(1);
    let service = Service::start(Timing {
        work,
        transfer_wait: Duration::from_secs(10),
    })
    .await;
    let id = unique("acct");
    let path = format!("/transfer/{id}");
    let (first, second) = tokio::join!(service.post(&path), async {
        service.until_locked(&id).await;
        service.post(&path).await
    });
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(second.status, 200, "{second:?}");
    // The second ran after the first released, for its own `work`, so it
    // answers about `work` after the first (half of it leaves room for a
    // slow answer to the first); without the lock both would have answered
    // within milliseconds of each other.
    let after = second.arrived.saturating_duration_since(first.arrived);
    assert!(
        after >= work / 2,
        "the second transfer answered {after:?} after the first: it did not wait"
    );
    // And it woke promptly, well before its 10 s bound.
    assert!(
        after < work + Duration::from_secs(2),
        "the second transfer answered {after:?} after the first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_whose_wait_runs_out_is_unavailable_at_its_deadline() {
    let work = Duration::from_secs(3);
    let wait = Duration::from_millis(400);
    let service = Service::start(Timing {
        work,
        transfer_wait: wait,
    })
    .await;
    let id = unique("acct");
    let path = format!("/transfer/{id}");
    let (first, (asked, second)) = tokio::join!(service.post(&path), async {
        service.until_locked(&id).await;
        let asked = Instant::now();
        (asked, service.post(&path).await)
    });
    assert_eq!(second.status, 503, "{second:?}");
    let took = second.arrived - asked;
    assert!(
        took >= wait && took < work,
        "the 503 came after {took:?}: not at the {wait:?} deadline"
    );
    assert_eq!(first.status, 200, "{first:?}");
}
