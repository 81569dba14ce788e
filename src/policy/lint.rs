//! A lint for client descriptions: warnings, never errors, about settings that are valid (or
//! nearly so) but rarely do what was meant.
//!
//! [`lint`] reads the raw [`ClientSpec`], so it runs before validation (to explain why a
//! pattern will be refused) as well as after (on [`Client::to_spec`]). It parses patterns
//! loosely, at the string level, and accepts any input. Each warning names its [`Trap`],
//! the field and the value it is about, and says what to do instead; it shows nothing of the
//! spec but that field and value.
//!
//! ```
//! use gis_auth::client::ClientSpec;
//! use gis_auth::policy::{LintContext, Trap, lint};
//!
//! let spec = ClientSpec::javascript("Web map")
//!     .allowed_origins(["https://*.example.com", "https://maps.example.org/app"]);
//! let warnings = lint(&spec, &LintContext::default());
//! let traps: Vec<Trap> = warnings.iter().map(|w| w.trap).collect();
//! assert_eq!(traps, [Trap::WildcardWithoutApex, Trap::OriginWithPath]);
//! assert_eq!(warnings[1].trap.code(), "origin-with-path");
//! assert!(warnings[1].to_string().starts_with(
//!     "allowed_origins `https://maps.example.org/app`: an origin never carries a path"));
//!
//! let fixed = ClientSpec::javascript("Web map")
//!     .allowed_origins(["https://*.example.com", "https://example.com",
//!         "https://maps.example.org"]);
//! assert!(lint(&fixed, &LintContext::default()).is_empty());
//! ```
//!
//! [`Client::to_spec`]: crate::client::Client::to_spec

use std::collections::HashSet;
use std::fmt;

use psl::Psl as _;

use crate::client::{Account, ClientKind, ClientSpec};

/// A known trap in a client description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trap {
    /// A `*.example.com` pattern with no pattern for `example.com` itself: the wildcard
    /// covers subdomains only, so a site also served from the bare domain is refused.
    WildcardWithoutApex,
    /// A pattern with a path, query or fragment (`https://maps.example.com/app`): an origin
    /// never carries one, and such a pattern is refused when the client is built.
    OriginWithPath,
    /// A JavaScript client with no allowed origins: any website may use its (public) key.
    EmptyOriginsUnrestricted,
    /// IP rules while forwarded headers arrive and no trusted proxies are configured: behind
    /// a proxy, every request appears to come from the proxy's address.
    IpRulesWithoutTrustedProxies,
    /// `allow_missing_origin` set on a client without allowed origins: it has no effect.
    AllowMissingOriginWithoutOrigins,
    /// A wildcard over a public suffix (`*.co.uk`, `*.github.io`, as the Public Suffix List
    /// has them): the names under it belong to unrelated owners, so it admits their sites.
    WildcardOverPublicSuffix,
    /// `localhost` without a port: it admits the scheme's default port only (80 for
    /// `http`), where a development server usually runs on another; `localhost:*` is
    /// probably meant.
    LocalhostWithoutPort,
    /// An account whose clients hold item grants while its plan has no `items`: its holder
    /// may grant its clients any item id, another tenant's included (see [`lint_account`]).
    GrantsWithoutItemCeiling,
}

impl Trap {
    /// A stable kebab-case code for the trap, for filtering and for documentation links.
    pub fn code(&self) -> &'static str {
        match self {
            Trap::WildcardWithoutApex => "wildcard-without-apex",
            Trap::OriginWithPath => "origin-with-path",
            Trap::EmptyOriginsUnrestricted => "empty-origins-unrestricted",
            Trap::IpRulesWithoutTrustedProxies => "ip-rules-without-trusted-proxies",
            Trap::AllowMissingOriginWithoutOrigins => "allow-missing-origin-without-origins",
            Trap::WildcardOverPublicSuffix => "wildcard-over-public-suffix",
            Trap::LocalhostWithoutPort => "localhost-without-port",
            Trap::GrantsWithoutItemCeiling => "grants-without-item-ceiling",
        }
    }
}

