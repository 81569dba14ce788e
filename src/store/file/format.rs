//! Loading a [`ClientsFile`] into an [`InMemoryStore`], and writing a store back as one.
//!
//! ```
//! use gis_auth::document::ClientsFile;
//! use gis_auth::store::InMemoryStore;
//!
//! let file = r#"{"accounts": [{"id": "acme", "name": "Acme", "roles": ["Evaluator"]}],
//!                "clients": [{"id": "web", "account": "acme", "kind": "JavaScript"}]}"#;
//! let store = InMemoryStore::new();
//! let generated = ClientsFile::from_json(file)?.load_into(&store)?;
//! assert_eq!(generated[0].client.as_str(), "web");
//! assert!(!ClientsFile::of_store(&store).to_json().contains(generated[0].credential.expose()));
//! # Ok::<(), gis_auth::document::ClientsFileError>(())
//! ```

use crate::client::{Account, ClientId, ClientKind, PlainCredential};
use crate::document::{ClientsFile, ClientsFileError, FileClient, field_of};
use crate::store::{CreatedClient, InMemoryStore, ManageError, NewCredential};

/// A credential generated while loading a file: the plaintext, shown once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GeneratedCredential {
    /// The client it belongs to.
    pub client: ClientId,
    /// Its kind.
    pub kind: ClientKind,
    /// The plaintext.
    pub credential: PlainCredential,
}

impl From<CreatedClient> for GeneratedCredential {
    fn from(made: CreatedClient) -> Self {
        Self {
            client: made.client.id().clone(),
            kind: made.client.kind(),
            credential: made.credential,
        }
    }
}

impl ClientsFile {
    /// The accounts and clients of `store`, with credentials as digests only: what a file
    /// store writes back.
    pub fn of_store(store: &InMemoryStore) -> ClientsFile {
        let accounts: Vec<Account> = store.accounts().iter().map(|a| Account::clone(a)).collect();
        let clients = accounts
            .iter()
            .flat_map(|a| store.clients_of(&a.id))
            .map(|c| FileClient {
                id: c.id().clone(),
                account: c.account_id().clone(),
                spec: c.to_spec(),
                credentials: Some(c.credentials().clone()),
            })
            .collect();
        ClientsFile { accounts, clients }
    }

    /// Loads every account, then every client, into `store`; gives the credentials it
    /// generated for clients that had none. The first invalid entry stops the load with an
    /// error naming it (entries before it stay loaded).
    pub fn load_into(
        self,
        store: &InMemoryStore,
    ) -> Result<Vec<GeneratedCredential>, ClientsFileError> {
        for account in self.accounts {
            let id = account.id.to_string();
            store
                .insert_account(account)
                .map_err(|e| ClientsFileError::at("account", id, "id", e.to_string()))?;
        }
        let mut generated = Vec::new();
        for entry in self.clients {
            let kind = entry.spec.kind;
            let mut spec = entry.spec;
            spec.id = Some(entry.id.clone());
            let credential = entry
                .credentials
                .map_or(NewCredential::Generate, NewCredential::Restored);
            let (client, plain) = store
                .insert_client(&entry.account, spec, credential)
                .map_err(|e| {
                    let field = match &e {
                        ManageError::NotFound { .. } => Some("account"),
                        ManageError::Invalid(e) => field_of(e),
                        _ => None,
                    };
                    let field = field.unwrap_or("id");
                    ClientsFileError::at("client", entry.id.as_str(), field, e.to_string())
                })?;
            if let Some(credential) = plain {
                generated.push(GeneratedCredential {
                    client: client.id().clone(),
                    kind,
                    credential,
                });
            }
        }
        Ok(generated)
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::client::{
        AccountId, Action, CredentialKind, Grant, KeyDigest, RateLimit, ShadowSet,
    };

    #[test]
    fn a_store_written_back_loads_into_the_same_clients_with_digests_only() {
        let (store, generated) = load(&with_client(
            r#"{"id": "web", "account": "acme", "kind": "JavaScript",
                "allowed_origins": ["https://*.acme.test"], "shadow": ["origins"],
                "grants": [{"item": "roads", "actions": ["read"]}],
                "rate_limit": {"per_second": 5, "burst": 9}}"#,
        ))
        .unwrap();
        let id = ClientId::new("web").unwrap();
        store
            .regenerate(&id, Some(time::Duration::hours(1)))
            .unwrap();
        store
            .change_account(&AccountId::new("acme").unwrap(), |a| {
                a.contact.contact_email = Some("ops@acme.test".into());
            })
            .unwrap();
        let text = ClientsFile::of_store(&store).to_json();
        assert!(!text.contains(generated[0].credential.expose()));
        assert!(!text.contains("gis_apikey_"), "{text}");
        let (again, none) = load(&text).unwrap();
        assert!(none.is_empty());
        let (a, b) = (store.client(&id).unwrap(), again.client(&id).unwrap());
        assert_eq!(a.credentials(), b.credentials());
        assert_eq!(a.to_spec(), b.to_spec());
        assert_eq!(
            again
                .account_now(&AccountId::new("acme").unwrap())
                .unwrap()
                .contact
                .contact_email
                .as_deref(),
            Some("ops@acme.test")
        );
        assert_eq!(ClientsFile::of_store(&again).to_json(), text);
    }

