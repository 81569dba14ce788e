//! `gis-auth recommend --client ID [--days 14]`: proposes a client's `allowed_origins` and
//! `allowed_ips` from where its refused and report-only requests came from, as the shared
//! usage counters saw them (`--redis URL`).
//!
//! The proposal keeps every current rule and adds each observed origin (exact, never a
//! wildcard) and each observed network (IPv4 /24, IPv6 /48) that no current rule covers,
//! seen at least `--min-requests` times over the days. It widens what the client accepts,
//! so it is meant to be tried report-only first: the printed command applies it with the
//! two restrictions in shadow mode, where nothing is refused and `usage` then shows what
//! the lists would still refuse.

use std::collections::BTreeMap;
use std::sync::Arc;

use clap::Args;
use gis_auth::client::{Client, ClientKind, Restriction};
use gis_auth::limits::DailyUsage;
use gis_auth::restrict::RequestOrigin;
use gis_auth::store::ManagedStore;
use ipnet::IpNet;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::counter::Counters;
use crate::output::{Failure, Output, Table, list_text, note};

/// The longest look back.
const MAX_DAYS: u16 = 92;

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// The client.
    #[arg(long)]
    client: String,

    /// How many UTC days to look back, today included (1 to 92).
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_DAYS)))]
    days: u16,

    /// Propose only origins and networks seen on at least this many requests.
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_requests: u64,
}

/// One origin or network, how often it was seen, and whether the client accepts it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// The origin, or the network in CIDR notation.
    pub value: String,
    /// Refused or report-only requests from it over the days.
    pub requests: u64,
    /// Whether the client accepts it now (a current rule covers it, or the list is empty).
    pub allowed: bool,
    /// Whether the proposal adds it.
    pub proposed: bool,
}

/// What `recommend` proposes.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    pub client_id: String,
    pub from: String,
    pub to: String,
    /// The proposed list: the current patterns, then the origins to add (JavaScript
    /// clients only: origin rules apply to nothing else).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// The proposed list: the current rules, then the networks to add.
    pub allowed_ips: Vec<String>,
    /// The restrictions to run report-only while trying the proposal.
    pub shadow: Vec<&'static str>,
    /// The command that applies the proposal report-only.
    pub command: String,
    pub origins: Vec<Observed>,
    pub networks: Vec<Observed>,
}

pub async fn run(
    args: RecommendArgs,
    store: &Arc<dyn ManagedStore>,
    counters: &Counters,
    out: &Output,
) -> Result<(), Failure> {
    let found = crate::client::find(store, &args.client).await?;
    let Some((_, counter)) = counters.shared() else {
        return Err(Failure::new(
            "invalid redis: recommend reads the usage counters the servers share: pass \
             --redis URL (a server on the in-memory counter shows the same origins and \
             networks at its GET /account/usage)",
        ));
    };
    let today = OffsetDateTime::now_utc().date();
    let from = today.saturating_sub(Duration::days(i64::from(args.days) - 1));
    let rows = counter.usage(&found.account.id, from, today).await?;
    let mut advice = recommend(&found.client, &rows, args.min_requests);
    advice.from = from.to_string();
    advice.to = today.to_string();
    if out.is_json() {
        return out.json(&advice);
    }
    let mut table = Table::new(["FROM", "REQUESTS", "NOW", "PROPOSED"]);
    for seen in advice.origins.iter().chain(&advice.networks) {
        table.row(vec![
            seen.value.clone(),
            seen.requests.to_string(),
            if seen.allowed { "allowed" } else { "refused" }.to_owned(),
            if seen.proposed { "add" } else { "-" }.to_owned(),
        ]);
    }
    out.line(&format!(
        "Refused and report-only requests of {} from {} to {}:",
        advice.client_id, advice.from, advice.to
    ))?;
    out.table(&table, "none seen")?;
    out.line("")?;
    let mut fields = Vec::new();
    if let Some(origins) = &advice.allowed_origins {
        fields.push(("allowed_origins", list_text(origins.iter().cloned())));
    }
    fields.push(("allowed_ips", list_text(advice.allowed_ips.iter().cloned())));
    fields.push(("try it", advice.command.clone()));
    out.fields(&fields)?;
    note(
        "the proposal widens what the client accepts: try it report-only (the command \
         above), watch `gis-auth usage`, then turn shadow mode off",
    );
    Ok(())
}