/// What is known of the deployment a client is used in; the default knows nothing, and
/// checks that need to know are skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LintContext {
    /// Whether the layer has trusted proxies configured.
    pub trusted_proxies_configured: bool,
    /// Whether requests were seen carrying `X-Forwarded-For` or `Forwarded`.
    pub forwarded_headers_seen: bool,
}

/// One warning: the trap, the field and value it concerns, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LintWarning {
    /// The trap.
    pub trap: Trap,
    /// The [`ClientSpec`] field concerned (`allowed_origins`, `allowed_ips`, …).
    pub field: &'static str,
    /// The value concerned, as written, when the warning is about one value of the field.
    pub value: Option<String>,
    /// What goes wrong and what to do instead.
    pub message: String,
}

impl fmt::Display for LintWarning {
    /// One line: ``<field> `<value>`: <message>``, without the value part when there is
    /// none. Control characters (in a value, or a suggestion made from one) are escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field)?;
        if let Some(value) = &self.value {
            f.write_str(" `")?;
            write_escaped(f, value)?;
            f.write_str("`")?;
        }
        f.write_str(": ")?;
        write_escaped(f, &self.message)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}

/// The warnings for `spec` in `ctx`, in field order (each origin pattern in turn, then the
/// origin list as a whole, `allow_missing_origin`, then the IP rules). Empty when nothing
/// looks wrong.
///
/// Origin patterns are checked whatever the client's kind (a NativeConfidential client
/// with origins is refused at build time anyway, so this only adds to that explanation).
pub fn lint(spec: &ClientSpec, ctx: &LintContext) -> Vec<LintWarning> {
    let mut warnings = Vec::new();
    let patterns: Vec<(&str, Parts<'_>)> = spec
        .allowed_origins
        .iter()
        .map(|p| (p.as_str(), Parts::of(p)))
        .collect();
    let exact_hosts: HashSet<String> = patterns
        .iter()
        .filter(|(_, parts)| !parts.wildcard)
        .map(|(_, parts)| parts.host.to_ascii_lowercase())
        .collect();
    let mut apexes_flagged: HashSet<String> = HashSet::new();

    for (pattern, parts) in &patterns {
        if !parts.tail.is_empty() && parts.tail != "/" {
            warnings.push(origin_with_path(pattern, parts));
        }
        if parts.wildcard {
            let apex = parts.host.to_ascii_lowercase();
            if is_public_suffix(&apex) {
                warnings.push(wildcard_over_public_suffix(pattern, &apex));
            } else if likely_apex(&apex)
                && !exact_hosts.contains(&apex)
                && apexes_flagged.insert(apex.clone())
            {
                warnings.push(wildcard_without_apex(pattern, parts, &apex));
            }
        }
        if let Some(warning) = localhost_without_port(pattern, parts) {
            warnings.push(warning);
        }
    }

    if spec.kind == ClientKind::JavaScript && spec.allowed_origins.is_empty() {
        warnings.push(LintWarning {
            trap: Trap::EmptyOriginsUnrestricted,
            field: "allowed_origins",
            value: None,
            message: "a JavaScript client's key is public in every page that uses it, and with \
                      no allowed origins any website may use it; list the sites that may, as \
                      in `https://maps.example.com`"
                .to_owned(),
        });
    }

    if spec.allow_missing_origin && spec.allowed_origins.is_empty() {
        let message = match spec.kind {
            ClientKind::NativeConfidential => {
                "a NativeConfidential client has no origin rules, so this has no effect"
            }
            ClientKind::JavaScript => {
                "without allowed origins every request passes the origin check, so this has \
                 no effect; it only lets requests without `Origin` or `Referer` past origin \
                 rules"
            }
        };
        warnings.push(LintWarning {
            trap: Trap::AllowMissingOriginWithoutOrigins,
            field: "allow_missing_origin",
            value: Some("true".to_owned()),
            message: message.to_owned(),
        });
    }

    if !spec.allowed_ips.is_empty() && ctx.forwarded_headers_seen && !ctx.trusted_proxies_configured
    {
        warnings.push(LintWarning {
            trap: Trap::IpRulesWithoutTrustedProxies,
            field: "allowed_ips",
            value: None,
            message: "requests arrive with `X-Forwarded-For` or `Forwarded` headers but no \
                      trusted proxies are configured, so these rules are checked against the \
                      connection's peer: behind a proxy every request appears to come from \
                      the proxy's address; list the proxies with `AuthLayer::trusted_proxies` \
                      (and the header they append to with `AuthLayer::forwarded_header`)"
                .to_owned(),
        });
    }

    warnings
}

/// The warnings about an account as a whole, given its clients' descriptions: an account
/// whose clients hold item grants while its plan sets no `items` (the grants are then the
/// account holder's alone to choose, any item id included). Empty when nothing looks wrong.
///
/// ```
/// use gis_auth::client::{Account, AccountId, Action, ClientSpec, Grant, ItemCeiling, Role,
///     RoleSet};
/// use gis_auth::policy::{Trap, lint_account};
///
/// let mut acme = Account::new(AccountId::new("acme")?, "Acme", RoleSet::from_iter([Role::USER]))?;
/// let web = ClientSpec::javascript("Web").grants([Grant::new("roads", [Action::Read])?]);
/// let warnings = lint_account(&acme, [&web]);
/// assert_eq!(warnings[0].trap, Trap::GrantsWithoutItemCeiling);
/// acme.plan.items = Some(ItemCeiling::new(["roads"])?);
/// assert!(lint_account(&acme, [&web]).is_empty());
/// # Ok::<(), gis_auth::ConfigError>(())
/// ```
pub fn lint_account<'a>(
    account: &Account,
    clients: impl IntoIterator<Item = &'a ClientSpec>,
) -> Vec<LintWarning> {
    if account.plan.items.is_some() {
        return Vec::new();
    }
    let granting: Vec<&ClientSpec> = clients
        .into_iter()
        .filter(|spec| !spec.grants.is_empty())
        .collect();
    let Some(first) = granting.first().and_then(|spec| spec.grants.first()) else {
        return Vec::new();
    };
    let clients = match granting.len() {
        1 => "a client of the account holds".to_owned(),
        n => format!("{n} clients of the account hold"),
    };
    vec![LintWarning {
        trap: Trap::GrantsWithoutItemCeiling,
        field: "items",
        value: None,
        message: format!(
            "{clients} item grants (`{}` among them) and the account's plan sets no `items`, \
             so its holder may grant any item id, another tenant's included; set `items` to \
             the ids or `prefix*` patterns the account may grant",
            first.item()
        ),
    }]
}

