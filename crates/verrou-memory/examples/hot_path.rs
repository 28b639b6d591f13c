//! Times the uncontended hot path of the memory store on a current-thread
//! runtime, next to the floor the bench compares it with (a
//! `tokio::sync::Mutex` lock + unlock), and counts heap allocations per
//! operation.
//!
//! ```text
//! cargo run --release -p verrou-memory --example hot_path [iterations]
//! ```
//!
//! A second argument runs only the loops whose name contains it. Under
//! callgrind, pass a smaller count (`valgrind --tool=callgrind
//! target/release/examples/hot_path 100000 handle`). The `herd` loop (1000
//! waiters on one key, one hand-off each) measures what waking costs;
//! `concurrent` alone runs the bench's 64-task workload on two workers
//! instead, and shows whether any task starves the others.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verrou_core::{
    Acquisition, Expiry, LockError, LockFactory, LockStore, ReleaseWatch, RetryPolicy, async_trait,
};
use verrou_memory::MemoryStore;

/// The system allocator, counting allocations (reallocations included):
/// the hot path's allocations are much of its cost.
struct Counting;

/// Counted with a plain load and store, not an atomic add: a locked add
/// per allocation would itself cost as much as a few of the operations
/// measured. The loops that report allocations run on one thread.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn count_allocation() {
    ALLOCATIONS.store(ALLOCATIONS.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The memory store, counting the acquire calls that reach it: each wake-up
/// of a waiter costs one.
struct Counted {
    inner: MemoryStore,
    acquires: AtomicU64,
}

#[async_trait]
impl LockStore for Counted {
    async fn acquire(
        &self,
        key: &str,
        owner: &str,
        expiry: Expiry,
    ) -> Result<Acquisition, LockError> {
        self.acquires.fetch_add(1, Ordering::Relaxed);
        self.inner.acquire(key, owner, expiry).await
    }
    async fn release(&self, key: &str, owner: &str) -> Result<(), LockError> {
        self.inner.release(key, owner).await
    }
    async fn force_release(&self, key: &str) -> Result<(), LockError> {
        self.inner.force_release(key).await
    }
    async fn is_locked(&self, key: &str) -> Result<bool, LockError> {
        self.inner.is_locked(key).await
    }
    async fn extend(&self, key: &str, owner: &str, expiry: Expiry) -> Result<(), LockError> {
        self.inner.extend(key, owner, expiry).await
    }
    async fn watch_release(&self, key: &str) -> Result<Option<ReleaseWatch>, LockError> {
        self.inner.watch_release(key).await
    }
}

/// Time and allocations per iteration of one loop.
struct Measured {
    ns_per_op: f64,
    allocs_per_op: f64,
}

async fn measure<F, Fut>(iterations: u64, mut op: F) -> Measured
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    // Warm up: the map's table and the allocator's caches are sized.
    for i in 0..iterations / 10 {
        op(i).await;
    }
    let allocs = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..iterations {
        op(i).await;
    }
    let elapsed = started.elapsed();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs;
    Measured {
        ns_per_op: elapsed.as_nanos() as f64 / iterations as f64,
        allocs_per_op: allocs as f64 / iterations as f64,
    }
}

