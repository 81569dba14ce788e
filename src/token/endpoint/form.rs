//! Reading the requests of the token, introspection and revocation endpoints: a POST whose
//! body is an `application/x-www-form-urlencoded` form of at most
//! [`MAX_TOKEN_REQUEST_BYTES`], with the client's id and secret by exactly one method (RFC
//! 6749 §2.3.1) — [`ClientForm`], read once for all three. Then the `client_credentials`
//! grant (§4.4.2, [`TokenRequest`]), or the `token` to introspect (RFC 7662 §2.1) or revoke
//! (RFC 7009 §2.1, [`SubmittedToken`]). Nothing here knows a client; what it refuses it
//! refuses for every caller alike.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use percent_encoding::percent_decode_str;

use super::MAX_TOKEN_REQUEST_BYTES;
use super::response::{ClientAuthMethod, ErrorResponse};

/// The client's claimed identity and secret, as sent. No `Debug`: it holds the secret.
pub(super) struct ClientAuth {
    pub(super) method: ClientAuthMethod,
    pub(super) id: String,
    pub(super) secret: String,
}

/// A well-formed token request: who claims to ask, the scope it asks for, and the
/// lifetime it asks for.
pub(super) struct TokenRequest {
    pub(super) auth: ClientAuth,
    pub(super) scope: Option<String>,
    pub(super) expires_in: Option<Duration>,
}

/// The shortest lifetime a token request may ask for in `expires_in`.
pub(super) const MIN_REQUESTED_LIFETIME: Duration = Duration::from_secs(60);

/// A well-formed introspection or revocation request: who asks, about which token. The
/// `token_type_hint` is accepted and not needed: the endpoints know one kind of token.
pub(super) struct SubmittedToken {
    pub(super) auth: ClientAuth,
    pub(super) token: String,
}

/// The form of a request to one of the endpoints, and the Basic credentials of its head.
/// No `Debug`: it holds the secret.
pub(super) struct ClientForm {
    basic: Result<Option<(String, String)>, MalformedBasic>,
    params: Vec<(String, String)>,
}

/// `Authorization: Basic` was sent but cannot be read.
#[derive(Debug, PartialEq, Eq)]
struct MalformedBasic;

impl TokenRequest {
    /// Reads the request's head and form, or the RFC 6749 §5.2 error that refuses it.
    pub(super) async fn read<B>(req: Request<B>) -> Result<Self, ErrorResponse>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let form = ClientForm::read(req).await?;
        match form.param("grant_type") {
            None | Some("") => {
                return Err(ErrorResponse::invalid_request("grant_type is required"));
            }
            Some("client_credentials") => {}
            Some(_) => {
                return Err(ErrorResponse::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "only the client_credentials grant is supported",
                ));
            }
        }
        let expires_in = match form.param("expires_in") {
            None => None,
            Some(value) => Some(requested_lifetime(value).ok_or_else(|| {
                ErrorResponse::invalid_request(
                    "expires_in is a whole number of seconds, at least 60",
                )
            })?),
        };
        Ok(Self {
            scope: form.param("scope").map(str::to_owned),
            expires_in,
            auth: form.client_auth()?,
        })
    }
}

impl SubmittedToken {
    /// Reads the request's head and form: the client's credentials and a non-empty
    /// `token`.
    pub(super) async fn read<B>(req: Request<B>) -> Result<Self, ErrorResponse>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let form = ClientForm::read(req).await?;
        let token = match form.param("token") {
            None | Some("") => return Err(ErrorResponse::invalid_request("token is required")),
            Some(token) => token.to_owned(),
        };
        Ok(Self {
            auth: form.client_auth()?,
            token,
        })
    }
}

