//! Client and account settings given as flags, checked before anything is changed: a bad
//! value is a `ConfigError` naming the field in the clients file's terms. A client's flags
//! become the [`ClientPatch`] the admin API's `PATCH` body is.

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use gis_auth::ConfigError;
use gis_auth::client::{
    Action, Contact, Grant, ItemCeiling, Plan, RateLimit, RoleSet, ShadowSet, Status,
};
use gis_auth::document::{ClientPatch, GrantDocument, Nullable, RateLimitDocument};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `active` or `inactive`, read by [`Status`]'s own `FromStr`.
pub fn status() -> impl TypedValueParser<Value = Status> {
    PossibleValuesParser::new(Status::ALL.map(Status::as_str)).try_map(|s| s.parse::<Status>())
}

/// A client's settings, as flags. Lists are comma-separated; an empty value (`''`) gives
/// an empty list.
#[derive(Debug, Clone, Default, Args)]
pub struct ClientFlags {
    /// The display name.
    #[arg(long)]
    pub name: Option<String>,

    /// The roles it holds (a subset of its account's); absent at creation means all of
    /// them.
    #[arg(long, value_delimiter = ',', value_name = "ROLE,…")]
    pub roles: Option<Vec<String>>,

    /// Hold all of the account's roles, following them as they change.
    #[arg(long, conflicts_with = "roles")]
    pub all_roles: bool,

    /// `active` or `inactive`.
    #[arg(long, value_parser = status())]
    pub status: Option<Status>,

    /// Origins a JavaScript client's requests may come from (`https://*.example.com`,
    /// `http://localhost:*`).
    #[arg(long, value_delimiter = ',', value_name = "PATTERN,…")]
    pub allowed_origins: Option<Vec<String>>,

    /// Whether requests with neither `Origin` nor `Referer` pass the origin rules.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "true|false")]
    pub allow_missing_origin: Option<String>,

    /// IP rules (`203.0.113.9`, `203.0.113.*`, `2001:db8::/32`).
    #[arg(long, value_delimiter = ',', value_name = "RULE,…")]
    pub allowed_ips: Option<Vec<String>>,

    /// When the client stops working (RFC 3339, e.g. `2027-12-31T23:59:59Z`).
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,

    /// Remove the expiry date.
    #[arg(long, conflicts_with = "expires_at")]
    pub clear_expiry: bool,

    /// Limit the client to these APIs (route-table names); `''` reaches no API.
    #[arg(long, value_delimiter = ',', value_name = "API,…")]
    pub privileges: Option<Vec<String>>,

    /// Remove the API limit: the client reaches whatever its roles allow.
    #[arg(long, conflicts_with = "privileges")]
    pub clear_privileges: bool,

    /// A grant on an item or dataset (repeat for more; replaces the client's grants).
    #[arg(long = "grant", value_name = "ITEM=read[+write]")]
    pub grants: Vec<String>,

    /// Remove every grant.
    #[arg(long, conflicts_with = "grants")]
    pub clear_grants: bool,

    /// A request-rate limit: requests per second, and optionally the burst.
    #[arg(long, value_name = "PER_SECOND[/BURST]")]
    pub rate_limit: Option<String>,

    /// Remove the rate limit.
    #[arg(long, conflicts_with = "rate_limit")]
    pub clear_rate_limit: bool,

    /// Restrictions to run report-only (`origins`, `ips`, `privileges`, `grants`, `quota`).
    #[arg(long, value_delimiter = ',', value_name = "RESTRICTION,…")]
    pub shadow: Option<Vec<String>>,
}

/// A flag given is a value, one not given is absent.
fn given<T>(value: Option<T>) -> Nullable<T> {
    value.map_or(Nullable::Absent, Nullable::Value)
}

/// A `--clear-…` flag is `null`.
fn given_or_cleared<T>(clear: bool, value: Option<T>) -> Nullable<T> {
    if clear { Nullable::Null } else { given(value) }
}

