//! The route table: which API a request is for and who may call it.
//!
//! ```
//! use gis_auth::client::Role;
//! use gis_auth::policy::{Api, RouteAccess, RouteTable};
//! use http::Method;
//!
//! let table = RouteTable::new()
//!     .route(Method::GET, "/elevation", Api::new("Elevation", [Role::EVALUATOR]).plugin(true))?;
//! let route = table.lookup(&Method::GET, "/elevation").unwrap();
//! assert!(matches!(route.access(), RouteAccess::Api(api) if api.is_plugin()));
//! # Ok::<(), gis_auth::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::quota::TRANSACTION;
use super::route::PathPattern;
use crate::client::{Action, Client, Role, RoleSet};
use crate::error::ConfigError;

/// Where a route finds the item (or dataset) a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemSource {
    /// A parameter of the path pattern, as `item` in `/items/{item}/metadata`.
    Path(Arc<str>),
    /// A query parameter.
    Query(Arc<str>),
    /// A query parameter holding a comma-separated list of items, as an OGC service's
    /// `LAYERS`: every item listed must be usable (open on the API, or granted). Its name is
    /// matched ignoring ASCII case, as OGC request parameters are (WMS 1.3.0, OGC 06-042,
    /// §6.8.1).
    QueryList(Arc<str>),
}

/// How the layer writes its refusals on the routes of an API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorFormat {
    /// A JSON body `{"error": …, "error_description": …}` (`application/json`).
    #[default]
    Json,
    /// An OGC `ServiceExceptionReport` (`text/xml`), as WMS 1.3.0 clients read errors
    /// (OGC 06-042, §6.11): one `ServiceException` whose `code` is the JSON
    /// error code (`invalid_token`, `insufficient_scope`, …) and whose text is the
    /// description. Status and headers are those of the JSON refusal.
    OgcServiceException,
}

type CostFn = dyn Fn(&Method, &Uri, &HeaderMap) -> Result<u64, Unpriceable> + Send + Sync;

/// A request its API cannot price within the API's limits (more points than the API
/// serves, points that cannot be read): the layer refuses it with 400 `invalid_request`
/// and charges nothing, so no request is charged more than the largest valid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpriceable {
    reason: &'static str,
}

impl Unpriceable {
    /// A request that cannot be priced, and why (for logs: never a value of the request).
    pub const fn new(reason: &'static str) -> Self {
        Unpriceable { reason }
    }

    /// Why the request cannot be priced.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for Unpriceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for Unpriceable {}

/// What an authorised request of an API costs against its account's daily quota, in
/// milli-transactions ([`TRANSACTION`] is one).
#[derive(Clone)]
pub enum Cost {
    /// Not metered: neither counted nor refused for quota (account pages, the token
    /// endpoint).
    Free,
    /// The same for every request.
    Fixed(u64),
    /// Computed from the request (say, from the number of points it asks for); a request
    /// it cannot price is refused.
    Computed(Arc<CostFn>),
}

impl Cost {
    /// A cost computed from the request's method, URI and headers, in milli-transactions.
    pub fn from_fn<F>(f: F) -> Cost
    where
        F: Fn(&Method, &Uri, &HeaderMap) -> u64 + Send + Sync + 'static,
    {
        Cost::Computed(Arc::new(move |m, u, h| Ok(f(m, u, h))))
    }

    /// A cost computed from the request, which may find the request [`Unpriceable`]: one
    /// that asks for more than the API serves, or that cannot be read. Such a request is
    /// refused with 400 `invalid_request` and charged nothing.
    pub fn try_from_fn<F>(f: F) -> Cost
    where
        F: Fn(&Method, &Uri, &HeaderMap) -> Result<u64, Unpriceable> + Send + Sync + 'static,
    {
        Cost::Computed(Arc::new(f))
    }

