//! The layer as a Tower citizen: the principal handed to the handler, credentials removed
//! before it runs, the headers added to its responses, the rejection response and its
//! settings, readiness, and the two ways of mounting it (plain Tower and axum).
//!
//! One module per topic; what they share is here.

mod handler;
mod mounting;
mod rejection;
mod settings;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use axum::extract::{ConnectInfo, Extension};
use axum::{Json, Router, routing};
use bytes::Bytes;
use gis_auth::client::ClientSpec;
use gis_auth::{Principal, Rejection, RejectionKind};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::harness::reply::{Reply, send};
use crate::harness::world::{
    CountingStore, REPLY_CACHE_CONTROL, REPLY_VARY, World, echo, get, stranger_key, tile, with_key,
};
