//! The OpenAPI 3.1 document of the admin API and the token endpoint, generated from the
//! handlers' annotations and the body types.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, ToSchema};

use super::schema::{
    AuditLog, ClientList, ErrorBody, MonthlyQuota, NewTileUrl, Profile, Quota, Regenerate, TileUrl,
    Usage,
};
use crate::client::{Action, ClientKind, Restriction, Status};
use crate::document::{
    ApiUsageView, AuditAction, AuditEntry, AuditOutcome, ClientDocument, ClientPatch, ClientView,
    CreatedClientView, GrantDocument, NewClient, ProfilePatch, RateLimitDocument, SeenNetworkView,
    SeenOriginView, UsageDay,
};
use crate::token::ServerMetadata;

/// The token request (RFC 6749 §4.4, client credentials grant), form-encoded.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Always `client_credentials`.
    pub grant_type: String,
    /// The client's id (or in `Authorization: Basic`).
    pub client_id: Option<String>,
    /// The client's secret (or in `Authorization: Basic`).
    pub client_secret: Option<String>,
    /// Roles to narrow the token to, space-separated.
    pub scope: Option<String>,
    /// A lifetime shorter than the issuer's, in seconds (at least 60; a longer one is
    /// capped to the issuer's).
    #[schema(minimum = 60)]
    pub expires_in: Option<u64>,
}

/// A token endpoint answer (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token (a JWT, `typ` `at+jwt`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The roles it carries, space-separated (always sent).
    pub scope: String,
}

/// An introspection (RFC 7662 §2.1) or revocation (RFC 7009 §2.1) request, form-encoded,
/// with the caller's client authentication as at the token endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct TokenQuery {
    /// The access token asked about.
    pub token: String,
    /// Accepted and not needed: the server issues one kind of token.
    pub token_type_hint: Option<String>,
    /// The caller's client id (or in `Authorization: Basic`).
    pub client_id: Option<String>,
    /// The caller's client secret (or in `Authorization: Basic`).
    pub client_secret: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2): `active`, and for an active token of the
/// caller's account its claims.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token would be accepted now.
    pub active: bool,
    /// The roles it carries, space-separated.
    pub scope: Option<String>,
    /// The client it was issued to.
    pub client_id: Option<String>,
    /// Always `Bearer`.
    pub token_type: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: Option<u64>,
    /// Issue time, seconds since the epoch.
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch.
    pub nbf: Option<u64>,
    /// The client it was issued to.
    pub sub: Option<String>,
    /// The audience.
    pub aud: Option<String>,
    /// The issuer.
    pub iss: Option<String>,
    /// The token's id.
    pub jti: Option<String>,
}

/// A public key of the JWK set (RFC 7517 §4; RFC 8037 for `OKP`, RFC 7518 §6.2 for `EC`).
/// Never a private or symmetric key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicJwk {
    /// The key id: the `kid` header of the tokens it verifies.
    pub kid: String,
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// The public key (`OKP`) or its x coordinate (`EC`), Base64URL.
    pub x: String,
    /// The y coordinate (`EC` only), Base64URL.
    pub y: Option<String>,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    #[schema(rename = "use")]
    pub key_use: String,
}

/// The JWK set (RFC 7517 §5): the keys that verify live tokens, current and in grace.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicJwkSet {
    /// The keys; empty when tokens are signed with HS256 only.
    pub keys: Vec<PublicJwk>,
}

/// Exchanges a NativeConfidential client's id and secret for a bearer access token.
#[utoipa::path(
    post, path = "/oauth/token", tag = "token",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "An invalid request or grant (RFC 6749 §5.2)", body = ErrorBody),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
        (status = 429, description = "Too many failed attempts: retry after `Retry-After`", body = ErrorBody),
    ),
    security((), ("basic" = []))
)]
#[allow(dead_code)]
fn token_endpoint() {}

/// The public keys that verify access tokens (RFC 7517), for resource servers elsewhere.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery",
    responses(
        (status = 200, description = "The JWK set; `Cache-Control: public, max-age=300`", body = PublicJwkSet),
    ),
    security(())
)]
#[allow(dead_code)]
fn jwks_endpoint() {}

/// Whether an access token of the caller's account is active (RFC 7662).
#[utoipa::path(
    post, path = "/oauth/introspect", tag = "token",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "`{\"active\": true, ...claims}` for a token the layer would accept now, of the caller's account; `{\"active\": false}` for any other", body = Introspection),
        (status = 400, description = "An invalid request", body = ErrorBody),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
        (status = 429, description = "Too many failed attempts: retry after `Retry-After`", body = ErrorBody),
    ),
    security((), ("basic" = []))
)]
#[allow(dead_code)]
fn introspection_endpoint() {}

