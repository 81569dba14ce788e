//! The example's WMS 1.3.0 (OGC 06-042) on `GET /wms`: `GetCapabilities` and `GetMap`,
//! with three layers, `streets` and `imagery` open to any caller of the WMS API and
//! `parcels` for callers holding a `read` grant on item `parcels`. The layer decides who
//! may use which layer (the standard table's [`wms_api`]); this service lists the layers a
//! caller may use with the same [`Api`], draws the maps, and answers its own errors as
//! OGC service exception reports, as the layer answers its refusals on this route.

use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gis_auth::Principal;
use gis_auth::client::Action;
use gis_auth::layer::service_exception_report;
use gis_auth::policy::{Api, wms_api};

/// The largest `WIDTH` and `HEIGHT` of a map, in pixels (advertised as `MaxWidth` and
/// `MaxHeight` in the capabilities, §7.2.4).
pub const MAX_SIZE: u32 = 4096;

/// The coordinate reference systems served (§6.7.3): Web Mercator, WGS 84 in its EPSG
/// axis order (latitude first) and in longitude-first order.
pub const CRS: [&str; 3] = ["EPSG:3857", "EPSG:4326", "CRS:84"];

/// Half the extent of Web Mercator, in metres.
const MERCATOR_HALF: f64 = 20_037_508.342_789_244;

/// The latitude where Web Mercator's square ends.
const MERCATOR_MAX_LAT: f64 = 85.051_128_779_806_59;

/// One layer of the service.
#[derive(Debug, Clone, Copy)]
pub struct WmsLayer {
    /// Its `Name`, which `LAYERS` lists; for a layer that is not open, also the item a
    /// caller needs a `read` grant on.
    pub name: &'static str,
    /// Its `Title`.
    pub title: &'static str,
    paint: fn(f64, f64) -> Option<[u8; 3]>,
}

/// The layers, in the order the capabilities list them.
pub const LAYERS: [WmsLayer; 3] = [
    WmsLayer {
        name: "streets",
        title: "Streets",
        paint: paint_streets,
    },
    WmsLayer {
        name: "imagery",
        title: "Imagery",
        paint: paint_imagery,
    },
    WmsLayer {
        name: "parcels",
        title: "Parcels (needs a read grant on item `parcels`)",
        paint: paint_parcels,
    },
];

/// A beige background with a graticule every 10 degrees.
fn paint_streets(lon: f64, lat: f64) -> Option<[u8; 3]> {
    let near = |v: f64| (v / 10.0 - (v / 10.0).round()).abs() < 0.02;
    Some(if near(lon) || near(lat) {
        [150, 140, 120]
    } else {
        [242, 239, 233]
    })
}

/// Green to blue by latitude.
fn paint_imagery(_lon: f64, lat: f64) -> Option<[u8; 3]> {
    let t = ((lat + 90.0) / 180.0).clamp(0.0, 1.0);
    Some([40, (90.0 + 100.0 * t) as u8, (160.0 - 80.0 * t) as u8])
}

/// A checkerboard of one-degree parcels, transparent between them.
fn paint_parcels(lon: f64, lat: f64) -> Option<[u8; 3]> {
    ((lon.floor() + lat.floor()) as i64 % 2 == 0).then_some([230, 120, 40])
}

/// A WMS exception (§6.11, schema `exceptions_1_3_0.xsd`): a `ServiceExceptionReport`, 400
/// unless said otherwise.
#[derive(Debug)]
pub struct OgcError {
    status: StatusCode,
    code: &'static str,
    text: String,
}

impl OgcError {
    fn new(code: &'static str, text: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            text: text.into(),
        }
    }

    fn missing(name: &str) -> Self {
        Self::new("MissingParameterValue", format!("`{name}` is required"))
    }

    fn invalid(text: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", text)
    }
}

impl IntoResponse for OgcError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/xml")],
            service_exception_report(self.code, &self.text),
        )
            .into_response()
    }
}

