//! `gis-auth explain`: the decision on a described request, by the same function the layer
//! decides with, against the standard GIS routes.

use std::net::IpAddr;
use std::sync::Arc;

use clap::Args;
use gis_auth::ConfigError;
use gis_auth::client::{ClientId, RoleSet};
use gis_auth::policy::{Decision, OriginEvidence, Policy, RequestFacts, standard_routes};
use gis_auth::store::{ManageError, ManagedStore};
use http::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::output::{Failure, Output, list_text, roles_text, time_text};
use crate::settings;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The client making the request.
    #[arg(long)]
    client: String,

    /// The request method.
    #[arg(long, default_value = "GET")]
    method: String,

    /// The request path, as sent (it may carry the query after `?`).
    #[arg(long)]
    path: String,

    /// The query string, without `?`.
    #[arg(long)]
    query: Option<String>,

    /// The `Origin` header.
    #[arg(long)]
    origin: Option<String>,

    /// The `Referer` header (read only when there is no `Origin`).
    #[arg(long)]
    referer: Option<String>,

    /// The caller's address, as the layer resolves it (after trusted proxies).
    #[arg(long)]
    ip: Option<String>,

    /// The time of the request (RFC 3339; now when absent).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,

    /// The roles a bearer token was minted for (its `scope`), which narrow the client's.
    #[arg(long, value_delimiter = ',', value_name = "ROLE,…")]
    scope: Option<Vec<String>>,
}

/// The request, checked.
struct Request {
    method: Method,
    path: String,
    query: Option<String>,
    ip: Option<IpAddr>,
    at: OffsetDateTime,
    scope: Option<RoleSet>,
}

fn request(args: &ExplainArgs) -> Result<Request, ConfigError> {
    let invalid = |field, value: &str, reason| ConfigError::InvalidField {
        field,
        value: value.to_owned(),
        reason,
    };
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| invalid("method", &args.method, "it is an HTTP method such as GET"))?;
    let (path, query) = match args.path.split_once('?') {
        Some(_) if args.query.is_some() => {
            return Err(invalid(
                "query",
                args.query.as_deref().unwrap_or_default(),
                "the path already carries a query",
            ));
        }
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (args.path.clone(), args.query.clone()),
    };
    if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            "path",
            &args.path,
            "it starts with `/` and has no spaces or control characters",
        ));
    }
    let ip = args
        .ip
        .as_deref()
        .map(|ip| {
            ip.parse::<IpAddr>()
                .map_err(|_| invalid("ip", ip, "it is an IPv4 or IPv6 address"))
        })
        .transpose()?;
    let at = match &args.at {
        Some(t) => settings::rfc3339("at", t)?,
        None => OffsetDateTime::now_utc(),
    };
    let scope = args.scope.as_deref().map(settings::roles).transpose()?;
    Ok(Request {
        method,
        path,
        query,
        ip,
        at,
        scope,
    })
}

pub async fn run(
    args: ExplainArgs,
    store: &Arc<dyn ManagedStore>,
    out: &Output,
) -> Result<(), Failure> {
    let request = request(&args)?;
    let id = ClientId::new(&args.client)?;
    let found = store
        .resolve_id(&id)
        .await?
        .ok_or_else(|| ManageError::unknown_client(&id))?;
    let policy = Policy::new(standard_routes()?);
    let origin = match (&args.origin, &args.referer) {
        (Some(o), _) => OriginEvidence::Origin(o),
        (None, Some(r)) => OriginEvidence::Referer(r),
        (None, None) => OriginEvidence::Missing,
    };
    let facts = RequestFacts {
        query: request.query.as_deref(),
        origin,
        client_ip: request.ip,
        token_scope: request.scope.as_ref(),
        ..RequestFacts::new(&request.method, &request.path, request.at)
    };
    let decision = policy.explain(&found.client, &found.account, &facts);
    if out.is_json() {
        out.json(&decision_json(&args, &request, &decision))
    } else {
        out.fields(&decision_fields(&args, &request, &decision))
    }
}