fn report(name: &str, measured: &Measured, floor: f64) {
    println!(
        "{name:<48} {:>8.1} ns/op {:>6.2}x floor {:>6.2} allocs/op",
        measured.ns_per_op,
        measured.ns_per_op / floor,
        measured.allocs_per_op
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let only = args.next().unwrap_or_default();
    if only == "concurrent" {
        concurrent();
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(run(iterations, &only));
}

async fn run(iterations: u64, only: &str) {
    let ttl = Expiry::After(Duration::from_secs(30));
    let runs = |name: &str| name.contains(only);
    println!("{iterations} iterations each, current-thread runtime");

    let mutex = tokio::sync::Mutex::new(());
    let floor = measure(iterations, |_| async {
        drop(black_box(mutex.lock().await));
    })
    .await;
    report(
        "floor: tokio::sync::Mutex lock+unlock",
        &floor,
        floor.ns_per_op,
    );
    let floor = floor.ns_per_op;

    let store = MemoryStore::new();
    let name = "store: acquire+release, one key";
    if runs(name) {
        let raw = measure(iterations, |_| async {
            let store: &dyn LockStore = &store;
            black_box(store.acquire("raw", "owner", ttl).await.unwrap());
            store.release("raw", "owner").await.unwrap();
        })
        .await;
        report(name, &raw, floor);
    }

    let name = "store: acquire+release, 1024 keys";
    if runs(name) {
        let keys: Vec<String> = (0..1024).map(|i| format!("bench:raw:{i}")).collect();
        let raw_keys = measure(iterations, |i| {
            let key = &keys[(i % 1024) as usize];
            let store = &store;
            async move {
                let store: &dyn LockStore = store;
                black_box(store.acquire(key, "owner", ttl).await.unwrap());
                store.release(key, "owner").await.unwrap();
            }
        })
        .await;
        report(name, &raw_keys, floor);
    }

    let factory = LockFactory::new(MemoryStore::new());
    let lock = factory.create_lock("hot", "30s").unwrap();
    let name = "handle: acquire+release";
    if runs(name) {
        let handle = measure(iterations, |_| async {
            lock.acquire().await.unwrap();
            lock.release().await.unwrap();
        })
        .await;
        report(name, &handle, floor);
    }

    let name = "handle: try_acquire+release";
    if runs(name) {
        let try_handle = measure(iterations, |_| async {
            assert!(lock.try_acquire().await.unwrap());
            lock.release().await.unwrap();
        })
        .await;
        report(name, &try_handle, floor);
    }

    let name = "fresh: create_lock+acquire+release";
    if runs(name) {
        let fresh = measure(iterations, |i| {
            let factory = &factory;
            async move {
                let lock = factory
                    .create_lock(format!("bench:seq:{i}"), "30s")
                    .unwrap();
                lock.acquire().await.unwrap();
                lock.release().await.unwrap();
            }
        })
        .await;
        report(name, &fresh, floor);
    }

    if runs("herd") {
        herd().await;
    }

    // As the bench's sequential workload times it: a fresh handle per key,
    // only the acquire and the release timed, each one on its own.
    if runs("p50") {
        let mut latencies = Vec::with_capacity(iterations as usize);
        for i in 0..iterations {
            let lock = factory
                .create_lock(format!("bench:p50:{i}"), "30s")
                .unwrap();
            let t0 = Instant::now();
            lock.acquire().await.unwrap();
            lock.release().await.unwrap();
            latencies.push(t0.elapsed());
        }
        let mut floors = Vec::with_capacity(iterations as usize);
        for _ in 0..iterations {
            let t0 = Instant::now();
            drop(black_box(mutex.lock().await));
            floors.push(t0.elapsed());
        }
        latencies.sort_unstable();
        floors.sort_unstable();
        let p50 = latencies[latencies.len() / 2].as_nanos() as f64;
        let floor_p50 = floors[floors.len() / 2].as_nanos() as f64;
        println!(
            "p50 as the bench times it: acquire+release {p50:.0} ns, mutex {floor_p50:.0} ns: {:.2}x",
            p50 / floor_p50
        );
    }
}

/// 1000 waiters on one key (the default retry: a 250 ms poll, no timeout),
/// released once; each takes the lock once and releases it. Reports the
/// time and the store's acquire calls per hand-off.
async fn herd() {
    const WAITERS: u64 = 1000;
    let counted = Arc::new(Counted {
        inner: MemoryStore::new(),
        acquires: AtomicU64::new(0),
    });
    let factory = LockFactory::from_arc(counted.clone())
        .with_retry(RetryPolicy::default().with_timeout(None));
    let gate = factory.create_lock("herd", "30s").unwrap();
    gate.acquire().await.unwrap();
    let tasks: Vec<_> = (0..WAITERS)
        .map(|_| {
            let lock = factory.create_lock("herd", "30s").unwrap();
            tokio::spawn(async move {
                lock.acquire().await.unwrap();
                tokio::task::yield_now().await;
                lock.release().await.unwrap();
            })
        })
        .collect();
    // Every waiter tries, registers its watch and looks again before it
    // sleeps: two acquire calls each.
    while counted.acquires.load(Ordering::Relaxed) < 1 + 2 * WAITERS {
        tokio::task::yield_now().await;
    }
    let before = counted.acquires.load(Ordering::Relaxed);
    let started = Instant::now();
    gate.release().await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = started.elapsed();
    let calls = counted.acquires.load(Ordering::Relaxed) - before;
    println!(
        "herd: {WAITERS} waiters, one hand-off each: {:.2} us per hand-off, {:.1} acquire calls per hand-off",
        elapsed.as_secs_f64() * 1e6 / WAITERS as f64,
        calls as f64 / WAITERS as f64
    );
}

/// As the bench's concurrent workload: 64 tasks on a two-worker runtime,
/// each creating a lock on a fresh key, acquiring and releasing it, for a
/// second. Reports ops/s and the spread of ops between tasks (a task that
/// never yields starves the others on its worker).
fn concurrent() {
    const TASKS: u64 = 64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let factory = LockFactory::new(MemoryStore::new());
        let started = Instant::now();
        let deadline = started + Duration::from_secs(1);
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let factory = factory.clone();
                tokio::spawn(async move {
                    let mut ops = 0u64;
                    while Instant::now() < deadline {
                        let lock = factory.create_lock(format!("c:{task}:{ops}"), "30s").unwrap();
                        lock.acquire().await.unwrap();
                        lock.release().await.unwrap();
                        ops += 1;
                    }
                    ops
                })
            })
            .collect();
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.unwrap());
        }
        let secs = started.elapsed().as_secs_f64();
        let total: u64 = counts.iter().sum();
        counts.sort_unstable();
        println!(
            "concurrent: {TASKS} tasks, 2 workers: {:.0} ops/s over {secs:.2} s; ops per task min {} median {} max {}",
            total as f64 / secs,
            counts[0],
            counts[counts.len() / 2],
            counts[counts.len() - 1]
        );
    });
}
