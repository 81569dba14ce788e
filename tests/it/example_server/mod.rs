//! The example server (`cargo run --example gis_server`) over HTTP: its routes behind the
//! layer, the clients file, the credential lines it prints and its flags.
//!
//! One module per topic; the demo server and its token verifier are here.

mod browser;
mod clients_file;
mod console;
mod demo;
mod socket;
mod startup;
mod tiles;
mod wms;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use gis_auth::client::{AccountId, ClientId, ClientKind, CredentialKind, PlainCredential, Role};
use gis_auth::clock::ManualClock;
use gis_auth::store::{ClientStore, GeneratedCredential, InMemoryStore};
use gis_auth::token::{TokenVerifier, VerifiedToken, VerifyError};
use gis_auth::{Rejection, RejectionKind};
use http::{Method, Request, StatusCode, header};
use serde_json::Value;
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::app;
use crate::harness::bench;
use crate::harness::reply::{Reply, send};
use crate::harness::request::{bearer, from_peer, get};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Accepts a fixed set of bearer tokens, each standing for one NativeConfidential client,
/// and reads that client from the store as a real verifier would.
struct FixedTokens {
    store: Arc<InMemoryStore>,
    tokens: Vec<(String, ClientId)>,
}

#[async_trait]
impl TokenVerifier for FixedTokens {
    async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let unknown = || VerifyError::Invalid(RejectionKind::UnknownCredential);
        let (_, id) = self
            .tokens
            .iter()
            .find(|(t, _)| t == token)
            .ok_or_else(unknown)?;
        let found = self.store.resolve_id(id).await?.ok_or_else(unknown)?;
        if found.client.kind() != ClientKind::NativeConfidential {
            return Err(unknown());
        }
        Ok(VerifiedToken {
            client: found.client,
            account: found.account,
            scope: None,
        })
    }
}

/// A router over `store` whose bearer tokens are `token-of-<client id>` for each of
/// `native` clients.
fn router_with_tokens(
    store: Arc<InMemoryStore>,
    native: &[&ClientId],
    options: app::Options,
) -> Router {
    let tokens = native
        .iter()
        .map(|id| (token_of(id), (*id).clone()))
        .collect();
    let verifier = FixedTokens {
        store: store.clone(),
        tokens,
    };
    app::router(
        store,
        app::Options {
            token_verifier: Some(Arc::new(verifier)),
            ..options
        },
    )
    .expect("the example's routes are valid")
}

fn token_of(id: &ClientId) -> String {
    format!("token-of-{id}")
}

/// The demo server, with the credentials it printed.
struct Demo {
    router: Router,
    api_key: String,
    javascript: ClientId,
    native: ClientId,
}

fn demo() -> Demo {
    let seeded = app::demo_store().expect("demo store");
    let of_kind = |kind| {
        seeded
            .generated
            .iter()
            .find(|g| g.kind == kind)
            .expect("one default client of each kind")
    };
    let javascript = of_kind(ClientKind::JavaScript);
    let native = of_kind(ClientKind::NativeConfidential).client.clone();
    Demo {
        api_key: javascript.credential.expose().to_owned(),
        javascript: javascript.client.clone(),
        router: router_with_tokens(seeded.store.clone(), &[&native], app::Options::default()),
        native,
    }
}

fn assert_png(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("image/png"));
    assert!(reply.body.starts_with(PNG_SIGNATURE));
}
