//! `memory://NAME/...` stores: one in-memory store per name, shared by the
//! whole process, so that several sessions (and tests) see the same data.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use object_store::memory::InMemory;

static STORES: LazyLock<Mutex<HashMap<String, Arc<InMemory>>>> = LazyLock::new(Default::default);

/// Tells this process's memory stores apart from another process's, which
/// share names but not contents.
pub(crate) static PROCESS_NONCE: LazyLock<u64> = LazyLock::new(|| fastrand::u64(..));

/// The in-memory store called `name`, created empty on first use.
pub fn named(name: &str) -> Arc<InMemory> {
    let mut stores = STORES.lock().expect("the registry lock is never held across a panic");
    stores.entry(name.to_string()).or_default().clone()
}
