//! Where audit rows wait when the writer is behind: files of JSON lines, one per process, drained
//! into the database as soon as the writer has caught up.
//!
//! The audit's queue is bounded (memory stays bounded whatever happens), and a full queue used to
//! drop the row. A row that finds the queue full, or whose batch the database refused, is
//! appended here instead, and written later: nothing that records what happened is lost to a busy
//! moment or a database outage, only delayed. Disk is the bound, and it is logged when a write to it
//! fails (the one case where a row is lost, loudly).
//!
//! The directory belongs to one database (rows must never land in another's). Each process
//! writes its own files (its pid in their names). A file left behind by a process that
//! is gone (crashed mid-outage) is claimed by the next process that starts on the same directory, by
//! renaming it (only one claimant can), and drained like its own. A drain that stops halfway (the
//! database failed again) leaves the file to be drained again from its start: a row may then be
//! written twice, never not at all.

use super::Row;
use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufRead, BufReader, BufWriter, Write},
    path::{Path, PathBuf},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

const PREFIX: &str = "livedash-audit-spill-";

#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    /// Tells this spill's files from another's in the same process (tests run several servers).
    instance: u32,
    current: Mutex<Option<(PathBuf, BufWriter<File>)>>,
    /// Rows appended and not yet drained, by this process.
    waiting: AtomicU64,
    files: AtomicU64,
}

impl Spill {
    pub fn new(dir: PathBuf) -> Self {
        let instance = rand::random();
        Self { dir, instance, current: Mutex::new(None), waiting: AtomicU64::new(0), files: AtomicU64::new(0) }
    }

    /// Appends one row (written through to the file before this returns).
    pub fn push(&self, row: &Row) -> io::Result<()> {
        let mut current = self.current.lock().expect("spill lock");
        if current.is_none() {
            fs::create_dir_all(&self.dir)?;
            let n = self.files.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{PREFIX}{}-{}-{n}.jsonl", std::process::id(), self.instance));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            *current = Some((path, BufWriter::new(file)));
        }
        let (_, file) = current.as_mut().expect("opened above");
        serde_json::to_writer(&mut *file, row)?;
        file.write_all(b"\n")?;
        file.flush()?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Rows waiting in this process's files.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The files to drain now: this process's (new rows then go to a new file) and any left by a
    /// process that is gone, claimed.
    pub fn take_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some((path, mut file)) = self.current.lock().expect("spill lock").take() {
            let _ = file.flush();
            files.push(path);
        }
        let Ok(entries) = fs::read_dir(&self.dir) else { return files };
        let mine = std::process::id();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(pid) = owner(&path) else { continue };
            if pid == mine || process_alive(pid) {
                continue;
            }
            // Claimed by renaming it as one of ours: another process that tries too finds it gone.
            let n = self.files.fetch_add(1, Ordering::Relaxed);
            let claimed = self.dir.join(format!("{PREFIX}{mine}-{}-{n}.jsonl", self.instance));
            if fs::rename(&path, &claimed).is_ok() {
                tracing::warn!(file = %path.display(), "claimed audit rows a stopped process left behind");
                files.push(claimed);
            }
        }
        files.sort();
        files.dedup();
        files
    }

    /// The rows of a spill file, in the order they were appended.
    pub fn read(path: &Path) -> io::Result<impl Iterator<Item = Row>> {
        let lines = BufReader::new(File::open(path)?).lines();
        Ok(lines.map_while(Result::ok).filter_map(|line| match serde_json::from_str::<Row>(&line) {
            Ok(row) => Some(row),
            Err(e) => {
                // A torn last line (the process died mid-write): the rest is kept.
                tracing::error!(error = %e, "an unreadable line in an audit spill file was skipped");
                None
            }
        }))
    }

    /// A drained file: gone, and its rows no longer waiting.
    pub fn drained(&self, path: &Path, rows: u64) {
        let _ = fs::remove_file(path);
        let _ = self.waiting.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| Some(w.saturating_sub(rows)));
    }
}

/// The pid in a spill file's name.
fn owner(path: &Path) -> Option<u32> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(".jsonl")?;
    rest.split('-').next()?.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::Outcome;

    fn row(n: i64) -> Row {
        Row {
            ts: n,
            tenant: Some("acme".into()),
            actor: Some("ops@acme.test".into()),
            action: "login".into(),
            outcome: Outcome::Ok,
            detail: Some(format!("row {n}")),
        }
    }

    #[test]
    fn rows_come_back_in_order_and_a_drained_file_goes() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Spill::new(dir.path().to_owned());
        for n in 0..5 {
            spill.push(&row(n)).unwrap();
        }
        assert_eq!(spill.waiting(), 5);
        let files = spill.take_files();
        assert_eq!(files.len(), 1);
        spill.push(&row(5)).unwrap(); // a new file: the one being drained is closed
        let read: Vec<i64> = Spill::read(&files[0]).unwrap().map(|r| r.ts).collect();
        assert_eq!(read, vec![0, 1, 2, 3, 4]);
        spill.drained(&files[0], 5);
        assert!(!files[0].exists());
        assert_eq!(spill.waiting(), 1);
    }

    #[test]
    fn a_file_a_gone_process_left_is_claimed_once_and_a_torn_line_skipped() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this pid (above the kernel's pid_max).
        let left = dir.path().join(format!("{PREFIX}4294967290-0.jsonl"));
        let line = serde_json::to_string(&row(7)).unwrap();
        fs::write(&left, format!("{line}\n{{\"ts\":8,\"ten")).unwrap();
        let spill = Spill::new(dir.path().to_owned());
        let files = spill.take_files();
        assert_eq!(files.len(), 1);
        assert!(!left.exists(), "renamed as this process's");
        let read: Vec<i64> = Spill::read(&files[0]).unwrap().map(|r| r.ts).collect();
        assert_eq!(read, vec![7]);
        let another = Spill::new(dir.path().to_owned());
        assert_eq!(another.take_files(), Vec::<PathBuf>::new(), "a live process's files are its own");
    }
}
