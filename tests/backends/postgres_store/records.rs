//! Records: migrations, default clients, keys and secrets, every setting round-tripped, and
//! regeneration with and without grace.

use super::*;

#[tokio::test]
async fn migrations_create_the_tables_and_running_them_again_changes_nothing() {
    let schema = Schema::create("migrate").await;
    let store = schema.store().await;
    store.migrate().await.expect("a second run is a no-op");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(&schema.name)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "accounts",
            "audit_log",
            "client_grants",
            "clients",
            "credential_digests",
            "revoked_tokens"
        ]
    );
}

#[tokio::test]
async fn a_new_account_gets_two_default_clients_with_all_its_roles() {
    let schema = Schema::create("defaults").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    assert_eq!(made.javascript.client.kind(), ClientKind::JavaScript);
    assert_eq!(made.native.client.kind(), ClientKind::NativeConfidential);
    assert_eq!(made.javascript.credential.kind(), CredentialKind::ApiKey);
    assert_eq!(made.native.credential.kind(), CredentialKind::ClientSecret);
    let clients = store.list_clients(&acme()).await.unwrap();
    assert_eq!(clients.len(), 2);
    for client in &clients {
        assert!(client.grants_all_roles());
        assert_eq!(client.roles(), &made.account.roles);
        assert!(client.origins().is_empty() && client.ips().is_empty());
    }
    assert!(matches!(
        store.create_account(account("acme")).await,
        Err(ManageError::Duplicate {
            kind: RecordKind::Account,
            ..
        })
    ));
    let accounts = store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(*accounts[0], *made.account);
}

#[tokio::test]
async fn keys_resolve_with_their_account_and_secrets_do_not() {
    let schema = Schema::create("resolve").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let key = made.javascript.credential.digest();
    let found = store.resolve_key(&key).await.unwrap().expect("the key");
    assert_eq!(found.client.id(), made.javascript.client.id());
    assert_eq!(found.account.id, acme());
    assert!(
        found
            .client
            .credentials()
            .accepts(&key, time::OffsetDateTime::now_utc())
    );
    let secret = made.native.credential.digest();
    assert!(store.resolve_key(&secret).await.unwrap().is_none());
    assert!(store.client_by_key(&secret).await.unwrap().is_none());
    let by_id = store.resolve_id(made.native.client.id()).await.unwrap();
    assert_eq!(by_id.unwrap().client.id(), made.native.client.id());
    let stranger = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
    assert!(
        store
            .resolve_key(&stranger.digest())
            .await
            .unwrap()
            .is_none()
    );
    let nobody = ClientId::new("nobody").unwrap();
    assert!(store.resolve_id(&nobody).await.unwrap().is_none());
    assert!(store.account(&acme()).await.unwrap().is_some());
}

#[tokio::test]
async fn every_setting_of_a_client_and_an_account_survives_the_round_trip() {
    let schema = Schema::create("roundtrip").await;
    let writer = schema.store().await;
    let mut holder = account("acme").with_daily_quota(Some(25_000));
    holder.roles = RoleSet::from_iter([Role::USER, Role::EVALUATOR, Role::SUBSCRIBER]);
    holder.contact = Contact {
        contact_name: Some("Ana Ruiz".into()),
        contact_email: Some("ana@acme.example".into()),
        contact_phone: Some("+34 91 123 4567".into()),
    };
    let made = writer.create_account(holder).await.unwrap();
    let spec = ClientSpec::javascript("Store locator")
        .id(ClientId::new("acme-web").unwrap())
        .roles(RoleSet::from_iter([Role::EVALUATOR]))
        .status(Status::Inactive)
        .allowed_origins(["https://*.acme.test", "http://localhost:*"])
        .allow_missing_origin(true)
        .allowed_ips(["203.0.113.0/24", "2001:db8::/32", "10.*.*.*"])
        .expires_at(Some(datetime!(2027-12-31 23:59:59 UTC)))
        .privileges(["WorldStreets", "Elevation"])
        .grants([
            Grant::new("roads-2026", [Action::Read, Action::Write]).unwrap(),
            Grant::new("parcels", [Action::Write]).unwrap(),
            Grant::new("addresses", [Action::Read]).unwrap(),
        ])
        .rate_limit(Some(RateLimit::new(50, 100).unwrap()))
        .shadow([Restriction::Origins, Restriction::Quota]);
    let created = writer.create_client(&acme(), spec).await.unwrap();
    // A second store on a pool of its own reads what the first wrote.
    let reader = schema.store().await;
    let found = reader
        .resolve_id(created.client.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*found.account, *made.account);
    assert_eq!(
        ClientDocument::stored(&found.client),
        ClientDocument::stored(&created.client)
    );
    assert_eq!(found.client.to_spec(), created.client.to_spec());
    assert_eq!(found.client.credentials(), created.client.credentials());
    assert_eq!(
        etag(&found.client, &found.account),
        etag(&created.client, &made.account)
    );
    let defaults = reader.list_clients(&acme()).await.unwrap();
    let native = defaults
        .iter()
        .find(|c| c.id() == made.native.client.id())
        .unwrap();
    assert_eq!(native.to_spec(), made.native.client.to_spec());
}

#[tokio::test]
async fn regenerating_without_grace_stops_every_older_key_at_once() {
    let schema = Schema::create("regen").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let id = made.javascript.client.id();
    let old = made.javascript.credential.digest();
    let (client, fresh) = store
        .regenerate_client(id, &Precondition::default(), None)
        .await
        .unwrap();
    assert_eq!(client.credentials().generation(), 1);
    assert!(store.resolve_key(&old).await.unwrap().is_none());
    let found = store.resolve_key(&fresh.digest()).await.unwrap().unwrap();
    assert_eq!(found.client.credentials(), client.credentials());
}

#[tokio::test]
async fn regenerating_with_grace_keeps_the_old_key_until_the_grace_ends_or_is_retired() {
    let schema = Schema::create("grace").await;
    let clock = ManualClock::new(datetime!(2026-06-01 12:00 UTC));
    let store = schema.store().await.clock(Arc::new(clock.clone()));
    let made = store.create_account(account("acme")).await.unwrap();
    let id = made.javascript.client.id();
    let old = made.javascript.credential.digest();
    let (_, fresh) = store
        .regenerate_client(
            id,
            &Precondition::default(),
            Some(time::Duration::minutes(10)),
        )
        .await
        .unwrap();
    let found = store
        .resolve_key(&old)
        .await
        .unwrap()
        .expect("in its grace");
    assert!(found.client.credentials().accepts(&old, clock.now()));
    assert!(
        found
            .client
            .credentials()
            .accepts(&fresh.digest(), clock.now())
    );
    clock.advance(time::Duration::minutes(10));
    assert!(!found.client.credentials().accepts(&old, clock.now()));
    assert!(found.client.credentials().generation_live(1, clock.now()));

    let retired = store.retire_previous(id).await.unwrap();
    assert!(retired.credentials().previous().is_none());
    assert!(store.resolve_key(&old).await.unwrap().is_none());
    assert!(store.resolve_key(&fresh.digest()).await.unwrap().is_some());

    // A second rotation without grace leaves the newest key only.
    store
        .regenerate_client(id, &Precondition::default(), Some(time::Duration::hours(1)))
        .await
        .unwrap();
    let (client, newest) = store
        .regenerate_client(id, &Precondition::default(), None)
        .await
        .unwrap();
    assert_eq!(client.credentials().generation(), 3);
    assert!(store.resolve_key(&fresh.digest()).await.unwrap().is_none());
    assert!(store.resolve_key(&newest.digest()).await.unwrap().is_some());
}