impl ClientFlags {
    /// The change the flags make, every value checked that can be checked without the
    /// store.
    pub fn patch(&self) -> Result<ClientPatch, ConfigError> {
        let grants = if self.grants.is_empty() {
            None
        } else {
            let grants = self
                .grants
                .iter()
                .map(|g| grant(g))
                .collect::<Result<Vec<_>, _>>()?;
            Some(grants.iter().map(GrantDocument::from).collect())
        };
        Ok(ClientPatch {
            name: given(self.name.clone()),
            roles: given_or_cleared(
                self.all_roles,
                self.roles.as_deref().map(client_roles).transpose()?,
            ),
            status: given(self.status),
            allowed_origins: given(self.allowed_origins.as_deref().map(non_empty)),
            allow_missing_origin: given(
                self.allow_missing_origin
                    .as_deref()
                    .map(|v| boolean("allow_missing_origin", v))
                    .transpose()?,
            ),
            allowed_ips: given(self.allowed_ips.as_deref().map(non_empty)),
            expires_at: given_or_cleared(
                self.clear_expiry,
                self.expires_at
                    .as_deref()
                    .map(|t| rfc3339("expires_at", t))
                    .transpose()?,
            ),
            privileges: given_or_cleared(
                self.clear_privileges,
                self.privileges.as_deref().map(non_empty),
            ),
            grants: given_or_cleared(self.clear_grants, grants),
            rate_limit: given_or_cleared(
                self.clear_rate_limit,
                self.rate_limit
                    .as_deref()
                    .map(|r| rate_limit(r).map(RateLimitDocument::from))
                    .transpose()?,
            ),
            shadow: given(
                self.shadow
                    .as_deref()
                    .map(|s| ShadowSet::parse(non_empty(s)).map(|set| set.iter().collect()))
                    .transpose()?,
            ),
            ..ClientPatch::default()
        })
    }
}

/// An account's contact fields, as flags; `''` clears one.
#[derive(Debug, Clone, Default, Args)]
pub struct ContactFlags {
    /// A contact person.
    #[arg(long)]
    pub contact_name: Option<String>,
    /// A contact e-mail address.
    #[arg(long)]
    pub contact_email: Option<String>,
    /// A contact telephone number.
    #[arg(long)]
    pub contact_phone: Option<String>,
}

impl ContactFlags {
    /// Applies the flags given to `contact` and checks the result.
    pub fn apply(&self, contact: &mut Contact) -> Result<(), ConfigError> {
        for (flag, field) in [
            (&self.contact_name, &mut contact.contact_name),
            (&self.contact_email, &mut contact.contact_email),
            (&self.contact_phone, &mut contact.contact_phone),
        ] {
            if let Some(v) = flag {
                *field = (!v.is_empty()).then(|| v.clone());
            }
        }
        contact.validate()
    }

    pub fn is_empty(&self) -> bool {
        self.contact_name.is_none() && self.contact_email.is_none() && self.contact_phone.is_none()
    }
}

/// An account's plan, as flags: each one given replaces that setting, and each has a value
/// that clears it (`unlimited`, `never`, `--all-items`).
#[derive(Debug, Clone, Default, Args)]
pub struct PlanFlags {
    /// Transactions per UTC day, or `unlimited` (the default).
    #[arg(long, value_name = "TRANSACTIONS")]
    pub daily_quota: Option<String>,

    /// Transactions per UTC calendar month, or `unlimited` (the default).
    #[arg(long, value_name = "TRANSACTIONS")]
    pub monthly_quota: Option<String>,

    /// One rate limit shared by all the account's clients: requests per second, optionally
    /// `/BURST` (`20/50`), or `unlimited` (the default).
    #[arg(long, value_name = "PER_SECOND[/BURST]")]
    pub rate_limit: Option<String>,

    /// The most clients the account may hold, or `unlimited` (the default is 1000).
    #[arg(long, value_name = "N")]
    pub max_clients: Option<String>,