/// The proposal for `client` from its usage `rows` (other clients' rows are ignored).
pub fn recommend(client: &Client, rows: &[DailyUsage], min_requests: u64) -> Recommendation {
    let mut origins: BTreeMap<String, u64> = BTreeMap::new();
    let mut networks: BTreeMap<String, u64> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.client == *client.id()) {
        for seen in &row.origins {
            *origins.entry(seen.value.clone()).or_default() += seen.count;
        }
        for seen in &row.networks {
            *networks.entry(seen.value.clone()).or_default() += seen.count;
        }
    }
    let javascript = client.kind() == ClientKind::JavaScript;
    let spec = client.to_spec();
    let rules = client.origins();
    let origins = observed(
        origins,
        javascript.then_some(min_requests),
        rules.is_empty(),
        |value| RequestOrigin::from_origin_header(value).is_some_and(|o| rules.allows(&o)),
    );
    let ips = client.ips();
    let networks = observed(networks, Some(min_requests), ips.is_empty(), |value| {
        value
            .parse::<IpNet>()
            .is_ok_and(|net| ips.rules().iter().any(|rule| rule.net().contains(&net)))
    });
    let added = |seen: &[Observed]| -> Vec<String> {
        seen.iter()
            .filter(|s| s.proposed)
            .map(|s| s.value.clone())
            .collect()
    };
    let allowed_origins = javascript.then(|| {
        let mut list = spec.allowed_origins.clone();
        list.extend(added(&origins));
        list
    });
    let mut allowed_ips = spec.allowed_ips.clone();
    allowed_ips.extend(added(&networks));
    let mut shadow: Vec<&'static str> = client.shadow().iter().map(Restriction::as_str).collect();
    for restriction in [Restriction::Origins, Restriction::Ips] {
        let applies = restriction != Restriction::Origins || javascript;
        if applies && !shadow.contains(&restriction.as_str()) {
            shadow.push(restriction.as_str());
        }
    }
    let mut command = format!("gis-auth client update {}", client.id());
    if let Some(list) = &allowed_origins {
        command.push_str(&format!(" --allowed-origins '{}'", list.join(",")));
    }
    command.push_str(&format!(" --allowed-ips '{}'", allowed_ips.join(",")));
    command.push_str(&format!(" --shadow {}", shadow.join(",")));
    Recommendation {
        client_id: client.id().to_string(),
        from: String::new(),
        to: String::new(),
        allowed_origins,
        allowed_ips,
        shadow,
        command,
        origins,
        networks,
    }
}