    #[test]
    fn a_file_is_written_as_it_always_was_keys_in_order_and_unset_settings_left_out() {
        let (store, _) = load(&with_client(
            r#"{"id": "w", "account": "acme", "kind": "JavaScript"}"#,
        ))
        .unwrap();
        let text = ClientsFile::of_store(&store).to_json();
        assert!(text.contains(r#""daily_quota": null"#), "{text}");
        let client = text.split(r#""clients""#).nth(1).unwrap();
        for unset in ["expires_at", "privileges", "rate_limit", "roles", "null"] {
            assert!(!client.contains(unset), "{unset}: {client}");
        }
        let keys: Vec<&str> = client
            .lines()
            .filter_map(|line| line.trim().strip_prefix('"')?.split('"').next())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert!(keys.contains(&"api_key") && keys.contains(&"allowed_origins"));
    }

    fn load(text: &str) -> Result<(InMemoryStore, Vec<GeneratedCredential>), ClientsFileError> {
        let store = InMemoryStore::new();
        let generated = ClientsFile::from_json(text)?.load_into(&store)?;
        Ok((store, generated))
    }

    const ACCOUNT: &str = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;

    fn with_client(client: &str) -> String {
        format!(r#"{{"accounts": [{ACCOUNT}], "clients": [{client}]}}"#)
    }

    #[test]
    fn a_full_file_loads_with_defaults() {
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let text = with_client(&format!(
            r#"{{"id": "web", "account": "acme", "name": "Web", "kind": "JavaScript",
                "roles": ["Evaluator"], "status": "active",
                "allowed_origins": ["https://*.acme.test"], "allow_missing_origin": true,
                "allowed_ips": ["203.0.113.0/24"], "expires_at": "2030-01-01T00:00:00Z",
                "api_key": "{}"}}"#,
            key.expose()
        ));
        let (store, generated) = load(&text).unwrap();
        assert!(generated.is_empty());
        let c = store.client(&ClientId::new("web").unwrap()).unwrap();
        assert!(
            c.credentials()
                .accepts(&key.digest(), OffsetDateTime::UNIX_EPOCH)
        );
        assert!(c.allows_missing_origin());
        assert_eq!(c.roles().len(), 1);
    }

    #[test]
    fn clients_without_credentials_get_fresh_ones() {
        let text = with_client(r#"{"id": "srv", "account": "acme", "kind": "NativeConfidential"}"#);
        let (store, generated) = load(&text).unwrap();
        assert_eq!(generated.len(), 1);
        assert_eq!(generated[0].credential.kind(), CredentialKind::ClientSecret);
        let c = store.client(&ClientId::new("srv").unwrap()).unwrap();
        assert_eq!(c.roles().len(), 2, "no roles means all of the account's");
    }

    #[test]
    fn digests_are_accepted() {
        let digest = KeyDigest::of("x").to_prefixed_hex();
        let text = with_client(&format!(
            r#"{{"id": "web", "account": "acme", "kind": "JavaScript", "api_key": "{digest}"}}"#
        ));
        let (_, generated) = load(&text).unwrap();
        assert!(generated.is_empty());
    }

    #[test]
    fn errors_name_the_client_and_field() {
        let cases = [
            (
                r#"{"id": "w", "account": "acme", "kind": "Browser"}"#,
                "client `w`, field `kind`",
            ),
            (
                r#"{"id": "w", "account": "nope", "kind": "JavaScript"}"#,
                "client `w`, field `account`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "roles": ["Subscriber"]}"#,
                "client `w`, field `roles`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_origins": ["*.com"]}"#,
                "client `w`, field `allowed_origins`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "NativeConfidential", "allowed_origins": ["a.com"]}"#,
                "client `w`, field `allowed_origins`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "allowed_ips": ["1.2.3.4/40"]}"#,
                "client `w`, field `allowed_ips`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "nope"}"#,
                "client `w`, field `api_key`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "client_secret": "x"}"#,
                "client `w`, field `client_secret`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "expires_at": "tomorrow"}"#,
                "client `w`, field `expires_at`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "status": "paused"}"#,
                "client `w`, field `status`",
            ),
            (
                r#"{"id": "w", "account": "acme", "kind": "JavaScript", "colour": "red"}"#,
                "client `w`, field `colour`",
            ),
            (
                r#"{"account": "acme", "kind": "JavaScript"}"#,
                "client `#1`, field `id`",
            ),
        ];
        for (client, expected) in cases {
            let err = load(&with_client(client)).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{err} / {expected}");
        }
    }

    #[test]
    fn plaintext_credentials_never_appear_in_errors() {
        let secret = PlainCredential::generate(CredentialKind::ClientSecret).unwrap();
        let text = with_client(&format!(
            r#"{{"id": "w", "account": "acme", "kind": "JavaScript", "api_key": "{}"}}"#,
            secret.expose()
        ));
        let err = load(&text).unwrap_err();
        assert!(!err.to_string().contains(secret.expose()));
    }

    #[test]
    fn not_json_is_a_file_error() {
        let err = ClientsFile::from_json("{").unwrap_err();
        assert!(err.to_string().starts_with("not a clients file"));
        assert!(ClientsFile::from_json(r#"{"users": []}"#).is_err());
    }

    /// A file with client `w` of `acme`, with `fields` added to it.
    fn web_with(fields: &str) -> String {
        with_client(&format!(
            r#"{{"id": "w", "account": "acme", "kind": "JavaScript", {fields}}}"#
        ))
    }

    /// Loads client `w` with `fields`, checks that the error names `w` and `field`, and
    /// gives it.
    fn refused(fields: &str, field: &str) -> ClientsFileError {
        let err = load(&web_with(fields)).unwrap_err();
        assert_eq!(
            (err.entry(), err.field()),
            (Some("w"), Some(field)),
            "{fields}: {err}"
        );
        let prefix = format!("client `w`, field `{field}`: ");
        assert!(err.to_string().starts_with(&prefix), "{err}");
        err
    }

    fn grants_json(n: usize) -> String {
        let grants: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"item": "item-{i}", "actions": ["read"]}}"#))
            .collect();
        format!(r#""grants": [{}]"#, grants.join(", "))
    }

    #[test]
    fn privileges_grants_rate_limit_and_shadow_reach_the_client() {
        let text = web_with(
            r#""privileges": ["WorldStreets", "Items"],
                "grants": [{"item": "roads-2026", "actions": ["read"]},
                           {"item": "parcels", "actions": ["write", "read"]}],
                "rate_limit": {"per_second": 5, "burst": 20},
                "shadow": ["quota", "origins"]"#,
        );
        let (store, _) = load(&text).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        let privileges: Vec<&str> = c.privileges().unwrap().names().collect();
        assert_eq!(privileges, ["WorldStreets", "Items"]);
        assert_eq!(
            c.grants(),
            [
                Grant::new("roads-2026", [Action::Read]).unwrap(),
                Grant::new("parcels", [Action::Read, Action::Write]).unwrap(),
            ]
        );
        assert!(c.allows_item("parcels", Action::Write));
        assert!(!c.allows_item("roads-2026", Action::Write));
        assert_eq!(c.rate_limit(), Some(RateLimit::new(5, 20).unwrap()));
        assert_eq!(
            c.shadow(),
            ShadowSet::from_iter([
                crate::client::Restriction::Origins,
                crate::client::Restriction::Quota
            ])
        );
    }

    #[test]
    fn a_null_burst_is_an_absent_burst() {
        let file = format!(
            r#"{{"accounts": [{ACCOUNT}], "clients": [{{"id": "w", "account": "acme", "kind": "JavaScript", "rate_limit": {{"per_second": 5, "burst": null}}}}]}}"#
        );
        let store = InMemoryStore::new();
        ClientsFile::from_json(&file)
            .unwrap()
            .load_into(&store)
            .unwrap();
        let limit = store
            .client(&ClientId::new("w").unwrap())
            .unwrap()
            .rate_limit()
            .unwrap();
        assert_eq!(limit.burst.get(), 5);
    }

    #[test]
    fn a_rate_limit_without_a_burst_bursts_at_its_rate() {
        let (store, _) = load(&web_with(r#""rate_limit": {"per_second": 7}"#)).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        assert_eq!(c.rate_limit(), Some(RateLimit::new(7, 7).unwrap()));
    }

    #[test]
    fn absent_or_null_access_rules_leave_the_client_unrestricted() {
        let text =
            web_with(r#""privileges": null, "grants": null, "rate_limit": null, "shadow": null"#);
        let (store, _) = load(&text).unwrap();
        let c = store.client(&ClientId::new("w").unwrap()).unwrap();
        assert!(c.privileges().is_none() && c.grants().is_empty());
        assert!(c.rate_limit().is_none() && c.shadow().is_empty());
    }

    #[test]
    fn a_grant_with_an_unknown_action_names_the_client_field_and_action() {
        let err = refused(
            r#""grants": [{"item": "roads", "actions": ["delete"]}]"#,
            "grants",
        );
        assert!(err.to_string().contains("`delete`"), "{err}");
    }

    #[test]
    fn malformed_grants_name_the_client_and_field() {
        for fields in [
            r#""grants": [{"actions": ["read"]}]"#,
            r#""grants": [{"item": "roads", "actions": ["read"], "scope": "all"}]"#,
            r#""grants": [{"item": "roads"}]"#,
            r#""grants": [{"item": "roads", "actions": []}]"#,
            r#""grants": [{"item": "roads", "actions": "read"}]"#,
            r#""grants": [{"item": 7, "actions": ["read"]}]"#,
            r#""grants": [{"item": "", "actions": ["read"]}]"#,
            r#""grants": ["roads"]"#,
            r#""grants": {"item": "roads", "actions": ["read"]}"#,
            r#""grants": [{"item": "roads", "actions": ["read"]},
                          {"item": "roads", "actions": ["write"]}]"#,
        ] {
            refused(fields, "grants");
        }
    }

    #[test]
    fn more_than_a_hundred_grants_name_the_client_and_field() {
        assert!(load(&web_with(&grants_json(100))).is_ok());
        let err = refused(&grants_json(101), "grants");
        assert!(err.to_string().contains("`101`"), "{err}");
    }

    #[test]
    fn malformed_rate_limits_name_the_client_and_field() {
        for fields in [
            r#""rate_limit": {"per_second": 0}"#,
            r#""rate_limit": {"per_second": 5, "burst": 0}"#,
            r#""rate_limit": {"per_second": -1}"#,
            r#""rate_limit": {"per_second": 4294967296}"#,
            r#""rate_limit": {"per_second": 2.5}"#,
            r#""rate_limit": {"burst": 5}"#,
            r#""rate_limit": {"per_second": 5, "window": 60}"#,
            r#""rate_limit": 5"#,
            r#""rate_limit": [5, 10]"#,
            r#""rate_limit": "5/s""#,
        ] {
            refused(fields, "rate_limit");
        }
    }

    #[test]
    fn an_unknown_shadow_name_names_the_client_field_and_name() {
        let err = refused(r#""shadow": ["origins", "referrers"]"#, "shadow");
        assert!(err.to_string().contains("`referrers`"), "{err}");
        refused(r#""shadow": "quota""#, "shadow");
    }

    #[test]
    fn privileges_that_are_not_a_list_of_api_names_name_the_client_and_field() {
        for fields in [
            r#""privileges": "WorldStreets""#,
            r#""privileges": ["WorldStreets", 3]"#,
            r#""privileges": {"WorldStreets": true}"#,
            r#""privileges": ["WorldStreets", "WorldStreets"]"#,
            r#""privileges": [" "]"#,
        ] {
            refused(fields, "privileges");
        }
    }
}
