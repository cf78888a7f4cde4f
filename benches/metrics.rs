//! Recording request and store metrics on the hot path: time per record,
//! and proof that it allocates nothing (a counting allocator wraps the
//! system one; the bench refuses to run if a record allocates).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use wafer::error::ErrorCode;
use wafer::http::metrics::RequestMetrics;
use wafer::http::router::Route;
use wafer::metrics::Metrics;
use wafer::store::metrics::{Backend, Op, StoreMetrics};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    f();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

fn record(c: &mut Criterion) {
    let m = Metrics::new();
    let requests = RequestMetrics::register(m.recorder());
    let store = StoreMetrics::register(m.recorder());
    let auth = Route::Auth;
    // Warm up once: the exporter's histogram buffers grow on first use.
    for _ in 0..1_000 {
        requests.record(auth, None, 0.0004);
        store.record(Backend::Redis, Op::Auth, true, Duration::from_micros(300));
    }
    m.upkeep();
    // Labels are pre-resolved, so no record allocates on its own. The
    // exporter's histograms buffer samples in blocks of 64 until upkeep
    // drains them: one block allocation per 64 samples, amortised.
    const N: usize = 10_000;
    let n = allocations_during(|| {
        for i in 0..N {
            requests.record(
                auth,
                (i % 7 == 0).then_some(ErrorCode::SessionInvalid),
                0.0004,
            );
            store.record(Backend::Redis, Op::Auth, true, Duration::from_micros(300));
        }
    });
    let per_record = n as f64 / (2 * N) as f64;
    println!(
        "allocations while recording {N} requests + {N} store ops: {n} ({per_record:.4} per record)"
    );
    assert!(
        per_record <= 1.0 / 32.0,
        "recording allocates per request ({n} allocations for {} records)",
        2 * N
    );

    c.bench_function("metrics/record_request", |b| {
        b.iter(|| requests.record(black_box(auth), None, black_box(0.0004)))
    });
    c.bench_function("metrics/record_store_op", |b| {
        b.iter(|| {
            store.record(
                black_box(Backend::Redis),
                Op::Auth,
                true,
                black_box(Duration::from_micros(300)),
            )
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