    /// The cost of one request, `None` when it is not metered; an error when the request
    /// cannot be priced within the API's limits.
    pub fn of(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<Option<u64>, Unpriceable> {
        match self {
            Cost::Free => Ok(None),
            Cost::Fixed(milli) => Ok(Some(*milli)),
            Cost::Computed(f) => f(method, uri, headers).map(Some),
        }
    }
}

impl Default for Cost {
    /// One transaction per request.
    fn default() -> Self {
        Cost::Fixed(TRANSACTION)
    }
}

impl fmt::Debug for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cost::Free => f.write_str("Free"),
            Cost::Fixed(m) => f.debug_tuple("Fixed").field(m).finish(),
            Cost::Computed(_) => f.write_str("Computed"),
        }
    }
}

impl PartialEq for Cost {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Cost::Free, Cost::Free) => true,
            (Cost::Fixed(a), Cost::Fixed(b)) => a == b,
            (Cost::Computed(a), Cost::Computed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Cost {}

/// An API: a name, the roles that may call it (any of them), whether it is a *plugin* API
/// that JavaScript clients may reach, where its requests name an item (if they do), and what
/// a request costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    name: Arc<str>,
    roles: RoleSet,
    plugin: bool,
    item: Option<ItemSource>,
    open_items: Arc<[Arc<str>]>,
    cost: Cost,
    handler_meter: bool,
    error_format: ErrorFormat,
}

impl Api {
    /// An API callable by clients holding any of `roles`. With no roles at all, any
    /// authenticated client may call it.
    pub fn new(name: impl Into<Arc<str>>, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            name: name.into(),
            roles: roles.into_iter().collect(),
            plugin: false,
            item: None,
            open_items: Arc::new([]),
            cost: Cost::default(),
            handler_meter: false,
            error_format: ErrorFormat::Json,
        }
    }

    /// Requests name an item with path parameter `name` (which every route of the API must
    /// have): the client needs a grant on it, `read` for `GET`/`HEAD`, `write` otherwise.
    #[must_use]
    pub fn item_from_path(mut self, name: &str) -> Self {
        self.item = Some(ItemSource::Path(name.into()));
        self
    }

    /// Requests name an item with query parameter `name`; a request without it (or with it
    /// twice) reaches no item.
    #[must_use]
    pub fn item_from_query(mut self, name: &str) -> Self {
        self.item = Some(ItemSource::Query(name.into()));
        self
    }

    /// Requests name their items in query parameter `name` as a comma-separated list, as
    /// an OGC web service names its layers (`LAYERS=streets,parcels`): every item listed
    /// must be one of the API's [`open_items`](Api::open_items) or be granted to the client
    /// (`read` for `GET`/`HEAD`, `write` otherwise). The parameter's name is matched ignoring
    /// ASCII case (OGC 06-042, §6.8.1); a request without it names no item and needs no
    /// grant (a `GetCapabilities`, say); a request with it twice is refused; empty entries
    /// are skipped. An item that is neither open nor granted is refused whether or not the
    /// service has it, so a caller learns nothing of the items it may not use. The
    /// decision names no single item (`Principal::item` is `None`): the handler reads the
    /// list, every entry of which the layer has admitted.
    #[must_use]
    pub fn items_from_query_list(mut self, name: &str) -> Self {
        self.item = Some(ItemSource::QueryList(name.into()));
        self
    }

    /// Items any caller the API admits may use without a grant (the public layers of a
    /// WMS). Items are compared exactly.
    #[must_use]
    pub fn open_items<I, T>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<Arc<str>>,
    {
        self.open_items = items.into_iter().map(Into::into).collect();
        self
    }

    /// The items open to any caller the API admits.
    pub fn open_item_list(&self) -> &[Arc<str>] {
        &self.open_items
    }

    /// Whether `client` may use `item` for `action` on this API: the item is open, or the
    /// client holds the grant. The policy decides each item of a request with this, and a
    /// service can list what a caller may use with it (the layers of a WMS
    /// `GetCapabilities`).
    pub fn allows_item(&self, client: &Client, item: &str, action: Action) -> bool {
        self.open_items.iter().any(|open| **open == *item) || client.allows_item(item, action)
    }

    /// How the layer writes its refusals on this API's routes (JSON by default).
    #[must_use]
    pub fn error_format(mut self, format: ErrorFormat) -> Self {
        self.error_format = format;
        self
    }

    /// How refusals on this API's routes are written.
    pub fn refusal_format(&self) -> ErrorFormat {
        self.error_format
    }

    /// What a request costs (one transaction by default).
    #[must_use]
    pub fn cost(mut self, cost: Cost) -> Self {
        self.cost = cost;
        self
    }

    /// The API's handlers price requests further once they have read them (a batch body
    /// of points, say): the layer puts a [`Meter`](crate::layer::Meter) into the request's
    /// extensions, charging against the same quota after [`cost`](Api::cost) was charged.
    /// Has no effect on an unmetered ([`Cost::Free`]) API.
    #[must_use]
    pub fn handler_meter(mut self, yes: bool) -> Self {
        self.handler_meter = yes;
        self
    }

    /// Whether handlers charge through a [`Meter`](crate::layer::Meter).
    pub fn has_handler_meter(&self) -> bool {
        self.handler_meter
    }

    /// Where requests name their item, if they do.
    pub fn item_source(&self) -> Option<&ItemSource> {
        self.item.as_ref()
    }

    /// What a request costs.
    pub fn request_cost(&self) -> &Cost {
        &self.cost
    }

    /// Marks the API as a plugin API, reachable by JavaScript clients.
    #[must_use]
    pub fn plugin(mut self, yes: bool) -> Self {
        self.plugin = yes;
        self
    }

    /// The API's name (`WorldStreets`, `Geocoder`, …).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shared_name(&self) -> &Arc<str> {
        &self.name
    }

    /// The roles that may call it (any of them).
    pub fn roles(&self) -> &RoleSet {
        &self.roles
    }

    /// Whether JavaScript clients may call it.
    pub fn is_plugin(&self) -> bool {
        self.plugin
    }
}

