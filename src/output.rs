//! Writing results: refuse to clobber, write atomically.
//!
//! A report file is either complete or absent: each is written to a temporary name in the same
//! directory and renamed into place, and `summary.json` is written last, so its presence means the
//! whole set is complete.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::OutputError;
use crate::parse::Reject;

/// Files a job writes; any of them present means the directory holds earlier results.
pub const RESULT_FILES: [&str; 5] = ["summary.json", "task1.txt", "task2.txt", "task3.txt", "rejects.csv"];

/// A prepared output directory.
#[derive(Debug, Clone)]
pub struct OutputDir {
    dir: PathBuf,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Write { path: path.to_path_buf(), source }
}

impl OutputDir {
    /// Creates `dir` if needed and refuses if it already holds results, unless `force`.
    pub fn prepare(dir: &Path, force: bool) -> Result<OutputDir, OutputError> {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
        if !force {
            if let Some(file) = RESULT_FILES.iter().find(|f| dir.join(f).exists()) {
                return Err(OutputError::Exists { dir: dir.to_path_buf(), file: file.to_string() });
            }
        }
        Ok(OutputDir { dir: dir.to_path_buf() })
    }

    /// Path of a result file.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}.partial"))
    }

    /// Writes `contents` to `name` atomically (temporary file, fsync, rename).
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), OutputError> {
        self.write_with(name, |w| w.write_all(contents))
    }

    /// Streams `name` through `fill` into a temporary file, then fsyncs and renames it into place.
    pub fn write_with(
        &self,
        name: &str,
        fill: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
    ) -> Result<(), OutputError> {
        let tmp = self.temp_path(name);
        let file = fs::File::create(&tmp).map_err(write_err(&tmp))?;
        let mut w = BufWriter::new(file);
        fill(&mut w).map_err(write_err(&tmp))?;
        let file =
            w.into_inner().map_err(|e| OutputError::Write { path: tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(write_err(&tmp))?;
        self.commit(name)
    }

    fn commit(&self, name: &str) -> Result<(), OutputError> {
        let (tmp, path) = (self.temp_path(name), self.path(name));
        fs::rename(&tmp, &path).map_err(write_err(&path))
    }

    /// A streaming writer for `rejects.csv`, committed by [`RejectsWriter::finish`].
    pub fn rejects(&self) -> Result<RejectsWriter, OutputError> {
        let tmp = self.temp_path("rejects.csv");
        let file = fs::File::create(&tmp).map_err(write_err(&tmp))?;
        let mut csv = csv::Writer::from_writer(BufWriter::new(file));
        csv.write_record(["line", "reason", "raw"]).map_err(|e| csv_err(&tmp, e))?;
        Ok(RejectsWriter { csv, out: self.clone(), tmp, synced: None })
    }

    /// Reopens the partial `rejects.csv` of an interrupted run, cut back to `len` bytes (what the
    /// checkpoint covers), so that no reject line is lost or written twice.
    pub fn rejects_resume(&self, len: u64) -> Result<RejectsWriter, OutputError> {
        let tmp = self.temp_path("rejects.csv");
        let done = self.path("rejects.csv");
        if !tmp.exists() && done.exists() {
            // Killed while committing the results: the partial file was already renamed.
            fs::rename(&done, &tmp).map_err(write_err(&tmp))?;
        }
        let file = fs::OpenOptions::new().write(true).open(&tmp).map_err(write_err(&tmp))?;
        let have = file.metadata().map_err(write_err(&tmp))?.len();
        if have < len {
            return Err(OutputError::Write {
                path: tmp,
                source: std::io::Error::other(format!(
                    "it holds {have} bytes but the checkpoint recorded {len}; the output directory was changed \
                     behind wxflow's back: rerun with --fresh"
                )),
            });
        }
        file.set_len(len).map_err(write_err(&tmp))?;
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len)).map_err(write_err(&tmp))?;
        let csv = csv::WriterBuilder::new().has_headers(false).from_writer(BufWriter::new(file));
        Ok(RejectsWriter { csv, out: self.clone(), tmp, synced: None })
    }
}

fn csv_err(path: &Path, e: csv::Error) -> OutputError {
    OutputError::Write { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) }
}

/// Appends rejected rows, in line order, to `rejects.csv` as they are confirmed.
pub struct RejectsWriter {
    csv: csv::Writer<BufWriter<fs::File>>,
    out: OutputDir,
    tmp: PathBuf,
    /// The length last fsynced, if any.
    synced: Option<u64>,
}

impl RejectsWriter {
    /// Appends one reject.
    pub fn write(&mut self, r: &Reject) -> Result<(), OutputError> {
        let line = r.line.to_string();
        self.csv.write_record([line.as_str(), &r.reason, &r.raw]).map_err(|e| csv_err(&self.tmp, e))
    }

    /// Flushes what was written so far and returns the file's length: where the rejects of the
    /// chunks completed so far end, which a checkpoint records.
    pub fn written_len(&mut self) -> Result<u64, OutputError> {
        self.csv.flush().map_err(write_err(&self.tmp))?;
        Ok(self.csv.get_ref().get_ref().metadata().map_err(write_err(&self.tmp))?.len())
    }

    /// Flushes and fsyncs what was written so far, before a checkpoint that counts it is written;
    /// nothing to do when no reject came since the last time (the usual case: an fsync of an
    /// unchanged file still costs 1-2 ms of the actor thread).
    pub fn sync(&mut self) -> Result<(), OutputError> {
        let len = self.written_len()?;
        if self.synced != Some(len) {
            self.csv.get_ref().get_ref().sync_data().map_err(write_err(&self.tmp))?;
            self.synced = Some(len);
        }
        Ok(())
    }

    /// Flushes and renames the file into place.
    pub fn finish(self) -> Result<PathBuf, OutputError> {
        let file = self
            .csv
            .into_inner()
            .map_err(|e| OutputError::Write {
                path: self.tmp.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
            .into_inner()
            .map_err(|e| OutputError::Write { path: self.tmp.clone(), source: e.into_error() })?;
        file.sync_all().map_err(write_err(&self.tmp))?;
        self.out.commit("rejects.csv")?;
        Ok(self.out.path("rejects.csv"))
    }
}
