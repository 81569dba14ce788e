//! The account console: a web page where an account holder signs in with a
//! NativeConfidential client's id and secret and manages the account's clients through the
//! [admin API](crate::admin), with a usage chart and a quota gauge.
//!
//! [`Console`] is a Tower service that serves the page's files, which are compiled into the
//! crate (HTML, CSS and plain JavaScript modules; nothing is fetched from elsewhere and
//! nothing is built at run time). Mount it at `/console` on the origin that serves the admin
//! API and the token endpoint, outside the [`AuthLayer`](crate::AuthLayer) (the files are
//! public; what the page does with them needs a token):
//!
//! | Path | What |
//! |---|---|
//! | `/console` | `308` to `/console/` |
//! | `/console/`, `/console/index.html` | the page |
//! | `/console/console.css`, `/console/*.js`, `/console/icon.svg` | its style, modules and icon |
//! | `/console/config.json` | where the page finds the token endpoint and the admin API |
//!
//! Every answer, refusals included, carries `Content-Security-Policy: default-src 'self';
//! frame-ancestors 'none'; base-uri 'none'; form-action 'none'` (the page has no inline
//! script or style and calls only its own origin), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY` and
//! `Cross-Origin-Opener-Policy: same-origin`. Files are `Cache-Control: no-cache` with a
//! strong `ETag` (a matching `If-None-Match` is `304`), so a browser revalidates and never
//! runs modules of two versions together. Only `GET` and `HEAD` are answered (`405`
//! otherwise); a path that names none of the files is `404`: names are looked up in the
//! fixed list, so no path reaches a file system.
//!
//! The page keeps the access token in a JavaScript variable only (never in storage or a
//! cookie) and forgets the secret once it is exchanged; a `401` from the admin API asks the
//! holder to sign in again.
//!
//! ```
//! use gis_auth::console::Console;
//! use http::{Request, StatusCode, header};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let console = Console::new();
//! let page = console.clone().oneshot(Request::get("/console/").body(())?).await?;
//! assert_eq!(page.status(), StatusCode::OK);
//! assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
//! assert!(page.headers()[header::CONTENT_SECURITY_POLICY]
//!     .to_str()?.starts_with("default-src 'self'"));
//! let missing = console.oneshot(Request::get("/console/../Cargo.toml").body(())?).await?;
//! assert_eq!(missing.status(), StatusCode::NOT_FOUND);
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, LOCATION, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tower_service::Service;

/// The `Content-Security-Policy` of every answer: scripts, styles, images and requests from
/// the page's own origin only, no framing, no `<base>`, no form submitted by the browser
/// (the page's forms are sent by its script).
pub const CONSOLE_CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `Cross-Origin-Opener-Policy`, which `http` has no constant for.
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// One file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The page's files, by the name after the prefix.
const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: HTML,
        body: include_bytes!("index.html"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("console.css"),
    },
    Asset {
        name: "main.js",
        content_type: JS,
        body: include_bytes!("main.js"),
    },
    Asset {
        name: "api.js",
        content_type: JS,
        body: include_bytes!("api.js"),
    },
    Asset {
        name: "dom.js",
        content_type: JS,
        body: include_bytes!("dom.js"),
    },
    Asset {
        name: "clients.js",
        content_type: JS,
        body: include_bytes!("clients.js"),
    },
    Asset {
        name: "usage.js",
        content_type: JS,
        body: include_bytes!("usage.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("icon.svg"),
    },
];

/// The names of the files the console serves below its prefix (`""` is the page itself),
/// `config.json` included.
pub fn console_files() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|a| a.name).chain(["", CONFIG_NAME])
}

const CONFIG_NAME: &str = "config.json";

/// The strong ETag of `body`: a quoted digest.
fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(26);
    tag.push('"');
    for b in &digest[..12] {
        tag.push_str(&format!("{b:02x}"));
    }
    tag.push('"');
    tag
}

/// The ETags of [`ASSETS`], in order, computed once.
fn asset_etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|a| etag_of(a.body)).collect())
}

/// The console as a Tower service over any request body (it reads none). Plain settings,
/// each set on its own; cloning is cheap.
#[derive(Clone, Debug)]
#[must_use]
pub struct Console {
    settings: Arc<Settings>,
}

#[derive(Clone, Debug)]
struct Settings {
    prefix: String,
    token_endpoint: String,
    admin_api: String,
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

/// `path` with one leading `/` and no trailing one.
fn absolute(path: &str) -> String {
    format!("/{}", path.trim_matches('/'))
}

impl Console {
    /// The console at `/console`, for the token endpoint at `/oauth/token` and the admin
    /// API at `/account` of the same origin.
    pub fn new() -> Self {
        Console {
            settings: Arc::new(Settings {
                prefix: "/console".to_owned(),
                token_endpoint: "/oauth/token".to_owned(),
                admin_api: "/account".to_owned(),
            }),
        }
    }

    /// Where the console is mounted (`/console` by default); requests arrive with it.
    pub fn prefix(mut self, path: &str) -> Self {
        Arc::make_mut(&mut self.settings).prefix = absolute(path);
        self
    }

    /// The path of the token endpoint on the console's origin (`/oauth/token` by default).
    pub fn token_endpoint(mut self, path: &str) -> Self {
        Arc::make_mut(&mut self.settings).token_endpoint = absolute(path);
        self
    }

