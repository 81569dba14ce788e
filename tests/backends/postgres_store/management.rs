//! Management: preconditions, the lock-out guard under concurrency, roles that follow the
//! account, validation as in memory, unique credentials, and ordered listings.

use super::*;

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
    let unknown = |r: Result<(), ManageError>| match r {
        Err(ManageError::NotFound { kind, id }) => (kind, id),
        other => panic!("{other:?}"),
    };
    let e = unknown(
        store
            .create_client(&elsewhere, ClientSpec::native("x"))
            .await
            .map(|_| ()),
    );
    assert_eq!(e, (RecordKind::Account, "elsewhere".to_owned()));
    let e = unknown(
        store
            .update_client(&nobody, &Precondition::default(), change(|_| {}))
            .await
            .map(|_| ()),
    );
    assert_eq!(e, (RecordKind::Client, "nobody".to_owned()));
    let e = unknown(store.list_clients(&elsewhere).await.map(|_| ()));
    assert_eq!(e, (RecordKind::Account, "elsewhere".to_owned()));
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
    let e = store
        .create_client(&acme(), ClientSpec::native("dup").id(native.clone()))
        .await
        .map(|_| ());
    assert!(matches!(
        e,
        Err(ManageError::Duplicate {
            kind: RecordKind::Client,
            ..
        })
    ));
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
            NewCredential::Plain(key.clone()),
        )
        .await
        .unwrap();
    assert!(generated.is_none());
    let second = ClientId::new("second").unwrap();
    let refused = store
        .insert_client(
            &acme(),
            ClientSpec::javascript("b").id(second.clone()),
            NewCredential::Plain(key.clone()),
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
            NewCredential::Plain(secret),
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
                NewCredential::Generate,
            )
            .await
            .unwrap();
        memory
            .insert_client(&AccountId::new("A").unwrap(), spec, NewCredential::Generate)
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

#[tokio::test]
async fn a_change_limited_to_one_account_finds_no_client_of_another_and_changes_nothing() {
    let schema = Schema::create("owner").await;
    let store = schema.store().await;
    let acme_made = store.create_account(account("acme")).await.unwrap();
    let globex = store.create_account(account("globex")).await.unwrap();
    let theirs = globex.javascript.client.id();
    let as_acme = Precondition {
        keep_admin_access: true,
        account: Some(acme()),
        ..Precondition::default()
    };
    let missing = ClientId::new("cl_nobody").unwrap();
    let unknown = |r: Result<(), ManageError>, id: &ClientId| match r {
        Err(ManageError::NotFound { kind, id: named }) => {
            assert_eq!((kind, named.as_str()), (RecordKind::Client, id.as_str()));
        }
        other => panic!("{other:?}"),
    };
    for id in [theirs, &missing] {
        // Checked before the change is: an invalid change is as unknown as a valid one.
        unknown(
            store
                .update_client(id, &as_acme, change(|s| s.status = Status::Inactive))
                .await
                .map(|_| ()),
            id,
        );
        unknown(
            store
                .update_client(
                    id,
                    &as_acme,
                    change(|s| s.kind = ClientKind::NativeConfidential),
                )
                .await
                .map(|_| ()),
            id,
        );
        unknown(
            store
                .regenerate_client(id, &as_acme, None)
                .await
                .map(|_| ()),
            id,
        );
        unknown(store.delete_client(id, &as_acme).await.map(|_| ()), id);
    }
    let after = store
        .resolve_id(theirs)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(
        etag(&after.client, &after.account),
        etag(&globex.javascript.client, &globex.account),
        "unchanged"
    );
    // The account's own clients change as before.
    let ours = acme_made.javascript.client.id();
    let renamed = store
        .update_client(ours, &as_acme, change(|s| s.name = "Ours".into()))
        .await
        .unwrap();
    assert_eq!(renamed.name(), "Ours");
}

#[tokio::test]
async fn an_accounts_clients_are_read_a_page_at_a_time_by_id() {
    let schema = Schema::create("pages").await;
    let store = schema.store().await;
    store.create_account(account("acme")).await.unwrap();
    store.create_account(account("globex")).await.unwrap();
    for i in 0..5 {
        store
            .create_client(&acme(), ClientSpec::javascript(format!("Map {i}")))
            .await
            .unwrap();
    }
    let all: Vec<ClientId> = store
        .list_clients(&acme())
        .await
        .unwrap()
        .iter()
        .map(|c| c.id().clone())
        .collect();
    assert_eq!(all.len(), 7);
    let mut seen = Vec::new();
    let mut after: Option<ClientId> = None;
    loop {
        let page = store
            .list_clients_page(&acme(), after.as_ref(), 3)
            .await
            .unwrap();
        assert!(page.len() <= 3);
        assert!(page.iter().all(|c| c.account_id() == &acme()));
        let Some(last) = page.last() else { break };
        after = Some(last.id().clone());
        seen.extend(page.iter().map(|c| c.id().clone()));
    }
    assert_eq!(seen, all, "every client once, by id");
    let unknown = store
        .list_clients_page(&AccountId::new("elsewhere").unwrap(), None, 3)
        .await;
    assert!(matches!(
        unknown,
        Err(ManageError::NotFound {
            kind: RecordKind::Account,
            ..
        })
    ));
}
