//! Changes to clients and accounts, each observed on the very next request: deactivation,
//! regeneration with and without grace, deletion, expiry on an injected clock; and a store
//! that fails, stalls, or must not be asked at all.
//!
//! One module per topic.

mod changes;
mod regeneration;
mod store;
mod switching_off;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::world::{
    CountingStore, START, World, get, roles, stranger_key, tile, with_key,
};
use async_trait::async_trait;
use gis_auth::RejectionKind;
use gis_auth::client::{Account, AccountId, Client, ClientId, ClientSpec, KeyDigest, Role, Status};
use gis_auth::store::{BackendError, ClientStore};
use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
use time::Duration as Span;
