//! Token revocation shared through PostgreSQL: two instances, each with its own pool, deny
//! list, verifier and layer, over one database. A token revoked at one instance's
//! `/oauth/revoke` is refused by the other within a second, and by an instance started
//! later at once; the table forgets tokens once they expire.

use gis_auth::store::RevokedToken;
use gis_auth::token::{
    JwtVerifier, PostgresRevocations, RevocationService, Revocations, SigningKey, TokenIssuer,
    TokenService,
};
use http_body_util::BodyExt;
use tower::service_fn;
use tower_layer::Layer;

use super::*;

type Svc = tower::util::BoxCloneService<Request<Full<Bytes>>, StatusCode, Infallible>;

/// One instance: the guarded service, its token and revocation endpoints, its deny list.
struct Instance {
    guarded: Svc,
    token: TokenService,
    revoke: RevocationService,
    revocations: Arc<PostgresRevocations>,
}

async fn instance(schema: &Schema, clock: &ManualClock, issuer: &TokenIssuer) -> Instance {
    let postgres = schema.store().await.clock(Arc::new(clock.clone()));
    let revocations = Arc::new(PostgresRevocations::start(postgres.clone()).await.unwrap());
    let store: Arc<dyn ClientStore> = Arc::new(postgres);
    let verifier = JwtVerifier::new(issuer.clone(), store.clone()).revocations(revocations.clone());
    let routes = RouteTable::new()
        .route(
            Method::GET,
            "/geocode",
            Api::new("Geocoder", [Role::EVALUATOR]),
        )
        .unwrap();
    let guarded = AuthLayer::new(store.clone(), routes)
        .token_verifier(Arc::new(verifier.clone()))
        .clock(Arc::new(clock.clone()))
        .layer(service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }))
        .map_response(|res| res.status());
    let token = TokenService::new(issuer.clone(), store);
    Instance {
        guarded: tower::util::BoxCloneService::new(guarded),
        revoke: token.revocation(verifier),
        token,
        revocations,
    }
}

fn form(path: &str, body: String) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

impl Instance {
    async fn geocode(&self, token: &str) -> StatusCode {
        let req = Request::get("/geocode")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.guarded.clone().oneshot(req).await.unwrap()
    }

    async fn token(&self, id: &ClientId, secret: &str) -> String {
        let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        let res = self
            .token
            .clone()
            .oneshot(form("/oauth/token", body))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn revoke(&self, id: &ClientId, secret: &str, token: &str) -> StatusCode {
        let body = format!("token={token}&client_id={id}&client_secret={secret}");
        let res = self
            .revoke
            .clone()
            .oneshot(form("/oauth/revoke", body))
            .await
            .unwrap();
        res.status()
    }
}

#[tokio::test]
async fn a_token_revoked_at_one_instance_is_refused_by_the_other_within_a_second() {
    let schema = Schema::create("revoke").await;
    let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
    let issuer = TokenIssuer::new(SigningKey::hs256("shared-1", &[7u8; 32]).unwrap())
        .clock(Arc::new(clock.clone()));
    let made = schema
        .store()
        .await
        .create_account(account("acme"))
        .await
        .unwrap();
    let id = made.native.client.id().clone();
    let secret = made.native.credential.expose().to_owned();

    let a = instance(&schema, &clock, &issuer).await;
    let b = instance(&schema, &clock, &issuer).await;
    let token = a.token(&id, &secret).await;
    let other = a.token(&id, &secret).await;
    assert_eq!(a.geocode(&token).await, StatusCode::OK);
    assert_eq!(b.geocode(&token).await, StatusCode::OK);

    assert_eq!(a.revoke(&id, &secret, &token).await, StatusCode::OK);
    assert_eq!(a.geocode(&token).await, StatusCode::UNAUTHORIZED, "at once");
    let refused = eventually(Duration::from_secs(1), || async {
        b.geocode(&token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the other instance refuses the token within 1 s");
    assert_eq!(b.revocations.len(), 1);
    assert_eq!(b.geocode(&other).await, StatusCode::OK, "only that token");

    // An instance started afterwards loads the list.
    let c = instance(&schema, &clock, &issuer).await;
    assert_eq!(c.geocode(&token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(c.geocode(&other).await, StatusCode::OK);
}

#[tokio::test]
async fn the_table_holds_a_revoked_token_only_until_it_expires() {
    let schema = Schema::create("revoke_exp").await;
    let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
    let store = schema.store().await.clock(Arc::new(clock.clone()));
    let list = PostgresRevocations::start(store.clone()).await.unwrap();
    let soon = clock.now() + time::Duration::minutes(5);
    list.revoke("first", soon).await.unwrap();
    list.revoke("first", soon).await.unwrap();
    assert!(list.is_revoked("first").await.unwrap());
    assert_eq!(store.revoked_tokens().await.unwrap().len(), 1);

    clock.advance(time::Duration::minutes(5));
    assert!(store.revoked_tokens().await.unwrap().is_empty(), "expired");
    let later = clock.now() + time::Duration::hours(1);
    list.revoke("second", later).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM revoked_tokens")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "the expired row is deleted by the next revocation");
    assert!(!list.is_revoked("first").await.unwrap());
    assert_eq!(list.len(), 1);
    assert_eq!(
        store.revoked_tokens().await.unwrap(),
        vec![RevokedToken {
            jti: "second".to_owned(),
            expires_at: later,
        }]
    );
    // A token id no token carries is refused, not stored.
    assert!(
        store
            .revoke_token(&RevokedToken {
                jti: "not a jti".to_owned(),
                expires_at: later,
            })
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_list_that_lost_its_notifications_reads_the_table_fails_closed_and_catches_up() {
    let schema = Schema::create("revoke_outage").await;
    let link = schema.relay().await;
    let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
    let remote = schema
        .store_through(&link)
        .await
        .clock(Arc::new(clock.clone()));
    let direct = schema.store().await.clock(Arc::new(clock.clone()));
    let list = PostgresRevocations::start(remote).await.unwrap();
    let exp = clock.now() + time::Duration::hours(1);
    assert!(
        !list.is_revoked_now("missed").unwrap().unwrap(),
        "answered from memory"
    );

    link.cut();
    let lost = eventually(Duration::from_secs(5), || async {
        list.is_revoked_now("missed").is_none()
    })
    .await;
    assert!(
        lost,
        "without its notifications the list no longer answers from memory"
    );
    assert!(list.is_revoked("missed").await.is_err(), "and fails closed");
    // Revoked elsewhere while this list hears nothing.
    direct
        .revoke_token(&RevokedToken {
            jti: "missed".to_owned(),
            expires_at: exp,
        })
        .await
        .unwrap();

    link.restore();
    let caught_up = eventually(Duration::from_secs(15), || async {
        matches!(list.is_revoked_now("missed"), Some(Ok(true)))
    })
    .await;
    assert!(caught_up, "reloaded once the database is back");
}
