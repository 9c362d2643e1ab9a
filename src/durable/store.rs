//! Checkpoint files: atomic, checksummed, with the previous good one kept.
//!
//! Layout of a file: 8-byte magic `WXFLOWCP`, format version (u32 LE), payload length (u64 LE),
//! CRC-32 of the payload (u32 LE), then the payload: the [`Snapshot`] encoded with `postcard`.
//! A write goes to a temporary file, the latest file becomes the previous one, the temporary file
//! is renamed into place, then the file and the folder are fsynced; so at any moment of a crash at
//! least one complete, checked checkpoint exists, as in Vector's and Flink's stores.
//!
//! The fsyncs may run after the renames, off the pipeline's thread ([`Store::stage`], then
//! [`Staged::sync`]): a killed process's successor reads the new checkpoint from the page cache at
//! once, and after a power loss a latest file that did not reach the disk fails its checksum and
//! the previous one is used, which was synced before the next one was staged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Snapshot, FORMAT_VERSION};

const MAGIC: &[u8; 8] = b"WXFLOWCP";
const HEAD: usize = 8 + 4 + 8 + 4;
const LATEST: &str = "checkpoint.bin";
const PREVIOUS: &str = "checkpoint.prev.bin";
const TEMP: &str = "checkpoint.bin.tmp";

/// The checkpoint folder of one job.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A checkpoint read back, and why the latest file was not used if it was not.
#[derive(Debug)]
pub struct Loaded {
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Set when the latest checkpoint was unusable and the previous one was taken.
    pub warning: Option<String>,
}

/// A checkpoint in place as the latest one whose bytes may not be on disk yet.
#[derive(Debug)]
pub struct Staged {
    file: fs::File,
    dir: PathBuf,
    /// Size of the checkpoint file.
    pub bytes: u64,
}

impl Staged {
    /// Waits until the checkpoint and its name in the folder are on disk.
    pub fn sync(self) -> std::io::Result<()> {
        self.file.sync_all()?;
        fs::File::open(&self.dir)?.sync_all()
    }
}

/// Why no checkpoint could be read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Files exist but none is usable.
    #[error(
        "the checkpoint in {dir} cannot be used: {detail}; rerun with --fresh to discard it and start over"
    )]
    Corrupt {
        /// The folder.
        dir: PathBuf,
        /// What is wrong with each file.
        detail: String,
    },
}

/// Encodes a snapshot with its header and checksum, straight into the framed buffer (at 4 GiB of
/// input the payload is 1.6 MB; encoding it apart and copying it behind the header cost a copy
/// and as much memory again).
pub fn encode(s: &Snapshot) -> Vec<u8> {
    // Room for a small job's snapshot; a large one grows the buffer a few times.
    seal_with(MAGIC, 64 << 10, |out| postcard::to_extend(s, out).expect("snapshots always serialize"))
}

/// Decodes and checks a checkpoint file's bytes; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
    let payload = unseal(MAGIC, "wxflow checkpoint", bytes)?;
    postcard::from_bytes(payload).map_err(|e| format!("cannot decode: {e}"))
}

/// Frames a payload as every durable wxflow file is framed (magic, [`FORMAT_VERSION`], length,
/// CRC-32), so a damaged or foreign file is recognised before it is decoded. `fill` appends the
/// payload to the buffer it is given (and returns it), behind the header, which is completed
/// afterwards; `room` is the payload size expected. Checkpoints and range results (which carry
/// the same states) are encoded into it directly, not copied in.
pub fn seal_with(magic: &[u8; 8], room: usize, fill: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let mut head = Vec::with_capacity(HEAD + room);
    head.extend_from_slice(magic);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.resize(HEAD, 0); // length and CRC-32, filled in below
    let mut out = fill(head);
    let payload = out.len() - HEAD;
    let crc = crc32fast::hash(&out[HEAD..]);
    out[12..20].copy_from_slice(&(payload as u64).to_le_bytes());
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The payload of bytes framed by [`seal_with`] with `magic`, checked; the error says what is wrong
/// (`what` names the kind of file).
pub fn unseal<'a>(magic: &[u8; 8], what: &str, bytes: &'a [u8]) -> Result<&'a [u8], String> {
    if bytes.len() < HEAD {
        return Err(format!("truncated: {} bytes, shorter than the {HEAD}-byte header", bytes.len()));
    }
    if &bytes[..8] != magic {
        return Err(format!("not a {what} (bad magic bytes)"));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!("format version {version}, but this wxflow reads version {FORMAT_VERSION}"));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEAD..];
    if payload.len() as u64 != len {
        return Err(format!("truncated: payload of {} bytes, header says {len}", payload.len()));
    }
    if crc32fast::hash(payload) != crc {
        return Err("checksum mismatch: the file is damaged".into());
    }
    Ok(payload)
}

