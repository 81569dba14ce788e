//! The account console's files (`gis_auth::console::Console`): their content types, the
//! security headers on every answer, refusals included, `404` for any other path (no path
//! leaves the list of files), and `GET`/`HEAD` only.

use gis_auth::console::{CONSOLE_CSP, Console, console_files};
use http::{Method, Request, StatusCode, header};

use crate::harness::reply::{Reply, send};

async fn ask(console: &Console, method: Method, path: &str) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(String::new())
        .expect("a request");
    send(console.clone(), req).await
}

async fn get(path: &str) -> Reply {
    ask(&Console::new(), Method::GET, path).await
}

/// The headers every answer of the console carries, whatever its status.
#[track_caller]
fn assert_guarded(reply: &Reply, what: &str) {
    assert_eq!(
        reply.header(header::CONTENT_SECURITY_POLICY),
        Some(CONSOLE_CSP),
        "{what}"
    );
    assert!(CONSOLE_CSP.starts_with("default-src 'self'; frame-ancestors 'none'"));
    assert!(!CONSOLE_CSP.contains("unsafe"), "nothing weakens it");
    assert_eq!(
        reply.header(header::X_CONTENT_TYPE_OPTIONS),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        reply.header(header::X_FRAME_OPTIONS),
        Some("DENY"),
        "{what}"
    );
    assert_eq!(
        reply.header(header::REFERRER_POLICY),
        Some("no-referrer"),
        "{what}"
    );
}

#[tokio::test]
async fn every_console_file_has_its_content_type_and_the_security_headers() {
    let expected = |name: &str| match name.rsplit_once('.').map_or("html", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        other => panic!("a file of an unexpected type: {other}"),
    };
    let mut seen = 0;
    for name in console_files() {
        let reply = get(&format!("/console/{name}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}");
        assert_eq!(
            reply.header(header::CONTENT_TYPE),
            Some(expected(name)),
            "{name}"
        );
        assert_guarded(&reply, name);
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("no-cache"),
            "{name}"
        );
        assert!(
            reply
                .header(header::ETAG)
                .is_some_and(|t| t.starts_with('"'))
        );
        assert!(!reply.body.is_empty(), "{name}");
        seen += 1;
    }
    assert!(
        seen >= 8,
        "the page, its style, its modules, its icon and config.json"
    );
    let page = get("/console/").await;
    assert_eq!(page.body, get("/console/index.html").await.body);
    for module in ["main.js", "api.js", "clients.js", "usage.js", "dom.js"] {
        assert!(console_files().any(|f| f == module), "{module} is served");
    }
    assert!(
        page.text()
            .contains(r#"<script type="module" src="main.js"></script>"#)
    );
}

#[tokio::test]
async fn unknown_console_paths_are_404_with_the_security_headers() {
    for path in [
        "/console/missing.js",
        "/console/index.htm",
        "/console/MAIN.JS",
        "/console/main.js/",
        "/console/main.js.map",
        "/consoles/",
        "/account/clients",
        "/",
    ] {
        let reply = get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_guarded(&reply, path);
        assert_eq!(
            reply.header(header::CACHE_CONTROL),
            Some("no-store"),
            "{path}"
        );
        assert_eq!(
            reply.header(header::CONTENT_TYPE),
            Some("text/plain; charset=utf-8")
        );
    }
}

#[tokio::test]
async fn no_console_path_reaches_a_file_outside_its_list() {
    for path in [
        "/console/../Cargo.toml",
        "/console/..%2fCargo.toml",
        "/console/%2e%2e/Cargo.toml",
        "/console/%2e%2e%2fsrc%2flib.rs",
        "/console/..%5cCargo.toml",
        "/console//etc/passwd",
        "/console/./index.html",
        "/console/%2findex.html",
        "/console/mod.rs",
        "/console/console/mod.rs",
        "/console/index.html%00.js",
        "/console/%69ndex.html",
    ] {
        let reply = get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_guarded(&reply, path);
        let text = reply.text();
        assert!(
            !text.contains("[package]") && !text.contains("root:") && !text.contains("pub mod"),
            "{path} answered a file: {text}"
        );
    }
}

#[tokio::test]
async fn the_console_answers_get_and_head_only() {
    let console = Console::new();
    let got = ask(&console, Method::GET, "/console/main.js").await;
    let head = ask(&console, Method::HEAD, "/console/main.js").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty(), "HEAD has no body");
    assert_guarded(&head, "HEAD");
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::ETAG] {
        assert_eq!(
            head.header(name.clone()),
            got.header(name.clone()),
            "{name}"
        );
    }
    assert_eq!(
        head.header(header::CONTENT_LENGTH),
        Some(got.body.len().to_string().as_str())
    );
    for method in [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
    ] {
        for path in ["/console/", "/console/main.js", "/console/nothing"] {
            let reply = ask(&console, method.clone(), path).await;
            assert_eq!(
                reply.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(reply.header(header::ALLOW), Some("GET, HEAD"));
            assert_guarded(&reply, path);
        }
    }
}

#[tokio::test]
async fn the_bare_prefix_redirects_to_the_page_and_a_known_etag_is_304() {
    let bare = get("/console").await;
    assert_eq!(bare.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.header(header::LOCATION), Some("/console/"));
    assert_guarded(&bare, "redirect");

    let console = Console::new();
    let first = ask(&console, Method::GET, "/console/console.css").await;
    let tag = first.header(header::ETAG).expect("an ETag").to_owned();
    let again = Request::get("/console/console.css")
        .header(header::IF_NONE_MATCH, format!("\"other\", W/{tag}"))
        .body(String::new())
        .expect("a request");
    let again = send(console.clone(), again).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header(header::ETAG), Some(tag.as_str()));
    assert_guarded(&again, "304");
    let other = ask(&console, Method::GET, "/console/main.js").await;
    assert_ne!(
        other.header(header::ETAG),
        Some(tag.as_str()),
        "one ETag per file"
    );
}

#[tokio::test]
async fn config_names_where_the_page_signs_in_and_manages_clients() {
    let console = Console::new()
        .prefix("/admin/console/")
        .token_endpoint("/auth/token")
        .admin_api("/api/account/");
    let config = ask(&console, Method::GET, "/admin/console/config.json").await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(
        config.json(),
        serde_json::json!({"token_endpoint": "/auth/token", "admin_api": "/api/account"})
    );
    let page = ask(&console, Method::GET, "/admin/console/").await;
    assert_eq!(page.status, StatusCode::OK);
    let old = ask(&console, Method::GET, "/console/").await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "only under its prefix");
    let defaults = get("/console/config.json").await.json();
    assert_eq!(defaults["token_endpoint"], "/oauth/token");
    assert_eq!(defaults["admin_api"], "/account");
}
