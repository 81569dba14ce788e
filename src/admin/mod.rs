//! The admin API: account holders manage their own account's clients over HTTP.
//!
//! [`AdminApi`] is a Tower service to mount under `/account`, behind an
//! [`AuthLayer`](crate::AuthLayer) whose route table names its routes
//! ([`standard_routes`](crate::policy::standard_routes) does). It answers only a
//! NativeConfidential client calling with a bearer token whose roles include `User`, and
//! only about that client's own account: another account's clients are `404`, as unknown
//! ones are.
//!
//! | Route | What |
//! |---|---|
//! | `GET`, `PATCH /account/profile` | the account and its plan (name and contact fields are self-service) |
//! | `GET /account/clients?limit=&cursor=` | `{"clients": [...], "next": cursor or null}`, never a credential |
//! | `POST /account/clients` | a new client (its id assigned); its credential is in the answer, once |
//! | `GET`, `PATCH`, `DELETE /account/clients/{id}` | one client (`ETag`, `If-Match`) |
//! | `POST /account/clients/{id}/regenerate` | a new credential, once (`{"grace_seconds": n}`) |
//! | `GET /account/usage?from=&to=` | per client per day |
//! | `GET /account/quota` | `{"limit", "used", "remaining", "reset"}` |
//! | `GET /account/audit?from=&to=&limit=` | the account's audit log: `{"entries": [...], "more"}` ([`AuditLog`]) |
//! | `POST /account/tile-urls` | a signed tile URL template for a client ([`AdminApi::tile_urls`]) |
//! | `GET /account/openapi.json` | the OpenAPI 3.1 document of these and the token endpoint |
//!
//! Bodies are the [`document`](crate::document)s of the clients file: answers are serialised
//! from them and request bodies parsed with them ([`NewClient`], [`ClientPatch`],
//! [`ProfilePatch`]), the very types the OpenAPI document is generated from. Errors are JSON (`error`, `error_description`, and `field` for invalid
//! input, never quoting the value); a stale `If-Match` is `412` and
//! changes nothing; a change that would leave the account no client able to manage it is
//! `409`. Changes apply on the very next request that uses the client, tokens included.
//!
//! The API is the account holder's, bounded by what the operator set: it refuses (`400`,
//! naming the field) an `id` in a new client, a `shadow` list naming the quota, an empty
//! `roles` list, and more than
//! [`MAX_SELF_SERVICE_ENTRIES`](crate::document::MAX_SELF_SERVICE_ENTRIES) entries in a
//! client's lists. `GET /account/clients` answers a page at a time, by id. Each change
//! checks that the client is the caller's in the same store operation that applies it
//! ([`Precondition::account`]).
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::admin::AdminApi;
//! use gis_auth::store::InMemoryStore;
//! use gis_auth::limits::InMemoryUsageCounter;
//! use gis_auth::{AuthLayer, policy::standard_routes};
//! use http::{Request, StatusCode};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(InMemoryStore::new());
//! let usage = Arc::new(InMemoryUsageCounter::new());
//! let admin = AdminApi::new(store.clone(), usage.clone());
//! let app = AuthLayer::new(store, standard_routes()?).usage_counter(usage).layer(admin);
//!
//! // The OpenAPI document is public; everything else needs a User's bearer token.
//! let spec = app.clone().oneshot(Request::get("/account/openapi.json").body(String::new())?).await?;
//! assert_eq!(spec.status(), StatusCode::OK);
//! let clients = app.oneshot(Request::get("/account/clients").body(String::new())?).await?;
//! assert_eq!(clients.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! ```

mod openapi;
mod reply;
mod schema;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, IF_MATCH};
use http::{HeaderMap, Method, Request, Response};
use http_body::Body as HttpBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use serde::Serialize;
use serde_json::{Map, Value};
use tower_service::Service;

pub use crate::document::UsageDay;
pub use openapi::{
    ApiDoc, Introspection, PublicJwk, PublicJwkSet, TokenQuery, TokenRequest, TokenResponse,
    openapi_document,
};
pub use schema::{
    AuditLog, ClientList, ErrorBody, MonthlyQuota, NewTileUrl, Profile, Quota, Regenerate, TileUrl,
    Usage,
};

use self::reply::{AdminError, Reply};
use crate::client::{ClientId, ClientKind, Role};
use crate::clock::{Clock, SystemClock};
use crate::document::{
    ClientPatch, ClientView, CreatedClientView, FieldError, NewClient, ProfilePatch,
    RateLimitDocument, read,
};
use crate::layer::{CredentialSource, Principal};
use crate::limits::UsageCounter;
use crate::policy::{
    RouteTable, TRANSACTION, TileUrlScope, next_utc_midnight, next_utc_month, transactions,
};
use crate::signed::{DEFAULT_TILE_URL_TTL, TileUrlRequest, TileUrlSigner, mint_tile_template};
use crate::store::{
    AuditQuery, ChangedBy, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE, ManageError, ManagedStore,
    Precondition, RecordKind,
};

/// The largest request body the admin API reads, in bytes.
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

/// The longest range `GET /account/audit` reads, in days.
pub const MAX_AUDIT_DAYS: i64 = 92;

/// The range `GET /account/audit` reads without `from`, in days before `to`.
pub const DEFAULT_AUDIT_DAYS: i64 = 7;

