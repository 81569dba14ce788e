//! The file store's audit log: JSON lines beside the clients file (`clients.json` →
//! `clients.audit.jsonl`), one [`AuditEntry`] a line, appended with one write each (a
//! file opened for appending, so writers of several processes never interleave within a
//! line) and read whole, on the blocking pool like the store's other writes.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::document::AuditEntry;
use crate::error::BackendError;
use crate::store::AuditQuery;

/// The audit log beside the clients file at `path`: its name with the extension replaced
/// by `.audit.jsonl`.
pub(super) fn audit_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "clients".to_owned());
    path.with_file_name(format!("{stem}.audit.jsonl"))
}

fn failed(action: &str, path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::new(format!(
        "cannot {action} the audit log `{}`: {e}",
        path.display()
    ))
}

/// Appends `entry` as one line to the log at `path`, creating it when missing, and flushes
/// it to disk.
pub(super) fn append(path: &Path, entry: &AuditEntry) -> Result<(), BackendError> {
    let mut line = serde_json::to_vec(entry).map_err(|e| failed("write", path, e))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| failed("open", path, e))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| failed("append to", path, e))
}

/// The entries of the log at `path` that `query` selects; a missing log has none. A line
/// that is not an entry is an error naming its number (the log was edited or truncated).
pub(super) fn read(path: &Path, query: &AuditQuery) -> Result<Vec<AuditEntry>, BackendError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed("open", path, e)),
    };
    let mut entries = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| failed("read", path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: AuditEntry = serde_json::from_str(&line).map_err(|_| {
            failed(
                "read",
                path,
                format!("line {} is not an audit entry", number + 1),
            )
        })?;
        if query.matches(&entry) {
            entries.push(entry);
        }
    }
    Ok(query.select(entries.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::AuditAction;
    use time::macros::datetime;

    #[test]
    fn the_log_sits_beside_the_clients_file() {
        assert_eq!(
            audit_path(Path::new("/etc/gis/clients.json")),
            Path::new("/etc/gis/clients.audit.jsonl")
        );
        assert_eq!(audit_path(Path::new("keys")), Path::new("keys.audit.jsonl"));
    }

    #[test]
    fn entries_are_appended_as_lines_and_read_back_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clients.audit.jsonl");
        let at = datetime!(2026-06-01 12:00 UTC);
        for hours in 0..3 {
            let entry = AuditEntry::new(
                at + time::Duration::hours(hours),
                "operator",
                AuditAction::CreateClient,
            );
            append(&path, &entry).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        let query = AuditQuery::new(at + time::Duration::hours(1), at + time::Duration::hours(9));
        assert_eq!(read(&path, &query).unwrap().len(), 2);
        std::fs::write(&path, "{not json\n").unwrap();
        let err = read(&path, &query).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
