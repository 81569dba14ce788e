//! Change notification: every committed change is announced, and the listener comes back by
//! itself.

use super::*;

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
                a.plan.daily_quota = Some(5);
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