impl ClientForm {
    /// Reads the request's head and form, or the RFC 6749 §5.2 error that refuses it.
    pub(super) async fn read<B>(req: Request<B>) -> Result<Self, ErrorResponse>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Some(query) = req.uri().query() {
            let has_credentials = form_urlencoded::parse(query.as_bytes())
                .any(|(k, _)| k == "client_id" || k == "client_secret");
            if has_credentials {
                return Err(ErrorResponse::invalid_request(
                    "client credentials are not accepted in the query string",
                ));
            }
        }
        if !is_form(req.headers()) {
            return Err(ErrorResponse::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let too_large = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > MAX_TOKEN_REQUEST_BYTES as u64);
        if too_large {
            return Err(ErrorResponse::too_large());
        }
        let basic = basic_auth(req.headers());
        let body = match Limited::new(req.into_body(), MAX_TOKEN_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(ErrorResponse::too_large());
            }
            Err(_) => {
                return Err(ErrorResponse::invalid_request(
                    "the request body could not be read",
                ));
            }
        };
        let Some(params) = parse_form(&body) else {
            return Err(ErrorResponse::invalid_request(
                "a parameter appears more than once",
            ));
        };
        Ok(Self { basic, params })
    }

    /// The value of the parameter `name`.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// The client's claimed identity, sent by exactly one method.
    pub(super) fn client_auth(self) -> Result<ClientAuth, ErrorResponse> {
        client_auth(self.basic, &self.params)
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Exactly one authentication method.
fn client_auth(
    basic: Result<Option<(String, String)>, MalformedBasic>,
    params: &[(String, String)],
) -> Result<ClientAuth, ErrorResponse> {
    let body_id = param(params, "client_id");
    let body_secret = param(params, "client_secret");
    let Ok(basic) = basic else {
        return Err(ErrorResponse::invalid_client(Some(ClientAuthMethod::Basic)));
    };
    match (basic, body_id, body_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ErrorResponse::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), None, None) => Ok(ClientAuth {
            method: ClientAuthMethod::Basic,
            id,
            secret,
        }),
        (None, Some(id), secret) => Ok(ClientAuth {
            method: ClientAuthMethod::Post,
            id: id.to_owned(),
            secret: secret.unwrap_or_default().to_owned(),
        }),
        (None, None, _) => Err(ErrorResponse::invalid_client(None)),
    }
}

/// A requested `expires_in`: decimal digits only, at least [`MIN_REQUESTED_LIFETIME`]. A
/// value longer than the issuer's lifetime is not an error: the issuer's lifetime caps it,
/// and the response's `expires_in` says what was granted.
fn requested_lifetime(value: &str) -> Option<Duration> {
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = Duration::from_secs(value.parse().ok()?);
    (seconds >= MIN_REQUESTED_LIFETIME).then_some(seconds)
}

/// Decodes one application/x-www-form-urlencoded component.
fn form_decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// `Authorization: Basic` credentials, if that is the scheme.
fn basic_auth(headers: &HeaderMap) -> Result<Option<(String, String)>, MalformedBasic> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MalformedBasic);
    }
    let bytes = value.as_bytes();
    let Some(sp) = bytes.iter().position(|&b| b == b' ') else {
        return if bytes.eq_ignore_ascii_case(b"basic") {
            Err(MalformedBasic)
        } else {
            Ok(None)
        };
    };
    if !bytes[..sp].eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let encoded = std::str::from_utf8(&bytes[sp..])
        .map_err(|_| MalformedBasic)?
        .trim();
    let decoded = STANDARD.decode(encoded).map_err(|_| MalformedBasic)?;
    let decoded = String::from_utf8(decoded).map_err(|_| MalformedBasic)?;
    let (id, secret) = decoded.split_once(':').ok_or(MalformedBasic)?;
    Ok(Some((
        form_decode(id).ok_or(MalformedBasic)?,
        form_decode(secret).ok_or(MalformedBasic)?,
    )))
}

/// The form's parameters; `None` when one appears twice.
fn parse_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(body) {
        if params.iter().any(|(seen, _)| *seen == *k) {
            return None;
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    Some(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        assert_eq!(
            basic_auth(&headers(&format!("Basic {encoded}"))),
            Ok(Some(("my client".into(), "s:cret x".into())))
        );
        assert_eq!(basic_auth(&headers("Bearer abc")), Ok(None));
        assert_eq!(basic_auth(&headers("Basic !!!")), Err(MalformedBasic));
        assert_eq!(
            basic_auth(&headers(&format!("Basic {}", STANDARD.encode("nocolon")))),
            Err(MalformedBasic)
        );
        assert_eq!(basic_auth(&headers("Basic")), Err(MalformedBasic));
    }

    #[test]
    fn a_requested_lifetime_is_whole_seconds_from_60() {
        assert_eq!(requested_lifetime("60"), Some(Duration::from_secs(60)));
        assert_eq!(requested_lifetime("0900"), Some(Duration::from_secs(900)));
        assert_eq!(
            requested_lifetime("9999999999"),
            Some(Duration::from_secs(9_999_999_999))
        );
        for bad in [
            "",
            "59",
            "0",
            "-60",
            "+60",
            "60.0",
            "1e3",
            " 60",
            "99999999999",
            "٦٠",
        ] {
            assert_eq!(requested_lifetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(parse_form(b"grant_type=client_credentials&grant_type=x").is_none());
        let p = parse_form(b"grant_type=client_credentials&scope=Evaluator+User").unwrap();
        assert_eq!(param(&p, "scope"), Some("Evaluator User"));
    }
}
