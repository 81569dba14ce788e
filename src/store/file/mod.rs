//! [`FileStore`]: the clients file (the format of
//! [`ClientsFile`](crate::document::ClientsFile)) as a store, for operators
//! who keep their clients in a file: written atomically, locked against concurrent
//! writers, and reloaded when it changes.
//!
//! Lookups read an in-memory copy of the file that is replaced whole, so a request sees
//! the file either wholly before or wholly after a change. Every management operation
//! takes an exclusive lock on `<file>.lock`, re-reads the file (another process may have
//! written it), applies the change, writes a temporary file beside it, flushes it to disk
//! and renames it over the original; two processes writing at once never lose an update,
//! and a crash never leaves half a file. Credentials are written as digests only.
//!
//! ```
//! use std::sync::Arc;
//! use gis_auth::client::{ClientId, ClientSpec, Role, RoleSet};
//! use gis_auth::store::{ClientStore, FileStore, ManagedStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let path = dir.path().join("clients.json");
//! std::fs::write(&path, r#"{"accounts": [{"id": "acme", "roles": ["Evaluator"]}]}"#)?;
//!
//! let store = Arc::new(FileStore::open(&path)?);
//! let _watch = store.watch()?; // picks up edits made by others until dropped
//! let acme = gis_auth::client::AccountId::new("acme")?;
//! let web = store.create_client(&acme, ClientSpec::javascript("Web map")).await?;
//! println!("API key, shown once: {}", web.credential.expose());
//!
//! // The file now holds the client, with the key's digest only.
//! let text = std::fs::read_to_string(&path)?;
//! assert!(text.contains(web.client.id().as_str()));
//! assert!(!text.contains(web.credential.expose()));
//! assert!(store.client_by_id(web.client.id()).await?.is_some());
//! # Ok(()) }
//! ```
//!
//! # Credentials in the file
//!
//! - A credential given in plaintext is hashed when the file is read and kept as given
//!   until the first write through the store, which writes digests only.
//! - A client without a credential gets a fresh one when the store is opened: the file is
//!   written back at once (so the credential stays valid across reloads and restarts), and
//!   the plaintext is handed out once by [`FileStore::take_generated`]. A reload or write
//!   that finds such a client (added to the file while the store runs) refuses the file
//!   with [`FileStoreError::MissingCredential`], since nobody could be shown the credential.
//!
//! # Reloading
//!
//! [`FileStore::watch`] follows the file's directory (an atomic rename replaces the file's
//! inode) and reloads after each burst of changes; [`FileStore::reload`] does the same on
//! demand (on `SIGHUP`, say). A file that cannot be read or parsed keeps the last good
//! state in force and is logged as a `tracing` error naming the problem (the entry and
//! field, never a credential).
//!
//! Lookups and listings see the state in force: the file as this store last read or wrote
//! it. Without [`FileStore::watch`] (or [`FileStore::reload`]), another process's writes
//! are seen on this store's next write, which always starts from the file as it is.
//!
//! Writes do blocking file I/O (a lock, a read, a write and two `fsync`s) off the async
//! worker threads, on the Tokio runtime's blocking pool, so a slow disk or a lock held by
//! another process never holds up requests. Lookups never touch the disk.

mod audit;
mod format;
mod transact;
mod watch;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::audit::AuditQuery;
use super::manage::{
    AccountChange, ClientChange, CreatedAccount, CreatedClient, ManageError, ManagedStore,
    Precondition,
};
use super::memory::InMemoryStore;
use super::{BackendError, ClientStore, Resolved};
use crate::client::{
    Account, AccountId, Client, ClientId, ClientSpec, DEFAULT_MAX_GRANTS, KeyDigest,
    PlainCredential,
};
use crate::clock::{Clock, SystemClock};
use crate::document::{AuditEntry, ClientsFileError};
use crate::events::EventSink;
pub use format::GeneratedCredential;

pub use watch::Watch;

