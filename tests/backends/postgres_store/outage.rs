//! An outage: 503 while the database is unreachable, and service resumes without a restart.

use super::*;

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
    let layer =
        AuthLayer::new(cached.clone(), tiles()).backend_timeout(Some(Duration::from_secs(2)));
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