fn origin_with_path(pattern: &str, parts: &Parts<'_>) -> LintWarning {
    let mut message = "an origin never carries a path, query or fragment, so this pattern is \
                       refused when the client is built"
        .to_owned();
    if !parts.authority.is_empty() {
        let bare = match parts.scheme {
            Some(scheme) => format!("{scheme}://{}", parts.authority),
            None => parts.authority.to_owned(),
        };
        message.push_str(&format!("; use `{bare}`"));
    }
    LintWarning {
        trap: Trap::OriginWithPath,
        field: "allowed_origins",
        value: Some(pattern.to_owned()),
        message,
    }
}

fn wildcard_without_apex(pattern: &str, parts: &Parts<'_>, apex: &str) -> LintWarning {
    let mut suggestion = String::new();
    if let Some(scheme) = parts.scheme {
        suggestion.push_str(&scheme.to_ascii_lowercase());
        suggestion.push_str("://");
    }
    suggestion.push_str(apex);
    if let Some(port) = parts.port {
        suggestion.push(':');
        suggestion.push_str(port);
    }
    LintWarning {
        trap: Trap::WildcardWithoutApex,
        field: "allowed_origins",
        value: Some(pattern.to_owned()),
        message: format!(
            "a wildcard matches subdomains only, never `{apex}` itself; if the site is also \
             served from the bare domain, add `{suggestion}`"
        ),
    }
}