/// The longest range `GET /account/usage` reports, in days.
pub const MAX_USAGE_DAYS: i64 = 92;

/// How many clients a page of `GET /account/clients` lists unless `limit` says otherwise.
pub const DEFAULT_CLIENTS_PAGE: usize = 100;

/// The most clients a page of `GET /account/clients` lists (the largest `limit`).
pub const MAX_CLIENTS_PAGE: usize = 1_000;

/// The admin API as a Tower service: plain settings, each set on its own, so neither the
/// order of the setters nor a clone made before them changes the result. Cloning is cheap
/// (reference counts).
#[derive(Clone)]
#[must_use]
pub struct AdminApi {
    store: Arc<dyn ManagedStore>,
    usage: Arc<dyn UsageCounter>,
    clock: Arc<dyn Clock>,
    prefix: Arc<str>,
    tile_urls: Option<Arc<(TileUrlSigner, RouteTable)>>,
}

impl std::fmt::Debug for AdminApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminApi")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl AdminApi {
    /// The admin API over `store`, reading usage from `usage` (the layer's counter), on the
    /// system clock, under `/account`.
    pub fn new(store: Arc<dyn ManagedStore>, usage: Arc<dyn UsageCounter>) -> Self {
        AdminApi {
            store,
            usage,
            clock: Arc::new(SystemClock),
            prefix: Arc::from("/account"),
            tile_urls: None,
        }
    }

    /// Serves `POST /account/tile-urls`: signed URL templates minted by `signer` for the
    /// tile APIs of `routes` (the layer's route table). Without it that route is `404`.
    pub fn tile_urls(mut self, signer: TileUrlSigner, routes: RouteTable) -> Self {
        self.tile_urls = Some(Arc::new((signer, routes)));
        self
    }

    /// The clock for "today" in usage and quota answers and for expiry in the lock-out
    /// guard (use the layer's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the API is mounted (`/account` by default); requests may arrive with or
    /// without it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into().trim_end_matches('/'));
        self
    }
}

impl<B> Service<Request<B>> for AdminApi
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let api = self.clone();
        Box::pin(async move {
            Ok(match handle(&api, req).await {
                Ok(reply) => reply.into_response(),
                Err(e) => e.into_response(),
            })
        })
    }
}

/// Which resource a path names.
enum Resource {
    Profile,
    Clients,
    Client(String),
    Regenerate(String),
    Usage,
    Quota,
    Audit,
    TileUrls,
    OpenApi,
}

impl Resource {
    fn of(prefix: &str, path: &str) -> Option<Resource> {
        let rest = path.strip_prefix(prefix).unwrap_or(path);
        let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        Some(match segments.as_slice() {
            ["profile"] => Resource::Profile,
            ["clients"] => Resource::Clients,
            ["clients", id] if !id.is_empty() => Resource::Client(decode(id)),
            ["clients", id, "regenerate"] if !id.is_empty() => Resource::Regenerate(decode(id)),
            ["usage"] => Resource::Usage,
            ["quota"] => Resource::Quota,
            ["audit"] => Resource::Audit,
            ["tile-urls"] => Resource::TileUrls,
            ["openapi.json"] => Resource::OpenApi,
            _ => return None,
        })
    }

    fn allow(&self) -> &'static str {
        match self {
            Resource::Profile => "GET, PATCH",
            Resource::Clients => "GET, POST",
            Resource::Client(_) => "GET, PATCH, DELETE",
            Resource::Regenerate(_) | Resource::TileUrls => "POST",
            Resource::Usage | Resource::Quota | Resource::Audit | Resource::OpenApi => "GET",
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

async fn handle<B>(api: &AdminApi, req: Request<B>) -> Result<Reply, AdminError>
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let resource = Resource::of(&api.prefix, req.uri().path())
        .ok_or_else(|| AdminError::not_found("no such admin resource"))?;
    let method = req.method().clone();
    if let Resource::OpenApi = resource {
        return match method {
            Method::GET | Method::HEAD => Ok(Reply::public(openapi_document())),
            _ => Err(AdminError::method_not_allowed(resource.allow())),
        };
    }
    let who = caller(&req)?;
    let if_match = req
        .headers()
        .get(IF_MATCH)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| AdminError::bad_request("If-Match is a list of ETags"))
        })
        .transpose()?;
    let pre = Precondition {
        if_match,
        keep_admin_access: true,
        account: Some(who.account_id().clone()),
        changed_by: changed_by(&who),
    };
    let query = req.uri().query().map(str::to_owned);
    let (parts, body) = req.into_parts();
    match (resource, method) {
        (Resource::Profile, Method::GET) => get_profile(api, &who).await,
        (Resource::Profile, Method::PATCH) => {
            let body = read_json(&parts.headers, body, false).await?;
            patch_profile(api, &who, &body).await
        }
        (Resource::Clients, Method::GET) => list_clients(api, &who, query.as_deref()).await,
        (Resource::Clients, Method::POST) => {
            let body = read_json(&parts.headers, body, false).await?;
            create_client(api, &who, &body).await
        }
        (Resource::Client(id), Method::GET) => get_client(api, &who, &id).await,
        (Resource::Client(id), Method::PATCH) => {
            let body = read_json(&parts.headers, body, false).await?;
            patch_client(api, &who, &id, &pre, &body).await
        }
        (Resource::Client(id), Method::DELETE) => delete_client(api, &id, &pre).await,
        (Resource::Regenerate(id), Method::POST) => {
            let body = read_json(&parts.headers, body, true).await?;
            regenerate_client(api, &who, &id, &pre, &body).await
        }
        (Resource::Usage, Method::GET) => get_usage(api, &who, query.as_deref()).await,
        (Resource::Quota, Method::GET) => get_quota(api, &who).await,
        (Resource::Audit, Method::GET) => get_audit(api, &who, query.as_deref()).await,
        (Resource::TileUrls, Method::POST) => {
            let body = read_json(&parts.headers, body, false).await?;
            create_tile_url(api, &who, &body).await
        }
        (resource, _) => Err(AdminError::method_not_allowed(resource.allow())),
    }
}

