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

use std::sync::Arc;

use http::Method;

use super::route::PathPattern;
use crate::client::{Role, RoleSet};
use crate::error::ConfigError;

/// An API: a name, the roles that may call it (any of them), and whether it is a *plugin*
/// API that JavaScript clients may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    name: Arc<str>,
    roles: RoleSet,
    plugin: bool,
}

impl Api {
    /// An API callable by clients holding any of `roles`. With no roles at all, any
    /// authenticated client may call it.
    pub fn new(name: impl Into<Arc<str>>, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            name: name.into(),
            roles: roles.into_iter().collect(),
            plugin: false,
        }
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
    pattern: PathPattern,
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
            pattern,
            access,
        });
        Ok(self)
    }

    /// The route for a request, if any.
    pub fn lookup(&self, method: &Method, path: &str) -> Option<&Route> {
        let found = self
            .routes
            .iter()
            .find(|r| r.method == *method && r.pattern.matches(path));
        if found.is_none() && *method == Method::HEAD {
            return self.lookup(&Method::GET, path);
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
    fn a_bad_pattern_is_refused() {
        assert!(RouteTable::new().public(Method::GET, "health").is_err());
    }
}