/// Whether `host` (lower-cased) is itself a public suffix on the Public Suffix List (its
/// ICANN or private section, as embedded in the `psl` crate): `co.uk`, `github.io`, `com`.
/// A name the list does not know (`internal`) is not one.
fn is_public_suffix(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && psl::List
            .suffix(host.as_bytes())
            .is_some_and(|suffix| suffix.is_known() && suffix.trim().as_bytes() == host.as_bytes())
}

fn wildcard_over_public_suffix(pattern: &str, suffix: &str) -> LintWarning {
    LintWarning {
        trap: Trap::WildcardOverPublicSuffix,
        field: "allowed_origins",
        value: Some(pattern.to_owned()),
        message: format!(
            "`{suffix}` is a public suffix: the names under it belong to unrelated owners, so \
             this wildcard admits any of their sites; name your own domain, as in \
             `*.example.{suffix}`"
        ),
    }
}

/// The warning for a `localhost` pattern without a port, suggesting `localhost:*`.
fn localhost_without_port(pattern: &str, parts: &Parts<'_>) -> Option<LintWarning> {
    if parts.wildcard || parts.port.is_some() || !parts.host.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let scheme = parts.scheme.map(str::to_ascii_lowercase);
    let (default, suggestion) = match scheme.as_deref() {
        Some(scheme) => (
            if scheme == "https" { "443" } else { "80" },
            format!("{scheme}://localhost:*"),
        ),
        None => ("80 (443 for https)", "localhost:*".to_owned()),
    };
    Some(LintWarning {
        trap: Trap::LocalhostWithoutPort,
        field: "allowed_origins",
        value: Some(pattern.to_owned()),
        message: format!(
            "without a port this admits `localhost` on port {default} only, and a development \
             server usually runs on another; for any port, use `{suggestion}`"
        ),
    })
}

/// Second-level labels under which, below a two-letter country code, names are registered
/// (`example.co.uk`, `example.com.au`).
const SECOND_LEVELS: &[&str] = &["ac", "co", "com", "edu", "gov", "net", "org"];

/// Whether `host` (lower-cased, the part after `*.`) looks like a registered domain, whose
/// bare name usually serves the site too; deeper names (`tiles.example.com`) often do not.
fn likely_apex(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let valid = labels.iter().all(|l| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let last = labels.last().copied().unwrap_or_default();
    if !valid || last.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    match labels.as_slice() {
        [_, _] => true,
        [_, second, tld] => tld.len() == 2 && SECOND_LEVELS.contains(second),
        _ => false,
    }
}

/// An origin pattern taken apart as loosely as the lint needs: nothing is validated, and
/// every input gives some parts.
#[derive(Debug)]
struct Parts<'a> {
    /// The scheme as written, when there is a `://`.
    scheme: Option<&'a str>,
    /// Everything between the scheme and the first `/`, `?` or `#`.
    authority: &'a str,
    /// The `/`, `?` or `#` and what follows; empty when there is none.
    tail: &'a str,
    /// Whether the host starts with `*.`.
    wildcard: bool,
    /// The host, without `*.` and port.
    host: &'a str,
    /// The port as written, `*` included.
    port: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn of(pattern: &'a str) -> Parts<'a> {
        let trimmed = pattern.trim();
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, trimmed),
        };
        let (authority, tail) = match rest.find(['/', '?', '#']) {
            Some(end) => rest.split_at(end),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(authority);
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix),
            None => (false, host),
        };
        Parts {
            scheme,
            authority,
            tail,
            wildcard,
            host,
            port,
        }
    }
}

