//! A bounded cache of verified tokens, so that the same bearer token sent with
//! every message of an MCP session is checked cryptographically once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::Principal;

/// Verified principals keyed by the SHA-256 of the exact token bytes.
#[derive(Debug)]
pub(super) struct VerifiedTokens {
    capacity: usize,
    entries: RwLock<HashMap<[u8; 32], Principal>>,
    /// The key-set generation the entries were verified under.
    generation: AtomicU64,
}

impl VerifiedTokens {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub(super) fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The principal of a token verified before, if it has not expired since.
    pub(super) fn get(&self, key: &[u8; 32], now: i64, leeway: i64) -> Option<Principal> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(key)
            .filter(|p| p.expires_at().saturating_add(leeway) > now)
            .cloned()
    }

    pub(super) fn insert(&self, key: [u8; 32], principal: Principal, now: i64) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, p| p.expires_at() > now);
            if entries.len() >= self.capacity {
                // Still full of live tokens: start over rather than grow.
                entries.clear();
            }
        }
        entries.insert(key, principal);
    }

    /// Forget everything verified under another key-set generation.
    pub(super) fn sync_generation(&self, generation: u64) {
        if self.generation.swap(generation, Ordering::AcqRel) != generation {
            self.entries
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(exp: i64) -> Principal {
        Principal::new("s", "c", "", "j", exp)
    }

    #[test]
    fn hits_until_expiry_and_stays_bounded() {
        let cache = VerifiedTokens::new(2);
        let k = VerifiedTokens::key("t1");
        cache.insert(k, principal(100), 0);
        assert!(cache.get(&k, 50, 0).is_some());
        assert!(cache.get(&k, 100, 0).is_none());
        assert!(cache.get(&VerifiedTokens::key("t2"), 50, 0).is_none());
        cache.insert(VerifiedTokens::key("t2"), principal(100), 0);
        cache.insert(VerifiedTokens::key("t3"), principal(100), 0);
        assert!(cache.entries.read().unwrap().len() <= 2);
    }

    #[test]
    fn a_new_key_set_generation_empties_the_cache() {
        let cache = VerifiedTokens::new(10);
        let k = VerifiedTokens::key("t");
        cache.sync_generation(1);
        cache.insert(k, principal(100), 0);
        cache.sync_generation(1);
        assert!(cache.get(&k, 0, 0).is_some());
        cache.sync_generation(2);
        assert!(cache.get(&k, 0, 0).is_none());
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = VerifiedTokens::new(0);
        let k = VerifiedTokens::key("t");
        cache.insert(k, principal(100), 0);
        assert!(cache.get(&k, 0, 0).is_none());
    }
}