/// The request's parameters, looked up by name ignoring ASCII case: "Parameter names shall
/// not be case sensitive, but parameter values shall be" (§6.8.1).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Self(pairs.into_owned().collect())
    }

    /// The value of `name`; one given twice is ambiguous and refused.
    fn get(&self, name: &str) -> Result<Option<&str>, OgcError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OgcError::invalid(format!(
                "`{name}` is given more than once"
            )));
        }
        Ok(first)
    }

    fn required(&self, name: &str) -> Result<&str, OgcError> {
        self.get(name)?.ok_or_else(|| OgcError::missing(name))
    }
}

/// The WMS: the API the layer decides it with, to list what a caller may use.
#[derive(Debug, Clone)]
pub struct Wms {
    api: Arc<Api>,
}

impl Default for Wms {
    fn default() -> Self {
        Self {
            api: Arc::new(wms_api()),
        }
    }
}

impl Wms {
    /// Whether the caller may use `layer`: the same question the layer asked of every
    /// layer in `LAYERS`. Without a principal (the unguarded load-test baseline), the open
    /// layers.
    fn usable(&self, caller: Option<&Principal>, layer: &WmsLayer) -> bool {
        match caller {
            Some(who) => self.api.allows_item(who.client(), layer.name, Action::Read),
            None => self.api.open_item_list().iter().any(|o| **o == *layer.name),
        }
    }

