//! The endpoint driven as a `Service`, over a store holding one client.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http_body_util::BodyExt;
use time::macros::datetime;
use tracing_subscriber::fmt::MakeWriter;

use super::*;
use crate::client::{
    Account, AccountId, Client, ClientSpec, CredentialDigests, PlainCredential, Plan, Restriction,
    Role, Status,
};
use crate::clock::ManualClock;
use crate::policy::Rule;
use crate::rule::RejectionKind;
use crate::store::BackendError;
use crate::token::SigningKey;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const OFFICE: &str = "203.0.113.9";
const ELSEWHERE: &str = "198.51.100.7";
const NEXT_DOOR: &str = "203.0.113.10";
const PROXY: &str = "10.0.0.1";

/// A store holding one client and its account.
struct OneClient(Resolved);

#[async_trait]
impl ClientStore for OneClient {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        Ok(None)
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        Ok((self.0.client.id() == id).then(|| self.0.client.clone()))
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        Ok((self.0.account.id == *id).then(|| self.0.account.clone()))
    }
}

/// A store that never answers.
struct Stalled;

#[async_trait]
impl ClientStore for Stalled {
    async fn client_by_key(&self, _: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        std::future::pending().await
    }

    async fn client_by_id(&self, _: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        std::future::pending().await
    }

    async fn account(&self, _: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        std::future::pending().await
    }
}

fn account() -> Account {
    let roles = RoleSet::from_iter([Role::USER, Role::EVALUATOR]);
    Account::new(AccountId::new("acme").unwrap(), "Acme", roles).unwrap()
}

fn new_secret() -> PlainCredential {
    PlainCredential::generate(CredentialKind::ClientSecret).unwrap()
}

fn client(spec: &ClientSpec, account: &Account, secret: &PlainCredential) -> Client {
    let id = ClientId::new("srv").unwrap();
    Client::build(id, spec, account, CredentialDigests::new(secret.digest())).unwrap()
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::hs256("k1", &[1; 32]).unwrap())
        .clock(Arc::new(ManualClock::new(NOW)))
}

fn service(client: Client, account: Account) -> TokenService {
    let found = Resolved {
        client: Arc::new(client),
        account: Arc::new(account),
    };
    TokenService::new(issuer(), Arc::new(OneClient(found)))
}

/// How a request authenticates, and where it comes from.
#[derive(Clone, Copy)]
struct Ask<'a> {
    secret: &'a str,
    basic: bool,
    peer: &'a str,
    forwarded_for: Option<&'a str>,
}

impl<'a> Ask<'a> {
    fn basic(secret: &'a str, peer: &'a str) -> Self {
        Self {
            secret,
            basic: true,
            peer,
            forwarded_for: None,
        }
    }

    fn post(secret: &'a str, peer: &'a str) -> Self {
        Self {
            basic: false,
            ..Self::basic(secret, peer)
        }
    }

    fn request(self) -> Request<Full<Bytes>> {
        let mut form = "grant_type=client_credentials".to_owned();
        let mut req =
            Request::post("/oauth/token").header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if self.basic {
            let pair = STANDARD.encode(format!("srv:{}", self.secret));
            req = req.header(AUTHORIZATION, format!("Basic {pair}"));
        } else {
            form.push_str(&format!("&client_id=srv&client_secret={}", self.secret));
        }
        if let Some(hops) = self.forwarded_for {
            req = req.header("x-forwarded-for", hops);
        }
        let mut req = req.body(Full::new(Bytes::from(form))).unwrap();
        let peer: IpAddr = self.peer.parse().unwrap();
        req.extensions_mut().insert(SocketAddr::new(peer, 40_000));
        req
    }
}

/// What a test reads of a response.
#[derive(Debug, PartialEq)]
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    retry_after: Option<String>,
    error: Option<String>,
    description: Option<String>,
    has_token: bool,
}

