//! The `file://DIR` exporter: each line the OTLP JSON of one `ResourceSpans`, in files
//! `<unixnano>-<random>.trace` (0600) in DIR (created 0700). A file is rotated before the
//! line that would take it to the limit (`written + len(line) >= limit && written > 0`), so a
//! line is never split across files and a line longer than the limit gets a file of its own.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Writes spans to rotating files.
#[derive(Debug)]
pub(crate) struct FileExporter {
    files: Mutex<Rotating>,
    resource: ResourceAttributesWithSchema,
}

/// The open file and how much was written to it.
#[derive(Debug)]
struct Rotating {
    dir: PathBuf,
    limit: u64,
    file: Option<File>,
    written: u64,
}

impl FileExporter {
    /// Creates `dir` (0700) if missing; files are opened on the first span.
    ///
    /// # Errors
    /// When `dir` cannot be created.
    pub(crate) fn new(dir: &Path, limit: u64) -> std::io::Result<Self> {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        Ok(Self {
            files: Mutex::new(Rotating { dir: dir.to_owned(), limit, file: None, written: 0 }),
            resource: ResourceAttributesWithSchema::default(),
        })
    }

    /// The lines for `batch`: one JSON `ResourceSpans` each, newline-terminated.
    fn lines(&self, batch: Vec<SpanData>) -> Result<Vec<Vec<u8>>, serde_json::Error> {
        group_spans_by_resource_and_scope(batch, &self.resource)
            .iter()
            .map(|rs| {
                let mut line = serde_json::to_vec(rs)?;
                line.push(b'\n');
                Ok(line)
            })
            .collect()
    }
}

impl Rotating {
    /// Appends `line` whole, to a new file if the rule says so.
    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if self.file.is_none() || (self.written.saturating_add(len) >= self.limit && self.written > 0) {
            self.file = Some(new_file(&self.dir)?);
            self.written = 0;
        }
        let Some(file) = self.file.as_mut() else { unreachable!("opened above") };
        if let Err(e) = file.write_all(line) {
            // Part of the line may be in the file: start the next line in a new file.
            self.file = None;
            return Err(e);
        }
        self.written += len;
        Ok(())
    }
}

/// Creates `<unixnano>-<random>.trace` in `dir`, mode 0600.
fn new_file(dir: &Path) -> std::io::Result<File> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let name = format!("{nanos}-{:016x}.trace", rand::random::<u64>());
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(dir.join(name))
}

impl SpanExporter for FileExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let lines =
            self.lines(batch).map_err(|e| OTelSdkError::InternalFailure(format!("cannot encode spans: {e}")))?;
        let mut files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for line in &lines {
            files.write_line(line).map_err(|e| {
                OTelSdkError::InternalFailure(format!("cannot write spans to {}: {e}", files.dir.display()))
            })?;
        }
        Ok(())
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut files = self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match files.file.as_mut().map(File::flush) {
            Some(Err(e)) => Err(OTelSdkError::InternalFailure(e.to_string())),
            _ => Ok(()),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_before_the_limit_and_never_splits_a_line() {
        let dir = std::env::temp_dir().join(format!("diagd-file-exporter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exporter = FileExporter::new(&dir, 10).unwrap();
        let mut files = exporter.files.lock().unwrap();
        for line in [&b"abcd\n"[..], b"efg\n", b"h\n", b"this line is longer than the limit\n", b"i\n"] {
            files.write_line(line).unwrap();
        }
        drop(files);
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        names.sort();
        let contents: Vec<String> = names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
        // 5+4 = 9 < 10 stays; 9+2 >= 10 rotates; the long line rotates; "i" follows it in a new file.
        assert_eq!(contents.len(), 4, "{contents:?}");
        assert_eq!(contents.concat(), "abcd\nefg\nh\nthis line is longer than the limit\ni\n");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&names[0]).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(names[0].extension().is_some_and(|e| e == "trace"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
