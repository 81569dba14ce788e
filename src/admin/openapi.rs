//! The OpenAPI 3.1 document of the admin API and the token endpoint, generated from the
//! handlers' annotations and the body types.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::schema::{
    ClientList, ErrorBody, MonthlyQuota, NewTileUrl, Profile, Quota, Regenerate, TileUrl, Usage,
    UsageDay,
};
use crate::client::{Action, ClientKind, Restriction, Status};
use crate::document::{
    ClientDocument, ClientPatch, ClientView, CreatedClientView, GrantDocument, NewClient,
    ProfilePatch, RateLimitDocument,
};

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
    /// The roles it carries, when narrowed.
    pub scope: Option<String>,
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

/// The OpenAPI description of the endpoints [`AdminApi`](super::AdminApi) serves, and of
/// the token endpoint.
#[derive(OpenApi)]
#[openapi(
    info(title = "gis-auth account API", description = "Manage an account's clients, read its usage and quota, and exchange client secrets for access tokens."),
    paths(
        super::get_profile, super::patch_profile, super::list_clients, super::create_client,
        super::get_client, super::patch_client, super::delete_client, super::regenerate_client,
        super::get_usage, super::get_quota, super::create_tile_url, token_endpoint,
    ),
    components(schemas(
        ClientDocument, GrantDocument, Action, ClientKind, Status, Restriction,
        RateLimitDocument, ClientView,
        CreatedClientView, ClientList, NewClient, ClientPatch, Regenerate, Profile,
        ProfilePatch, Quota, MonthlyQuota, Usage, UsageDay, ErrorBody, TokenRequest, TokenResponse,
        NewTileUrl, TileUrl,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "account", description = "The caller's account"),
        (name = "clients", description = "The account's clients"),
        (name = "token", description = "Access tokens for NativeConfidential clients"),
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
    }
}

/// The document as JSON (`GET /account/openapi.json`).
pub fn openapi_document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}
