//! The example's WMS 1.3.0 on `/wms`: capabilities listing the layers each caller may use,
//! GetMap honouring its parameters, OGC exceptions for bad requests, and the layer's own
//! refusals on the route written as OGC service exception reports.

use super::*;

/// Clients of a WMS: `granted` holds `read` on `parcels` (and on `ghost`, a layer the
/// service does not have), `plain` holds no grant, `trying` runs its grants report-only,
/// `spent`'s account has a daily quota of one transaction, `web` is a JavaScript client.
struct Wms {
    router: Router,
    granted: String,
    plain: String,
    spent: String,
    /// Runs its grants report-only.
    trying: String,
    web_key: String,
}

fn wms() -> Wms {
    let seeded = app::load_clients_json(
        r#"{
  "accounts": [
    {"id": "ci", "name": "CI", "roles": ["User", "Evaluator", "Subscriber"]},
    {"id": "spent", "name": "Spent", "roles": ["Evaluator"], "daily_quota": 1}
  ],
  "clients": [
    {"id": "granted", "account": "ci", "kind": "NativeConfidential",
     "grants": [{"item": "parcels", "actions": ["read"]}, {"item": "ghost", "actions": ["read"]}]},
    {"id": "plain", "account": "ci", "kind": "NativeConfidential"},
    {"id": "trying", "account": "ci", "kind": "NativeConfidential", "shadow": ["grants"]},
    {"id": "spent", "account": "spent", "kind": "NativeConfidential"},
    {"id": "web", "account": "ci", "kind": "JavaScript"}
  ]
}"#,
    )
    .expect("a valid clients file");
    let id = |s: &str| ClientId::new(s).unwrap();
    let (granted, plain, spent, trying) = (id("granted"), id("plain"), id("spent"), id("trying"));
    let web_key = seeded
        .generated
        .iter()
        .find(|g| g.kind == ClientKind::JavaScript)
        .expect("a generated key")
        .credential
        .expose()
        .to_owned();
    Wms {
        router: router_with_tokens(
            seeded.store.clone(),
            &[&granted, &plain, &spent, &trying],
            app::Options::default(),
        ),
        granted: token_of(&granted),
        plain: token_of(&plain),
        spent: token_of(&spent),
        trying: token_of(&trying),
        web_key,
    }
}

const NS: &str = "http://www.opengis.net/wms";
const GET_MAP: &str = "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&STYLES=&FORMAT=image/png";

/// A GetMap of `layers` over the world in CRS:84, `w` × `h`, with `extra` parameters.
fn get_map(layers: &str, w: u32, h: u32) -> String {
    format!("{GET_MAP}&LAYERS={layers}&CRS=CRS:84&BBOX=-180,-85,180,85&WIDTH={w}&HEIGHT={h}")
}

/// The `ServiceException` of a `ServiceExceptionReport`: its `code` and text.
fn exception(reply: &Reply) -> (String, String) {
    assert_eq!(
        reply.header(header::CONTENT_TYPE),
        Some("text/xml"),
        "{}",
        reply.text()
    );
    let text = reply.text();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "ServiceExceptionReport");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.opengis.net/ogc")
    );
    assert_eq!(root.attribute("version"), Some("1.3.0"));
    let ex = root
        .children()
        .find(|n| n.has_tag_name("ServiceException"))
        .expect("one ServiceException");
    (
        ex.attribute("code").unwrap_or_default().to_owned(),
        ex.text().unwrap_or_default().to_owned(),
    )
}

/// The named layers of a capabilities document.
fn named_layers(reply: &Reply) -> Vec<String> {
    let text = reply.text();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    doc.descendants()
        .filter(|n| n.has_tag_name((NS, "Layer")))
        .filter_map(|l| l.children().find(|c| c.has_tag_name((NS, "Name"))))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

fn png_size(reply: &Reply) -> (u32, u32) {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("image/png"));
    let decoder = png::Decoder::new(std::io::Cursor::new(reply.body.to_vec()));
    let reader = decoder.read_info().expect("a PNG");
    (reader.info().width, reader.info().height)
}

fn pixels(reply: &Reply) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(reply.body.to_vec()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    reader.next_frame(&mut buf).expect("a frame");
    buf
}