impl Store {
    /// The store in `dir` (created on the first save).
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// The folder, for messages.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Atomically replaces the latest checkpoint, keeping the previous one, and waits until it is
    /// on disk; returns bytes written.
    pub fn save(&self, s: &Snapshot) -> std::io::Result<u64> {
        let staged = self.stage(s)?;
        let bytes = staged.bytes;
        staged.sync()?;
        Ok(bytes)
    }

    /// Atomically replaces the latest checkpoint, keeping the previous one, without waiting for
    /// the disk (two fsyncs, 1-3 ms each, that would stall the pipeline's thread): a rerun after
    /// a kill finds it at once. [`Staged::sync`] makes it survive a power loss too, and must have
    /// returned before the next checkpoint is staged, so that the previous one is always on disk.
    pub fn stage(&self, s: &Snapshot) -> std::io::Result<Staged> {
        fs::create_dir_all(&self.dir)?;
        let bytes = encode(s);
        let tmp = self.dir.join(TEMP);
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        let latest = self.dir.join(LATEST);
        if latest.exists() {
            fs::rename(&latest, self.dir.join(PREVIOUS))?;
        }
        fs::rename(&tmp, &latest)?;
        Ok(Staged { file, dir: self.dir.clone(), bytes: bytes.len() as u64 })
    }

    /// The latest usable checkpoint: `None` if there is none, the previous one (with a warning) if
    /// the latest is missing or damaged, an error if files exist but none is usable.
    pub fn load(&self) -> Result<Option<Loaded>, StoreError> {
        let (latest, previous) = (self.dir.join(LATEST), self.dir.join(PREVIOUS));
        if !latest.exists() && !previous.exists() {
            return Ok(None);
        }
        let first = read(&latest);
        let first_err = match first {
            Ok(snapshot) => return Ok(Some(Loaded { snapshot, warning: None })),
            Err(e) => e,
        };
        match read(&previous) {
            Ok(snapshot) => Ok(Some(Loaded {
                snapshot,
                warning: Some(format!(
                    "the latest checkpoint {} is unusable ({first_err}); resuming from the previous one, {}",
                    latest.display(),
                    previous.display()
                )),
            })),
            Err(second) => Err(StoreError::Corrupt {
                dir: self.dir.clone(),
                detail: format!("{LATEST}: {first_err}; {PREVIOUS}: {second}"),
            }),
        }
    }

