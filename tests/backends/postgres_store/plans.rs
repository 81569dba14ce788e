//! An account's plan in PostgreSQL: every setting written and read back, the client cap
//! held under concurrency, and the item ceiling on every write.

use gis_auth::client::{ItemCeiling, Plan};

use super::*;

fn read_grant(item: &str) -> Grant {
    Grant::new(item, [Action::Read]).unwrap()
}

#[tokio::test]
async fn every_plan_setting_is_written_read_back_and_cleared() {
    let schema = Schema::create("plan").await;
    let writer = schema.store().await;
    let plan = Plan::default()
        .with_daily_quota(Some(1_000))
        .with_monthly_quota(Some(20_000))
        .with_rate_limit(Some(RateLimit::new(20, 50).unwrap()))
        .with_max_clients(Some(25))
        .with_items(Some(ItemCeiling::new(["roads", "parcels-*"]).unwrap()))
        .with_expires_at(Some(datetime!(2027-01-31 00:00 UTC)));
    let made = writer
        .create_account(account("acme").with_plan(plan.clone()))
        .await
        .unwrap();
    assert_eq!(made.account.plan, plan);
    // A second store on a pool of its own reads what the first wrote.
    let reader = schema.store().await;
    let found = reader.account(&acme()).await.unwrap().unwrap();
    assert_eq!(found.plan, plan);
    let resolved = reader
        .resolve_id(made.native.client.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        resolved.account.plan, plan,
        "a client's account carries the plan"
    );

    // Unlimited clients, then every setting cleared.
    writer
        .update_account(
            &acme(),
            Box::new(|a| {
                a.plan.max_clients = None;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        reader.list_accounts().await.unwrap()[0].plan.max_clients,
        None
    );
    writer
        .update_account(
            &acme(),
            Box::new(|a| {
                a.plan = Plan::default();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        reader.account(&acme()).await.unwrap().unwrap().plan,
        Plan::default()
    );
}

#[tokio::test]
async fn an_account_stored_before_plans_existed_gets_the_default_cap() {
    let schema = Schema::create("planmigr").await;
    let store = schema.store().await;
    sqlx::query(
        "INSERT INTO accounts (id, name, roles, status) VALUES ('old', 'Old', '{User}', 'active')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let old = store
        .account(&AccountId::new("old").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.plan, Plan::default());
}

#[tokio::test]
async fn concurrent_creations_never_take_an_account_beyond_its_cap() {
    let schema = Schema::create("plancap").await;
    let store = schema.store().await;
    // Two default clients, room for two more.
    let capped = account("acme").with_plan(Plan::default().with_max_clients(Some(4)));
    store.create_account(capped).await.unwrap();
    let creations = (0..6).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create_client(&acme(), ClientSpec::javascript(format!("web {i}")))
                .await
        })
    });
    let mut made = 0;
    let mut refused = 0;
    for creation in futures_join_all(creations).await {
        match creation {
            Ok(_) => made += 1,
            Err(ManageError::TooManyClients { max: 4, .. }) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((made, refused), (2, 4));
    assert_eq!(store.list_clients(&acme()).await.unwrap().len(), 4);
    // The operator's own inserts (a file loaded into the store) are not capped.
    store
        .insert_client(
            &acme(),
            ClientSpec::javascript("loaded"),
            NewCredential::Generate,
        )
        .await
        .unwrap();
}

async fn futures_join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.expect("the task ends"));
    }
    out
}

#[tokio::test]
async fn a_grant_outside_the_accounts_items_is_refused_on_every_write() {
    let schema = Schema::create("planitems").await;
    let store = schema.store().await;
    let capped = account("acme").with_plan(
        Plan::default().with_items(Some(ItemCeiling::new(["roads", "parcels-*"]).unwrap())),
    );
    store.create_account(capped).await.unwrap();
    let outside = store
        .create_client(
            &acme(),
            ClientSpec::javascript("web").grants([read_grant("tiles")]),
        )
        .await;
    assert!(
        matches!(
            &outside,
            Err(ManageError::Invalid(ConfigError::ItemNotInPlan { item, .. })) if item == "tiles"
        ),
        "{outside:?}"
    );
    let web = store
        .create_client(
            &acme(),
            ClientSpec::javascript("web").grants([read_grant("parcels-north")]),
        )
        .await
        .unwrap();
    let widened = store
        .update_client(
            web.client.id(),
            &Precondition::default(),
            change(|s| s.grants.push(read_grant("tiles"))),
        )
        .await;
    assert!(matches!(
        widened,
        Err(ManageError::Invalid(ConfigError::ItemNotInPlan { .. }))
    ));
    // A ceiling that would leave the client's grant outside it is refused, naming both.
    let narrowed = store
        .update_account(
            &acme(),
            Box::new(|a| {
                a.plan.items = Some(ItemCeiling::new(["roads"])?);
                Ok(())
            }),
        )
        .await;
    match narrowed {
        Err(ManageError::Invalid(ConfigError::ItemNotInPlan { client, item, .. })) => {
            assert_eq!(
                (client.as_str(), item.as_str()),
                (web.client.id().as_str(), "parcels-north")
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    let stored = store.account(&acme()).await.unwrap().unwrap();
    assert!(stored.plan.items.as_ref().unwrap().admits("parcels-north"));
}