#[tokio::test]
async fn capabilities_are_a_wms_1_3_0_document() {
    let wms = wms();
    // Parameter names in any case (WMS 1.3.0 §6.8.1).
    let reply = send(
        wms.router.clone(),
        bearer("/wms?service=WMS&Request=GetCapabilities", &wms.plain),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CONTENT_TYPE), Some("text/xml"));
    let text = reply.text();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let root = doc.root_element();
    assert!(root.has_tag_name((NS, "WMS_Capabilities")));
    assert_eq!(root.attribute("version"), Some("1.3.0"));
    let get_map = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "GetMap")))
        .expect("GetMap is offered");
    let formats: Vec<_> = get_map
        .children()
        .filter(|n| n.has_tag_name((NS, "Format")))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(formats, ["image/png"]);
    let href = get_map
        .descendants()
        .find(|n| n.has_tag_name((NS, "OnlineResource")))
        .and_then(|n| n.attribute(("http://www.w3.org/1999/xlink", "href")));
    assert!(href.is_some_and(|h| h.ends_with("/wms?")), "{href:?}");
    let crs: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name((NS, "CRS")))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(crs, ["EPSG:3857", "EPSG:4326", "CRS:84"]);
    let service = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "Service")))
        .expect("a Service section");
    let name = service.children().find(|n| n.has_tag_name((NS, "Name")));
    assert_eq!(name.and_then(|n| n.text()), Some("WMS"));
}

#[tokio::test]
async fn capabilities_list_only_the_layers_the_caller_may_use() {
    let wms = wms();
    let caps = "/wms?SERVICE=WMS&REQUEST=GetCapabilities";
    let reply = send(wms.router.clone(), bearer(caps, &wms.granted)).await;
    assert_eq!(named_layers(&reply), ["streets", "imagery", "parcels"]);
    let reply = send(wms.router.clone(), bearer(caps, &wms.plain)).await;
    assert_eq!(named_layers(&reply), ["streets", "imagery"]);
}

#[tokio::test]
async fn get_map_draws_a_png_of_exactly_width_by_height() {
    let wms = wms();
    for (w, h) in [(1, 1), (300, 200), (512, 512), (4096, 2)] {
        let reply = send(
            wms.router.clone(),
            bearer(&get_map("streets,parcels", w, h), &wms.granted),
        )
        .await;
        assert_eq!(png_size(&reply), (w, h));
    }
    let reply = send(
        wms.router.clone(),
        bearer(&get_map("imagery", 64, 32), &wms.plain),
    )
    .await;
    assert_eq!(png_size(&reply), (64, 32));
}

#[tokio::test]
async fn epsg_4326_bounding_boxes_are_latitude_first() {
    let wms = wms();
    // Imagery changes colour with latitude: the same box in CRS:84 (lon,lat) and in
    // EPSG:4326 (lat,lon, WMS 1.3.0 §6.7.3.3) draws the same map, and the box read the
    // other way round does not.
    let map = |crs: &str, bbox: &str| {
        format!("{GET_MAP}&LAYERS=imagery&CRS={crs}&BBOX={bbox}&WIDTH=16&HEIGHT=16")
    };
    let draw = |uri: String| {
        let router = wms.router.clone();
        let token = wms.plain.clone();
        async move { pixels(&send(router, bearer(&uri, &token)).await) }
    };
    let lon_lat = draw(map("CRS:84", "-180,-60,180,-10")).await;
    let lat_lon = draw(map("EPSG:4326", "-60,-180,-10,180")).await;
    let swapped = draw(map("EPSG:4326", "-180,-60,180,-10")).await;
    assert_eq!(lon_lat, lat_lon);
    assert_ne!(lon_lat, swapped);
    let mercator = draw(map("EPSG:3857", "-20037508,-20037508,20037508,20037508")).await;
    assert_eq!(mercator.len(), lon_lat.len());
}