async fn send(svc: &TokenService, ask: Ask<'_>) -> Reply {
    let res = svc.clone().call(ask.request()).await.unwrap();
    let header = |name| {
        let value = res.headers().get(name)?;
        Some(value.to_str().unwrap().to_owned())
    };
    let (challenge, retry_after) = (header(WWW_AUTHENTICATE), header(RETRY_AFTER));
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let text = |key: &str| json[key].as_str().map(str::to_owned);
    Reply {
        status,
        challenge,
        retry_after,
        error: text("error"),
        description: text("error_description"),
        has_token: json["access_token"].is_string(),
    }
}

#[tokio::test]
async fn the_endpoint_issues_a_token_exactly_when_the_policy_allows_one() {
    let fenced = || ClientSpec::native("srv").allowed_ips(["203.0.113.0/24"]);
    let cases: [(&str, ClientSpec, Account, &str, Option<Rule>); 10] = [
        (
            "a client of an account whose evaluation period is over",
            ClientSpec::native("srv"),
            account().with_plan(Plan::default().with_expires_at(Some(NOW))),
            ELSEWHERE,
            Some(Rule::AccountExpiry),
        ),
        (
            "a client of an account whose evaluation period runs on",
            ClientSpec::native("srv"),
            account()
                .with_plan(Plan::default().with_expires_at(Some(NOW + time::Duration::seconds(1)))),
            ELSEWHERE,
            None,
        ),
        (
            "an active client",
            ClientSpec::native("srv"),
            account(),
            ELSEWHERE,
            None,
        ),
        (
            "an inactive client",
            ClientSpec::native("srv").status(Status::Inactive),
            account(),
            ELSEWHERE,
            Some(Rule::Status),
        ),
        (
            "a client of an inactive account",
            ClientSpec::native("srv"),
            account().with_status(Status::Inactive),
            ELSEWHERE,
            Some(Rule::Status),
        ),
        (
            "an expired client",
            ClientSpec::native("srv").expires_at(Some(NOW)),
            account(),
            ELSEWHERE,
            Some(Rule::Expiry),
        ),
        (
            "a JavaScript client",
            ClientSpec::javascript("web"),
            account(),
            ELSEWHERE,
            Some(Rule::Kind),
        ),
        (
            "a client inside its IP rules",
            fenced(),
            account(),
            OFFICE,
            None,
        ),
        (
            "a client outside its IP rules",
            fenced(),
            account(),
            ELSEWHERE,
            Some(Rule::Ips),
        ),
        (
            "a client outside its report-only IP rules",
            fenced().shadow([Restriction::Ips]),
            account(),
            ELSEWHERE,
            None,
        ),
    ];
    for (what, spec, account, from, refused_by) in cases {
        let secret = new_secret();
        let client = client(&spec, &account, &secret);
        let facts = TokenRequestFacts::new(NOW).from_ip(from.parse().ok());
        let decision = Policy::default().explain_token_request(&client, &account, &facts);
        assert_eq!(decision.rule(), refused_by, "{what}: the policy");
        let svc = service(client, account);
        for ask in [
            Ask::basic(secret.expose(), from),
            Ask::post(secret.expose(), from),
        ] {
            let reply = send(&svc, ask).await;
            if decision.is_allowed() {
                assert!(reply.has_token, "{what}: {reply:?}");
            } else {
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(reply.error.as_deref(), Some("invalid_client"), "{what}");
                assert_eq!(reply.challenge.is_some(), ask.basic, "{what}: {reply:?}");
            }
        }
    }
}

