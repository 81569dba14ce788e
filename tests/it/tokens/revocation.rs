//! Revocation on the very next request: whatever a working token relied on, once it is
//! taken away the token is refused, with the reason.

use super::*;

/// Ways to take away what a working token of `acme`'s default native client relied on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Revocation {
    DeactivateClient,
    DeleteClient,
    RegenerateSecret,
    RemoveClientRole,
    RemoveAccountRole,
    DeactivateAccount,
    ExpireClient,
    ExcludeCallerIp,
}

impl Revocation {
    pub(super) fn apply(self, s: &Server) {
        let id = s.native_id();
        match self {
            Revocation::DeactivateClient => {
                s.store
                    .set_client_status(&id, Status::Inactive)
                    .expect("stored");
            }
            Revocation::DeleteClient => {
                s.store.remove_client(&id).expect("deleted");
            }
            Revocation::RegenerateSecret => {
                s.store.regenerate(&id, None).expect("regenerated");
            }
            Revocation::RemoveClientRole => {
                s.update_client(&id, |spec| spec.roles = Some(roles([Role::EVALUATOR])));
            }
            Revocation::RemoveAccountRole => {
                s.update_account(|a| a.roles = roles([Role::EVALUATOR]));
            }
            Revocation::DeactivateAccount => s.update_account(|a| a.status = Status::Inactive),
            Revocation::ExpireClient => {
                let at = s.clock.now() + secs(60);
                s.update_client(&id, |spec| spec.expires_at = Some(at));
                s.clock.advance(secs(60));
            }
            Revocation::ExcludeCallerIp => {
                s.update_client(&id, |spec| {
                    spec.allowed_ips = vec!["203.0.113.0/24".to_owned()];
                });
            }
        }
    }

    /// What the next request to the profile gets.
    pub(super) fn refusal(self) -> (StatusCode, &'static str, RejectionKind) {
        use RejectionKind::*;
        let invalid = |kind| (StatusCode::UNAUTHORIZED, "invalid_token", kind);
        match self {
            Revocation::DeactivateClient | Revocation::DeactivateAccount => invalid(Inactive),
            Revocation::DeleteClient => invalid(UnknownCredential),
            Revocation::RegenerateSecret => invalid(Revoked),
            Revocation::ExpireClient => invalid(Expired),
            Revocation::RemoveClientRole | Revocation::RemoveAccountRole => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                InsufficientRole,
            ),
            Revocation::ExcludeCallerIp => (StatusCode::FORBIDDEN, "access_denied", IpNotAllowed),
        }
    }
}

/// Uses a fresh token `uses` times, revokes, and checks the very next request is refused.
pub(super) async fn assert_next_request_refused(how: Revocation, uses: usize) -> (Server, String) {
    let s = Server::new();
    let token = s.token().await;
    for _ in 0..uses {
        s.call(PROFILE, &token).await.assert_ok();
        s.call(GEOCODE, &token).await.assert_ok();
    }
    how.apply(&s);
    let (status, error, kind) = how.refusal();
    let reply = s.call(PROFILE, &token).await;
    reply.assert_refused(status.as_u16(), error);
    assert_eq!(reply.kind(), kind, "{how:?}: {}", reply.describe());
    if status == StatusCode::UNAUTHORIZED {
        reply.assert_invalid_token();
    }
    (s, token)
}

#[tokio::test]
async fn deactivating_the_client_refuses_its_token_on_the_next_request() {
    assert_next_request_refused(Revocation::DeactivateClient, 1).await;
}

#[tokio::test]
async fn reactivating_the_client_makes_the_same_token_work_again() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateClient, 1).await;
    s.store
        .set_client_status(&s.native_id(), Status::Active)
        .expect("stored");
    s.call(PROFILE, &token).await.assert_ok();
}

#[tokio::test]
async fn deleting_the_client_refuses_its_token_on_the_next_request() {
    assert_next_request_refused(Revocation::DeleteClient, 1).await;
}

#[tokio::test]
async fn a_deleted_clients_token_is_not_revived_by_a_new_client_with_the_same_id() {
    let s = Server::new();
    let batch = ClientId::new("batch").expect("a valid id");
    let (_, secret) = s.native_client(ClientSpec::native("Batch").id(batch.clone()));
    let token = s.token_for(&batch, &secret).await;
    s.call(GEOCODE, &token).await.assert_ok();
    s.store.remove_client(&batch).expect("deleted");
    s.call(GEOCODE, &token).await.assert_invalid_token();
    // The id is given to a new client, with a new secret: the old token stays dead.
    let (_, new_secret) = s.native_client(ClientSpec::native("Batch, again").id(batch.clone()));
    assert_ne!(new_secret, secret);
    s.call(GEOCODE, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn regenerating_the_secret_without_grace_revokes_its_tokens_on_the_next_request() {
    assert_next_request_refused(Revocation::RegenerateSecret, 1).await;
}

#[tokio::test]
async fn removing_a_role_from_the_client_refuses_the_route_needing_it() {
    let (s, token) = assert_next_request_refused(Revocation::RemoveClientRole, 1).await;
    s.call(GEOCODE, &token).await.assert_ok();
}

#[tokio::test]
async fn removing_a_role_from_the_account_refuses_the_route_needing_it() {
    let (s, token) = assert_next_request_refused(Revocation::RemoveAccountRole, 1).await;
    s.call(GEOCODE, &token).await.assert_ok();
    s.update_account(|a| a.roles = roles([Role::USER, Role::EVALUATOR]));
    s.call(PROFILE, &token).await.assert_ok();
}

#[tokio::test]
async fn deactivating_the_account_refuses_its_clients_tokens_on_the_next_request() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateAccount, 1).await;
    s.call(GEOCODE, &token).await.assert_invalid_token();
}

#[tokio::test]
async fn reactivating_the_account_makes_the_same_token_work_again() {
    let (s, token) = assert_next_request_refused(Revocation::DeactivateAccount, 1).await;
    s.update_account(|a| a.status = Status::Active);
    s.call(PROFILE, &token).await.assert_ok();
}

#[tokio::test]
async fn an_expired_client_has_its_token_refused_on_the_next_request() {
    assert_next_request_refused(Revocation::ExpireClient, 1).await;
}

#[tokio::test]
async fn a_token_never_outlives_its_client() {
    let s = Server::new();
    let at = s.clock.now() + secs(600);
    s.update_client(&s.native_id(), |spec| spec.expires_at = Some(at));
    let body = assert_token_response(&s.exchange(s.native_id().as_str(), &s.native_secret()).await);
    assert_eq!(body["expires_in"], 600);
}

#[tokio::test]
async fn an_ip_rule_excluding_the_caller_refuses_the_token_on_the_next_request() {
    let (s, token) = assert_next_request_refused(Revocation::ExcludeCallerIp, 1).await;
    let reply = s.call(PROFILE, &token).await;
    assert!(reply.headers.get(header::WWW_AUTHENTICATE).is_none());
    s.call_from(PROFILE, &token, "203.0.113.9")
        .await
        .assert_ok();
}
