//! The OpenAPI document agrees with what is served.

use super::*;

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_served_account_routes_the_oauth_endpoints_and_the_well_known_documents()
 {
    let server = server();
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("an item").keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = standard_routes()
        .expect("valid")
        .routes()
        .iter()
        .filter(|r| matches!(r.access(), RouteAccess::Api(_)))
        .map(|r| (r.method().to_string(), r.pattern().as_str().to_owned()))
        .filter(|(_, pattern)| pattern.starts_with("/account"))
        .collect();
    for endpoint in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        routed.push(("POST".to_owned(), endpoint.to_owned()));
    }
    routed.extend(
        standard_routes()
            .expect("valid")
            .routes()
            .iter()
            .filter(|r| r.pattern().as_str().starts_with("/.well-known/"))
            .map(|r| (r.method().to_string(), r.pattern().as_str().to_owned())),
    );
    routed.sort();
    assert_eq!(documented, routed);
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    for name in [
        "ClientView",
        "CreatedClientView",
        "NewClient",
        "ClientPatch",
        "ErrorBody",
        "TokenResponse",
    ] {
        assert!(spec["components"]["schemas"][name].is_object(), "{name}");
    }
}

#[tokio::test]
async fn the_documented_token_response_has_the_fields_the_endpoint_sends() {
    let server = server();
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let documented = spec["components"]["schemas"]["TokenResponse"]["properties"]
        .as_object()
        .expect("properties")
        .clone();
    let token = server
        .exchange(
            server.acme.native.client.id().as_str(),
            server.acme.native.credential.expose(),
        )
        .await
        .json();
    for key in token.as_object().expect("an object").keys() {
        assert!(documented.contains_key(key), "{key} is not documented");
    }
}

#[tokio::test]
async fn the_documented_client_list_has_its_paging_parameters_and_fields() {
    let server = server();
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let params: Vec<(&str, &str)> = spec["paths"]["/account/clients"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["in"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(params, [("limit", "query"), ("cursor", "query")]);
    let limit = &spec["paths"]["/account/clients"]["get"]["parameters"][0]["schema"];
    assert_eq!(
        (limit["minimum"].as_u64(), limit["maximum"].as_u64()),
        (Some(1), Some(1000))
    );
    let documented = spec["components"]["schemas"]["ClientList"]["properties"]
        .as_object()
        .expect("properties")
        .clone();
    let token = acme_token(&server).await;
    let list = call(&server, Method::GET, "/account/clients", &token, None)
        .await
        .json();
    let served: Vec<&String> = list.as_object().expect("an object").keys().collect();
    let mut keys: Vec<&String> = documented.keys().collect();
    keys.sort();
    let mut served = served;
    served.sort();
    assert_eq!(keys, served);
    // No `id` in a new client: the server assigns it.
    let new = &spec["components"]["schemas"]["NewClient"]["properties"]["id"]["description"];
    assert!(new.as_str().is_some_and(|d| d.contains("refuses")), "{new}");
}

async fn spec(server: &Server) -> Value {
    server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json()
}

/// The operations of the document: (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("an item") {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                all.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    all
}

#[tokio::test]
async fn the_account_operations_use_the_oauth2_client_credentials_scheme() {
    let server = server();
    let spec = spec(&server).await;
    let scheme = &spec["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    let flow = &scheme["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], "/oauth/token");
    for role in ["User", "Evaluator", "Subscriber"] {
        assert!(flow["scopes"][role].is_string(), "{role} in {flow}");
    }
    assert_eq!(spec["servers"][0]["url"], "/");
    let mut account_ops = 0;
    for (method, path, op) in operations(&spec) {
        if path.starts_with("/account") {
            account_ops += 1;
            assert_eq!(
                op["security"][0],
                json!({"oauth2": ["User"]}),
                "{method} {path}"
            );
        }
    }
    assert_eq!(account_ops, 12);
}

