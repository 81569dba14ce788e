//! `PostgresStore` against the PostgreSQL at `DATABASE_URL`: the in-memory store's semantics,
//! preconditions held under concurrency, change notification, and an outage. Each test works
//! in a schema of its own, dropped when it ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::services::eventually;
use crate::services::postgres::Schema;
use bytes::Bytes;
use gis_auth::client::{
    Account, AccountId, Action, ClientDocument, ClientId, ClientKind, ClientSpec, Contact,
    CredentialKind, Grant, PlainCredential, RateLimit, Restriction, Role, RoleSet, Status, etag,
};
use gis_auth::clock::{Clock, ManualClock};
use gis_auth::policy::{Api, RouteTable};
use gis_auth::store::{
    CachedStore, ClientStore, InMemoryStore, Invalidation, ManageError, ManagedStore,
    PostgresStore, Precondition, StoredCredential,
};
use gis_auth::{AuthLayer, ConfigError};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use time::macros::datetime;
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};

fn account(id: &str) -> Account {
    Account::new(
        AccountId::new(id).unwrap(),
        "Acme Maps",
        RoleSet::from_iter([Role::USER, Role::EVALUATOR]),
    )
    .unwrap()
}

fn acme() -> AccountId {
    AccountId::new("acme").unwrap()
}

fn change<F>(f: F) -> gis_auth::store::ClientChange
where
    F: FnOnce(&mut ClientSpec) + Send + 'static,
{
    Box::new(move |spec| {
        f(spec);
        Ok(())
    })
}

fn keep_admin() -> Precondition {
    Precondition {
        keep_admin_access: true,
        ..Precondition::default()
    }
}

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
            "client_grants",
            "clients",
            "credential_digests"
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
        Err(ManageError::Invalid(ConfigError::DuplicateId { .. }))
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

#[tokio::test]
async fn a_change_based_on_a_stale_etag_is_refused_and_changes_nothing() {
    let schema = Schema::create("etag").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let web = made.javascript.client.id();
    let seen = etag(&made.javascript.client, &made.account);
    let pre = Precondition {
        if_match: Some(seen.clone()),
        ..Precondition::default()
    };
    let renamed = store
        .update_client(web, &pre, change(|s| s.name = "Store locator".into()))
        .await
        .unwrap();
    assert_eq!(renamed.name(), "Store locator");
    let stale = store
        .update_client(web, &pre, change(|s| s.status = Status::Inactive))
        .await;
    match stale {
        Err(ManageError::Stale { current }) => assert_eq!(current, etag(&renamed, &made.account)),
        other => panic!("{other:?}"),
    }
    for refused in [
        store.regenerate_client(web, &pre, None).await.map(|_| ()),
        store.delete_client(web, &pre).await.map(|_| ()),
    ] {
        assert!(matches!(refused, Err(ManageError::Stale { .. })));
    }
    let now = store.resolve_id(web).await.unwrap().unwrap();
    assert_eq!(now.client.status(), Status::Active);
    assert_eq!(now.client.credentials().generation(), 0);
}

#[tokio::test]
async fn the_last_client_that_can_manage_its_account_cannot_be_switched_off_or_deleted() {
    let schema = Schema::create("lockout").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let native = made.native.client.id();
    let off = store
        .update_client(
            native,
            &keep_admin(),
            change(|s| s.status = Status::Inactive),
        )
        .await;
    assert!(matches!(off, Err(ManageError::LockOut(_))), "{off:?}");
    assert!(matches!(
        store.delete_client(native, &keep_admin()).await,
        Err(ManageError::LockOut(_))
    ));
    // Regenerating never locks anyone out.
    store
        .regenerate_client(native, &keep_admin(), None)
        .await
        .unwrap();
    // With a second client that can manage the account, the first may go.
    store
        .create_client(&acme(), ClientSpec::native("Second admin"))
        .await
        .unwrap();
    store.delete_client(native, &keep_admin()).await.unwrap();
    assert!(store.resolve_id(native).await.unwrap().is_none());
}