    /// The path of the admin API on the console's origin (`/account` by default).
    pub fn admin_api(mut self, path: &str) -> Self {
        Arc::make_mut(&mut self.settings).admin_api = absolute(path);
        self
    }

    /// The answer to `method` on `path`, given the request's headers.
    fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            let mut res = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the console is read with GET\n",
            );
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return finish(res, method);
        }
        let prefix = self.settings.prefix.as_str();
        let Some(rest) = path.strip_prefix(prefix) else {
            return finish(not_found(), method);
        };
        let name = match rest {
            "" => {
                let mut res = text(StatusCode::PERMANENT_REDIRECT, "the console is at /\n");
                if let Ok(to) = HeaderValue::try_from(format!("{prefix}/")) {
                    res.headers_mut().insert(LOCATION, to);
                }
                return finish(res, method);
            }
            "/" => "index.html",
            other => match other.strip_prefix('/') {
                Some(name) => name,
                None => return finish(not_found(), method),
            },
        };
        let (content_type, body, tag) = if name == CONFIG_NAME {
            let config = self.config();
            let tag = etag_of(config.as_bytes());
            ("application/json", Bytes::from(config), tag)
        } else {
            match ASSETS.iter().position(|a| a.name == name) {
                Some(i) => (
                    ASSETS[i].content_type,
                    Bytes::from_static(ASSETS[i].body),
                    asset_etags()[i].clone(),
                ),
                None => return finish(not_found(), method),
            }
        };
        let fresh = none_match(headers, &tag);
        let length = body.len();
        let mut res = if fresh {
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res
        } else {
            let mut res = Response::new(Full::new(body));
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
            res
        };
        let h = res.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(tag) = HeaderValue::try_from(tag) {
            h.insert(ETAG, tag);
        }
        finish(res, method)
    }

    /// `config.json`: where the page sends its requests.
    fn config(&self) -> String {
        serde_json::json!({
            "token_endpoint": self.settings.token_endpoint,
            "admin_api": self.settings.admin_api,
        })
        .to_string()
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak tags compare by their opaque part.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn not_found() -> Response<Full<Bytes>> {
    text(StatusCode::NOT_FOUND, "no such console file\n")
}

/// The headers of every answer, and no body for `HEAD` (its `Content-Length` kept).
fn finish(mut res: Response<Full<Bytes>>, method: &Method) -> Response<Full<Bytes>> {
    let h = res.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        CROSS_ORIGIN_OPENER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if method == Method::HEAD {
        *res.body_mut() = Full::default();
    }
    res
}

impl<B> Service<Request<B>> for Console {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.answer(
            req.method(),
            req.uri().path(),
            req.headers(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(name: &str) -> &'static str {
        let asset = ASSETS.iter().find(|a| a.name == name).expect("an asset");
        std::str::from_utf8(asset.body).expect("UTF-8")
    }

    #[test]
    fn the_page_has_no_inline_script_style_or_handler() {
        let html = text_of("index.html").to_ascii_lowercase();
        let mut rest = html.as_str();
        while let Some(at) = rest.find("<script") {
            let tag_end = rest[at..].find('>').expect("a closed tag") + at;
            let tag = &rest[at..tag_end];
            assert!(tag.contains(" src="), "inline script: {tag}");
            assert!(
                rest[tag_end + 1..].starts_with("</script>"),
                "a script with a body"
            );
            rest = &rest[tag_end..];
        }
        assert!(!html.contains("<style"), "an inline style element");
        assert!(!html.contains(" style="), "a style attribute");
        let handler = html.match_indices(" on").any(|(at, _)| {
            let name: String = html[at + 3..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            !name.is_empty() && html[at + 3 + name.len()..].starts_with('=')
        });
        assert!(!handler, "an inline event handler");
        assert!(!html.contains("javascript:"), "a javascript: URL");
        for attribute in ["src=\"", "href=\""] {
            for (at, _) in html.match_indices(attribute) {
                let value = &html[at + attribute.len()..];
                assert!(
                    !value.starts_with("http") && !value.starts_with("//"),
                    "a file from another origin: {}",
                    &value[..value.find('"').unwrap_or(value.len())]
                );
            }
        }
    }

    #[test]
    fn the_scripts_never_evaluate_text_store_secrets_or_write_markup() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            // The one URL a script may name: the SVG namespace, which is no request.
            let js = std::str::from_utf8(asset.body)
                .expect("UTF-8")
                .replace("'http://www.w3.org/2000/svg'", "SVG");
            for banned in [
                "eval(",
                "new Function",
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "localStorage",
                "sessionStorage",
                "indexedDB",
                "document.cookie",
                "setAttribute('style'",
                "http://",
                "https://",
            ] {
                assert!(!js.contains(banned), "{} uses {banned}", asset.name);
            }
        }
    }

    #[test]
    fn the_settings_do_not_depend_on_their_order_and_paths_are_absolute() {
        let one = Console::new().prefix("admin/console/").admin_api("api");
        let other = Console::new().admin_api("/api/").prefix("/admin/console");
        assert_eq!(one.settings.prefix, other.settings.prefix);
        assert_eq!(one.settings.prefix, "/admin/console");
        assert_eq!(one.config(), other.config());
        assert!(one.config().contains("\"/api\""));
    }
}