#[tokio::test]
async fn every_operation_documents_the_answers_the_layer_may_give() {
    let server = server();
    let spec = spec(&server).await;
    for (method, path, op) in operations(&spec) {
        let expected: &[&str] = if path.starts_with("/account") {
            &["401", "403", "429", "503"]
        } else if path == "/oauth/token" {
            &["401", "429", "503"]
        } else {
            &["503"]
        };
        for status in expected {
            let answer = &op["responses"][*status];
            assert!(
                answer["description"].is_string(),
                "{status} of {method} {path}"
            );
        }
        if path.starts_with("/account") {
            assert_eq!(
                op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_regenerate_body_is_optional_and_the_token_request_documents_expires_in() {
    let server = server();
    let spec = spec(&server).await;
    let body = &spec["paths"]["/account/clients/{id}/regenerate"]["post"]["requestBody"];
    assert_eq!(body["required"], false, "{body}");
    assert!(body["content"]["application/json"].is_object(), "{body}");
    let request = &spec["components"]["schemas"]["TokenRequest"]["properties"];
    assert_eq!(request["expires_in"]["minimum"], 60, "{request}");
    let response = &spec["components"]["schemas"]["TokenResponse"]["required"];
    assert!(
        response
            .as_array()
            .is_some_and(|r| r.contains(&json!("scope"))),
        "scope is always sent: {response}"
    );
}

#[tokio::test]
async fn the_well_known_documents_are_public_and_described() {
    let server = server();
    let spec = spec(&server).await;
    for path in [
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
    ] {
        let op = &spec["paths"][path]["get"];
        assert_eq!(op["security"], json!([{}]), "{path} needs no credential");
        assert!(
            op["responses"]["200"]["content"]["application/json"].is_object(),
            "{path}"
        );
    }
    let metadata = &spec["components"]["schemas"]["ServerMetadata"]["properties"];
    for member in [
        "issuer",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
    ] {
        assert!(metadata[member].is_object(), "{member}");
    }
    let jwk = &spec["components"]["schemas"]["PublicJwk"]["properties"];
    for member in ["kid", "kty", "crv", "x", "y", "alg", "use"] {
        assert!(jwk[member].is_object(), "{member} in {jwk}");
    }
}

#[tokio::test]
async fn the_documented_quota_has_the_fields_the_quota_page_sends_daily_and_monthly() {
    let server = server();
    server.set_plan(
        server.acme_id(),
        gis_auth::client::Plan::default()
            .with_daily_quota(Some(10))
            .with_monthly_quota(Some(100)),
    );
    let spec = server
        .send(
            Request::get("/account/openapi.json")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .json();
    let schemas = &spec["components"]["schemas"];
    let token = server.token().await;
    let page = call(&server, Method::GET, "/account/quota", &token, None)
        .await
        .json();
    for (schema, body) in [("Quota", &page), ("MonthlyQuota", &page["monthly"])] {
        let documented = schemas[schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} is documented"));
        let sent = body.as_object().expect("an object");
        let mut sent_keys: Vec<&String> = sent.keys().collect();
        let mut documented_keys: Vec<&String> = documented.keys().collect();
        sent_keys.sort();
        documented_keys.sort();
        assert_eq!(sent_keys, documented_keys, "{schema}");
    }
    assert_eq!(page["monthly"]["limit"], 100);
}

#[tokio::test]
async fn introspection_and_revocation_are_documented_with_their_form() {
    let server = server();
    let spec = spec(&server).await;
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let op = &spec["paths"][path]["post"];
        let form = &op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
        assert_eq!(form["$ref"], "#/components/schemas/TokenQuery", "{path}");
        for status in ["200", "400", "401", "429", "503"] {
            assert!(op["responses"][status].is_object(), "{status} of {path}");
        }
    }
    let introspection = &spec["components"]["schemas"]["Introspection"]["properties"];
    for member in [
        "active",
        "scope",
        "client_id",
        "exp",
        "sub",
        "aud",
        "iss",
        "jti",
    ] {
        assert!(introspection[member].is_object(), "{member}");
    }
}