fn decision_json(args: &ExplainArgs, request: &Request, decision: &Decision) -> Value {
    let denied = decision.denied.as_ref();
    json!({
        "client": args.client,
        "request": {
            "method": request.method.as_str(),
            "path": request.path,
            "query": request.query,
            "origin": args.origin,
            "referer": args.referer,
            "ip": request.ip.map(|ip| ip.to_string()),
            "at": time_text(Some(request.at)),
        },
        "allowed": decision.is_allowed(),
        "rule": decision.rule().map(|r| r.as_str()),
        "status": denied.map(|f| f.kind.status().as_u16()),
        "error": denied.map(|f| f.kind.error_code()),
        "reason": decision.reason(),
        "api": decision.api.as_deref(),
        // The roles in force are known once the role check has run.
        "roles": (decision.is_allowed() && decision.api.is_some()).then_some(&decision.roles),
        "item": decision.item,
        "report_only": decision.shadowed.iter().map(|f| json!({
            "rule": f.rule.as_str(),
            "error": f.kind.error_code(),
            "reason": f.reason,
        })).collect::<Vec<_>>(),
    })
}

fn decision_fields(
    args: &ExplainArgs,
    request: &Request,
    decision: &Decision,
) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (
            "request",
            format!(
                "{} {}{} by client `{}` at {}",
                request.method,
                request.path,
                request
                    .query
                    .as_deref()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default(),
                args.client,
                time_text(Some(request.at))
            ),
        ),
        (
            "decision",
            if decision.is_allowed() {
                "allow".to_owned()
            } else {
                "deny".to_owned()
            },
        ),
    ];
    if let Some(f) = &decision.denied {
        fields.push(("rule", f.rule.as_str().to_owned()));
        fields.push((
            "response",
            format!("{} {}", f.kind.status().as_u16(), f.kind.error_code()),
        ));
    }
    fields.push(("reason", decision.reason()));
    if let Some(api) = &decision.api {
        fields.push(("api", api.to_string()));
    }
    if decision.is_allowed() && decision.api.is_some() {
        fields.push(("roles", roles_text(&decision.roles)));
    }
    if let Some(item) = &decision.item {
        fields.push(("item", item.clone()));
    }
    fields.push((
        "report_only",
        list_text(decision.shadowed.iter().map(ToString::to_string)),
    ));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(path: &str) -> ExplainArgs {
        ExplainArgs {
            client: "web".into(),
            method: "get".into(),
            path: path.into(),
            query: None,
            origin: None,
            referer: None,
            ip: None,
            at: None,
            scope: None,
        }
    }

    fn field(e: ConfigError) -> &'static str {
        match e {
            ConfigError::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_path_may_carry_its_query_but_not_twice() {
        let r = request(&args("/geocode?q=paris")).unwrap();
        assert_eq!((r.method, r.path.as_str()), (Method::GET, "/geocode"));
        assert_eq!(r.query.as_deref(), Some("q=paris"));
        let twice = ExplainArgs {
            query: Some("q=rome".into()),
            ..args("/geocode?q=paris")
        };
        assert_eq!(field(request(&twice).err().unwrap()), "query");
    }

    #[test]
    fn bad_request_flags_name_their_field() {
        assert_eq!(field(request(&args("tiles/1")).err().unwrap()), "path");
        let ip = ExplainArgs {
            ip: Some("300.1.1.1".into()),
            ..args("/")
        };
        assert_eq!(field(request(&ip).err().unwrap()), "ip");
        let method = ExplainArgs {
            method: "GE T".into(),
            ..args("/")
        };
        assert_eq!(field(request(&method).err().unwrap()), "method");
        let at = ExplainArgs {
            at: Some("tomorrow".into()),
            ..args("/")
        };
        assert_eq!(field(request(&at).err().unwrap()), "at");
    }
}