/// The values seen, most requests first, each marked as allowed now (by a rule of the
/// current list, or by its absence: an empty list restricts nothing) and as proposed (no
/// current rule covers it, and it was seen at least `min` times; `min` of `None` proposes
/// none).
fn observed(
    counts: BTreeMap<String, u64>,
    min: Option<u64>,
    unrestricted: bool,
    covered: impl Fn(&str) -> bool,
) -> Vec<Observed> {
    let mut seen: Vec<Observed> = counts
        .into_iter()
        .map(|(value, requests)| {
            let covered = !unrestricted && covered(&value);
            Observed {
                proposed: !covered && min.is_some_and(|min| requests >= min),
                allowed: unrestricted || covered,
                value,
                requests,
            }
        })
        .collect();
    seen.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.value.cmp(&b.value))
    });
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use gis_auth::client::{
        Account, AccountId, ClientId, ClientSpec, CredentialDigests, CredentialKind,
        PlainCredential, Role, RoleSet,
    };
    use gis_auth::limits::{InMemoryUsageCounter, Refused, Seen, UsageCounter};
    use gis_auth::policy::Rule;
    use time::macros::date;

    fn client(spec: ClientSpec) -> Client {
        let account = Account::new(
            AccountId::new("acme").unwrap(),
            "Acme",
            RoleSet::from_iter([Role::EVALUATOR]),
        )
        .unwrap();
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        Client::build(
            ClientId::new("web").unwrap(),
            &spec,
            &account,
            CredentialDigests::new(key.digest()),
        )
        .unwrap()
    }

    /// Usage rows with refusals from `from` (origin, address) pairs, `n` times each.
    fn rows(from: &[(&str, &str, u64)]) -> Vec<DailyUsage> {
        let counter = InMemoryUsageCounter::new();
        let (acme, web) = (
            AccountId::new("acme").unwrap(),
            ClientId::new("web").unwrap(),
        );
        let other = ClientId::new("other").unwrap();
        let day = date!(2026 - 06 - 10);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for (origin, ip, n) in from {
                let seen = Seen::new(
                    RequestOrigin::from_origin_header(origin),
                    Some(ip.parse().unwrap()),
                );
                for _ in 0..*n {
                    for client in [&web, &other] {
                        let refused =
                            Refused::new(&acme, client, day, Rule::Origins).seen(Some(&seen));
                        counter.record_refusal(&refused).await.unwrap();
                    }
                }
            }
            counter.usage(&acme, day, day).await.unwrap()
        })
    }

    #[test]
    fn origins_and_networks_no_rule_covers_are_proposed_after_the_current_rules() {
        let mut spec = ClientSpec::javascript("Web map");
        spec.allowed_origins = vec!["https://*.acme.test".into()];
        spec.allowed_ips = vec!["198.51.100.0/24".into()];
        let seen = rows(&[
            ("https://maps.acme.test", "198.51.100.4", 5),
            ("https://partner.example", "203.0.113.9", 3),
            ("https://rare.example", "2001:db8:7:1::1", 1),
        ]);
        let advice = recommend(&client(spec), &seen, 2);
        assert_eq!(
            advice.allowed_origins.as_deref(),
            Some(
                &[
                    "https://*.acme.test".to_owned(),
                    "https://partner.example".to_owned()
                ][..]
            )
        );
        assert_eq!(advice.allowed_ips, ["198.51.100.0/24", "203.0.113.0/24"]);
        assert_eq!(advice.origins[0].value, "https://maps.acme.test");
        assert!(advice.origins[0].allowed && !advice.origins[0].proposed);
        assert_eq!(
            advice.origins[0].requests, 5,
            "other clients' rows are not counted"
        );
        let rare = advice
            .networks
            .iter()
            .find(|n| n.value == "2001:db8:7::/48")
            .unwrap();
        assert!(
            !rare.allowed && !rare.proposed,
            "seen once, under --min-requests 2"
        );
        assert_eq!(advice.shadow, ["origins", "ips"]);
        assert_eq!(
            advice.command,
            "gis-auth client update web --allowed-origins 'https://*.acme.test,https://partner.example' \
             --allowed-ips '198.51.100.0/24,203.0.113.0/24' --shadow origins,ips"
        );
    }

    #[test]
    fn an_empty_list_restricts_nothing_and_a_native_client_gets_no_origins() {
        let seen = rows(&[("https://a.example", "203.0.113.9", 1)]);
        let open = recommend(&client(ClientSpec::javascript("Web map")), &seen, 1);
        assert!(open.origins[0].allowed && open.origins[0].proposed);
        assert_eq!(
            open.allowed_origins.as_deref(),
            Some(&["https://a.example".to_owned()][..])
        );
        let native = recommend(&client(ClientSpec::native("Backend")), &seen, 1);
        assert!(native.allowed_origins.is_none());
        assert!(!native.origins[0].proposed);
        assert_eq!(native.allowed_ips, ["203.0.113.0/24"]);
        assert_eq!(native.shadow, ["ips"]);
    }
}