/// What a route leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAccess {
    /// Open to anyone, without credentials.
    Public,
    /// Guarded: an API with its rules.
    Api(Arc<Api>),
}

/// One entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: Method,
    pattern: Arc<PathPattern>,
    access: RouteAccess,
}

impl Route {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path pattern.
    pub fn pattern(&self) -> &PathPattern {
        &self.pattern
    }

    /// The path pattern, shared: a handle a check that waits can keep.
    pub(crate) fn shared_pattern(&self) -> &Arc<PathPattern> {
        &self.pattern
    }

    /// Public, or the API it leads to.
    pub fn access(&self) -> &RouteAccess {
        &self.access
    }
}

/// Method + path pattern → API. Requests not in the table are refused before any credential
/// is looked at. `HEAD` requests match `GET` routes unless a `HEAD` route matches first.
///
/// ```
/// use gis_auth::client::Role;
/// use gis_auth::policy::{Api, RouteAccess, RouteTable};
/// use http::Method;
///
/// let table = RouteTable::new()
///     .route(Method::GET, "/tiles/{z}/{x}/{y}.png",
///         Api::new("WorldStreets", [Role::EVALUATOR, Role::SUBSCRIBER]).plugin(true))?
///     .public(Method::GET, "/health")?;
/// let route = table.lookup(&Method::HEAD, "/tiles/1/2/3.png").unwrap();
/// assert!(matches!(route.access(), RouteAccess::Api(api) if api.name() == "WorldStreets"));
/// assert!(table.lookup(&Method::POST, "/tiles/1/2/3.png").is_none());
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// An empty table: every request is refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a guarded route. Several routes may share one [`Api`].
    pub fn route(self, method: Method, pattern: &str, api: Api) -> Result<Self, ConfigError> {
        self.push(method, pattern, RouteAccess::Api(Arc::new(api)))
    }

    /// Adds a public route, open without credentials.
    pub fn public(self, method: Method, pattern: &str) -> Result<Self, ConfigError> {
        self.push(method, pattern, RouteAccess::Public)
    }

    fn push(
        mut self,
        method: Method,
        pattern: &str,
        access: RouteAccess,
    ) -> Result<Self, ConfigError> {
        let pattern = PathPattern::parse(pattern)?;
        if let RouteAccess::Api(api) = &access
            && let Some(ItemSource::Path(name)) = &api.item
            && !pattern.has_param(name)
        {
            return Err(ConfigError::InvalidRoute {
                pattern: pattern.as_str().to_owned(),
                reason: "the API's item parameter is not a parameter of this pattern",
            });
        }
        // Routes with the same API name share one `Api`, so names stay consistent.
        let access = match access {
            RouteAccess::Api(api) => RouteAccess::Api(
                self.routes
                    .iter()
                    .find_map(|r| match &r.access {
                        RouteAccess::Api(existing) if **existing == *api => Some(existing.clone()),
                        _ => None,
                    })
                    .unwrap_or(api),
            ),
            public => public,
        };
        self.routes.push(Route {
            method,
            pattern: Arc::new(pattern),
            access,
        });
        Ok(self)
    }

    /// The route for a request, if any.
    pub fn lookup(&self, method: &Method, path: &str) -> Option<&Route> {
        self.lookup_index(method, path).map(|i| &self.routes[i])
    }

    /// The position in [`RouteTable::routes`] of the route for a request, if any.
    pub fn lookup_index(&self, method: &Method, path: &str) -> Option<usize> {
        let found = self
            .routes
            .iter()
            .position(|r| r.method == *method && r.pattern.matches(path));
        if found.is_none() && *method == Method::HEAD {
            return self.lookup_index(&Method::GET, path);
        }
        found
    }

    /// The routes, in the order they were added.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_route_wins_and_methods_must_match() {
        let t = RouteTable::new()
            .route(Method::GET, "/items/{id}", Api::new("Items", [Role::USER]))
            .unwrap()
            .public(Method::GET, "/items/public")
            .unwrap();
        let r = t.lookup(&Method::GET, "/items/public").unwrap();
        assert!(matches!(r.access(), RouteAccess::Api(_)));
        assert!(t.lookup(&Method::PUT, "/items/1").is_none());
        assert!(t.lookup(&Method::GET, "/other").is_none());
    }

    #[test]
    fn an_item_parameter_must_be_in_the_pattern() {
        let items = || Api::new("Items", [Role::USER]).item_from_path("item");
        assert!(
            RouteTable::new()
                .route(Method::GET, "/items/{item}", items())
                .is_ok()
        );
        let err = RouteTable::new()
            .route(Method::GET, "/items/{id}", items())
            .unwrap_err();
        assert!(err.to_string().contains("/items/{id}"));
    }

    #[test]
    fn costs_default_to_one_transaction() {
        let (m, u, h) = (Method::GET, Uri::from_static("/x?n=3"), HeaderMap::new());
        assert_eq!(
            Api::new("A", []).request_cost().of(&m, &u, &h),
            Ok(Some(TRANSACTION))
        );
        assert_eq!(Cost::Free.of(&m, &u, &h), Ok(None));
        let per_n = Cost::from_fn(|_, uri, _| uri.query().map_or(0, |q| q.len() as u64));
        assert_eq!(per_n.of(&m, &u, &h), Ok(Some(3)));
        let at_most_two = Cost::try_from_fn(|_, uri, _| match uri.query().map_or(0, str::len) {
            n @ 0..=2 => Ok(n as u64),
            _ => Err(Unpriceable::new("too long")),
        });
        assert_eq!(
            at_most_two.of(&m, &u, &h),
            Err(Unpriceable::new("too long"))
        );
    }

    #[test]
    fn a_bad_pattern_is_refused() {
        assert!(RouteTable::new().public(Method::GET, "health").is_err());
    }
}