/// Revokes an access token of the caller's account (RFC 7009); 200 for any token.
#[utoipa::path(
    post, path = "/oauth/revoke", tag = "token",
    request_body(content = TokenQuery, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (an unknown, invalid or foreign token)"),
        (status = 400, description = "An invalid request", body = ErrorBody),
        (status = 401, description = "Client authentication failed", body = ErrorBody),
        (status = 429, description = "Too many failed attempts: retry after `Retry-After`", body = ErrorBody),
    ),
    security((), ("basic" = []))
)]
#[allow(dead_code)]
fn revocation_endpoint() {}

/// The authorization server metadata (RFC 8414).
#[utoipa::path(
    get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "The metadata; `Cache-Control: public, max-age=300`", body = ServerMetadata),
    ),
    security(())
)]
#[allow(dead_code)]
fn metadata_endpoint() {}

/// The OpenAPI description of the endpoints [`AdminApi`](super::AdminApi) serves, and of
/// the token endpoint.
#[derive(OpenApi)]
#[openapi(
    info(title = "gis-auth account API", description = "Manage an account's clients, read its usage and quota, and exchange client secrets for access tokens."),
    paths(
        super::get_profile, super::patch_profile, super::list_clients, super::create_client,
        super::get_client, super::patch_client, super::delete_client, super::regenerate_client,
        super::get_usage, super::get_quota, super::get_audit, super::create_tile_url, token_endpoint,
        introspection_endpoint, revocation_endpoint, jwks_endpoint, metadata_endpoint,
    ),
    components(schemas(
        ClientDocument, GrantDocument, Action, ClientKind, Status, Restriction,
        RateLimitDocument, ClientView,
        CreatedClientView, ClientList, NewClient, ClientPatch, Regenerate, Profile,
        ProfilePatch, Quota, MonthlyQuota, Usage, UsageDay, ApiUsageView, SeenOriginView, SeenNetworkView, AuditLog, AuditEntry, AuditAction,
        AuditOutcome, ErrorBody, TokenRequest, TokenResponse,
        PublicJwk, PublicJwkSet, ServerMetadata, TokenQuery, Introspection, NewTileUrl, TileUrl,
    )),
    modifiers(&SecuritySchemes, &CommonAnswers),
    tags(
        (name = "account", description = "The caller's account"),
        (name = "clients", description = "The account's clients"),
        (name = "token", description = "Access tokens for NativeConfidential clients"),
        (name = "discovery", description = "Public documents for resource servers and client libraries"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        // The same bearer token, described as OAuth 2.0 so client generators know how to
        // get one: the client credentials grant at the token endpoint, scopes being roles.
        let scopes = Scopes::from_iter([
            ("User", "The account API: profile, clients, usage and quota"),
            ("Evaluator", "Map services, on evaluation terms"),
            ("Subscriber", "Map services, on subscription terms"),
        ]);
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
                ClientCredentials::new("/oauth/token", scopes),
            )])),
        );
    }
}

/// The server, the `/account` operations' security, and the answers every guarded
/// operation may give besides its own.
struct CommonAnswers;

/// What the auth layer (or the token endpoint) may answer to any request it guards.
const LAYER_ANSWERS: [(&str, &str); 4] = [
    (
        "401",
        "No valid credential (`WWW-Authenticate: Bearer`, RFC 6750)",
    ),
    (
        "403",
        "The credential may not call this operation (role, origin, IP rule, quota)",
    ),
    ("429", "Rate limited: retry after `Retry-After`"),
    (
        "503",
        "A backend failed or ran out of its time budget: retry after `Retry-After`",
    ),
];

fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", content)
            .build(),
    )
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.servers = Some(vec![
            Server::builder()
                .url("/")
                .description(Some("The server this document is served by"))
                .build(),
        ]);
        for (path, item) in &mut openapi.paths.paths {
            let account = path.starts_with("/account");
            let token = path.starts_with("/oauth/");
            for op in operations(item) {
                if account {
                    // A User's NativeConfidential client's bearer token (RFC 6750), got
                    // with the client credentials grant.
                    op.security = Some(vec![
                        SecurityRequirement::new("oauth2", ["User"]),
                        SecurityRequirement::new("bearer", Vec::<String>::new()),
                    ]);
                }
                // The token endpoint authenticates its callers itself and never answers
                // 403 (a refused client is 401 `invalid_client`); the public documents
                // need no credential and are never limited, but may be 503.
                let answers = LAYER_ANSWERS.iter().filter(|(status, _)| {
                    account || (token && *status != "403") || *status == "503"
                });
                for (status, description) in answers {
                    op.responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| error_answer(description));
                }
                if account && path.ends_with("/regenerate") {
                    // The body (a grace period) is optional: no body, no grace.
                    let body = op.request_body.get_or_insert_with(RequestBody::new);
                    body.required = Some(Required::False);
                }
            }
        }
    }
}

/// The document as JSON (`GET /account/openapi.json`).
pub fn openapi_document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}
