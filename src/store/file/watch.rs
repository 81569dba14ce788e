//! Following the clients file: a watcher on its directory and a thread that reloads after
//! each burst of changes.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::{FileStore, FileStoreError, Inner};

/// How long a burst of file events must be quiet before the watcher reloads, so an editor's
/// truncate-then-write is read once, whole.
const SETTLE: StdDuration = StdDuration::from_millis(50);
/// The longest a burst is waited out before reloading anyway.
const SETTLE_AT_MOST: StdDuration = StdDuration::from_millis(500);

impl FileStore {
    /// Starts following the file: every change to it (by an editor, another process, or a
    /// deployment tool) is reloaded as [`FileStore::reload`] does, and a failure is logged
    /// as a `tracing` error while the last good state stays in force. Following stops when
    /// the returned [`Watch`] is dropped.
    pub fn watch(&self) -> Result<Watch, FileStoreError> {
        let dir = self.inner.dir().to_path_buf();
        let name = self.inner.path.file_name().map(ToOwned::to_owned);
        let (tx, rx) = mpsc::channel::<()>();
        let events = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match event {
                    Ok(event) => {
                        changes_content(event.kind)
                            && (event.need_rescan()
                                || event.paths.iter().any(|p| p.file_name() == name.as_deref()))
                    }
                    // Events were lost: look at the file anyway.
                    Err(_) => true,
                };
                if relevant {
                    let _ = events.send(());
                }
            })
            .map_err(|source| FileStoreError::Watch {
                path: dir.clone(),
                source,
            })?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|source| FileStoreError::Watch {
                path: dir.clone(),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let inner = Arc::downgrade(&self.inner);
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("gis-auth-file-store".into())
                .spawn(move || follow(&inner, &rx, &stop))
                .map_err(|source| FileStoreError::Io {
                    action: "start a thread to watch",
                    path: dir.clone(),
                    source,
                })?
        };
        // Catch up with anything written between opening and watching.
        self.inner.reload_logged();
        Ok(Watch {
            path: dir,
            watcher: Some(watcher),
            wake: tx,
            stop,
            worker: Some(worker),
        })
    }
}

/// Whether an event kind can mean new content (opening or reading the file cannot: the
/// store's own reads must not trigger reloads).
fn changes_content(kind: EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The watcher's loop: wait for an event, let the burst settle, reload.
fn follow(inner: &Weak<Inner>, rx: &mpsc::Receiver<()>, stop: &AtomicBool) {
    while rx.recv().is_ok() {
        let started = Instant::now();
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match rx.recv_timeout(SETTLE) {
                Ok(()) if started.elapsed() < SETTLE_AT_MOST => continue,
                Ok(()) | Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.reload_logged();
    }
}

/// Following a clients file for changes (see [`FileStore::watch`]); dropping it stops.
pub struct Watch {
    path: PathBuf,
    watcher: Option<notify::RecommendedWatcher>,
    wake: mpsc::Sender<()>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("path", &self.path).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.watcher.take());
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(());
        if let Some(worker) = self.worker.take() {
            // A reload in progress finishes first; none starts after this returns.
            let _ = worker.join();
        }
    }
}
