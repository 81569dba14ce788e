//! Reading the admin API's request bodies: JSON objects in the clients file's field names,
//! each field checked with an error that names it (never quoting serde's message, which could
//! echo a value back).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::reply::AdminError;
use crate::client::{
    ClientKind, ClientSpec, Contact, Grant, GrantDocument, RateLimit, RoleSet, ShadowSet, Status,
};

/// The fields `POST /account/clients` accepts.
pub(crate) const CREATE_FIELDS: &[&str] = &[
    "id",
    "name",
    "kind",
    "roles",
    "status",
    "allowed_origins",
    "allow_missing_origin",
    "allowed_ips",
    "expires_at",
    "privileges",
    "grants",
    "rate_limit",
    "shadow",
];

/// The fields `PATCH /account/clients/{id}` changes (`id`, `account` and `kind` are accepted
/// too when unchanged, so a representation read with `GET` can be sent back).
pub(crate) const PATCH_FIELDS: &[&str] = &[
    "name",
    "roles",
    "status",
    "allowed_origins",
    "allow_missing_origin",
    "allowed_ips",
    "expires_at",
    "privileges",
    "grants",
    "rate_limit",
    "shadow",
];

/// The fields `PATCH /account/profile` changes.
pub(crate) const PROFILE_FIELDS: &[&str] =
    &["name", "contact_name", "contact_email", "contact_phone"];

/// Profile fields an account holder may not change themselves.
const NOT_SELF_SERVICE: &[&str] = &["roles", "daily_quota", "status", "account_id", "id"];

/// A JSON object body.
pub(crate) struct Body(Map<String, Value>);

