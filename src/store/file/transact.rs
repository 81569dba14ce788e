//! Reading and writing the clients file: loading it into a fresh state (at opening, on a
//! reload, and before every write), the lock on `<file>.lock`, and replacing the file
//! atomically (a temporary file beside it, `fsync`, rename, directory `fsync`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use super::format::GeneratedCredential;
use super::{FileStoreError, Generate, Inner, Loaded, Missing, digest_of, empty_store};
use crate::document::ClientsFile;
use crate::store::manage::{ManageError, credential_field, credential_kind};
use crate::store::memory::InMemoryStore;

/// What a missing file reads as when the store creates it.
const EMPTY_FILE: &str = r#"{"accounts": [], "clients": []}"#;

impl Inner {
    /// A fresh store holding the file's text, with the credentials generated for clients
    /// it gave none (refused unless `generate`).
    pub(super) fn build(
        &self,
        text: &str,
        generate: Generate,
    ) -> Result<(InMemoryStore, Vec<GeneratedCredential>), FileStoreError> {
        let invalid = |source| FileStoreError::Invalid {
            path: self.path.clone(),
            source,
        };
        let store = empty_store(&self.clock, self.max_grants);
        let generated = ClientsFile::from_json(text)
            .map_err(invalid)?
            .load_into(&store)
            .map_err(invalid)?;
        if generate == Generate::No
            && let Some(first) = generated.first()
        {
            return Err(FileStoreError::MissingCredential {
                path: self.path.clone(),
                client: first.client.clone(),
                field: credential_field(credential_kind(first.kind)),
            });
        }
        Ok((store, generated))
    }

    pub(super) fn swap(&self, store: InMemoryStore, loaded: &mut Loaded, digest: [u8; 32]) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(store);
        loaded.digest = Some(digest);
        self.revision.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn reload(&self) -> Result<bool, FileStoreError> {
        let result = self.reload_inner();
        *self
            .reload_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            result.as_ref().err().map(ToString::to_string);
        result
    }

    pub(super) fn reload_inner(&self) -> Result<bool, FileStoreError> {
        let mut loaded = self.lock_sync();
        let text = self.read_file(false)?.unwrap_or_default();
        let digest = digest_of(&text);
        if loaded.digest == Some(digest) {
            return Ok(false);
        }
        let (store, _) = self.build(&text, Generate::No)?;
        self.swap(store, &mut loaded, digest);
        Ok(true)
    }

    pub(super) fn reload_logged(&self) {
        match self.reload() {
            Ok(true) => tracing::info!(
                path = %self.path.display(),
                revision = self.revision.load(Ordering::SeqCst),
                "clients file reloaded"
            ),
            Ok(false) => {}
            Err(error) => tracing::error!(
                %error,
                "clients file not reloaded; the last good state stays in force"
            ),
        }
    }

    /// The file's text; `None` when it does not exist and `missing_ok`.
    pub(super) fn read_file(&self, missing_ok: bool) -> Result<Option<String>, FileStoreError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if missing_ok && e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("read", &self.path)(e)),
        }
    }

    /// The exclusive lock on `<file>.lock`, held until the returned file is dropped.
    fn lock_exclusive(&self) -> Result<File, FileStoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.lock_path)
            .map_err(self.io("open the lock file", &self.lock_path))?;
        fs4::FileExt::lock(&file).map_err(self.io("lock", &self.lock_path))?;
        Ok(file)
    }

    /// Runs `op` on the file as it is now, under the lock, and writes the result back when
    /// it succeeds; the state in force is then what was written. Gives what `op` gave and
    /// the credentials generated while reading (only with `Generate::Yes`).
    pub(super) fn transact<T, E>(
        &self,
        missing: Missing,
        generate: Generate,
        op: impl FnOnce(&InMemoryStore) -> Result<T, E>,
    ) -> Result<(T, Vec<GeneratedCredential>), E>
    where
        E: From<FileStoreError>,
    {
        let mut loaded = self.lock_sync();
        let lock = self.lock_exclusive()?;
        let text = self
            .read_file(missing == Missing::Empty)?
            .unwrap_or_else(|| EMPTY_FILE.to_owned());
        let read_digest = digest_of(&text);
        let (store, generated) = self.build(&text, generate)?;
        let value = match op(&store) {
            Ok(value) => value,
            Err(e) => {
                // Nothing to write, but the file read is the newest: put it in force.
                if loaded.digest != Some(read_digest) && generated.is_empty() {
                    self.swap(store, &mut loaded, read_digest);
                }
                return Err(e);
            }
        };
        let out = ClientsFile::of_store(&store).to_json();
        self.write_atomically(&out)?;
        self.swap(store, &mut loaded, digest_of(&out));
        drop(lock);
        Ok((value, generated))
    }

    /// Replaces the file with `text`: a temporary file in the same directory, flushed to
    /// disk, renamed over the file, and the directory flushed so the rename is durable.
    fn write_atomically(&self, text: &str) -> Result<(), FileStoreError> {
        let dir = self.dir();
        let mut suffix = [0u8; 6];
        getrandom::fill(&mut suffix).map_err(|_| self.random_source_failed())?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}-{suffix}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(self.io("create a temporary file beside", &self.path))?;
            if let Ok(meta) = fs::metadata(&self.path) {
                // Keep the file's permissions (an operator may have narrowed them).
                file.set_permissions(meta.permissions())
                    .map_err(self.io("set the permissions of", &tmp))?;
            }
            file.write_all(text.as_bytes())
                .map_err(self.io("write", &tmp))?;
            file.sync_all().map_err(self.io("flush", &tmp))?;
            drop(file);
            fs::rename(&tmp, &self.path).map_err(self.io("replace", &self.path))?;
            Ok(())
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(dir).map_err(self.io("flush the directory", dir))
    }

    fn random_source_failed(&self) -> FileStoreError {
        FileStoreError::Io {
            action: "name a temporary file beside",
            path: self.path.clone(),
            source: io::Error::other(ManageError::RandomSource),
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    // Directories cannot be opened for flushing here; the rename is as durable as the
    // file system makes it.
    Ok(())
}