/// Splits `host[:port]`, keeping IPv6 brackets on the host.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        if let Some(end) = authority.find(']') {
            let (host, rest) = authority.split_at(end + 1);
            return (host, rest.strip_prefix(':'));
        }
        return (authority, None);
    }
    match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{
        Account, AccountId, Client, ClientId, CredentialDigests, KeyDigest, Role, RoleSet,
    };
    use crate::restrict::OriginPattern;
    use proptest::prelude::*;

    const BEHIND_UNTRUSTED_PROXY: LintContext = LintContext {
        trusted_proxies_configured: false,
        forwarded_headers_seen: true,
    };

    fn web(origins: &[&str]) -> ClientSpec {
        ClientSpec::javascript("Web map").allowed_origins(origins.iter().copied())
    }

    fn traps(spec: &ClientSpec, ctx: &LintContext) -> Vec<Trap> {
        lint(spec, ctx).iter().map(|w| w.trap).collect()
    }

    fn only(spec: &ClientSpec) -> LintWarning {
        let mut warnings = lint(spec, &LintContext::default());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        warnings.remove(0)
    }

    #[test]
    fn wildcard_without_its_apex_suggests_the_bare_domain() {
        let w = only(&web(&["*.example.com"]));
        assert_eq!(w.trap, Trap::WildcardWithoutApex);
        assert_eq!(w.field, "allowed_origins");
        assert_eq!(w.value.as_deref(), Some("*.example.com"));
        assert!(w.message.contains("never `example.com` itself"), "{w}");
        assert!(w.message.ends_with("add `example.com`"), "{w}");
    }

    #[test]
    fn apex_suggestion_keeps_the_wildcards_scheme_and_port() {
        let w = only(&web(&["HTTPS://*.Example.com:8443/"]));
        assert!(w.message.ends_with("add `https://example.com:8443`"), "{w}");
        let w = only(&web(&["https://*.example.com"]));
        assert!(w.message.ends_with("add `https://example.com`"), "{w}");
    }

    #[test]
    fn apex_under_any_scheme_or_port_silences_the_wildcard_warning() {
        for apex in [
            "example.com",
            "http://EXAMPLE.com",
            "https://example.com:8443",
        ] {
            let spec = web(&["https://*.example.com", apex]);
            assert!(traps(&spec, &LintContext::default()).is_empty(), "{apex}");
        }
    }

    #[test]
    fn another_wildcard_does_not_count_as_the_apex() {
        let spec = web(&["*.example.com", "*.maps.example.com"]);
        assert_eq!(
            traps(&spec, &LintContext::default()),
            [Trap::WildcardWithoutApex]
        );
    }

    #[test]
    fn one_warning_per_apex_however_many_wildcards_cover_it() {
        let spec = web(&["http://*.example.com", "https://*.example.com:*"]);
        let w = only(&spec);
        assert_eq!(w.value.as_deref(), Some("http://*.example.com"));
    }

    #[test]
    fn wildcard_over_a_deeper_subdomain_is_not_flagged() {
        let spec = web(&["https://*.tiles.example.com"]);
        assert!(traps(&spec, &LintContext::default()).is_empty());
    }

    #[test]
    fn wildcard_under_a_country_second_level_domain_is_flagged() {
        let w = only(&web(&["https://*.example.co.uk"]));
        assert_eq!(w.trap, Trap::WildcardWithoutApex);
        assert!(w.message.ends_with("add `https://example.co.uk`"), "{w}");
    }

    #[test]
    fn origin_with_a_path_suggests_the_pattern_without_it() {
        for (given, bare) in [
            ("https://maps.example.com/app", "https://maps.example.com"),
            (
                "https://maps.example.com:8443/app/",
                "https://maps.example.com:8443",
            ),
            ("maps.example.com?layer=streets", "maps.example.com"),
            ("https://maps.example.com/#/map", "https://maps.example.com"),
        ] {
            let w = only(&web(&["https://example.com", given]));
            assert_eq!(w.trap, Trap::OriginWithPath, "{given}");
            assert_eq!(w.value.as_deref(), Some(given));
            assert!(w.message.ends_with(&format!("use `{bare}`")), "{w}");
        }
    }

    #[test]
    fn origin_with_a_path_is_also_refused_by_validation() {
        let pattern = "https://maps.example.com/app";
        assert!(OriginPattern::parse(pattern).is_err());
        let w = only(&web(&[pattern]));
        assert!(
            w.message.contains("refused when the client is built"),
            "{w}"
        );
    }

    #[test]
    fn a_trailing_slash_alone_is_not_a_path() {
        let spec = web(&["https://maps.example.com/"]);
        assert!(OriginPattern::parse("https://maps.example.com/").is_ok());
        assert!(traps(&spec, &LintContext::default()).is_empty());
    }

    #[test]
    fn a_wildcard_with_a_path_gets_both_warnings() {
        let spec = web(&["https://*.example.com/app"]);
        let warnings = lint(&spec, &LintContext::default());
        let traps: Vec<Trap> = warnings.iter().map(|w| w.trap).collect();
        assert_eq!(traps, [Trap::OriginWithPath, Trap::WildcardWithoutApex]);
        assert!(warnings[0].message.ends_with("use `https://*.example.com`"));
        assert!(warnings[1].message.ends_with("add `https://example.com`"));
    }

    #[test]
    fn javascript_client_without_origins_is_flagged_as_unrestricted() {
        let w = only(&ClientSpec::javascript("Web map"));
        assert_eq!(w.trap, Trap::EmptyOriginsUnrestricted);
        assert_eq!(w.field, "allowed_origins");
        assert_eq!(w.value, None);
        assert!(w.message.contains("any website may use it"), "{w}");
    }

    #[test]
    fn native_client_without_origins_is_not_flagged_as_unrestricted() {
        let spec = ClientSpec::native("Batch geocoder");
        assert!(traps(&spec, &LintContext::default()).is_empty());
    }

    #[test]
    fn allow_missing_origin_without_origins_is_flagged_as_having_no_effect() {
        let spec = ClientSpec::native("Batch geocoder").allow_missing_origin(true);
        let w = only(&spec);
        assert_eq!(w.trap, Trap::AllowMissingOriginWithoutOrigins);
        assert_eq!(
            w.to_string(),
            format!("allow_missing_origin `true`: {}", w.message)
        );
        assert!(w.message.contains("no effect"));

        let spec = ClientSpec::javascript("Web map").allow_missing_origin(true);
        assert_eq!(
            traps(&spec, &LintContext::default()),
            [
                Trap::EmptyOriginsUnrestricted,
                Trap::AllowMissingOriginWithoutOrigins
            ]
        );
    }

    #[test]
    fn allow_missing_origin_with_origins_is_not_flagged() {
        let spec = web(&["https://maps.example.com"]).allow_missing_origin(true);
        assert!(traps(&spec, &LintContext::default()).is_empty());
    }

    #[test]
    fn ip_rules_behind_an_untrusted_proxy_are_flagged() {
        let spec = ClientSpec::native("Batch geocoder").allowed_ips(["203.0.113.0/24"]);
        let warnings = lint(&spec, &BEHIND_UNTRUSTED_PROXY);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert_eq!(w.trap, Trap::IpRulesWithoutTrustedProxies);
        assert_eq!(w.field, "allowed_ips");
        assert!(w.message.contains("the proxy's address"), "{w}");
        assert!(w.message.contains("AuthLayer::trusted_proxies"), "{w}");
    }

    #[test]
    fn ip_rules_are_not_flagged_without_forwarded_headers_or_with_trusted_proxies() {
        let spec = ClientSpec::native("Batch geocoder").allowed_ips(["203.0.113.0/24"]);
        for ctx in [
            LintContext::default(),
            LintContext {
                trusted_proxies_configured: true,
                forwarded_headers_seen: true,
            },
            LintContext {
                trusted_proxies_configured: true,
                forwarded_headers_seen: false,
            },
        ] {
            assert!(traps(&spec, &ctx).is_empty(), "{ctx:?}");
        }
        let no_rules = ClientSpec::native("Batch geocoder");
        assert!(traps(&no_rules, &BEHIND_UNTRUSTED_PROXY).is_empty());
    }

    #[test]
    fn a_clean_config_gives_no_warnings() {
        let ctx = LintContext {
            trusted_proxies_configured: true,
            forwarded_headers_seen: true,
        };
        let spec = web(&[
            "https://*.example.com",
            "https://example.com",
            "https://*.tiles.example.org:*",
            "http://localhost:*",
            "[::1]:8080",
        ])
        .allow_missing_origin(true)
        .allowed_ips(["203.0.113.*", "2001:db8::/32"]);
        assert_eq!(lint(&spec, &ctx), []);
        let native = ClientSpec::native("Batch geocoder").allowed_ips(["198.51.100.7"]);
        assert_eq!(lint(&native, &ctx), []);
    }

    #[test]
    fn the_canonical_spec_of_a_built_client_is_linted_alike() {
        let account = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER]),
        )
        .unwrap();
        let spec = web(&["HTTPS://*.Example.com/"]);
        let client = Client::build(
            ClientId::new("web").unwrap(),
            &spec,
            &account,
            CredentialDigests::new(KeyDigest::of("k")),
        )
        .unwrap();
        let w = only(&client.to_spec());
        assert_eq!(w.value.as_deref(), Some("https://*.example.com"));
        assert!(w.message.ends_with("add `https://example.com`"), "{w}");
    }

    #[test]
    fn a_warning_displays_its_field_value_and_message_on_one_line() {
        let w = only(&web(&["https://maps.example.com/app"]));
        assert_eq!(
            w.to_string(),
            "allowed_origins `https://maps.example.com/app`: an origin never carries a path, \
             query or fragment, so this pattern is refused when the client is built; use \
             `https://maps.example.com`"
        );
    }

    #[test]
    fn a_warning_without_a_value_displays_field_and_message() {
        let w = only(&ClientSpec::javascript("Web map"));
        assert_eq!(w.to_string(), format!("allowed_origins: {}", w.message));
    }

    #[test]
    fn control_characters_in_a_value_are_escaped_when_displayed() {
        let w = only(&web(&["https://maps.example.com/app\nsecond line"]));
        let shown = w.to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("allowed_origins `https://maps.example.com/app\\nsecond line`"));
    }

    #[test]
    fn a_wildcard_over_a_public_suffix_is_flagged_and_no_apex_is_suggested() {
        for (pattern, suffix) in [
            ("https://*.co.uk", "co.uk"),
            ("*.github.io", "github.io"),
            ("https://*.COM:*", "com"),
            ("http://*.com.au", "com.au"),
            ("https://*.herokuapp.com", "herokuapp.com"),
        ] {
            let w = only(&web(&[pattern]));
            assert_eq!(w.trap, Trap::WildcardOverPublicSuffix, "{pattern}: {w}");
            assert_eq!(w.value.as_deref(), Some(pattern));
            assert!(
                w.message
                    .starts_with(&format!("`{suffix}` is a public suffix")),
                "{w}"
            );
            assert!(w.message.contains(&format!("`*.example.{suffix}`")), "{w}");
        }
    }

    #[test]
    fn a_wildcard_under_a_registered_domain_is_no_public_suffix() {
        for pattern in [
            "https://*.example.co.uk",
            "https://*.maps.github.io",
            "https://*.tiles.example.com",
            "https://*.corp.internal",
        ] {
            let spec = web(&[pattern]);
            assert!(
                !traps(&spec, &LintContext::default()).contains(&Trap::WildcardOverPublicSuffix),
                "{pattern}"
            );
        }
        assert!(is_public_suffix("co.uk") && is_public_suffix("github.io"));
        assert!(!is_public_suffix("example.co.uk") && !is_public_suffix("internal"));
        assert!(!is_public_suffix("") && !is_public_suffix("."));
    }

    #[test]
    fn localhost_without_a_port_suggests_any_port() {
        for (pattern, suggestion, port) in [
            ("http://localhost", "http://localhost:*", "80"),
            ("https://LOCALHOST/", "https://localhost:*", "443"),
            ("localhost", "localhost:*", "80 (443 for https)"),
        ] {
            let warnings = lint(&web(&[pattern]), &LintContext::default());
            let w = warnings
                .iter()
                .find(|w| w.trap == Trap::LocalhostWithoutPort)
                .unwrap_or_else(|| panic!("{pattern}: {warnings:?}"));
            assert_eq!(w.value.as_deref(), Some(pattern));
            assert!(w.message.contains(&format!("on port {port} only")), "{w}");
            assert!(w.message.ends_with(&format!("use `{suggestion}`")), "{w}");
        }
        for pattern in [
            "http://localhost:*",
            "http://localhost:5173",
            "http://localhost.example.com",
            "https://maps.example.com",
        ] {
            assert!(
                lint(&web(&[pattern]), &LintContext::default()).is_empty(),
                "{pattern}"
            );
        }
    }

    #[test]
    fn an_account_granting_items_without_a_ceiling_is_flagged_once() {
        use crate::client::{AccountId, Action, Grant, ItemCeiling, Role, RoleSet};
        let mut acme = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::USER]),
        )
        .unwrap();
        let granting = |item: &str| {
            ClientSpec::javascript("Web").grants([Grant::new(item, [Action::Read]).unwrap()])
        };
        let (a, b, plain) = (granting("roads"), granting("parcels"), web(&[]));
        let warnings = lint_account(&acme, [&plain, &a, &b]);
        assert_eq!(warnings.len(), 1, "one warning for the account");
        let w = &warnings[0];
        assert_eq!(
            (w.trap, w.field, w.value.as_deref()),
            (Trap::GrantsWithoutItemCeiling, "items", None)
        );
        assert!(
            w.message
                .starts_with("2 clients of the account hold item grants (`roads`"),
            "{w}"
        );
        assert!(
            lint_account(&acme, [&plain]).is_empty(),
            "no grants, nothing to bound"
        );
        acme.plan.items = Some(ItemCeiling::default());
        assert!(
            lint_account(&acme, [&a]).is_empty(),
            "a ceiling, even an empty one"
        );
    }

    #[test]
    fn trap_codes_are_stable_kebab_case() {
        let all = [
            (Trap::WildcardWithoutApex, "wildcard-without-apex"),
            (Trap::OriginWithPath, "origin-with-path"),
            (Trap::EmptyOriginsUnrestricted, "empty-origins-unrestricted"),
            (
                Trap::IpRulesWithoutTrustedProxies,
                "ip-rules-without-trusted-proxies",
            ),
            (
                Trap::AllowMissingOriginWithoutOrigins,
                "allow-missing-origin-without-origins",
            ),
            (
                Trap::WildcardOverPublicSuffix,
                "wildcard-over-public-suffix",
            ),
            (Trap::LocalhostWithoutPort, "localhost-without-port"),
            (
                Trap::GrantsWithoutItemCeiling,
                "grants-without-item-ceiling",
            ),
        ];
        for (trap, code) in all {
            assert_eq!(trap.code(), code);
        }
    }

    fn origin_like() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-zA-Z*.:/\\[\\]?#@ 0-9-]{0,24}",
            "(https?://)?(\\*\\.)?[a-z.\\[\\]:*]{0,12}(:[0-9*]{0,6})?[/?#]?.{0,4}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_origins_and_ips_lint_without_panicking(
            origins in proptest::collection::vec(origin_like(), 0..5),
            ips in proptest::collection::vec(any::<String>(), 0..3),
            native in any::<bool>(),
            allow_missing in any::<bool>(),
            trusted_proxies_configured in any::<bool>(),
            forwarded_headers_seen in any::<bool>(),
        ) {
            let kind = if native { ClientKind::NativeConfidential } else { ClientKind::JavaScript };
            let spec = ClientSpec::new(kind, "Any")
                .allowed_origins(origins)
                .allowed_ips(ips)
                .allow_missing_origin(allow_missing);
            let ctx = LintContext { trusted_proxies_configured, forwarded_headers_seen };
            for w in lint(&spec, &ctx) {
                let shown = w.to_string();
                prop_assert!(!shown.contains(['\n', '\r']), "{shown:?}");
            }
        }
    }
}