/// The caller as the audit log and the lock-out guard see it.
fn changed_by(who: &Principal) -> ChangedBy {
    ChangedBy::Client {
        id: who.client_id().clone(),
        from: who.caller_ip(),
    }
}

/// The authenticated caller, if it may use the admin API.
fn caller<B>(req: &Request<B>) -> Result<Principal, AdminError> {
    let who = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(AdminError::not_behind_layer)?;
    if who.kind() != ClientKind::NativeConfidential || who.source() != CredentialSource::BearerToken
    {
        return Err(AdminError::forbidden(
            "the admin API takes a NativeConfidential client's bearer token, never an API key",
        ));
    }
    if !who.roles().contains(&Role::USER) {
        return Err(AdminError::forbidden("the admin API needs the User role"));
    }
    Ok(who)
}

/// The request body as a JSON object; an empty body is an empty object when `empty_ok`.
async fn read_json<B>(headers: &HeaderMap, body: B, empty_ok: bool) -> Result<Value, AdminError>
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let json = ct.to_str().is_ok_and(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("application/merge-patch+json")
        });
        if !json {
            return Err(AdminError::unsupported_media_type());
        }
    }
    let bytes = match Limited::new(body, MAX_ADMIN_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(AdminError::too_large(MAX_ADMIN_BODY_BYTES));
        }
        Err(_) => return Err(AdminError::bad_request("the body could not be read")),
    };
    json_object(&bytes, empty_ok)
}

/// `bytes` as a JSON object; empty is an empty object when `empty_ok`.
fn json_object(bytes: &[u8], empty_ok: bool) -> Result<Value, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if empty_ok {
            Ok(Value::Object(Map::new()))
        } else {
            Err(AdminError::bad_request("the body is a JSON object"))
        };
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(body @ Value::Object(_)) => Ok(body),
        Ok(_) => Err(AdminError::bad_request("the body is a JSON object")),
        // serde's message could quote the body: give the place only.
        Err(e) => Err(AdminError::bad_request(format!(
            "the body is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

impl From<FieldError> for AdminError {
    fn from(e: FieldError) -> Self {
        AdminError::invalid(e.field(), e.to_string())
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    // The admin API's bodies are plain structs of strings, numbers and lists.
    serde_json::to_value(value).unwrap_or_default()
}

#[utoipa::path(
    get, path = "/account/profile", tag = "account",
    responses(
        (status = 200, description = "The caller's account", body = Profile),
        (status = 401, description = "No valid bearer token", body = ErrorBody),
        (status = 403, description = "Not a User's NativeConfidential client", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_profile(api: &AdminApi, who: &Principal) -> Result<Reply, AdminError> {
    let account = own_account(api, who).await?;
    Ok(Reply::ok(to_json(&Profile::of(&account, who))))
}

#[utoipa::path(
    patch, path = "/account/profile", tag = "account",
    request_body(content = ProfilePatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed account", body = Profile),
        (status = 400, description = "An invalid or non-self-service field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn patch_profile(api: &AdminApi, who: &Principal, body: &Value) -> Result<Reply, AdminError> {
    let patch: ProfilePatch = read(body).map_err(|e| {
        let field = e.field();
        if ProfilePatch::NOT_SELF_SERVICE.contains(&field) {
            AdminError::invalid(
                field,
                format!(
                    "`{field}` is not self-service: the operator changes it (roles, status, \
                     quotas, rate limit, client cap, items and expiry come with the account's \
                     plan)"
                ),
            )
        } else {
            e.into()
        }
    })?;
    let name = patch.name.clone();
    let mut contact = own_account(api, who).await?.contact.clone();
    patch.apply_contact(&mut contact)?;
    let account = api
        .store
        .update_account_by(
            who.account_id(),
            Box::new(move |account| {
                if let Some(name) = name {
                    account.name = name;
                }
                account.contact = contact;
                Ok(())
            }),
            &changed_by(who),
        )
        .await?;
    Ok(Reply::ok(to_json(&Profile::of(&account, who))))
}

/// The caller's account.
async fn own_account(
    api: &AdminApi,
    who: &Principal,
) -> Result<Arc<crate::client::Account>, AdminError> {
    api.store
        .account(who.account_id())
        .await?
        .ok_or_else(|| AdminError::not_found("no such account"))
}

/// The answer to a client that is missing or of another account: the same for both, so it
/// tells nothing about other accounts.
fn no_such_client() -> AdminError {
    AdminError::from(ManageError::NotFound {
        kind: RecordKind::Client,
        id: String::new(),
    })
}

/// The client id a path names; one that cannot be an id is unknown.
fn client_id(id: &str) -> Result<ClientId, AdminError> {
    ClientId::new(id).map_err(|_| no_such_client())
}

/// The client `id` of the caller's account (another account's is unknown).
async fn own_client(
    api: &AdminApi,
    who: &Principal,
    id: &str,
) -> Result<(Arc<crate::client::Client>, Arc<crate::client::Account>), AdminError> {
    let id = client_id(id)?;
    let found = api
        .store
        .resolve_id(&id)
        .await?
        .ok_or_else(no_such_client)?;
    if found.client.account_id() != who.account_id() {
        return Err(no_such_client());
    }
    Ok((found.client, found.account))
}

/// When the clients of `account` were last used. A counter that fails leaves them unknown
/// (`null`) rather than failing the representation: it is logged.
async fn last_used(
    api: &AdminApi,
    account: &crate::client::AccountId,
) -> std::collections::BTreeMap<ClientId, time::OffsetDateTime> {
    api.usage.last_used(account).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "usage counter failed to tell when clients were last used");
        std::collections::BTreeMap::new()
    })
}

/// Where a page of `GET /account/clients` starts and how long it is.
#[derive(Debug, PartialEq, Eq)]
struct Page {
    after: Option<ClientId>,
    limit: usize,
}

impl Page {
    /// `?limit=N&cursor=C`: `limit` from 1 to [`MAX_CLIENTS_PAGE`]
    /// ([`DEFAULT_CLIENTS_PAGE`] when absent), `cursor` the `next` of an earlier page.
    fn of(query: Option<&str>) -> Result<Page, AdminError> {
        let mut page = Page {
            after: None,
            limit: DEFAULT_CLIENTS_PAGE,
        };
        let (mut limit, mut cursor) = (false, false);
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let seen = match &*k {
                "limit" => &mut limit,
                "cursor" => &mut cursor,
                _ => {
                    return Err(AdminError::invalid(
                        &k,
                        format!("`{k}` is not a parameter here"),
                    ));
                }
            };
            if std::mem::replace(seen, true) {
                return Err(AdminError::invalid(&k, format!("`{k}` is given twice")));
            }
            if k == "limit" {
                page.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CLIENTS_PAGE).contains(n))
                    .ok_or_else(|| {
                        AdminError::invalid(
                            "limit",
                            format!("`limit` is a whole number from 1 to {MAX_CLIENTS_PAGE}"),
                        )
                    })?;
            } else {
                page.after = Some(decode_cursor(&v).ok_or_else(|| {
                    AdminError::invalid("cursor", "`cursor` is the `next` of an earlier page")
                })?);
            }
        }
        Ok(page)
    }
}

/// The cursor of the page after the client `last`: its id, base64url-encoded (opaque to
/// callers).
fn encode_cursor(last: &ClientId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_str())
}