    /// Removes the checkpoint files (and the folder if it is then empty); missing files are fine.
    pub fn clear(&self) -> std::io::Result<()> {
        for name in [LATEST, PREVIOUS, TEMP] {
            match fs::remove_file(self.dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let _ = fs::remove_dir(&self.dir); // only succeeds when empty
        Ok(())
    }
}

fn read(path: &Path) -> Result<Snapshot, String> {
    match fs::read(path) {
        Ok(bytes) => decode(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("missing".into()),
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Position, SourceIdentity};
    use super::*;
    use crate::date::{Day, Month};
    use crate::parse::Reading;
    use crate::tasks::forecast::{Forecast, ForecastMethod, ForecastParams};
    use crate::tasks::hottest::Hottest;
    use crate::tasks::window::{Window, WindowParams};
    use crate::tasks::Analysis;
    use crate::tenths::Tenths;

    fn snapshot(byte: u64) -> Snapshot {
        let month = Month { year: 2006, month: 6 };
        let readings: Vec<Reading> = (0..300)
            .map(|i| Reading {
                line: i + 2,
                day: Day::from_ymd(2006, 6, 1).unwrap().plus((i / 144) as i32),
                minute: (i % 144 * 10) as u16,
                outside: Tenths(100 + (i % 37) as i32),
                hi: Tenths(223),
                low: Tenths(101),
            })
            .collect();
        let mut hottest = Hottest::default();
        let mut window =
            Window::new(WindowParams::new(month, 9, Tenths(223), Tenths(10), Tenths(103), Tenths(2)));
        let mut forecast =
            Forecast::new(ForecastParams::new(month, 9, Tenths(250), ForecastMethod::Offset, 2));
        hottest.absorb(&readings);
        window.absorb(&readings);
        forecast.absorb(&readings);
        Snapshot {
            version: FORMAT_VERSION,
            source: SourceIdentity {
                location: "/data/x.csv".into(),
                size: Some(1000),
                etag: None,
                last_modified: None,
                mtime_ns: Some(7),
            },
            settings: [("job.reference_month".to_string(), "2006-06".to_string())].into(),
            position: Position { byte, chunk: 3, line: 302 },
            rows: Default::default(),
            rejects_len: 17,
            header: b"Date,Time".to_vec(),
            leading_blank: 0,
            runs: 1,
            checkpoints: 1,
            restarts: [("window".to_string(), 2)].into(),
            retries: 3,
            hottest,
            window,
            forecast,
        }
    }

    #[test]
    fn round_trip_keeps_every_state() {
        let s = snapshot(500);
        let back = decode(&encode(&s)).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.forecast.report(), s.forecast.report());
        assert_eq!(back.window.report().len(), 300);
    }

    #[test]
    fn keeps_the_previous_and_falls_back_when_the_latest_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("cp"));
        assert!(store.load().unwrap().is_none());
        store.save(&snapshot(1)).unwrap();
        store.save(&snapshot(2)).unwrap();
        assert_eq!(store.load().unwrap().unwrap().snapshot.position.byte, 2);
        let latest = dir.path().join("cp").join(LATEST);
        let mut bytes = fs::read(&latest).unwrap();
        let at = bytes.len() - 3;
        bytes[at] ^= 0x55;
        fs::write(&latest, &bytes).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.snapshot.position.byte, 1);
        assert!(loaded.warning.unwrap().contains("checksum mismatch"));
        fs::write(&latest, &bytes[..10]).unwrap();
        assert!(store.load().unwrap().unwrap().warning.unwrap().contains("truncated"));
        fs::write(dir.path().join("cp").join(PREVIOUS), b"garbage").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("--fresh") && e.contains(PREVIOUS), "{e}");
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none() && !dir.path().join("cp").exists());
    }

    #[test]
    fn a_staged_checkpoint_is_in_place_before_its_sync_and_the_previous_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("cp"));
        store.save(&snapshot(1)).unwrap();
        let staged = store.stage(&snapshot(2)).unwrap();
        // What a rerun after a kill at this moment reads: the new checkpoint, the old kept.
        assert_eq!(store.load().unwrap().unwrap().snapshot.position.byte, 2);
        assert_eq!(read(&dir.path().join("cp").join(PREVIOUS)).unwrap().position.byte, 1);
        assert!(!dir.path().join("cp").join(TEMP).exists());
        assert_eq!(staged.bytes, fs::metadata(dir.path().join("cp").join(LATEST)).unwrap().len());
        staged.sync().unwrap();
        assert_eq!(store.load().unwrap().unwrap().snapshot.position.byte, 2);
    }

    #[test]
    fn another_version_is_refused_by_number() {
        let mut bytes = encode(&snapshot(1));
        bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
        assert!(decode(&bytes).unwrap_err().contains("format version 9"));
    }
}