#[tokio::test]
async fn bad_requests_are_ogc_exceptions() {
    let wms = wms();
    let base = "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap";
    let all =
        "LAYERS=streets&STYLES=&CRS=CRS:84&BBOX=-180,-85,180,85&WIDTH=8&HEIGHT=8&FORMAT=image/png";
    let without = |name: &str| {
        let kept: Vec<&str> = all
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect();
        format!("{base}&{}", kept.join("&"))
    };
    let with = |name: &str, value: &str| format!("{}&{name}={value}", without(name));
    let mut cases = vec![
        ("/wms?SERVICE=WMS".to_owned(), "MissingParameterValue"),
        (
            "/wms?REQUEST=GetCapabilities".to_owned(),
            "MissingParameterValue",
        ),
        (
            "/wms?SERVICE=WFS&REQUEST=GetCapabilities".to_owned(),
            "InvalidParameterValue",
        ),
        (
            "/wms?SERVICE=WMS&REQUEST=GetFeatureInfo".to_owned(),
            "OperationNotSupported",
        ),
        (
            format!("/wms?SERVICE=WMS&REQUEST=GetMap&{all}"),
            "MissingParameterValue",
        ),
        (
            with("VERSION", "1.1.1").replace("VERSION=1.3.0&", ""),
            "InvalidParameterValue",
        ),
        (with("LAYERS", "ghost"), "LayerNotDefined"),
        (with("LAYERS", "streets,ghost"), "LayerNotDefined"),
        (with("STYLES", "fancy"), "StyleNotDefined"),
        (with("STYLES", "default,default"), "InvalidParameterValue"),
        (with("CRS", "EPSG:2154"), "InvalidCRS"),
        (with("BBOX", "1,2,3"), "InvalidParameterValue"),
        (with("BBOX", "10,0,-10,5"), "InvalidParameterValue"),
        (with("BBOX", "a,b,c,d"), "InvalidParameterValue"),
        (with("WIDTH", "0"), "InvalidParameterValue"),
        (with("WIDTH", "4097"), "InvalidParameterValue"),
        (with("HEIGHT", "12.5"), "InvalidParameterValue"),
        (with("FORMAT", "image/jpeg"), "InvalidFormat"),
        (with("TRANSPARENT", "maybe"), "InvalidParameterValue"),
        (format!("{}&width=8", without("")), "InvalidParameterValue"),
    ];
    for name in [
        "LAYERS", "STYLES", "CRS", "BBOX", "WIDTH", "HEIGHT", "FORMAT",
    ] {
        cases.push((without(name), "MissingParameterValue"));
    }
    for (uri, code) in cases {
        let reply = send(wms.router.clone(), bearer(&uri, &wms.granted)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(exception(&reply).0, code, "{uri}");
    }
    let ok = send(wms.router.clone(), bearer(&without(""), &wms.granted)).await;
    assert_eq!(png_size(&ok), (8, 8));
}

#[tokio::test]
async fn a_layer_without_its_grant_is_an_ogc_insufficient_scope() {
    let wms = wms();
    for layers in ["parcels", "streets,parcels", "ghost", "secret"] {
        let reply = send(
            wms.router.clone(),
            bearer(&get_map(layers, 8, 8), &wms.plain),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{layers}");
        let (code, text) = exception(&reply);
        assert_eq!(code, "insufficient_scope");
        assert_eq!(text, RejectionKind::ItemNotGranted.description());
        assert!(
            reply
                .header(header::WWW_AUTHENTICATE)
                .is_some_and(|c| c.contains("error=\"insufficient_scope\""))
        );
    }
}

#[tokio::test]
async fn the_layers_refusals_on_the_wms_route_are_exception_reports_with_the_same_headers() {
    let wms = wms();
    let caps = "/wms?SERVICE=WMS&REQUEST=GetCapabilities";
    let cross_origin = |mut req: Request<axum::body::Body>| {
        req.headers_mut()
            .insert(header::ORIGIN, "https://maps.example".parse().unwrap());
        req
    };
    // No credential: 401 with the bare challenge.
    let reply = send(wms.router.clone(), cross_origin(get(caps))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let (code, text) = exception(&reply);
    assert_eq!(code, RejectionKind::MissingCredential.error_code());
    assert_eq!(text, RejectionKind::MissingCredential.description());
    assert_eq!(
        reply.header(header::WWW_AUTHENTICATE),
        Some("Bearer realm=\"gis-auth\"")
    );
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    // A token nobody issued.
    let reply = send(wms.router.clone(), bearer(caps, "made-up")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(exception(&reply).0, "invalid_token");
    // A JavaScript key: the WMS is no plugin API.
    let uri = format!("{caps}&apikey={}", wms.web_key);
    let reply = send(wms.router.clone(), get(&uri)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(exception(&reply).0, "insufficient_scope");
    assert!(!reply.text().contains(&wms.web_key));
    // A spent quota: 429 with Retry-After and the quota headers.
    let first = send(wms.router.clone(), bearer(caps, &wms.spent)).await;
    assert_eq!(first.status, StatusCode::OK);
    let reply = send(wms.router.clone(), cross_origin(bearer(caps, &wms.spent))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let (code, text) = exception(&reply);
    assert_eq!(code, "quota_exceeded");
    assert_eq!(text, RejectionKind::QuotaExceeded.description());
    assert!(reply.header_u64(header::RETRY_AFTER) > 0);
    assert_eq!(reply.header("ratelimit-remaining"), Some("0"));
    assert_eq!(reply.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), Some("*"));
    assert!(
        reply
            .header(header::ACCESS_CONTROL_EXPOSE_HEADERS)
            .is_some_and(|h| h.contains("retry-after"))
    );
    // The same refusal on a JSON route stays JSON.
    let reply = send(wms.router.clone(), get("/geocode?q=paris")).await;
    reply.assert_json_error(StatusCode::UNAUTHORIZED, "unauthorized", None);
}

#[tokio::test]
async fn grants_run_report_only_let_every_layer_through_and_list_only_the_granted() {
    let wms = wms();
    let reply = send(
        wms.router.clone(),
        bearer(&get_map("streets,parcels", 8, 8), &wms.trying),
    )
    .await;
    assert_eq!(png_size(&reply), (8, 8));
    let caps = "/wms?SERVICE=WMS&REQUEST=GetCapabilities";
    let reply = send(wms.router.clone(), bearer(caps, &wms.trying)).await;
    assert_eq!(named_layers(&reply), ["streets", "imagery"]);
}
