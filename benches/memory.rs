//! Memory per client in the [`InMemoryStore`], measured with a counting global allocator.
//!
//! Builds stores of 10,000 and 1,000,000 JavaScript clients the way the `apikey` bench does
//! (one account, its two default clients, then `create_client` with a generated id and key
//! and a short name), and prints the live heap bytes the store holds divided by the number
//! of clients: the client itself, its id, name and credential digest, and its share of the
//! store's indexes (by id, by key digest, by account), with the hash tables' spare capacity.
//! The figure is what the program asked the allocator for; the allocator's own bookkeeping
//! (about 8 to 16 bytes an allocation with glibc) comes on top.
//!
//! Run with `cargo bench --bench memory`. This is not a Criterion benchmark: it prints one
//! line per store size and fails if the 1,000,000-client figure is over 512 bytes.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use gis_auth::client::{Account, AccountId, ClientSpec, Plan, Role, RoleSet};
use gis_auth::store::InMemoryStore;

/// Counts the bytes live on the heap and the allocations made.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are
// updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout as given to us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes and allocation count of a store of `clients` JavaScript clients.
fn measure(clients: usize) -> (f64, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let store = InMemoryStore::new();
    let made = store
        .open_account(
            Account::new(
                AccountId::new("bench").expect("id"),
                "Bench",
                RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
            )
            .expect("account")
            // As many clients as the bench needs: no cap on the account.
            .with_plan(Plan::default().with_max_clients(None)),
        )
        .expect("created");
    for _ in 1..clients {
        // The plaintext key is returned once and dropped here, as a real caller would.
        store
            .add_client(&made.account.id, ClientSpec::javascript("Web map"))
            .expect("client");
    }
    drop(made);
    let held = LIVE.load(Ordering::Relaxed) - before;
    // Allocations still live are not counted separately; this is how many were made.
    let made_allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let total = store.client_count();
    drop(store);
    (
        held as f64 / total as f64,
        made_allocations as f64 / total as f64,
    )
}

fn main() {
    let mut last = 0.0;
    for clients in [10_000, 1_000_000] {
        let (bytes, allocations) = measure(clients);
        println!(
            "memory/in_memory_store/{clients}: {bytes:.0} bytes per client \
             ({allocations:.1} allocations made per client)"
        );
        last = bytes;
    }
    assert!(
        last <= 512.0,
        "{last:.0} bytes per client is over the 512-byte target"
    );
}