    /// The item ids, or `prefix*` patterns, its clients may be granted; `''` allows none.
    #[arg(long, value_delimiter = ',', value_name = "ITEM,…")]
    pub items: Option<Vec<String>>,

    /// Its clients may be granted any item (no item ceiling, the default).
    #[arg(long, conflicts_with = "items")]
    pub all_items: bool,

    /// When the account's evaluation period ends (RFC 3339): from then on all of its
    /// clients are refused; `never` (the default) removes it.
    #[arg(long, value_name = "TIME|never")]
    pub expires_at: Option<String>,
}

impl PlanFlags {
    /// Whether no plan flag was given.
    pub fn is_empty(&self) -> bool {
        self.daily_quota.is_none()
            && self.monthly_quota.is_none()
            && self.rate_limit.is_none()
            && self.max_clients.is_none()
            && self.items.is_none()
            && !self.all_items
            && self.expires_at.is_none()
    }

    /// Applies the flags given to `plan`, every value checked first: on an error `plan` is
    /// unchanged.
    pub fn apply(&self, plan: &mut Plan) -> Result<(), ConfigError> {
        let mut next = plan.clone();
        if let Some(q) = &self.daily_quota {
            next.daily_quota = quota("daily_quota", q)?;
        }
        if let Some(q) = &self.monthly_quota {
            next.monthly_quota = quota("monthly_quota", q)?;
        }
        if let Some(r) = &self.rate_limit {
            next.rate_limit = match r.as_str() {
                "unlimited" | "none" => None,
                _ => Some(rate_limit(r)?),
            };
        }
        if let Some(max) = &self.max_clients {
            next.max_clients = max_clients(max)?;
        }
        if let Some(items) = &self.items {
            next.items = Some(ItemCeiling::new(non_empty(items))?);
        }
        if self.all_items {
            next.items = None;
        }
        if let Some(t) = &self.expires_at {
            next.expires_at = match t.as_str() {
                "never" => None,
                _ => Some(rfc3339("expires_at", t)?),
            };
        }
        *plan = next;
        Ok(())
    }
}

/// A whole number of clients, or `unlimited`.
fn max_clients(text: &str) -> Result<Option<u32>, ConfigError> {
    match text {
        "unlimited" => Ok(None),
        _ => text
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ConfigError::InvalidField {
                field: "max_clients",
                value: text.to_owned(),
                reason: "it is a whole number of clients, or `unlimited`",
            }),
    }
}

/// Items with empty ones (from `''` or a trailing comma) left out.
fn non_empty(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn roles(names: &[String]) -> Result<RoleSet, ConfigError> {
    RoleSet::parse(non_empty(names))
}

/// A client's roles: at least one. An empty list never means all of the account's roles
/// (`--all-roles` says that).
fn client_roles(names: &[String]) -> Result<RoleSet, ConfigError> {
    let set = roles(names)?;
    if set.is_empty() {
        return Err(ConfigError::InvalidField {
            field: "roles",
            value: names.join(","),
            reason: "an empty role list grants nothing; give --all-roles to follow the \
                     account's roles",
        });
    }
    Ok(set)
}

pub fn rfc3339(field: &'static str, text: &str) -> Result<OffsetDateTime, ConfigError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ConfigError::InvalidField {
        field,
        value: text.to_owned(),
        reason: "it is an RFC 3339 time such as 2027-12-31T23:59:59Z",
    })
}

fn boolean(field: &'static str, text: &str) -> Result<bool, ConfigError> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::InvalidField {
            field,
            value: text.to_owned(),
            reason: "it is `true` or `false`",
        }),
    }
}

