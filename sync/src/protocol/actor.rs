//! Binding Automerge actors to keys.
//!
//! An actor id is 16 bytes: the first 8 are the *key prefix*, SHA-256 over a domain tag and the
//! public key, truncated; the last 8 are the replica's own, drawn once per store. The hub checks
//! the prefix of every change a device sends against the key the device signed with: a device
//! cannot write as another. The random half keeps two stores of one device (a bus restored from
//! a backup, a reinstalled node) from ever sharing an actor, which Automerge forbids. Finding a
//! key whose prefix matches another device's is a second-preimage search over 64 bits.

use automerge::ActorId;
use sha2::{Digest, Sha256};

const ACTOR_DOMAIN: &[u8] = b"busloket-actor-v1\0";
const PREFIX_LEN: usize = 8;

/// The first half of every actor bound to `public_key` (the raw Ed25519 key of a device, the
/// SubjectPublicKeyInfo of the hub's certificate).
pub fn key_prefix(public_key: &[u8]) -> [u8; PREFIX_LEN] {
    let digest = Sha256::new()
        .chain_update(ACTOR_DOMAIN)
        .chain_update(public_key)
        .finalize();
    let mut prefix = [0u8; PREFIX_LEN];
    prefix.copy_from_slice(&digest[..PREFIX_LEN]);
    prefix
}

/// The actor of one replica bound to `public_key`; `replica` is its own random half.
pub fn bound_actor(public_key: &[u8], replica: [u8; 8]) -> ActorId {
    let mut bytes = [0u8; 16];
    bytes[..PREFIX_LEN].copy_from_slice(&key_prefix(public_key));
    bytes[PREFIX_LEN..].copy_from_slice(&replica);
    ActorId::from(bytes)
}

/// Whether `actor` is bound to `public_key`.
pub fn actor_is_bound(actor: &ActorId, public_key: &[u8]) -> bool {
    let bytes = actor.to_bytes();
    bytes.len() == 16 && bytes[..PREFIX_LEN] == key_prefix(public_key)
}