    /// `GET /wms?…`.
    pub fn answer(
        &self,
        caller: Option<Extension<Principal>>,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Response, OgcError> {
        let caller = caller.as_ref().map(|Extension(p)| p);
        let params = Params::parse(query);
        if let Some(service) = params.get("SERVICE")?
            && service != "WMS"
        {
            return Err(OgcError::invalid("`SERVICE` is `WMS`"));
        }
        match params.required("REQUEST")? {
            // §7.2: the service metadata. VERSION is negotiated (§6.2.4): this server
            // speaks 1.3.0 only, so it answers 1.3.0 whatever was asked.
            "GetCapabilities" => {
                params.required("SERVICE")?;
                Ok(self.capabilities(caller, headers))
            }
            "GetMap" => self.get_map(&params),
            other => Err(OgcError::new(
                "OperationNotSupported",
                format!(
                    "`{}` is not served; the requests are GetCapabilities and GetMap",
                    other.chars().take(40).collect::<String>()
                ),
            )),
        }
    }

    /// The `WMS_Capabilities` document (§7.2.4, schema `capabilities_1_3_0.xsd`), with
    /// one named `Layer` per layer the caller may use.
    fn capabilities(&self, caller: Option<&Principal>, headers: &HeaderMap) -> Response {
        // The service's address as the client reached it (§6.3: an HTTP GET online
        // resource is a URL prefix ending in `?` or `&`, ready for parameters).
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
            .map_or_else(|| "localhost".to_owned(), |a| a.to_string());
        let href = quick_xml::escape::escape(format!("http://{host}/wms?")).into_owned();
        let online = format!(r#"<OnlineResource xlink:type="simple" xlink:href="{href}"/>"#);
        let dcp = format!("<DCPType><HTTP><Get>{online}</Get></HTTP></DCPType>");
        let mut layers = String::new();
        for layer in LAYERS.iter().filter(|l| self.usable(caller, l)) {
            layers.push_str(&format!(
                "      <Layer queryable=\"0\" opaque=\"{}\">\n        <Name>{}</Name>\n        \
                 <Title>{}</Title>\n        <Style><Name>default</Name><Title>Default</Title></Style>\n      \
                 </Layer>\n",
                u8::from(layer.name != "parcels"),
                quick_xml::escape::escape(layer.name),
                quick_xml::escape::escape(layer.title),
            ));
        }
        let crs: String = CRS.iter().map(|c| format!("<CRS>{c}</CRS>")).collect();
        let lat = MERCATOR_MAX_LAT;
        let m = MERCATOR_HALF;
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/wms http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd">
  <Service>
    <Name>WMS</Name>
    <Title>gis-auth example WMS</Title>
    <Abstract>Synthetic maps behind gis-auth: send an API key (apikey or X-Api-Key) or a bearer token.</Abstract>
    {online}
    <Fees>none</Fees>
    <AccessConstraints>An API key or access token is required; parcels needs a read grant.</AccessConstraints>
    <MaxWidth>{MAX_SIZE}</MaxWidth>
    <MaxHeight>{MAX_SIZE}</MaxHeight>
  </Service>
  <Capability>
    <Request>
      <GetCapabilities><Format>text/xml</Format>{dcp}</GetCapabilities>
      <GetMap><Format>image/png</Format>{dcp}</GetMap>
    </Request>
    <Exception><Format>XML</Format></Exception>
    <Layer>
      <Title>gis-auth example layers</Title>
      {crs}
      <EX_GeographicBoundingBox><westBoundLongitude>-180</westBoundLongitude><eastBoundLongitude>180</eastBoundLongitude><southBoundLatitude>-{lat}</southBoundLatitude><northBoundLatitude>{lat}</northBoundLatitude></EX_GeographicBoundingBox>
      <BoundingBox CRS="CRS:84" minx="-180" miny="-{lat}" maxx="180" maxy="{lat}"/>
      <BoundingBox CRS="EPSG:4326" minx="-{lat}" miny="-180" maxx="{lat}" maxy="180"/>
      <BoundingBox CRS="EPSG:3857" minx="-{m}" miny="-{m}" maxx="{m}" maxy="{m}"/>
{layers}    </Layer>
  </Capability>
</WMS_Capabilities>
"#
        );
        (
            [
                (header::CONTENT_TYPE, "text/xml"),
                // The document depends on who asks.
                (header::CACHE_CONTROL, "private, no-cache"),
            ],
            xml,
        )
            .into_response()
    }

    /// `GetMap` (§7.3): every mandatory parameter of Table 8 checked, then a PNG of exactly
    /// `WIDTH` × `HEIGHT`.
    fn get_map(&self, params: &Params) -> Result<Response, OgcError> {
        let version = params.required("VERSION")?;
        if version != "1.3.0" {
            return Err(OgcError::invalid("`VERSION` is `1.3.0`"));
        }
        // §7.3.3.3: layers are drawn in the order listed, the first at the bottom.
        let mut layers = Vec::new();
        for name in params.required("LAYERS")?.split(',') {
            let layer = LAYERS.iter().find(|l| l.name == name).ok_or_else(|| {
                OgcError::new(
                    "LayerNotDefined",
                    format!("no layer `{}`", name.chars().take(64).collect::<String>()),
                )
            })?;
            // Whether the caller may use it was decided by the layer, once: every layer
            // listed is open or granted (or the client runs its grants report-only).
            layers.push(layer);
        }
        // §7.3.3.4: one style per layer, or an empty value for the default of every layer.
        let styles = params.required("STYLES")?;
        if !styles.is_empty() {
            let listed: Vec<&str> = styles.split(',').collect();
            if listed.len() != layers.len() {
                return Err(OgcError::invalid(
                    "`STYLES` lists one style per layer of `LAYERS`, or is empty",
                ));
            }
            if listed.iter().any(|s| !s.is_empty() && *s != "default") {
                return Err(OgcError::new(
                    "StyleNotDefined",
                    "the only style is `default`",
                ));
            }
        }
        let crs = params.required("CRS")?;
        let Some(crs) = CRS.iter().find(|c| c.eq_ignore_ascii_case(crs)) else {
            return Err(OgcError::new(
                "InvalidCRS",
                "`CRS` is EPSG:3857, EPSG:4326 or CRS:84",
            ));
        };
        let bbox = bbox(params.required("BBOX")?)?;
        let width = size(params, "WIDTH")?;
        let height = size(params, "HEIGHT")?;
        let format = params.required("FORMAT")?;
        if !format.eq_ignore_ascii_case("image/png") {
            return Err(OgcError::new("InvalidFormat", "`FORMAT` is `image/png`"));
        }
        let transparent = match params.get("TRANSPARENT")? {
            None => false,
            Some(t) if t.eq_ignore_ascii_case("TRUE") => true,
            Some(t) if t.eq_ignore_ascii_case("FALSE") => false,
            Some(_) => return Err(OgcError::invalid("`TRANSPARENT` is TRUE or FALSE")),
        };
        let png = draw(&layers, crs, bbox, width, height, transparent).map_err(|e| OgcError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            text: format!("the map could not be encoded: {e}"),
        })?;
        Ok((
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            png,
        )
            .into_response())
    }
}

