//! The store named by `--store`: a clients file, or a PostgreSQL URL.

use std::sync::Arc;

use gis_auth::client::ClientKind;
use gis_auth::store::{FileStore, ManagedStore};

use crate::output::{Failure, note};

/// Opens the store `spec` names. Only a clients file may be created (when `create`).
pub async fn open(spec: &str, create: bool) -> Result<Arc<dyn ManagedStore>, Failure> {
    if is_postgres_url(spec) {
        return open_postgres(spec).await;
    }
    if spec.is_empty() {
        return Err(Failure::new("invalid store ``: give a clients file's path"));
    }
    let store = FileStore::options(spec)
        .create(create)
        .open()
        .map_err(|e| match e {
            gis_auth::store::FileStoreError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Failure::new(format!(
                    "invalid store `{spec}`: there is no clients file there (`gis-auth \
                     account create` makes one)"
                ))
            }
            other => other.into(),
        })?;
    // Clients the file gave no credential got one on opening: the file now holds its
    // digest, and this is the only time it is shown. Stdout carries the command's result,
    // so they go to the terminal on stderr, in the example server's form.
    for generated in store.take_generated() {
        let line = match generated.kind {
            ClientKind::JavaScript => serde_json::json!({
                "client": generated.client.as_str(),
                "api_key": generated.credential.expose(),
            }),
            ClientKind::NativeConfidential => serde_json::json!({
                "client": generated.client.as_str(),
                "client_id": generated.client.as_str(),
                "client_secret": generated.credential.expose(),
            }),
        };
        note(&format!(
            "client `{}` had no credential in the file and got this one, shown once: {line}",
            generated.client
        ));
    }
    Ok(Arc::new(store))
}

fn is_postgres_url(spec: &str) -> bool {
    let lower = spec.get(..13).unwrap_or(spec).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn ManagedStore>, Failure> {
    // The URL may hold a password: it is never echoed.
    let store = gis_auth::store::PostgresStore::connect(url)
        .await
        .map_err(|e| Failure::new(format!("cannot open the PostgreSQL store: {e}")))?;
    Ok(Arc::new(store))
}

/// `gis-auth migrate`: creates or upgrades the PostgreSQL store's tables.
#[cfg(feature = "postgres")]
pub async fn migrate(spec: &str, out: crate::output::Output) -> Result<(), Failure> {
    if !is_postgres_url(spec) {
        return Err(Failure::new(
            "invalid store: `migrate` sets up a `postgres://` store; a clients file needs none",
        ));
    }
    let store = gis_auth::store::PostgresStore::connect(spec)
        .await
        .map_err(|e| Failure::new(format!("cannot open the PostgreSQL store: {e}")))?;
    store
        .migrate()
        .await
        .map_err(|e| Failure::new(format!("cannot migrate the PostgreSQL store: {e}")))?;
    if out.is_json() {
        out.json(&serde_json::json!({ "migrated": true }))
    } else {
        out.line("the PostgreSQL store's tables are up to date")
    }
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> Result<Arc<dyn ManagedStore>, Failure> {
    Err(Failure::new(
        "invalid store: a `postgres://` store needs gis-auth built with the `postgres` \
         feature (cargo install gis-auth --features cli,postgres)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_recognised_in_any_case() {
        for url in [
            "postgres://u:p@localhost/test",
            "postgresql://localhost",
            "POSTGRES://x",
        ] {
            assert!(is_postgres_url(url), "{url}");
        }
        for path in ["clients.json", "./postgres/clients.json", "postgres:x", ""] {
            assert!(!is_postgres_url(path), "{path}");
        }
    }
}