/// A clients file that could not be opened, read, written or watched. Names the file and
/// the problem; never shows a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileStoreError {
    /// A file operation failed.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not a valid clients file.
    #[error("`{path}`: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the entry and field.
        source: ClientsFileError,
    },
    /// A client in the file has no credential, and this is not the store's opening, when a
    /// fresh one could be handed out.
    #[error(
        "`{path}`: client `{client}`, field `{field}`: required for a client added while the \
         store runs (give a digest `sha256:…`, or create the client through the store, e.g. \
         `gis-auth client create`)"
    )]
    MissingCredential {
        /// The file.
        path: PathBuf,
        /// The client.
        client: ClientId,
        /// `api_key` or `client_secret`.
        field: &'static str,
    },
    /// The file's directory cannot be watched.
    #[error("cannot watch `{path}` for changes: {source}")]
    Watch {
        /// The directory.
        path: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
}

impl From<FileStoreError> for ManageError {
    fn from(e: FileStoreError) -> Self {
        ManageError::Backend(BackendError::new(e.to_string()))
    }
}

/// How to open a [`FileStore`]: see [`FileStore::options`].
#[must_use]
pub struct FileStoreOptions {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    max_grants: usize,
    create: bool,
    events: Option<Arc<dyn EventSink>>,
}

impl fmt::Debug for FileStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStoreOptions")
            .field("path", &self.path)
            .field("max_grants", &self.max_grants)
            .field("create", &self.create)
            .finish_non_exhaustive()
    }
}

impl FileStoreOptions {
    /// The clock for expiry and rotation grace periods (the system clock by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Allows at most `max` grants per client (100 by default).
    pub fn max_grants(mut self, max: usize) -> Self {
        self.max_grants = max;
        self
    }

    /// Tells `sink` of the store's changes (a credential regenerated, a client or an
    /// account deactivated).
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// Creates an empty clients file when there is none (off by default: a mistyped path
    /// is an error).
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Opens the store: reads the file, or creates it when asked to. A client without a
    /// credential gets a fresh one, written back at once and handed out by
    /// [`FileStore::take_generated`].
    pub fn open(self) -> Result<FileStore, FileStoreError> {
        let lock_path = {
            let mut name = self.path.clone().into_os_string();
            name.push(".lock");
            PathBuf::from(name)
        };
        let inner = Arc::new(Inner {
            audit_path: audit::audit_path(&self.path),
            events: self.events,
            state: RwLock::new(Arc::new(empty_store(&self.clock, self.max_grants))),
            path: self.path,
            lock_path,
            clock: self.clock,
            max_grants: self.max_grants,
            sync: Mutex::new(Loaded { digest: None }),
            revision: AtomicU64::new(0),
            generated: Mutex::new(Vec::new()),
            reload_error: Mutex::new(None),
        });
        match inner.read_file(self.create)? {
            None => {
                inner.transact(Missing::Empty, Generate::No, |_| {
                    Ok::<(), FileStoreError>(())
                })?;
            }
            Some(text) => match inner.build(&text, Generate::No) {
                Ok((store, _)) => {
                    let mut loaded = inner.lock_sync();
                    inner.swap(store, &mut loaded, digest_of(&text));
                }
                Err(FileStoreError::MissingCredential { .. }) => {
                    let ((), generated) = inner.transact(Missing::Error, Generate::Yes, |_| {
                        Ok::<(), FileStoreError>(())
                    })?;
                    *inner
                        .generated
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = generated;
                }
                Err(e) => return Err(e),
            },
        }
        Ok(FileStore { inner })
    }
}

/// The clients file as a [`ClientStore`] and [`ManagedStore`].
///
/// Lookups read an in-memory copy of the file, replaced whole after each write or reload.
/// Writes lock `<file>.lock`, re-read the file, and replace it atomically (a temporary file
/// beside it, `fsync`, rename, directory `fsync`), with credentials as digests only.
/// Plaintext credentials in the file are hashed on load and replaced by digests on the
/// first write; a client without one gets one at [`FileStore::open`] (see
/// [`FileStore::take_generated`]) and is refused by later reloads. [`FileStore::watch`]
/// follows the file; a file that fails to load keeps the last good state in force.
pub struct FileStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.path)
            .field("revision", &self.revision())
            .field("state", &self.inner.current())
            .finish()
    }
}