#[tokio::test]
async fn two_concurrent_changes_cannot_lock_an_account_out_between_them() {
    let schema = Schema::create("race").await;
    let store = schema.store().await;
    for round in 0..5 {
        let id = AccountId::new(format!("acme{round}")).unwrap();
        let mut holder = account("acme");
        holder.id = id.clone();
        let made = store.create_account(holder).await.unwrap();
        let second = store
            .create_client(&id, ClientSpec::native("Second admin"))
            .await
            .unwrap();
        let (a, b) = (made.native.client.id().clone(), second.client.id().clone());
        let (sa, sb) = (store.clone(), store.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move {
                sa.update_client(&a, &keep_admin(), change(|s| s.status = Status::Inactive))
                    .await
            }),
            tokio::spawn(async move {
                sb.update_client(&b, &keep_admin(), change(|s| s.status = Status::Inactive))
                    .await
            }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let applied = usize::from(ra.is_ok()) + usize::from(rb.is_ok());
        assert_eq!(applied, 1, "round {round}: {ra:?} / {rb:?}");
        assert!(
            matches!(ra, Err(ManageError::LockOut(_)))
                || matches!(rb, Err(ManageError::LockOut(_)))
        );
    }
}

#[tokio::test]
async fn clients_keep_roles_their_account_lost_and_all_roles_clients_follow_the_account() {
    let schema = Schema::create("roles").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let narrow = store
        .create_client(
            &acme(),
            ClientSpec::javascript("Evaluator only").roles(RoleSet::from_iter([Role::EVALUATOR])),
        )
        .await
        .unwrap();
    store
        .update_account(
            &acme(),
            Box::new(|a| {
                a.roles = RoleSet::from_iter([Role::USER]);
                Ok(())
            }),
        )
        .await
        .unwrap();
    let found = store
        .resolve_id(narrow.client.id())
        .await
        .unwrap()
        .expect("still loads");
    assert_eq!(found.client.roles(), &RoleSet::from_iter([Role::EVALUATOR]));
    assert!(found.client.effective_roles(&found.account).is_empty());
    // Still manageable: a rename keeps the role the account lost.
    let renamed = store
        .update_client(
            narrow.client.id(),
            &Precondition::default(),
            change(|s| s.name = "Renamed".into()),
        )
        .await
        .unwrap();
    assert_eq!(renamed.roles(), &RoleSet::from_iter([Role::EVALUATOR]));
    store
        .update_account(
            &acme(),
            Box::new(|a| {
                a.roles = RoleSet::from_iter([Role::USER, Role::EVALUATOR, Role::SUBSCRIBER]);
                Ok(())
            }),
        )
        .await
        .unwrap();
    let native = store
        .resolve_id(made.native.client.id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        native
            .client
            .effective_roles(&native.account)
            .contains(&Role::SUBSCRIBER)
    );
    let narrow = store.resolve_id(narrow.client.id()).await.unwrap().unwrap();
    assert_eq!(
        narrow.client.effective_roles(&narrow.account),
        RoleSet::from_iter([Role::EVALUATOR])
    );
}

#[tokio::test]
async fn invalid_changes_are_refused_as_the_in_memory_store_refuses_them() {
    let schema = Schema::create("invalid").await;
    let store = schema.store().await.max_grants(2);
    let made = store.create_account(account("acme")).await.unwrap();
    let native = made.native.client.id();
    let nobody = ClientId::new("nobody").unwrap();
    let elsewhere = AccountId::new("elsewhere").unwrap();
    let invalid = |r: Result<(), ManageError>| match r {
        Err(ManageError::Invalid(e)) => e,
        other => panic!("{other:?}"),
    };
    let e = invalid(
        store
            .create_client(&elsewhere, ClientSpec::native("x"))
            .await
            .map(|_| ()),
    );
    assert_eq!(e, ConfigError::UnknownAccount("elsewhere".into()));
    let e = invalid(
        store
            .update_client(&nobody, &Precondition::default(), change(|_| {}))
            .await
            .map(|_| ()),
    );
    assert_eq!(e, ConfigError::UnknownClient("nobody".into()));
    let e = invalid(store.list_clients(&elsewhere).await.map(|_| ()));
    assert_eq!(e, ConfigError::UnknownAccount("elsewhere".into()));
    let e = invalid(
        store
            .update_client(
                native,
                &Precondition::default(),
                change(|s| s.allowed_origins = vec!["example.com".into()]),
            )
            .await
            .map(|_| ()),
    );
    assert!(matches!(e, ConfigError::OriginsOnConfidentialClient { .. }));
    let e = invalid(
        store
            .update_client(
                native,
                &Precondition::default(),
                change(|s| s.kind = ClientKind::JavaScript),
            )
            .await
            .map(|_| ()),
    );
    assert!(e.to_string().contains("kind"), "{e}");
    let e = invalid(
        store
            .update_client(
                native,
                &Precondition::default(),
                change(|s| s.id = Some(ClientId::new("other").unwrap())),
            )
            .await
            .map(|_| ()),
    );
    assert!(e.to_string().contains("id"), "{e}");
    let grants: Vec<Grant> = (0..3)
        .map(|i| Grant::new(format!("item-{i}"), [Action::Read]).unwrap())
        .collect();
    let e = invalid(
        store
            .update_client(
                native,
                &Precondition::default(),
                change(|s| s.grants = grants),
            )
            .await
            .map(|_| ()),
    );
    assert!(e.to_string().contains("grants"), "{e}");
    let e = invalid(
        store
            .create_client(&acme(), ClientSpec::native("dup").id(native.clone()))
            .await
            .map(|_| ()),
    );
    assert!(matches!(e, ConfigError::DuplicateId { what: "client", .. }));
    let e = invalid(
        store
            .update_account(
                &acme(),
                Box::new(|a| {
                    a.name = String::new();
                    Ok(())
                }),
            )
            .await
            .map(|_| ()),
    );
    assert!(e.to_string().contains("name"), "{e}");
    let e = invalid(
        store
            .update_account(
                &acme(),
                Box::new(|a| {
                    a.contact.contact_email = Some("not an address".into());
                    Ok(())
                }),
            )
            .await
            .map(|_| ()),
    );
    assert!(e.to_string().contains("contact_email"), "{e}");
    // None of it changed anything.
    let now = store.resolve_id(native).await.unwrap().unwrap();
    assert_eq!(now.client.to_spec(), made.native.client.to_spec());
    assert_eq!(*now.account, *made.account);
    assert_eq!(store.list_clients(&acme()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_credential_cannot_be_held_by_two_clients_and_a_refused_insert_leaves_nothing() {
    let schema = Schema::create("shared").await;
    let store = schema.store().await;
    store.insert_account(account("acme")).await.unwrap();
    let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
    let (first, generated) = store
        .insert_client(
            &acme(),
            ClientSpec::javascript("a"),
            StoredCredential::Plain(key.clone()),
        )
        .await
        .unwrap();
    assert!(generated.is_none());
    let second = ClientId::new("second").unwrap();
    let refused = store
        .insert_client(
            &acme(),
            ClientSpec::javascript("b").id(second.clone()),
            StoredCredential::Plain(key.clone()),
        )
        .await;
    match refused {
        Err(ManageError::Invalid(e)) => assert!(e.to_string().contains("another client"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(store.resolve_id(&second).await.unwrap().is_none());
    let found = store.resolve_key(&key.digest()).await.unwrap().unwrap();
    assert_eq!(found.client.id(), first.id());
    // A key of the wrong kind is refused by name.
    let secret = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
    let refused = store
        .insert_client(
            &acme(),
            ClientSpec::javascript("c"),
            StoredCredential::Plain(secret),
        )
        .await;
    assert!(matches!(
        refused,
        Err(ManageError::Invalid(ConfigError::InvalidCredential {
            field: "api_key",
            ..
        }))
    ));
}

#[tokio::test]
async fn listings_are_ordered_by_id_byte_for_byte_as_in_memory() {
    let schema = Schema::create("order").await;
    let store = schema.store().await;
    let memory = InMemoryStore::new();
    let ids = ["b", "B", "a-b", "ab", "a_b", "A", "a.b"];
    for id in ids {
        let mut holder = account("x");
        holder.id = AccountId::new(id).unwrap();
        store.insert_account(holder.clone()).await.unwrap();
        memory.insert_account(holder).unwrap();
    }
    let ours: Vec<String> = store
        .list_accounts()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id.to_string())
        .collect();
    let reference: Vec<String> = memory.accounts().iter().map(|a| a.id.to_string()).collect();
    assert_eq!(ours, reference);
    for id in ids {
        let spec = ClientSpec::native("n").id(ClientId::new(id).unwrap());
        store
            .insert_client(
                &AccountId::new("A").unwrap(),
                spec.clone(),
                StoredCredential::Generate,
            )
            .await
            .unwrap();
        memory
            .insert_client(
                &AccountId::new("A").unwrap(),
                spec,
                StoredCredential::Generate,
            )
            .unwrap();
    }
    let ours: Vec<String> = store
        .list_clients(&AccountId::new("A").unwrap())
        .await
        .unwrap()
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    let reference: Vec<String> = memory
        .clients_of(&AccountId::new("A").unwrap())
        .iter()
        .map(|c| c.id().to_string())
        .collect();
    assert_eq!(ours, reference);
}

/// The changes a listener hears, in order.
async fn listening(
    store: &PostgresStore,
) -> (
    gis_auth::store::ChangeListener,
    mpsc::UnboundedReceiver<Invalidation>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = store
        .listen(move |change| {
            let _ = tx.send(change);
        })
        .await
        .unwrap();
    (listener, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Invalidation>) -> Invalidation {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s")
        .expect("the listener is running")
}

#[tokio::test]
async fn every_change_is_announced_when_it_commits_and_a_refused_one_is_not() {
    let schema = Schema::create("notify").await;
    let store = schema.store().await;
    let (_listener, mut heard) = listening(&store).await;
    let made = store.create_account(account("acme")).await.unwrap();
    assert_eq!(next(&mut heard).await, Invalidation::Account(acme()));
    let web = made.javascript.client.id().clone();
    let client = |id: &ClientId| Invalidation::Client(id.clone());

    store
        .update_client(
            &web,
            &Precondition::default(),
            change(|s| s.status = Status::Inactive),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, client(&web));
    store
        .regenerate_client(
            &web,
            &Precondition::default(),
            Some(time::Duration::hours(1)),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, client(&web));
    store.retire_previous(&web).await.unwrap();
    assert_eq!(next(&mut heard).await, client(&web));
    let extra = store
        .create_client(&acme(), ClientSpec::native("Batch"))
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, client(extra.client.id()));
    store
        .update_account(
            &acme(),
            Box::new(|a| {
                a.daily_quota = Some(5);
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, Invalidation::Account(acme()));
    // A refused change announces nothing: the next announcement is the delete's.
    let stale = Precondition {
        if_match: Some("\"stale\"".into()),
        ..Precondition::default()
    };
    assert!(store.delete_client(&web, &stale).await.is_err());
    store
        .delete_client(&web, &Precondition::default())
        .await
        .unwrap();
    assert_eq!(next(&mut heard).await, client(&web));
    assert!(heard.try_recv().is_err(), "nothing more");
}

#[tokio::test]
async fn the_listener_comes_back_by_itself_after_its_connection_is_killed() {
    let schema = Schema::create("relisten").await;
    let store = schema.store().await;
    let made = store.create_account(account("acme")).await.unwrap();
    let (_listener, mut heard) = listening(&store).await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND query ILIKE $1",
    )
    .bind(format!("%LISTEN%{}%", schema.name))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(killed, [true], "one listening connection");
    assert_eq!(
        next(&mut heard).await,
        Invalidation::Everything,
        "caches drop everything: changes may have been missed"
    );
    let web = made.javascript.client.id().clone();
    // Changes made once it is back are heard again: change the client until one is heard.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut heard_again = false;
    while !heard_again && tokio::time::Instant::now() < deadline {
        store
            .update_client(
                &web,
                &Precondition::default(),
                change(|s| s.name = "x".into()),
            )
            .await
            .unwrap();
        while let Ok(Some(change)) =
            tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
        {
            if change == Invalidation::Client(web.clone()) {
                heard_again = true;
                break;
            }
        }
    }
    assert!(heard_again, "a change after the reconnection is heard");
}

fn tiles() -> RouteTable {
    RouteTable::new()
        .route(
            Method::GET,
            "/tiles/{z}/{x}/{y}.png",
            Api::new("WorldStreets", [Role::EVALUATOR]).plugin(true),
        )
        .unwrap()
}

async fn status<S>(svc: &mut S, key: &str) -> StatusCode
where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<gis_auth::layer::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        >,
{
    let req = Request::get(format!("/tiles/1/2/3.png?apikey={key}"))
        .body(Full::default())
        .unwrap();
    svc.ready().await.unwrap().call(req).await.unwrap().status()
}

#[tokio::test]
async fn an_unreachable_database_is_503_and_service_resumes_without_a_restart() {
    let schema = Schema::create("outage").await;
    let link = schema.relay().await;
    let store = schema.store_through(&link).await;
    let made = store.create_account(account("acme")).await.unwrap();
    let other = store
        .create_client(&acme(), ClientSpec::javascript("Second map"))
        .await
        .unwrap();
    let cached = Arc::new(CachedStore::new(store.clone()));
    let layer = AuthLayer::new(cached.clone(), tiles()).store_timeout(Some(Duration::from_secs(2)));
    let mut svc =
        tower::ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_req: Request<Full<Bytes>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"tile"))))
            });
    let key = made.javascript.credential.expose().to_owned();
    assert_eq!(status(&mut svc, &key).await, StatusCode::OK);

    link.cut();
    // Not cached: the store is asked, fails, and the answer is 503, never a pass.
    let uncached = other.credential.expose().to_owned();
    assert_eq!(
        status(&mut svc, &uncached).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    link.restore();
    let back = eventually(Duration::from_secs(10), || {
        let mut svc = svc.clone();
        let key = uncached.clone();
        async move { status(&mut svc, &key).await == StatusCode::OK }
    })
    .await;
    assert!(back, "served again once the database is back");
    assert_eq!(status(&mut svc, &key).await, StatusCode::OK);
}