fn decode_cursor(cursor: &str) -> Option<ClientId> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    ClientId::new(String::from_utf8(bytes).ok()?).ok()
}

#[utoipa::path(
    get, path = "/account/clients", tag = "clients",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "How many clients a page lists (100 by default, at most 1000)"),
        ("cursor" = Option<String>, Query,
            description = "Where the page starts: the `next` of the page before (opaque)"),
    ),
    responses(
        (status = 200, description = "A page of the account's clients by id, without credentials; `next` is null on the last", body = ClientList),
        (status = 400, description = "A bad `limit` or `cursor`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list_clients(
    api: &AdminApi,
    who: &Principal,
    query: Option<&str>,
) -> Result<Reply, AdminError> {
    let page = Page::of(query)?;
    let account = own_account(api, who).await?;
    // One more than asked tells whether there is a next page.
    let mut clients = api
        .store
        .list_clients_page(
            who.account_id(),
            page.after.as_ref(),
            page.limit.saturating_add(1),
        )
        .await?;
    let next = if clients.len() > page.limit {
        clients.truncate(page.limit);
        clients.last().map(|c| encode_cursor(c.id()))
    } else {
        None
    };
    let used = last_used(api, &account.id).await;
    let list = ClientList {
        clients: clients
            .iter()
            .map(|c| ClientView::of(c, &account).last_used(used.get(c.id()).copied()))
            .collect(),
        next,
    };
    Ok(Reply::ok(to_json(&list)))
}

#[utoipa::path(
    post, path = "/account/clients", tag = "clients",
    request_body(content = NewClient, content_type = "application/json"),
    responses(
        (status = 201, description = "The new client, with its id assigned and its credential shown this once", body = CreatedClientView,
            headers(("ETag" = String, description = "The client's ETag"), ("Location" = String, description = "The client's URL"))),
        (status = 400, description = "Invalid input, naming the field (an `id` included: ids are assigned)", body = ErrorBody),
        (status = 409, description = "The account holds as many clients as its plan allows", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_client(api: &AdminApi, who: &Principal, body: &Value) -> Result<Reply, AdminError> {
    let new = read::<NewClient>(body)?;
    new.check_self_service()?;
    let spec = new.to_spec()?;
    let created = api
        .store
        .create_client_by(who.account_id(), spec, &changed_by(who))
        .await?;
    let account = own_account(api, who).await?;
    let view = CreatedClientView::of(&created.client, &account, &created.credential);
    let location = format!("{}/clients/{}", api.prefix, created.client.id());
    Ok(Reply::created(to_json(&view), location).with_etag(view.view.etag.clone()))
}

/// Mints a signed tile URL template for a client of the caller's account.
#[utoipa::path(
    post, path = "/account/tile-urls", tag = "clients",
    request_body(content = NewTileUrl, content_type = "application/json"),
    responses(
        (status = 201, description = "A signed URL template", body = TileUrl),
        (status = 400, description = "An invalid field (`api`: not a tile API)", body = ErrorBody),
        (status = 404, description = "No such client in this account", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn create_tile_url(
    api: &AdminApi,
    who: &Principal,
    body: &Value,
) -> Result<Reply, AdminError> {
    let Some(tile_urls) = &api.tile_urls else {
        return Err(AdminError::not_found(
            "this server mints no signed tile URLs",
        ));
    };
    let (signer, routes) = &**tile_urls;
    let new = read::<NewTileUrl>(body)?;
    let (client, _) = own_client(api, who, &new.client).await?;
    let ttl = match new.ttl_seconds {
        None => DEFAULT_TILE_URL_TTL,
        Some(seconds) => std::time::Duration::from_secs(seconds),
    };
    let request = TileUrlRequest::new(new.api.clone())
        .scope(
            TileUrlScope::new(new.api)
                .zoom(new.min_zoom, new.max_zoom)
                .items(new.items.unwrap_or_default()),
        )
        .ttl(ttl);
    let made = mint_tile_template(signer, routes, &client, &request)
        .map_err(|e| AdminError::invalid(e.field(), e.reason()))?;
    let answer = TileUrl {
        template: made.template,
        expires_at: made.expires_at,
    };
    Ok(Reply::created_here(to_json(&answer)))
}

#[utoipa::path(
    get, path = "/account/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = ClientView,
            headers(("ETag" = String, description = "The client's ETag"))),
        (status = 404, description = "No such client in this account", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_client(api: &AdminApi, who: &Principal, id: &str) -> Result<Reply, AdminError> {
    let (client, account) = own_client(api, who, id).await?;
    let used = last_used(api, &account.id).await;
    let view = ClientView::of(&client, &account).last_used(used.get(client.id()).copied());
    let tag = view.etag.clone();
    Ok(Reply::ok(to_json(&view)).with_etag(tag))
}

#[utoipa::path(
    patch, path = "/account/clients/{id}", tag = "clients",
    params(
        ("id" = String, Path, description = "The client's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body(content = ClientPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The changed client", body = ClientView,
            headers(("ETag" = String, description = "The client's new ETag"))),
        (status = 400, description = "Invalid input, naming the field", body = ErrorBody),
        (status = 404, description = "No such client in this account", body = ErrorBody),
        (status = 409, description = "The change would lock the account out", body = ErrorBody),
        (status = 412, description = "If-Match does not match: nothing changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn patch_client(
    api: &AdminApi,
    who: &Principal,
    id: &str,
    pre: &Precondition,
    body: &Value,
) -> Result<Reply, AdminError> {
    let id = client_id(id)?;
    let patch: ClientPatch = read(body).map_err(|e| match e.field() {
        "etag" => AdminError::invalid(
            "etag",
            "send the ETag as the If-Match header, not in the body",
        ),
        _ => e.into(),
    })?;
    patch.check_self_service()?;
    // What can be refused without the client is refused before the store is asked; the
    // rest (ownership first, then the kind and the change as a whole) in the one store
    // operation that applies it, to the client as the store holds it, so a change made
    // meanwhile to a field the patch does not name is kept.
    let cannot_change =
        |field: &str| AdminError::invalid(field, format!("a client's `{field}` cannot change"));
    if patch.id.as_ref().is_some_and(|given| *given != id) {
        return Err(cannot_change("id"));
    }
    if patch
        .account
        .as_ref()
        .is_some_and(|a| a != who.account_id())
    {
        return Err(cannot_change("account"));
    }
    patch
        .clone()
        .apply_to(&mut crate::client::ClientSpec::default())?;
    let changed = api
        .store
        .update_client(
            &id,
            pre,
            Box::new(move |spec| {
                if let Some(kind) = patch.kind.filter(|kind| *kind != spec.kind) {
                    return Err(crate::ConfigError::InvalidField {
                        field: "kind",
                        value: kind.to_string(),
                        reason: "a client's kind cannot change",
                    });
                }
                patch.apply_to(spec)
            }),
        )
        .await?;
    let account = own_account(api, who).await?;
    let used = last_used(api, &account.id).await;
    let view = ClientView::of(&changed, &account).last_used(used.get(changed.id()).copied());
    let tag = view.etag.clone();
    Ok(Reply::ok(to_json(&view)).with_etag(tag))
}

#[utoipa::path(
    delete, path = "/account/clients/{id}", tag = "clients",
    params(
        ("id" = String, Path, description = "The client's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on"),
    ),
    responses(
        (status = 204, description = "Deleted: its credentials and tokens stop at once"),
        (status = 404, description = "No such client in this account", body = ErrorBody),
        (status = 409, description = "The deletion would lock the account out", body = ErrorBody),
        (status = 412, description = "If-Match does not match: nothing changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn delete_client(api: &AdminApi, id: &str, pre: &Precondition) -> Result<Reply, AdminError> {
    api.store.delete_client(&client_id(id)?, pre).await?;
    Ok(Reply::no_content())
}

#[utoipa::path(
    post, path = "/account/clients/{id}/regenerate", tag = "clients",
    params(
        ("id" = String, Path, description = "The client's id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body(content = Option<Regenerate>, content_type = "application/json"),
    responses(
        (status = 200, description = "The client with its new credential, shown this once", body = CreatedClientView),
        (status = 404, description = "No such client in this account", body = ErrorBody),
        (status = 412, description = "If-Match does not match: nothing changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn regenerate_client(
    api: &AdminApi,
    who: &Principal,
    id: &str,
    pre: &Precondition,
    body: &Value,
) -> Result<Reply, AdminError> {
    let grace = read::<Regenerate>(body)?.grace()?;
    let (client, credential) = api
        .store
        .regenerate_client(&client_id(id)?, pre, grace)
        .await?;
    let account = own_account(api, who).await?;
    let used = last_used(api, &account.id).await;
    let mut view = CreatedClientView::of(&client, &account, &credential);
    view.view.last_used_at = used.get(client.id()).copied();
    let tag = view.view.etag.clone();
    Ok(Reply::ok(to_json(&view)).with_etag(tag))
}

#[utoipa::path(
    get, path = "/account/usage", tag = "account",
    params(
        ("from" = Option<String>, Query, description = "First day, YYYY-MM-DD (UTC; today by default)"),
        ("to" = Option<String>, Query, description = "Last day, YYYY-MM-DD (UTC; today by default)"),
    ),
    responses(
        (status = 200, description = "Requests, transactions and refusals per client per day", body = Usage),
        (status = 400, description = "A bad date or range", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_usage(
    api: &AdminApi,
    who: &Principal,
    query: Option<&str>,
) -> Result<Reply, AdminError> {
    let today = api.clock.now().to_offset(time::UtcOffset::UTC).date();
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    if let Some((k, _)) = params.iter().find(|(k, _)| k != "from" && k != "to") {
        return Err(AdminError::invalid(
            k,
            format!("`{k}` is not a parameter here"),
        ));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = |name: &str| -> Result<time::Date, AdminError> {
        let mut values = params.iter().filter(|(k, _)| k == name);
        let first = values.next();
        if values.next().is_some() {
            return Err(AdminError::invalid(
                name,
                format!("`{name}` is given twice"),
            ));
        }
        match first {
            None => Ok(today),
            Some((_, s)) => time::Date::parse(s, format).map_err(|_| {
                AdminError::invalid(name, format!("`{name}` is a date as YYYY-MM-DD"))
            }),
        }
    };
    let (from, to) = (date("from")?, date("to")?);
    if from > to {
        return Err(AdminError::invalid("from", "`from` is after `to`"));
    }
    if (to - from).whole_days() >= MAX_USAGE_DAYS {
        return Err(AdminError::invalid(
            "to",
            format!("a range covers at most {MAX_USAGE_DAYS} days"),
        ));
    }
    let rows = api
        .usage
        .usage(who.account_id(), from, to)
        .await
        .map_err(AdminError::from)?;
    let day = |d: time::Date| d.format(format).unwrap_or_default();
    let usage = Usage {
        account_id: who.account_id().to_string(),
        from: day(from),
        to: day(to),
        days: rows
            .iter()
            .map(crate::limits::DailyUsage::document)
            .collect(),
    };
    Ok(Reply::ok(to_json(&usage)))
}

/// The range and page of `GET /account/audit`.
#[derive(Debug, PartialEq, Eq)]
struct AuditRange {
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    limit: usize,
}

impl AuditRange {
    /// `?from=&to=&limit=` read at `now`: `from` and `to` are RFC 3339 instants or
    /// YYYY-MM-DD dates (UTC; a `from` date is its first instant, a `to` date includes its
    /// whole day); `to` defaults to the end of today, `from` to [`DEFAULT_AUDIT_DAYS`] days
    /// before `to`; the range covers at most [`MAX_AUDIT_DAYS`] days; `limit` is from 1 to
    /// [`MAX_AUDIT_PAGE`] ([`DEFAULT_AUDIT_PAGE`] when absent).
    fn of(query: Option<&str>, now: time::OffsetDateTime) -> Result<AuditRange, AdminError> {
        let params: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let one = |name: &str| -> Result<Option<&str>, AdminError> {
            let mut values = params.iter().filter(|(k, _)| k == name);
            let first = values.next().map(|(_, v)| v.as_str());
            if values.next().is_some() {
                return Err(AdminError::invalid(
                    name,
                    format!("`{name}` is given twice"),
                ));
            }
            Ok(first)
        };
        if let Some((k, _)) = params
            .iter()
            .find(|(k, _)| !["from", "to", "limit"].contains(&k.as_str()))
        {
            return Err(AdminError::invalid(
                k,
                format!("`{k}` is not a parameter here"),
            ));
        }
        let instant = |name: &str,
                       end_of_day: bool|
         -> Result<Option<time::OffsetDateTime>, AdminError> {
            let Some(text) = one(name)? else {
                return Ok(None);
            };
            let bad = || {
                AdminError::invalid(
                    name,
                    format!(
                        "`{name}` is an RFC 3339 time (2026-06-01T12:00:00Z) or a date (2026-06-01)"
                    ),
                )
            };
            if let Ok(at) =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            {
                return Ok(Some(at.to_offset(time::UtcOffset::UTC)));
            }
            let format = time::macros::format_description!("[year]-[month]-[day]");
            let date = time::Date::parse(text, format).map_err(|_| bad())?;
            let date = if end_of_day {
                date.next_day().ok_or_else(bad)?
            } else {
                date
            };
            Ok(Some(date.midnight().assume_utc()))
        };
        let to = match instant("to", true)? {
            Some(to) => to,
            None => next_utc_midnight(now),
        };
        let from = match instant("from", false)? {
            Some(from) => from,
            None => to - time::Duration::days(DEFAULT_AUDIT_DAYS),
        };
        if from >= to {
            return Err(AdminError::invalid("from", "`from` is not before `to`"));
        }
        if to - from > time::Duration::days(MAX_AUDIT_DAYS) {
            return Err(AdminError::invalid(
                "to",
                format!("a range covers at most {MAX_AUDIT_DAYS} days"),
            ));
        }
        let limit = match one("limit")? {
            None => DEFAULT_AUDIT_PAGE,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_AUDIT_PAGE).contains(n))
                .ok_or_else(|| {
                    AdminError::invalid(
                        "limit",
                        format!("`limit` is a whole number from 1 to {MAX_AUDIT_PAGE}"),
                    )
                })?,
        };
        Ok(AuditRange { from, to, limit })
    }
}

/// The caller's account's audit log: its own entries only.
#[utoipa::path(
    get, path = "/account/audit", tag = "account",
    params(
        ("from" = Option<String>, Query, description = "The first instant (RFC 3339) or day (YYYY-MM-DD, UTC) included; 7 days before `to` by default"),
        ("to" = Option<String>, Query, description = "The end: an instant (RFC 3339, excluded) or a day (YYYY-MM-DD, included); the end of today (UTC) by default; at most 92 days after `from`"),
        ("limit" = Option<usize>, Query, description = "At most this many entries, from 1 to 1000 (100 by default)"),
    ),
    responses(
        (status = 200, description = "The account's changes, oldest first: who, what, the names of the fields, the outcome", body = AuditLog),
        (status = 400, description = "A bad time, range or limit, naming the parameter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn get_audit(
    api: &AdminApi,
    who: &Principal,
    query: Option<&str>,
) -> Result<Reply, AdminError> {
    let range = AuditRange::of(query, api.clock.now())?;
    let query = AuditQuery::new(range.from, range.to)
        .account(who.account_id().clone())
        .limit(range.limit + 1);
    let mut entries = api.store.audit(&query).await?;
    let more = entries.len() > range.limit;
    entries.truncate(range.limit);
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let log = AuditLog {
        account_id: who.account_id().to_string(),
        from: rfc3339(range.from),
        to: rfc3339(range.to),
        entries,
        more,
    };
    Ok(Reply::ok(to_json(&log)))
}

#[utoipa::path(
    get, path = "/account/quota", tag = "account",
    responses((status = 200, description = "Today's quota and this month's (UTC)", body = Quota)),
    security(("bearer" = []))
)]
async fn get_quota(api: &AdminApi, who: &Principal) -> Result<Reply, AdminError> {
    let now = api.clock.now().to_offset(time::UtcOffset::UTC);
    let (daily_quota, monthly_quota) = api
        .store
        .account(who.account_id())
        .await?
        .map_or((None, None), |a| (a.plan.daily_quota, a.plan.monthly_quota));
    let used = api.usage.used(who.account_id(), now.date()).await?;
    let rfc3339 = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let remaining = |limit: Option<u64>, used: u64| {
        limit.map(|l| l.saturating_mul(TRANSACTION).saturating_sub(used) / TRANSACTION)
    };
    let monthly = match monthly_quota {
        None => None,
        Some(limit) => {
            let used = api.usage.monthly_used(who.account_id(), now.date()).await?;
            Some(MonthlyQuota {
                limit,
                used: transactions(used),
                remaining: remaining(Some(limit), used).unwrap_or(0),
                reset: rfc3339(next_utc_month(now)),
            })
        }
    };
    let quota = Quota {
        limit: daily_quota,
        used: transactions(used),
        remaining: remaining(daily_quota, used),
        reset: rfc3339(next_utc_midnight(now)),
        monthly,
    };
    Ok(Reply::ok(to_json(&quota)))
}

impl Profile {
    fn of(account: &crate::client::Account, who: &Principal) -> Profile {
        Profile {
            account_id: account.id.to_string(),
            name: account.name.clone(),
            roles: account
                .roles
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            status: account.status,
            daily_quota: account.plan.daily_quota,
            monthly_quota: account.plan.monthly_quota,
            rate_limit: account.plan.rate_limit.map(RateLimitDocument::from),
            max_clients: account.plan.max_clients,
            items: account
                .plan
                .items
                .as_ref()
                .map(|ceiling| ceiling.entries().map(str::to_owned).collect()),
            expires_at: account.plan.expires_at.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            contact_name: account.contact.contact_name.clone(),
            contact_email: account.contact.contact_email.clone(),
            contact_phone: account.contact.contact_phone.clone(),
            client_id: who.client_id().to_string(),
            client_kind: who.kind(),
            authenticated_with: match who.source() {
                CredentialSource::ApiKey => "api_key",
                CredentialSource::ApiKeyHeader => "api_key_header",
                CredentialSource::BearerToken => "bearer_token",
                CredentialSource::SignedUrl => "signed_url",
            }
            .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::limits::InMemoryUsageCounter;
    use crate::store::InMemoryStore;

    const SECRET: &str = "gis_secret_never_to_be_echoed_0123456789";

    fn api() -> AdminApi {
        AdminApi::new(
            Arc::new(InMemoryStore::new()),
            Arc::new(InMemoryUsageCounter::new()),
        )
    }

    fn settings(api: &AdminApi) -> (Arc<dyn Clock>, Arc<str>) {
        (api.clock.clone(), api.prefix.clone())
    }

    #[test]
    fn the_builder_result_does_not_depend_on_the_order_of_its_calls() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
        let one = api().clock(clock.clone()).prefix("/admin/");
        let other = api().prefix("/admin/").clock(clock.clone());
        let ((a_clock, a_prefix), (b_clock, b_prefix)) = (settings(&one), settings(&other));
        assert!(Arc::ptr_eq(&a_clock, &clock) && Arc::ptr_eq(&b_clock, &clock));
        assert_eq!((&*a_prefix, &*b_prefix), ("/admin", "/admin"));
    }

    #[test]
    fn configuring_after_a_clone_never_panics_and_leaves_the_clone_as_it_was() {
        let first = api();
        let copy = first.clone();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
        let changed = first.prefix("/elsewhere").clock(clock.clone());
        assert_eq!(&*changed.prefix, "/elsewhere");
        assert!(Arc::ptr_eq(&changed.clock, &clock));
        assert_eq!(&*copy.prefix, "/account");
        assert!(!Arc::ptr_eq(&copy.clock, &clock));
        // and the clone still configures
        assert_eq!(&*copy.prefix("/x").prefix, "/x");
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_refused_without_echoing_them() {
        for bad in [SECRET.as_bytes(), b"[1, 2]", b"\"x\"", b"{\"a\": "] {
            let err = json_object(bad, false).expect_err("refused");
            assert!(!format!("{err:?}").contains(SECRET));
        }
        assert_eq!(json_object(b"  ", true).ok(), Some(json!({})));
        assert!(json_object(b"", false).is_err());
    }

    #[test]
    fn a_bad_field_is_named_and_its_value_never_quoted() {
        for (body, field) in [
            (json!({"name": "W", "allowed_ips": SECRET}), "allowed_ips"),
            (json!({"name": "W", "api_key": SECRET}), "api_key"),
            (
                json!({"name": "W", "client_secret": SECRET}),
                "client_secret",
            ),
            (json!({"name": "W", "kind": SECRET}), "kind"),
            (json!({"name": "W", "expires_at": SECRET}), "expires_at"),
            (
                json!({"name": "W", "rate_limit": {"per_second": SECRET}}),
                "rate_limit",
            ),
            (json!({"name": [SECRET]}), "name"),
        ] {
            let err = AdminError::from(read::<NewClient>(&body).expect_err("refused"));
            let text = format!("{err:?}");
            assert!(
                text.contains(&format!("field: Some(\"{field}\")")),
                "{text}"
            );
            assert!(!text.contains(SECRET), "{text}");
        }
        let err = read::<ClientPatch>(&json!({"client_secret": SECRET})).expect_err("refused");
        assert_eq!(err.field(), "client_secret");
        assert!(!err.to_string().contains(SECRET));
    }

    #[test]
    fn a_page_is_read_from_limit_and_an_opaque_cursor() {
        let web = ClientId::new("web-1").expect("an id");
        let cursor = encode_cursor(&web);
        assert_ne!(cursor, "web-1", "opaque");
        assert_eq!(decode_cursor(&cursor), Some(web.clone()));
        let page = Page::of(Some(&format!("limit=5&cursor={cursor}"))).expect("valid");
        assert_eq!(
            page,
            Page {
                after: Some(web),
                limit: 5
            }
        );
        assert_eq!(Page::of(None).expect("valid").limit, DEFAULT_CLIENTS_PAGE);
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=x", "limit"),
            ("cursor=%%%", "cursor"),
            ("cursor=web-1&cursor=web-2", "cursor"),
            ("page=2", "page"),
        ] {
            let err = Page::of(Some(query)).expect_err(query);
            assert!(
                format!("{err:?}").contains(&format!("field: Some(\"{field}\")")),
                "{query}: {err:?}"
            );
        }
    }

    #[test]
    fn the_grace_period_is_bounded() {
        let grace = |body| read::<Regenerate>(&body).map(|r| r.grace());
        assert!(matches!(
            grace(json!({"grace_seconds": 99_999_999})),
            Ok(Err(_))
        ));
        assert_eq!(
            grace(json!({"grace_seconds": 60}))
                .ok()
                .and_then(Result::ok),
            Some(Some(time::Duration::minutes(1)))
        );
        assert_eq!(grace(json!({})).ok().and_then(Result::ok), Some(None));
        assert!(grace(json!({"grace": 60})).is_err());
    }
}