impl FileStore {
    /// Opens the clients file at `path` with the default options.
    pub fn open(path: impl AsRef<Path>) -> Result<FileStore, FileStoreError> {
        Self::options(path).open()
    }

    /// Options for opening the clients file at `path`.
    pub fn options(path: impl AsRef<Path>) -> FileStoreOptions {
        FileStoreOptions {
            path: path.as_ref().to_path_buf(),
            clock: Arc::new(SystemClock),
            max_grants: DEFAULT_MAX_GRANTS,
            events: None,
            create: false,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many times the state in force has been replaced since the store was opened (by
    /// a write through it or a reload that found the file changed).
    pub fn revision(&self) -> u64 {
        self.inner.revision.load(Ordering::SeqCst)
    }

    /// The credentials generated at opening for clients the file gave none, in plaintext:
    /// returned once, empty afterwards. Show them to their owners; never log them.
    pub fn take_generated(&self) -> Vec<GeneratedCredential> {
        std::mem::take(
            &mut *self
                .inner
                .generated
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Reads the file again and puts it in force if it changed; gives whether it did. A
    /// file that cannot be read or parsed leaves the state in force as it was.
    pub fn reload(&self) -> Result<bool, FileStoreError> {
        self.inner.reload()
    }

    /// Why the last reload failed (the file names the problem), or `None` when it
    /// succeeded or none was tried: the state in force is then the file as last read. For
    /// health checks.
    pub fn last_reload_error(&self) -> Option<String> {
        self.inner
            .reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

struct Loaded {
    /// The SHA-256 of the file text in force, to skip reloading what is already loaded
    /// (the store's own writes, an editor saving unchanged text).
    digest: Option<[u8; 32]>,
}

struct Inner {
    path: PathBuf,
    /// The audit log, beside the file.
    audit_path: PathBuf,
    events: Option<Arc<dyn EventSink>>,
    lock_path: PathBuf,
    clock: Arc<dyn Clock>,
    max_grants: usize,
    state: RwLock<Arc<InMemoryStore>>,
    /// Held by this process's reloads and writes, so that a reload never puts in force a
    /// file older than one this process has just written.
    sync: Mutex<Loaded>,
    revision: AtomicU64,
    generated: Mutex<Vec<GeneratedCredential>>,
    /// Why the last reload failed, until one succeeds.
    reload_error: Mutex<Option<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Generate {
    Yes,
    No,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// A missing file is an empty one (creating the store).
    Empty,
    /// A missing file is an error.
    Error,
}

fn empty_store(clock: &Arc<dyn Clock>, max_grants: usize) -> InMemoryStore {
    InMemoryStore::new()
        .clock(clock.clone())
        .max_grants(max_grants)
}

fn digest_of(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Inner {
    fn current(&self) -> Arc<InMemoryStore> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn lock_sync(&self) -> MutexGuard<'_, Loaded> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    fn io(&self, action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> FileStoreError {
        let path = path.to_path_buf();
        move |source| FileStoreError::Io {
            action,
            path,
            source,
        }
    }
}

#[async_trait]
impl ClientStore for FileStore {
    async fn client_by_key(&self, digest: &KeyDigest) -> Result<Option<Arc<Client>>, BackendError> {
        self.inner.current().client_by_key(digest).await
    }

    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Arc<Client>>, BackendError> {
        self.inner.current().client_by_id(id).await
    }

    async fn account(&self, id: &AccountId) -> Result<Option<Arc<Account>>, BackendError> {
        self.inner.current().account(id).await
    }

    async fn resolve_key(&self, digest: &KeyDigest) -> Result<Option<Resolved>, BackendError> {
        self.inner.current().resolve_key(digest).await
    }

    async fn resolve_id(&self, id: &ClientId) -> Result<Option<Resolved>, BackendError> {
        self.inner.current().resolve_id(id).await
    }

    // Lookups never touch the disk: they answer at once, as the in-memory store does.
    fn resolve_key_now(
        &self,
        digest: &KeyDigest,
    ) -> Option<Result<Option<Resolved>, BackendError>> {
        self.inner.current().resolve_key_now(digest)
    }

    fn resolve_id_now(&self, id: &ClientId) -> Option<Result<Option<Resolved>, BackendError>> {
        self.inner.current().resolve_id_now(id)
    }
}

impl FileStore {
    /// Runs `op` as a write transaction off the async worker threads (on the runtime's
    /// blocking pool; inline when there is no Tokio runtime): it locks, reads, writes and
    /// flushes files, which may take long, and lookups must go on meanwhile. The write
    /// completes even if the caller stops waiting for it.
    async fn write<T, F>(&self, op: F) -> Result<T, ManageError>
    where
        T: Send + 'static,
        F: FnOnce(&InMemoryStore) -> Result<T, ManageError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let transact = move || {
            inner
                .transact(Missing::Error, Generate::No, op)
                .map(|(value, _)| value)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(transact).await.map_err(|e| {
                ManageError::Backend(BackendError::new(format!(
                    "the write to the clients file did not complete: {e}"
                )))
            })?,
            Err(_) => transact(),
        }
    }
}

/// Runs `op` on the runtime's blocking pool (inline when there is no Tokio runtime).
async fn blocking<T, F>(op: F) -> Result<T, BackendError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BackendError> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime
            .spawn_blocking(op)
            .await
            .map_err(|e| BackendError::new(format!("the audit log's I/O did not complete: {e}")))?,
        Err(_) => op(),
    }
}

#[async_trait]
impl ManagedStore for FileStore {
    async fn append_audit(&self, entry: AuditEntry) -> Result<(), BackendError> {
        let inner = self.inner.clone();
        blocking(move || audit::append(&inner.audit_path, &entry)).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, ManageError> {
        let (inner, query) = (self.inner.clone(), query.clone());
        Ok(blocking(move || audit::read(&inner.audit_path, &query)).await?)
    }

    fn audit_time(&self) -> time::OffsetDateTime {
        self.inner.clock.now()
    }

    fn events(&self) -> Option<&dyn EventSink> {
        self.inner.events.as_deref()
    }

    async fn list_accounts(&self) -> Result<Vec<Arc<Account>>, ManageError> {
        Ok(self.inner.current().accounts())
    }

    async fn apply_create_account(&self, account: Account) -> Result<CreatedAccount, ManageError> {
        self.write(|store| store.open_account(account)).await
    }

    async fn apply_update_account(
        &self,
        id: &AccountId,
        change: AccountChange,
    ) -> Result<Arc<Account>, ManageError> {
        let id = id.clone();
        self.write(move |store| store.try_change_account(&id, change))
            .await
    }

    async fn list_clients(&self, account: &AccountId) -> Result<Vec<Arc<Client>>, ManageError> {
        let store = self.inner.current();
        if store.account_now(account).is_none() {
            return Err(ManageError::unknown_account(account));
        }
        Ok(store.clients_of(account))
    }

    async fn apply_create_client(
        &self,
        account: &AccountId,
        spec: ClientSpec,
    ) -> Result<CreatedClient, ManageError> {
        let account = account.clone();
        self.write(move |store| store.add_client(&account, spec))
            .await
    }

    async fn apply_update_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        change: ClientChange,
    ) -> Result<Arc<Client>, ManageError> {
        let (id, pre) = (id.clone(), pre.clone());
        self.write(move |store| store.change_client_if(&id, &pre, change))
            .await
    }

    async fn apply_regenerate_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
        grace: Option<time::Duration>,
    ) -> Result<(Arc<Client>, PlainCredential), ManageError> {
        let (id, pre) = (id.clone(), pre.clone());
        self.write(move |store| store.regenerate_if(&id, &pre, grace))
            .await
    }

    async fn apply_delete_client(
        &self,
        id: &ClientId,
        pre: &Precondition,
    ) -> Result<Arc<Client>, ManageError> {
        let (id, pre) = (id.clone(), pre.clone());
        self.write(move |store| store.remove_client_if(&id, &pre))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{CredentialKind, Status};
    use crate::clock::ManualClock;
    use crate::document::ClientsFile;
    use std::fs;
    use time::macros::datetime;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const ACME: &str = r#"{"id": "acme", "name": "Acme", "roles": ["User", "Evaluator"]}"#;

    fn file_with(dir: &Path, clients: &str) -> PathBuf {
        let path = dir.join("clients.json");
        fs::write(
            &path,
            format!(r#"{{"accounts": [{ACME}], "clients": [{clients}]}}"#),
        )
        .unwrap();
        path
    }

    fn acme() -> AccountId {
        AccountId::new("acme").unwrap()
    }

    fn id(s: &str) -> ClientId {
        ClientId::new(s).unwrap()
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn plaintext_keys_stay_until_the_first_write_which_leaves_digests_only() {
        let dir = tempfile::tempdir().unwrap();
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        let path = file_with(
            dir.path(),
            &format!(
                r#"{{"id": "web", "account": "acme", "kind": "JavaScript", "api_key": "{}"}}"#,
                key.expose()
            ),
        );
        let store = FileStore::open(&path).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains(key.expose()));
        block(async {
            store
                .create_client(&acme(), ClientSpec::native("Backend"))
                .await
                .unwrap();
        });
        let text = fs::read_to_string(&path).unwrap();
        assert!(!text.contains(key.expose()));
        assert!(text.contains(&key.digest().to_prefixed_hex()));
        ClientsFile::from_json(&text).unwrap();
        // No temporary file is left; the audit log sits beside the file.
        assert_eq!(
            names_in(dir.path()),
            ["clients.audit.jsonl", "clients.json", "clients.json.lock"]
        );
        // The key still works, in this store and in one opened afresh.
        for store in [store, FileStore::open(&path).unwrap()] {
            let found = block(store.resolve_key(&key.digest())).unwrap().unwrap();
            assert_eq!(found.client.id().as_str(), "web");
        }
    }

    #[test]
    fn clients_without_credentials_get_one_at_opening_written_back_and_handed_out_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(
            dir.path(),
            r#"{"id": "web", "account": "acme", "kind": "JavaScript"},
               {"id": "batch", "account": "acme", "kind": "NativeConfidential"}"#,
        );
        let store = FileStore::open(&path).unwrap();
        let generated = store.take_generated();
        assert_eq!(generated.len(), 2);
        assert!(store.take_generated().is_empty(), "handed out once");
        let text = fs::read_to_string(&path).unwrap();
        for g in &generated {
            assert!(text.contains(&g.credential.digest().to_prefixed_hex()));
            assert!(!text.contains(g.credential.expose()));
        }
        // Opened again, nothing is generated and the credentials still hold.
        let again = FileStore::open(&path).unwrap();
        assert!(again.take_generated().is_empty());
        let web = generated
            .iter()
            .find(|g| g.client.as_str() == "web")
            .unwrap();
        assert!(
            block(again.resolve_key(&web.credential.digest()))
                .unwrap()
                .is_some()
        );
        assert!(!again.reload().unwrap(), "the file is what was loaded");
    }

    #[test]
    fn a_client_added_without_a_credential_while_running_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let store = FileStore::open(&path).unwrap();
        file_with(
            dir.path(),
            r#"{"id": "late", "account": "acme", "kind": "NativeConfidential"}"#,
        );
        let err = store.reload().unwrap_err();
        assert!(
            matches!(&err, FileStoreError::MissingCredential { client, field: "client_secret", .. }
                if client.as_str() == "late"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("client `late`, field `client_secret`")
        );
        assert!(block(store.client_by_id(&id("late"))).unwrap().is_none());
        assert_eq!(store.last_reload_error(), Some(err.to_string()));
        // A write refuses it too, and leaves the file alone.
        let before = fs::read_to_string(&path).unwrap();
        let write = block(store.create_client(&acme(), ClientSpec::javascript("x")));
        assert!(matches!(write, Err(ManageError::Backend(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it_unless_asked_to_create_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.json");
        let err = FileStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
        assert!(!path.exists());
        let store = FileStore::options(&path).create(true).open().unwrap();
        let created = ClientsFile::from_json(&fs::read_to_string(&path).unwrap()).unwrap();
        let empty = InMemoryStore::new();
        created.load_into(&empty).unwrap();
        assert!(empty.accounts().is_empty());
        assert!(block(store.list_accounts()).unwrap().is_empty());
    }

    #[test]
    fn reload_puts_a_changed_file_in_force_and_skips_an_unchanged_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let store = FileStore::open(&path).unwrap();
        let revision = store.revision();
        assert!(!store.reload().unwrap());
        assert_eq!(store.revision(), revision);
        file_with(
            dir.path(),
            r#"{"id": "web", "account": "acme", "kind": "JavaScript",
                "api_key": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
        );
        assert!(store.reload().unwrap());
        assert_eq!(store.revision(), revision + 1);
        assert!(block(store.client_by_id(&id("web"))).unwrap().is_some());
        assert_eq!(store.last_reload_error(), None);
    }

    #[test]
    fn a_broken_file_keeps_the_last_good_state_and_its_log_names_the_problem_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(
            dir.path(),
            r#"{"id": "web", "account": "acme", "kind": "JavaScript",
                "api_key": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
        );
        let store = FileStore::open(&path).unwrap();
        let key = PlainCredential::generate(CredentialKind::ApiKey).unwrap();
        file_with(
            dir.path(),
            &format!(
                r#"{{"id": "web", "account": "acme", "kind": "JavaScript", "api_key": "{}",
                    "allowed_ips": ["300.1.2.3"]}}"#,
                key.expose()
            ),
        );
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(logs.clone()), || store.inner.reload_logged());
        let logs = logs.lock().unwrap().join("\n");
        assert!(logs.contains("ERROR"), "{logs}");
        assert!(logs.contains("client `web`, field `allowed_ips`"), "{logs}");
        assert!(logs.contains("clients.json"), "{logs}");
        assert!(!logs.contains(key.expose()), "{logs}");
        let web = block(store.client_by_id(&id("web"))).unwrap().unwrap();
        assert!(web.ips().is_empty(), "the last good state stays in force");

        // Not JSON at all: the same.
        fs::write(&path, "{\"accounts\": [").unwrap();
        assert!(matches!(
            store.reload(),
            Err(FileStoreError::Invalid { .. })
        ));
        assert!(block(store.client_by_id(&id("web"))).unwrap().is_some());
    }

    #[test]
    fn writes_apply_to_the_file_as_it_is_now_not_as_last_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let store = FileStore::open(&path).unwrap();
        // Another process adds an account; this store has not reloaded.
        fs::write(
            &path,
            format!(
                r#"{{"accounts": [{ACME}, {{"id": "beta", "roles": ["Evaluator"]}}], "clients": []}}"#
            ),
        )
        .unwrap();
        let beta = AccountId::new("beta").unwrap();
        let made = block(store.create_client(&beta, ClientSpec::javascript("Beta web"))).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"beta\"") && text.contains("\"acme\""));
        assert!(text.contains(made.client.id().as_str()));
        assert!(block(store.account(&beta)).unwrap().is_some());
    }

    #[test]
    fn a_refused_operation_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(
            dir.path(),
            r#"{"id": "web", "account": "acme", "kind": "JavaScript",
                "api_key": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}"#,
        );
        let store = FileStore::open(&path).unwrap();
        let before = fs::read_to_string(&path).unwrap();
        let pre = Precondition {
            if_match: Some("\"stale\"".into()),
            ..Precondition::default()
        };
        let stale = block(store.update_client(
            &id("web"),
            &pre,
            Box::new(|s| {
                s.status = Status::Inactive;
                Ok(())
            }),
        ));
        assert!(matches!(stale, Err(ManageError::Stale { .. })));
        let invalid = block(store.update_client(
            &id("web"),
            &Precondition::default(),
            Box::new(|s| {
                s.allowed_origins = vec!["https://*.".into()];
                Ok(())
            }),
        ));
        assert!(matches!(invalid, Err(ManageError::Invalid(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn the_plans_cap_and_item_ceiling_hold_for_the_file_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.json");
        let file = |items: &str| {
            format!(
                r#"{{"accounts": [{{"id": "acme", "roles": ["User"], "max_clients": 1,
                    "items": ["roads"]}}],
                    "clients": [{{"id": "web", "account": "acme", "kind": "JavaScript",
                    "grants": [{{"item": "{items}", "actions": ["read"]}}]}}]}}"#
            )
        };
        fs::write(&path, file("roads")).unwrap();
        let store = FileStore::open(&path).unwrap();
        let before = fs::read_to_string(&path).unwrap();
        let full = block(store.create_client(&acme(), ClientSpec::javascript("Second")));
        assert!(
            matches!(full, Err(ManageError::TooManyClients { max: 1, .. })),
            "{full:?}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            before,
            "nothing written"
        );

        fs::write(&path, file("parcels")).unwrap();
        let err = FileStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("client `web`, field `grants`"), "{err}");
        assert!(err.contains("`parcels`"), "{err}");
    }

    #[test]
    fn a_write_that_cannot_take_the_lock_fails_naming_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let store = FileStore::open(&path).unwrap();
        fs::create_dir(dir.path().join("clients.json.lock")).unwrap();
        let err = block(store.create_client(&acme(), ClientSpec::javascript("Web"))).unwrap_err();
        assert!(err.to_string().contains("clients.json.lock"), "{err}");
        assert!(block(store.list_clients(&acme())).unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_write_keeps_the_files_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let store = FileStore::open(&path).unwrap();
        block(store.create_client(&acme(), ClientSpec::javascript("Web"))).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn grace_periods_are_timed_on_the_stores_clock_and_written_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let store = FileStore::options(&path)
            .clock(Arc::new(clock.clone()))
            .open()
            .unwrap();
        let made = block(store.create_client(&acme(), ClientSpec::javascript("Web"))).unwrap();
        let old = made.credential.digest();
        let (client, _) = block(store.regenerate_client(
            made.client.id(),
            &Precondition::default(),
            Some(time::Duration::hours(1)),
        ))
        .unwrap();
        assert!(client.credentials().accepts(&old, clock.now()));
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""previous_expires_at": "2026-01-01T01:00:00Z""#),
            "{text}"
        );
        clock.advance(time::Duration::hours(1));
        let reopened = FileStore::open(&path).unwrap();
        let client = block(reopened.client_by_id(made.client.id()))
            .unwrap()
            .unwrap();
        assert!(!client.credentials().accepts(&old, clock.now()));
    }

    #[test]
    fn the_debug_output_shows_the_path_and_counts_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = file_with(dir.path(), "");
        let store = FileStore::open(&path).unwrap();
        let made = block(store.create_client(&acme(), ClientSpec::javascript("Web"))).unwrap();
        let debug = format!("{store:?}");
        assert!(
            debug.contains("clients.json") && debug.contains("clients: 1"),
            "{debug}"
        );
        assert!(!debug.contains(made.credential.expose()));
    }

    /// Records every event as text, for asserting on logs.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }

        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

        fn event(&self, event: &tracing::Event<'_>) {
            struct Text(String);
            impl tracing::field::Visit for Text {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                    self.0.push_str(&format!(" {}={value:?}", field.name()));
                }
            }
            let mut text = Text(event.metadata().level().to_string());
            event.record(&mut text);
            self.0.lock().unwrap().push(text.0);
        }

        fn enter(&self, _: &tracing::span::Id) {}

        fn exit(&self, _: &tracing::span::Id) {}
    }
}
