//! `Policy::explain` agrees with the layer on every case of one table.

use super::*;
use crate::harness::app;

/// Where a request says it comes from.
#[derive(Clone, Copy)]
enum Whence {
    Nowhere,
    Origin(&'static str),
    Referer(&'static str),
}

/// How a caller of the table authenticates.
enum Credential {
    Key(CreatedClient),
    Bearer {
        client: ClientId,
        token: String,
        scope: RoleSet,
    },
}

impl Credential {
    fn client(&self) -> ClientId {
        match self {
            Credential::Key(made) => made.client.id().clone(),
            Credential::Bearer { client, .. } => client.clone(),
        }
    }
}

struct Case {
    what: &'static str,
    caller: &'static str,
    method: Method,
    path: &'static str,
    from: Whence,
    peer: &'static str,
    /// The rule explain is expected to name, so the table covers what it says it covers.
    expect: Option<Rule>,
}

fn case(what: &'static str, caller: &'static str, method: Method, path: &'static str) -> Case {
    Case {
        what,
        caller,
        method,
        path,
        from: Whence::Nowhere,
        peer: CALLER,
        expect: None,
    }
}

impl Case {
    fn from(mut self, from: Whence) -> Self {
        self.from = from;
        self
    }

    fn peer(mut self, peer: &'static str) -> Self {
        self.peer = peer;
        self
    }

    fn denied_by(mut self, rule: Rule) -> Self {
        self.expect = Some(rule);
        self
    }

    fn request(&self, credential: &Credential) -> Request<Body> {
        let uri = match credential {
            Credential::Key(made) => with_key(self.path, made),
            Credential::Bearer { .. } => self.path.to_owned(),
        };
        let mut builder = Request::builder().method(self.method.clone()).uri(uri);
        match self.from {
            Whence::Nowhere => {}
            Whence::Origin(o) => builder = builder.header(header::ORIGIN, o),
            Whence::Referer(r) => builder = builder.header(header::REFERER, r),
        }
        if let Credential::Bearer { token, .. } = credential {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = if self.method == Method::PUT {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(r#"{"title":"Roads"}"#)
        } else {
            Body::empty()
        };
        builder.body(body).expect("a request").peer(self.peer)
    }
}

#[tokio::test]
async fn explain_agrees_with_the_layer_on_every_case_of_the_table() -> TestResult {
    let server = Server::new();
    let metered = server.account("metered", roles([Role::USER, Role::EVALUATOR]), Some(1));
    let bearer = |made: &CreatedClient, token: String, scope: RoleSet| Credential::Bearer {
        client: made.client.id().clone(),
        token,
        scope,
    };
    let all_roles = roles([Role::USER, Role::EVALUATOR]);

    let mut callers: BTreeMap<&str, Credential> = BTreeMap::new();
    callers.insert("web", Credential::Key(server.acme.javascript.clone()));
    let site = server.client(ClientSpec::javascript("Site").allowed_origins([MAPS]));
    callers.insert("site", Credential::Key(site));
    let kiosk = server.client(ClientSpec::javascript("Kiosk").allowed_ips([OFFICE_BLOCK]));
    callers.insert("kiosk", Credential::Key(kiosk));
    let heights = server.client(ClientSpec::javascript("Heights").privileges(["Elevation"]));
    callers.insert("heights", Credential::Key(heights));
    let trial = server.client(
        ClientSpec::javascript("Trial")
            .allowed_origins([MAPS])
            .shadow([Restriction::Origins]),
    );
    callers.insert("trial", Credential::Key(trial));
    let expired = server.client(ClientSpec::javascript("Campaign").expires_at(Some(START)));
    callers.insert("expired", Credential::Key(expired));
    let off = server.client(ClientSpec::javascript("Retired").status(Status::Inactive));
    callers.insert("off", Credential::Key(off));
    let native = server.acme.native.clone();
    let token = server.token_of(&native).await;
    callers.insert("native", bearer(&native, token, all_roles.clone()));
    let narrow = server.scoped_token(&native, "Evaluator").await;
    callers.insert("narrow", bearer(&native, narrow, roles([Role::EVALUATOR])));
    let reader = server.client(ClientSpec::native("Reader").grants([
        Grant::new("roads", [Action::Read])?,
        Grant::new("roads v2", [Action::Read])?,
    ]));
    let token = server.token_of(&reader).await;
    callers.insert("reader", bearer(&reader, token, all_roles.clone()));
    let writer =
        server.client(ClientSpec::native("Writer").grants([Grant::new("roads", [Action::Write])?]));
    let token = server.token_of(&writer).await;
    callers.insert("writer", bearer(&writer, token, all_roles.clone()));
    let token = server.token_of(&metered.native).await;
    callers.insert("metered", bearer(&metered.native, token, all_roles.clone()));
    let lenient = server.client_of(
        &metered,
        ClientSpec::native("Lenient").shadow([Restriction::Quota]),
    );
    let token = server.token_of(&lenient).await;
    callers.insert("lenient", bearer(&lenient, token, all_roles.clone()));
    // The metered account's quota of one is used up before the table runs.
    server
        .send(get(GEOCODE).bearer(&server.token_of(&metered.native).await))
        .await
        .assert_ok();
    // So is the monthly quota of two of another account, whose day has room.
    let monthly = server.account("monthly", all_roles.clone(), None);
    server.set_plan(
        &monthly.account.id,
        Plan::default()
            .with_daily_quota(Some(5))
            .with_monthly_quota(Some(2)),
    );
    let token = server.token_of(&monthly.native).await;
    for _ in 0..2 {
        server.send(get(GEOCODE).bearer(&token)).await.assert_ok();
    }
    callers.insert("monthly", bearer(&monthly.native, token, all_roles.clone()));
    // An account whose evaluation period ended as the table starts.
    let trial = server.account("trial", all_roles.clone(), None);
    server.set_plan(
        &trial.account.id,
        Plan::default().with_expires_at(Some(START)),
    );
    callers.insert("trial-web", Credential::Key(trial.javascript.clone()));
    // An account whose clients may be granted `rivers` only; its surveyor runs its own
    // grants report-only, which the ceiling is not.
    let fenced = server.account("fenced", all_roles.clone(), None);
    server.set_plan(
        &fenced.account.id,
        Plan::default().with_items(Some(ItemCeiling::new(["rivers"])?)),
    );
    let surveyor = server.client_of(
        &fenced,
        ClientSpec::native("Surveyor")
            .grants([Grant::new("rivers", [Action::Read])?])
            .shadow([Restriction::Grants]),
    );
    let token = server.token_of(&surveyor).await;
    callers.insert("surveyor", bearer(&surveyor, token, all_roles.clone()));

    let cases = [
        case("a plugin API with a plain key", "web", Method::GET, TILE),
        case("HEAD of a tile", "web", Method::HEAD, TILE),
        case("a key on a non-plugin API", "web", Method::GET, GEOCODE).denied_by(Rule::Kind),
        case("a key on an account page", "web", Method::GET, PROFILE).denied_by(Rule::Kind),
        case("a method not served", "web", Method::POST, TILE).denied_by(Rule::Route),
        case("a path not served", "web", Method::GET, "/admin").denied_by(Rule::Route),
        case("the allowed origin", "site", Method::GET, TILE).from(Whence::Origin(MAPS)),
        case("another origin", "site", Method::GET, TILE)
            .from(Whence::Origin(EVIL))
            .denied_by(Rule::Origins),
        case("a referer on the allowed origin", "site", Method::GET, TILE)
            .from(Whence::Referer("https://maps.acme.test/store-locator")),
        case("no origin at all", "site", Method::GET, TILE).denied_by(Rule::Origins),
        case("an allowed address", "kiosk", Method::GET, REVERSE).peer(OFFICE),
        case("another address", "kiosk", Method::GET, REVERSE).denied_by(Rule::Ips),
        case("a privileged API", "heights", Method::GET, ELEVATION),
        case("an API beyond the privileges", "heights", Method::GET, TILE)
            .denied_by(Rule::Privileges),
        case("a shadowed origin", "trial", Method::GET, TILE).from(Whence::Origin(EVIL)),
        case("an expired key", "expired", Method::GET, TILE).denied_by(Rule::Expiry),
        case("an inactive key", "off", Method::GET, TILE).denied_by(Rule::Status),
        case(
            "a token on a non-plugin API",
            "native",
            Method::GET,
            GEOCODE,
        ),
        case("a token on an account page", "native", Method::GET, PROFILE),
        case("an item without a grant", "native", Method::GET, ROADS).denied_by(Rule::Grants),
        case(
            "a narrowed token on the Geocoder",
            "narrow",
            Method::GET,
            GEOCODE,
        ),
        case(
            "a narrowed token on a User API",
            "narrow",
            Method::GET,
            PROFILE,
        )
        .denied_by(Rule::Roles),
        case("reading a readable item", "reader", Method::GET, ROADS),
        case(
            "an encoded item id",
            "reader",
            Method::GET,
            "/items/roads%20v2/metadata",
        ),
        case("writing a readable item", "reader", Method::PUT, ROADS).denied_by(Rule::Grants),
        case(
            "reading an item not granted",
            "reader",
            Method::GET,
            "/items/rivers/metadata",
        )
        .denied_by(Rule::Grants),
        case("writing a writable item", "writer", Method::PUT, ROADS),
        case("reading a write-only item", "writer", Method::GET, ROADS).denied_by(Rule::Grants),
        case("over the quota", "metered", Method::GET, GEOCODE).denied_by(Rule::Quota),
        case(
            "a free page over the quota",
            "metered",
            Method::GET,
            PROFILE,
        ),
        case("over a report-only quota", "lenient", Method::GET, GEOCODE),
        case("over the monthly quota", "monthly", Method::GET, GEOCODE).denied_by(Rule::Quota),
        case(
            "a free page over the monthly quota",
            "monthly",
            Method::GET,
            PROFILE,
        ),
        case("an expired account", "trial-web", Method::GET, TILE).denied_by(Rule::AccountExpiry),
        case(
            "an item inside the account's ceiling",
            "surveyor",
            Method::GET,
            "/items/rivers/metadata",
        ),
        case(
            "an item outside the account's ceiling, grants report-only",
            "surveyor",
            Method::GET,
            ROADS,
        )
        .denied_by(Rule::ItemCeiling),
    ];
    assert!(cases.len() >= 15);

    let policy = Policy::new(app::route_table()?);
    let mut disagreements = Vec::new();
    for case in &cases {
        let credential = &callers[case.caller];
        let req = case.request(credential);
        let client = server
            .store
            .client(&credential.client())
            .expect("the client is stored");
        let account = server
            .store
            .account_now(client.account_id())
            .expect("the account is stored");
        // The quota is part of the decision for metered routes, as the layer charges it.
        let cost = policy
            .routes()
            .lookup(req.method(), req.uri().path())
            .and_then(|route| match route.access() {
                RouteAccess::Api(api) => api
                    .request_cost()
                    .of(req.method(), req.uri(), req.headers())
                    .expect("the request can be priced"),
                RouteAccess::Public => None,
            });
        let used = server.used(&account.id).await;
        let monthly_used = server.monthly_used(&account.id).await;
        let scope = match credential {
            Credential::Bearer { scope, .. } => Some(scope),
            Credential::Key(_) => None,
        };
        let decision = policy.explain(
            &client,
            &account,
            &RequestFacts {
                method: req.method(),
                path: req.uri().path(),
                query: req.uri().query(),
                origin: OriginEvidence::from_headers(req.headers()),
                client_ip: Some(case.peer.parse()?),
                now: server.clock.now(),
                token_scope: scope,
                quota: cost.map(|cost| QuotaFacts::Before {
                    used,
                    monthly_used,
                    cost,
                }),
                signed: None,
            },
        );
        let reply = server.send(req).await;

        let mut problems = Vec::new();
        if decision.rule() != case.expect {
            problems.push(format!(
                "explain says {:?}, the table expects {:?}",
                decision.rule(),
                case.expect
            ));
        }
        if decision.is_allowed() != reply.status.is_success() {
            problems.push(format!("explain says `{decision}`, the layer answers"));
        }
        if let Some(finding) = &decision.denied {
            if reply.rejection().map(Rejection::kind) != Some(finding.kind) {
                problems.push(format!(
                    "explain refuses with {:?}, the layer with {:?}",
                    finding.kind,
                    reply.rejection().map(Rejection::kind)
                ));
            }
            if reply.status != finding.kind.status() {
                problems.push(format!("explain's refusal is a {}", finding.kind.status()));
            }
            match reply.rejection().and_then(Rejection::decision) {
                Some(enforced) => {
                    if enforced.rule() != decision.rule() {
                        problems.push(format!(
                            "the layer's decision is by {:?}, explain's by {:?}",
                            enforced.rule(),
                            decision.rule()
                        ));
                    }
                    if enforced.reason() != decision.reason() {
                        problems.push(format!(
                            "the layer says `{}`, explain says `{}`",
                            enforced.reason(),
                            decision.reason()
                        ));
                    }
                }
                // A route the table does not serve is refused before any client is
                // identified, so its rejection carries no decision.
                None if finding.rule == Rule::Route => {}
                None => problems.push("the layer's rejection carries no decision".to_owned()),
            }
        }
        if !problems.is_empty() {
            disagreements.push(format!(
                "{} ({} {} as {}): {}; the layer: {}",
                case.what,
                case.method,
                case.path,
                case.caller,
                problems.join("; "),
                reply.describe()
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "explain and the layer disagree:\n{}",
        disagreements.join("\n")
    );
    Ok(())
}