/// Tracing output, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Captured {
    type Writer = Captured;

    fn make_writer(&self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn a_report_only_ip_finding_is_logged_on_the_shadow_target_like_the_layers() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let secret = new_secret();
    let spec = ClientSpec::native("srv")
        .allowed_ips(["203.0.113.0/24"])
        .shadow([Restriction::Ips]);
    let svc = service(client(&spec, &account(), &secret), account());
    assert!(
        send(&svc, Ask::post(secret.expose(), OFFICE))
            .await
            .has_token
    );
    assert!(!String::from_utf8_lossy(&captured.0.lock().unwrap()).contains("gis_auth::shadow"));

    assert!(
        send(&svc, Ask::post(secret.expose(), ELSEWHERE))
            .await
            .has_token
    );
    let logged = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let line = logged
        .lines()
        .find(|l| l.contains("gis_auth::shadow"))
        .unwrap_or_else(|| panic!("no shadow line in {logged}"));
    for field in [
        "client=srv",
        "account=acme",
        "rule=\"ips\"",
        "198.51.100.7 is not among the client's allowed addresses",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(!logged.contains(secret.expose()));
}

#[tokio::test(start_paused = true)]
async fn a_store_past_its_budget_gets_the_layers_503() {
    let secret = new_secret();
    let svc = TokenService::new(issuer(), Arc::new(Stalled))
        .backend_timeout(Some(Duration::from_millis(50)));
    let reply = send(&svc, Ask::post(secret.expose(), ELSEWHERE)).await;
    let kind = RejectionKind::Unavailable;
    assert_eq!(reply.status, kind.status());
    assert_eq!(reply.error.as_deref(), Some(kind.error_code()));
    assert_eq!(reply.description.as_deref(), Some(kind.description()));
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
}

fn strict() -> LockoutPolicy {
    LockoutPolicy {
        per_client_and_address: 2,
        ..LockoutPolicy::default()
    }
}

#[tokio::test]
async fn configuring_after_a_clone_leaves_the_clone_as_it_was() {
    let secret = new_secret();
    let svc = service(
        client(&ClientSpec::native("srv"), &account(), &secret),
        account(),
    );
    let before = svc.clone();
    let after = svc.lockout(strict()).realm("maps").unwrap();
    let wrong = new_secret(); // well-formed, but not the client's
    let wrong = Ask::basic(wrong.expose(), ELSEWHERE);

    for _ in 0..2 {
        assert_eq!(send(&after, wrong).await.status, StatusCode::UNAUTHORIZED);
    }
    let locked = send(&after, wrong).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);

    let clone = send(&before, wrong).await;
    assert_eq!(clone.status, StatusCode::UNAUTHORIZED, "its own counts");
    assert_eq!(clone.challenge.as_deref(), Some("Basic realm=\"gis-auth\""));
    for _ in 0..3 {
        assert_eq!(send(&before, wrong).await.status, StatusCode::UNAUTHORIZED);
    }
    let reply = send(&after.clone(), Ask::basic("wrong", OFFICE)).await;
    assert_eq!(reply.challenge.as_deref(), Some("Basic realm=\"maps\""));
}

#[tokio::test]
async fn the_order_of_the_settings_does_not_matter() {
    let secret = new_secret();
    let spec = ClientSpec::native("srv").allowed_ips(["203.0.113.0/24"]);
    let base = || service(client(&spec, &account(), &secret), account());
    let proxies = || TrustedProxies::parse([PROXY]).unwrap();
    let one = base()
        .trusted_proxies(proxies())
        .forwarded_header(ForwardedHeader::XForwardedFor)
        .lockout(strict())
        .realm("maps")
        .unwrap()
        .backend_timeout(Some(Duration::from_secs(1)));
    let other = base()
        .backend_timeout(Some(Duration::from_secs(1)))
        .realm("maps")
        .unwrap()
        .lockout(strict())
        .forwarded_header(ForwardedHeader::XForwardedFor)
        .trusted_proxies(proxies());
    let wrong = new_secret(); // well-formed, but not the client's
    let behind_proxy = |secret| Ask {
        forwarded_for: Some(OFFICE),
        ..Ask::basic(secret, PROXY)
    };
    let asks = [
        behind_proxy(secret.expose()),
        Ask::basic(secret.expose(), PROXY),
        behind_proxy(wrong.expose()),
        behind_proxy(wrong.expose()),
        behind_proxy(secret.expose()),
        Ask::post(secret.expose(), NEXT_DOOR),
    ];
    let mut replies = Vec::new();
    for ask in asks {
        let (a, b) = (send(&one, ask).await, send(&other, ask).await);
        assert_eq!(a, b);
        replies.push(a.status);
    }
    assert_eq!(
        replies,
        [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::OK,
        ],
        "the settings took effect"
    );
}
