//! A bounded cache with per-lookup freshness: at most `capacity` entries (the oldest insert
//! goes first), each read only while younger than the age the caller accepts.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry<V> {
    value: V,
    at: Instant,
    seq: u64,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    order: BTreeMap<u64, K>,
    next: u64,
}

/// A bounded, time-aware cache.
#[derive(Debug)]
pub struct Cache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Cache {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                next: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for `key` if it was stored less than `max_age` ago.
    pub fn get(&self, key: &K, max_age: Duration) -> Option<V> {
        let inner = self.lock();
        inner
            .entries
            .get(key)
            .filter(|e| e.at.elapsed() < max_age)
            .map(|e| e.value.clone())
    }

    /// Stores `value`, evicting the oldest entries beyond the capacity.
    pub fn insert(&self, key: K, value: V) {
        let mut inner = self.lock();
        let seq = inner.next;
        inner.next += 1;
        if let Some(old) = inner.entries.insert(
            key.clone(),
            Entry {
                value,
                at: Instant::now(),
                seq,
            },
        ) {
            inner.order.remove(&old.seq);
        }
        inner.order.insert(seq, key);
        while inner.entries.len() > self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
    }

    /// Drops `key`.
    pub fn remove(&self, key: &K) {
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.order.remove(&old.seq);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first_and_fresh_only() {
        let cache = Cache::new(2);
        let long = Duration::from_secs(60);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("a", 3); // refreshes a: b is now the oldest
        cache.insert("c", 4);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"a", long), Some(3));
        assert_eq!(cache.get(&"b", long), None);
        assert_eq!(cache.get(&"c", long), Some(4));
        assert_eq!(cache.get(&"c", Duration::ZERO), None);
        cache.remove(&"c");
        assert_eq!(cache.get(&"c", long), None);
        for i in 0..10_000 {
            cache.insert("x", i);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.lock().order.len(), 2);
    }
}
