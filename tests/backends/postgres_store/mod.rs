//! `PostgresStore` against the PostgreSQL at `DATABASE_URL`: the in-memory store's semantics,
//! preconditions held under concurrency, change notification, and an outage. Each test works
//! in a schema of its own, dropped when it ends.

mod audit;
mod management;
mod notifications;
mod outage;
mod plans;
mod records;
mod revocations;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gis_auth::client::{
    Account, AccountId, Action, ClientId, ClientKind, ClientSpec, Contact, CredentialKind, Grant,
    PlainCredential, RateLimit, Restriction, Role, RoleSet, Status,
};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::document::{ClientDocument, etag};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{
    CachedStore, ClientStore, InMemoryStore, Invalidation, ManageError, ManagedStore,
    NewCredential, PostgresStore, Precondition, RecordKind,
};
use gis_auth::{AuthLayer, ConfigError};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use time::macros::datetime;
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};

use crate::services::eventually;
use crate::services::postgres::Schema;

fn account(id: &str) -> Account {
    Account::new(
        AccountId::new(id).unwrap(),
        "Acme Maps",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )
    .unwrap()
}

fn acme() -> AccountId {
    AccountId::new("acme").unwrap()
}

fn change<F>(f: F) -> gis_auth::store::ClientChange
where
    F: FnOnce(&mut ClientSpec) + Send + 'static,
{
    Box::new(move |spec| {
        f(spec);
        Ok(())
    })
}

fn keep_admin() -> Precondition {
    Precondition {
        keep_admin_access: true,
        ..Precondition::default()
    }
}