impl Body {
    /// Parses `bytes` as a JSON object; an empty body is an empty object when `empty_ok`.
    pub(crate) fn parse(bytes: &[u8], empty_ok: bool) -> Result<Body, AdminError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return if empty_ok {
                Ok(Body(Map::new()))
            } else {
                Err(AdminError::bad_request("the body is a JSON object"))
            };
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Body(map)),
            Ok(_) => Err(AdminError::bad_request("the body is a JSON object")),
            Err(e) => Err(AdminError::bad_request(format!(
                "the body is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))),
        }
    }

    /// Refuses any field not in `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), AdminError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(AdminError::invalid(k, format!("`{k}` is not a field here"))),
        }
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The field as `T`, `None` when absent; `expected` describes the shape in the error.
    fn get<T: DeserializeOwned>(
        &self,
        field: &str,
        expected: &str,
    ) -> Result<Option<T>, AdminError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| AdminError::invalid(field, format!("`{field}` is {expected}"))),
        }
    }

    /// A nullable field: absent is `None`, `null` is `Some(None)`.
    fn nullable<T: DeserializeOwned>(
        &self,
        field: &str,
        expected: &str,
    ) -> Result<Option<Option<T>>, AdminError> {
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(_) => Ok(Some(self.get(field, expected)?)),
        }
    }

    pub(crate) fn str(&self, field: &str) -> Result<Option<String>, AdminError> {
        self.get(field, "a string")
    }

    /// Sets on `spec` every client field present in the body.
    pub(crate) fn apply_to(&self, spec: &mut ClientSpec) -> Result<(), AdminError> {
        if let Some(name) = self.str("name")? {
            spec.name = name;
        }
        if let Some(roles) = self.nullable::<Vec<String>>("roles", "a list of role names")? {
            spec.roles = match roles {
                None => None,
                Some(names) => Some(
                    RoleSet::parse(&names)
                        .map_err(|e| AdminError::invalid("roles", e.to_string()))?,
                ),
            };
        }
        if let Some(status) = self.get::<Status>("status", "`active` or `inactive`")? {
            spec.status = status;
        }
        if let Some(origins) =
            self.get::<Vec<String>>("allowed_origins", "a list of origin patterns")?
        {
            spec.allowed_origins = origins;
        }
        if let Some(allow) = self.get::<bool>("allow_missing_origin", "true or false")? {
            spec.allow_missing_origin = allow;
        }
        if let Some(ips) = self.get::<Vec<String>>("allowed_ips", "a list of IP rules")? {
            spec.allowed_ips = ips;
        }
        if let Some(expiry) = self.nullable::<String>("expires_at", "an RFC 3339 time, or null")? {
            spec.expires_at = match expiry {
                None => None,
                Some(text) => Some(OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                    AdminError::invalid("expires_at", "`expires_at` is an RFC 3339 time, or null")
                })?),
            };
        }
        if let Some(privileges) =
            self.nullable::<Vec<String>>("privileges", "a list of API names, or null")?
        {
            spec.privileges = privileges;
        }
        if let Some(grants) = self.get::<Vec<GrantDocument>>(
            "grants",
            r#"a list of {"item": "<id>", "actions": ["read", "write"]}"#,
        )? {
            spec.grants = grants
                .iter()
                .map(Grant::try_from)
                .collect::<Result<_, _>>()
                .map_err(|e| AdminError::invalid("grants", e.to_string()))?;
        }
        if let Some(limit) = self.nullable::<RateLimit>(
            "rate_limit",
            r#"{"per_second": <n>, "burst": <n>} with whole numbers from 1, or null"#,
        )? {
            spec.rate_limit = limit;
        }
        if let Some(shadow) = self.get::<Vec<String>>(
            "shadow",
            "a list of restriction names (`origins`, `ips`, `privileges`, `grants`, `quota`)",
        )? {
            spec.shadow = ShadowSet::parse(&shadow)
                .map_err(|e| AdminError::invalid("shadow", e.to_string()))?;
        }
        Ok(())
    }

    /// The new client of a `POST /account/clients` body.
    pub(crate) fn new_client(&self) -> Result<ClientSpec, AdminError> {
        self.only(CREATE_FIELDS)?;
        let name = self
            .str("name")?
            .ok_or_else(|| AdminError::invalid("name", "`name` is required"))?;
        let kind = self
            .get::<ClientKind>("kind", "`JavaScript` or `NativeConfidential`")?
            .unwrap_or_default();
        let mut spec = ClientSpec::new(kind, name);
        if let Some(id) = self.str("id")? {
            spec.id = Some(
                crate::client::ClientId::new(&id)
                    .map_err(|e| AdminError::invalid("id", e.to_string()))?,
            );
        }
        self.apply_to(&mut spec)?;
        Ok(spec)
    }

    /// Checks the read-only fields of a `PATCH` body against the client's current values.
    pub(crate) fn unchanged(&self, field: &str, current: &Value) -> Result<(), AdminError> {
        match self.0.get(field) {
            Some(v) if v != current => Err(AdminError::invalid(
                field,
                format!("a client's `{field}` cannot change"),
            )),
            _ => Ok(()),
        }
    }

    /// The new name of a `PATCH /account/profile` body, after checking its fields.
    pub(crate) fn profile_name(&self) -> Result<Option<String>, AdminError> {
        if let Some(field) = NOT_SELF_SERVICE.iter().find(|f| self.has(f)) {
            return Err(AdminError::invalid(
                field,
                format!(
                    "`{field}` is not self-service: the operator changes it (roles and quota \
                     come with the account's plan)"
                ),
            ));
        }
        self.only(PROFILE_FIELDS)?;
        self.str("name")
    }

    /// Applies the contact fields present to `contact` (`null` clears one).
    pub(crate) fn apply_contact(&self, contact: &mut Contact) -> Result<(), AdminError> {
        for (field, slot) in [
            ("contact_name", &mut contact.contact_name),
            ("contact_email", &mut contact.contact_email),
            ("contact_phone", &mut contact.contact_phone),
        ] {
            if let Some(value) = self.nullable::<String>(field, "a string, or null")? {
                *slot = value;
            }
        }
        Ok(())
    }

    /// The grace period of a `POST …/regenerate` body.
    pub(crate) fn grace(&self) -> Result<Option<time::Duration>, AdminError> {
        self.only(&["grace_seconds"])?;
        const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;
        match self.get::<u64>("grace_seconds", "a whole number of seconds")? {
            None | Some(0) => Ok(None),
            Some(s) if s > MAX_GRACE_SECONDS => Err(AdminError::invalid(
                "grace_seconds",
                format!("`grace_seconds` is at most {MAX_GRACE_SECONDS} (30 days)"),
            )),
            Some(s) => Ok(Some(time::Duration::seconds(s as i64))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_json_objects_are_refused_without_echoing_them() {
        for bad in [&b"gis_secret_abc"[..], b"[1, 2]", b"\"x\"", b"{\"a\": "] {
            let err = Body::parse(bad, false).err().expect("refused");
            assert!(!format!("{err:?}").contains("gis_secret_abc"));
        }
        assert!(Body::parse(b"  ", true).is_ok());
        assert!(Body::parse(b"", false).is_err());
    }

    #[test]
    fn a_wrongly_typed_field_is_named_and_its_value_not_quoted() {
        let body = Body::parse(br#"{"name": "W", "allowed_ips": "gis_secret_xyz"}"#, false)
            .ok()
            .unwrap();
        let err = body.new_client().err().unwrap();
        let text = format!("{err:?}");
        assert!(text.contains("allowed_ips"), "{text}");
        assert!(!text.contains("gis_secret_xyz"), "{text}");
    }

    #[test]
    fn null_clears_a_nullable_field_and_absent_leaves_it() {
        let mut spec = ClientSpec::javascript("W").rate_limit(Some(RateLimit::new(1, 1).unwrap()));
        Body::parse(br#"{"name": "X"}"#, false)
            .ok()
            .unwrap()
            .apply_to(&mut spec)
            .ok()
            .unwrap();
        assert!(spec.rate_limit.is_some());
        Body::parse(br#"{"rate_limit": null}"#, false)
            .ok()
            .unwrap()
            .apply_to(&mut spec)
            .ok()
            .unwrap();
        assert!(spec.rate_limit.is_none());
        assert_eq!(spec.name, "X");
    }

    #[test]
    fn grace_is_bounded() {
        let body = Body::parse(br#"{"grace_seconds": 99999999}"#, false)
            .ok()
            .unwrap();
        assert!(body.grace().is_err());
        let body = Body::parse(br#"{"grace_seconds": 60}"#, false)
            .ok()
            .unwrap();
        assert_eq!(body.grace().ok().unwrap(), Some(time::Duration::minutes(1)));
    }
}
