//! The layer's settings, and readiness kept by the service it wraps.

use super::*;

#[tokio::test]
async fn a_custom_query_parameter_name_is_used_instead_of_apikey() {
    let world = World::new();
    let layer = world.layer().query_param("key");
    let key = world.key();
    let r = world
        .send_via(&layer, get(&format!("/elevation?lat=1&KEY={key}&lon=2")))
        .await;
    assert_eq!(r.seen_uri(), "/elevation?lat=1&lon=2");
    let r = world
        .send_via(
            &layer,
            get(&format!("/elevation?key={key}&apikey=left-alone")),
        )
        .await;
    assert_eq!(r.seen_uri(), "/elevation?apikey=left-alone");
    let r = world.send_via(&layer, get(&tile(&key))).await;
    r.assert_missing_credential();
    let r = world
        .send_via(&layer, get(&format!("/elevation?key={key}&Key={key}")))
        .await;
    r.assert_invalid_request();
}

#[tokio::test]
async fn the_credential_size_limit_is_configurable_and_checked_before_the_store() {
    let world = World::new();
    let counting = Arc::new(CountingStore::new(world.store.clone()));
    let layer = world.layer_over(counting.clone()).max_credential_len(32);
    let key = world.key();
    assert!(key.len() > 32);
    let r = world.send_via(&layer, get(&tile(&key))).await;
    r.assert_invalid_request();
    assert_eq!(r.kind(), RejectionKind::CredentialTooLong);
    let r = world
        .send_via(&layer, get("/geocode").bearer(&"t".repeat(33)))
        .await;
    r.assert_invalid_request();
    assert_eq!(counting.calls(), 0);
    assert_eq!(world.tokens.calls(), 0);
    let r = world
        .send_via(&layer, get("/geocode").bearer(&"t".repeat(32)))
        .await;
    r.assert_invalid_token();
    assert_eq!(world.tokens.calls(), 1);
}

/// A service with a fixed number of slots: `poll_ready` reserves one for the next `call`,
/// which fails if it was not reserved. Clones share the slots but not a reservation.
struct Slots {
    free: Arc<Mutex<(usize, Vec<Waker>)>>,
    reserved: bool,
    unreserved_calls: Arc<AtomicUsize>,
}

impl Slots {
    fn new(slots: usize) -> Self {
        Self {
            free: Arc::new(Mutex::new((slots, Vec::new()))),
            reserved: false,
            unreserved_calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn release(&self) {
        let mut free = self.free.lock().expect("not poisoned");
        free.0 += 1;
        for waker in free.1.drain(..) {
            waker.wake();
        }
    }

    fn free_slots(&self) -> usize {
        self.free.lock().expect("not poisoned").0
    }
}

impl Clone for Slots {
    fn clone(&self) -> Self {
        Self {
            free: self.free.clone(),
            reserved: false,
            unreserved_calls: self.unreserved_calls.clone(),
        }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        if self.reserved {
            self.release();
        }
    }
}

impl Service<Request<Full<Bytes>>> for Slots {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.reserved {
            return Poll::Ready(Ok(()));
        }
        let mut free = self.free.lock().expect("not poisoned");
        if free.0 == 0 {
            free.1.push(cx.waker().clone());
            return Poll::Pending;
        }
        free.0 -= 1;
        self.reserved = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Full<Bytes>>) -> Self::Future {
        if !self.reserved {
            self.unreserved_calls.fetch_add(1, Ordering::SeqCst);
            let mut res = Response::new(Full::default());
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return std::future::ready(Ok(res));
        }
        self.reserved = false;
        // The slot is held for the length of the call; this call ends at once.
        self.release();
        std::future::ready(Ok(echo(&req)))
    }
}

#[tokio::test]
async fn readiness_reserved_by_poll_ready_is_carried_into_the_call() {
    let world = World::new();
    let slots = Slots::new(1);
    let unreserved = slots.unreserved_calls.clone();
    let free = slots.free.clone();
    let mut svc = world.layer().layer(slots);
    let key = world.key();
    let requests = [
        get(&tile(&key)),
        get(&tile(&stranger_key())),
        get("/tiles/1/2/3.png"),
        get(&tile(&key)),
        get("/geocode").bearer(&world.token()),
        get("/admin"),
        get(&tile(&key)),
    ];
    for req in requests {
        let ready = tokio::time::timeout(std::time::Duration::from_secs(5), svc.ready())
            .await
            .expect("a slot is free again")
            .expect("ready");
        let res = ready.call(req.into_request()).await.expect("answers");
        assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(unreserved.load(Ordering::SeqCst), 0);
    drop(svc);
    assert_eq!(
        free.lock().expect("not poisoned").0,
        1,
        "every slot came back"
    );
}

#[tokio::test]
async fn poll_ready_is_the_inner_services() {
    let world = World::new();
    let slots = Slots::new(0);
    let mut svc = world.layer().layer(slots);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(svc.poll_ready(&mut cx).is_pending());
    svc.get_ref().release();
    assert!(matches!(svc.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    assert_eq!(svc.get_ref().free_slots(), 0);
}

#[tokio::test]
async fn concurrent_requests_through_clones_of_one_service() {
    let world = World::new();
    let svc = world.service();
    let key = world.key();
    let token = world.token();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let svc = svc.clone();
        let req = match i % 3 {
            0 => get(&tile(&key)),
            1 => get("/geocode").bearer(&token),
            _ => get(&tile(&stranger_key())),
        };
        tasks.push(tokio::spawn(async move { (i, send(svc, req).await) }));
    }
    for task in tasks {
        let (i, r) = task.await.expect("no panic");
        if i % 3 == 2 {
            r.assert_invalid_token();
        } else {
            r.assert_ok();
        }
    }
}