/// `BBOX=minx,miny,maxx,maxy` in the axis order of the CRS (§7.3.3.6; for EPSG:4326 that is
/// latitude first, §6.7.3.3).
fn bbox(value: &str) -> Result<[f64; 4], OgcError> {
    let bad =
        || OgcError::invalid("`BBOX` is minx,miny,maxx,maxy with minx < maxx and miny < maxy");
    let numbers: Vec<f64> = value
        .split(',')
        .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    match numbers[..] {
        [minx, miny, maxx, maxy] if minx < maxx && miny < maxy => Ok([minx, miny, maxx, maxy]),
        _ => Err(bad()),
    }
}

/// `WIDTH` or `HEIGHT`: a whole number of pixels from 1 to [`MAX_SIZE`] (§7.3.3.8).
fn size(params: &Params, name: &str) -> Result<u32, OgcError> {
    params
        .required(name)?
        .parse::<u32>()
        .ok()
        .filter(|v| (1..=MAX_SIZE).contains(v))
        .ok_or_else(|| {
            OgcError::invalid(format!("`{name}` is a whole number from 1 to {MAX_SIZE}"))
        })
}

/// Draws `layers` over `bbox` of `crs` into a `width` × `height` RGBA PNG. Every CRS served
/// is axis-aligned with longitude and latitude, so each column has one longitude and each
/// row one latitude.
fn draw(
    layers: &[&WmsLayer],
    crs: &str,
    [minx, miny, maxx, maxy]: [f64; 4],
    width: u32,
    height: u32,
    transparent: bool,
) -> Result<Vec<u8>, png::EncodingError> {
    // (east-west range, north-south range) in the CRS's units.
    let (ew, ns) = if crs == "EPSG:4326" {
        ((miny, maxy), (minx, maxx))
    } else {
        ((minx, maxx), (miny, maxy))
    };
    let to_degrees = |x: f64, y: f64| -> (f64, f64) {
        if crs == "EPSG:3857" {
            let lon = x / MERCATOR_HALF * 180.0;
            let lat = (2.0 * (y / MERCATOR_HALF * std::f64::consts::PI).exp().atan()
                - std::f64::consts::FRAC_PI_2)
                .to_degrees();
            (lon, lat)
        } else {
            (x, y)
        }
    };
    let (w, h) = (width as usize, height as usize);
    let lons: Vec<f64> = (0..w)
        .map(|i| to_degrees(ew.0 + (ew.1 - ew.0) * (i as f64 + 0.5) / w as f64, 0.0).0)
        .collect();
    let lats: Vec<f64> = (0..h)
        .map(|j| to_degrees(0.0, ns.1 - (ns.1 - ns.0) * (j as f64 + 0.5) / h as f64).1)
        .collect();
    let background = if transparent {
        [255, 255, 255, 0]
    } else {
        [255, 255, 255, 255]
    };
    let mut pixels = Vec::with_capacity(w * h * 4);
    for &lat in &lats {
        for &lon in &lons {
            let top = layers.iter().rev().find_map(|l| (l.paint)(lon, lat));
            match top {
                Some([r, g, b]) => pixels.extend_from_slice(&[r, g, b, 255]),
                None => pixels.extend_from_slice(&background),
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}