/// `ITEM=read+write` (or `read,write`).
fn grant(text: &str) -> Result<Grant, ConfigError> {
    let invalid = |reason| ConfigError::InvalidField {
        field: "grants",
        value: text.to_owned(),
        reason,
    };
    let (item, actions) = text
        .rsplit_once('=')
        .ok_or_else(|| invalid("a grant is ITEM=read, ITEM=write or ITEM=read+write"))?;
    let actions = actions
        .split(['+', ','])
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<Action>().map_err(|_| ConfigError::InvalidField {
                field: "grants",
                value: a.to_owned(),
                reason: "an action is `read` or `write`",
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Grant::new(item, actions)
}

/// `50` or `50/100`.
fn rate_limit(text: &str) -> Result<RateLimit, ConfigError> {
    let invalid = || ConfigError::InvalidField {
        field: "rate_limit",
        value: text.to_owned(),
        reason: "a rate limit is PER_SECOND or PER_SECOND/BURST, whole numbers from 1",
    };
    let (rate, burst) = match text.split_once('/') {
        Some((rate, burst)) => (rate, Some(burst)),
        None => (text, None),
    };
    let number = |s: &str| s.trim().parse::<u32>().map_err(|_| invalid());
    let rate = number(rate)?;
    let burst = burst.map(number).transpose()?.unwrap_or(rate);
    RateLimit::new(rate, burst)
}

/// A whole number of transactions, or `none`/`unlimited`, for the quota `field`.
fn quota(field: &'static str, text: &str) -> Result<Option<u64>, ConfigError> {
    match text {
        "none" | "unlimited" => Ok(None),
        _ => text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ConfigError::InvalidField {
                field,
                value: text.to_owned(),
                reason: "it is a whole number of transactions, or `unlimited`",
            }),
    }
}

/// `3600`, `90s`, `30m`, `1h` or `2d`.
pub fn grace(text: &str) -> Result<time::Duration, ConfigError> {
    let invalid = || ConfigError::InvalidField {
        field: "grace",
        value: text.to_owned(),
        reason: "a grace period is seconds, or a number with s, m, h or d (e.g. 1h)",
    };
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let n: i64 = number.parse().map_err(|_| invalid())?;
    if n < 0 {
        return Err(invalid());
    }
    let seconds = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3_600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s <= 366 * 86_400)
    .ok_or_else(invalid)?;
    Ok(time::Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: ConfigError) -> &'static str {
        match e {
            ConfigError::InvalidField { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn grants_take_one_or_both_actions() {
        let g = grant("roads-2026=read+write").unwrap();
        assert_eq!(g.item(), "roads-2026");
        assert_eq!(g.actions(), [Action::Read, Action::Write]);
        assert_eq!(grant("a=b=write").unwrap().item(), "a=b");
        assert_eq!(field(grant("roads").unwrap_err()), "grants");
        assert_eq!(field(grant("roads=delete").unwrap_err()), "grants");
        assert_eq!(field(grant("roads=").unwrap_err()), "grants");
    }

    #[test]
    fn rate_limits_burst_at_their_rate_unless_told() {
        let r = rate_limit("50").unwrap();
        assert_eq!((r.per_second.get(), r.burst.get()), (50, 50));
        let r = rate_limit("5/20").unwrap();
        assert_eq!((r.per_second.get(), r.burst.get()), (5, 20));
        for bad in ["0", "x", "5/", "-1/2", "5/0"] {
            assert_eq!(field(rate_limit(bad).unwrap_err()), "rate_limit", "{bad}");
        }
    }

    #[test]
    fn grace_periods_take_units_and_refuse_the_absurd() {
        assert_eq!(grace("90").unwrap(), time::Duration::seconds(90));
        assert_eq!(grace("30m").unwrap(), time::Duration::minutes(30));
        assert_eq!(grace("2d").unwrap(), time::Duration::days(2));
        for bad in ["", "h", "-1h", "1w", "9999999999999999d", "400d"] {
            assert_eq!(field(grace(bad).unwrap_err()), "grace", "{bad}");
        }
    }

    #[test]
    fn an_empty_list_value_is_an_empty_list() {
        let flags = ClientFlags {
            allowed_origins: Some(vec![String::new()]),
            privileges: Some(vec![String::new()]),
            ..ClientFlags::default()
        };
        let mut spec =
            gis_auth::client::ClientSpec::javascript("Web").allowed_origins(["https://a.test"]);
        flags.patch().unwrap().apply_to(&mut spec).unwrap();
        assert!(spec.allowed_origins.is_empty());
        assert_eq!(spec.privileges, Some(Vec::new()));
    }

    #[test]
    fn an_empty_role_list_is_refused_naming_all_roles() {
        let flags = ClientFlags {
            roles: Some(vec![String::new()]),
            ..ClientFlags::default()
        };
        let err = flags.patch().unwrap_err();
        assert!(err.to_string().contains("--all-roles"), "{err}");
        assert_eq!(field(err), "roles");
    }

    #[test]
    fn quotas_are_numbers_or_unlimited() {
        assert_eq!(quota("daily_quota", "10000").unwrap(), Some(10_000));
        assert_eq!(quota("daily_quota", "unlimited").unwrap(), None);
        assert_eq!(
            field(quota("daily_quota", "ten").unwrap_err()),
            "daily_quota"
        );
        assert_eq!(
            field(quota("monthly_quota", "-1").unwrap_err()),
            "monthly_quota"
        );
    }

    #[test]
    fn plan_flags_set_and_clear_each_setting_or_change_nothing() {
        let set = PlanFlags {
            daily_quota: Some("100".into()),
            monthly_quota: Some("2000".into()),
            rate_limit: Some("20/50".into()),
            max_clients: Some("5".into()),
            items: Some(vec!["roads".into(), "parcels-*".into()]),
            all_items: false,
            expires_at: Some("2027-01-31T00:00:00Z".into()),
        };
        let mut plan = Plan::default();
        set.apply(&mut plan).unwrap();
        assert_eq!(
            (plan.daily_quota, plan.monthly_quota),
            (Some(100), Some(2000))
        );
        assert_eq!(plan.rate_limit, Some(RateLimit::new(20, 50).unwrap()));
        assert_eq!(plan.max_clients, Some(5));
        assert!(plan.items.as_ref().unwrap().admits("parcels-x"));
        assert!(plan.expires_at.is_some());

        let clear = PlanFlags {
            daily_quota: Some("unlimited".into()),
            monthly_quota: Some("unlimited".into()),
            rate_limit: Some("unlimited".into()),
            max_clients: Some("unlimited".into()),
            items: None,
            all_items: true,
            expires_at: Some("never".into()),
        };
        clear.apply(&mut plan).unwrap();
        assert_eq!(plan, Plan::default().with_max_clients(None));

        let none = PlanFlags {
            items: Some(vec![String::new()]),
            ..PlanFlags::default()
        };
        none.apply(&mut plan).unwrap();
        assert_eq!(
            plan.item_outside(["roads"]),
            Some("roads"),
            "`''` allows none"
        );

        for (bad, name) in [
            (
                PlanFlags {
                    max_clients: Some("-1".into()),
                    ..PlanFlags::default()
                },
                "max_clients",
            ),
            (
                PlanFlags {
                    rate_limit: Some("0".into()),
                    ..PlanFlags::default()
                },
                "rate_limit",
            ),
            (
                PlanFlags {
                    items: Some(vec!["a*b*".into()]),
                    ..PlanFlags::default()
                },
                "items",
            ),
            (
                PlanFlags {
                    expires_at: Some("soon".into()),
                    ..PlanFlags::default()
                },
                "expires_at",
            ),
            (
                PlanFlags {
                    daily_quota: Some("5".into()),
                    monthly_quota: Some("lots".into()),
                    ..PlanFlags::default()
                },
                "monthly_quota",
            ),
        ] {
            let before = plan.clone();
            assert_eq!(field(bad.apply(&mut plan).unwrap_err()), name);
            assert_eq!(plan, before, "nothing changed");
        }
        assert!(PlanFlags::default().is_empty());
    }
}
