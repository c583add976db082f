//! The `diagd debug profile` output: a gzip-compressed tar with one `<name>.pprof` file per
//! profile, each mode 0600.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

/// Writes `files` (name, contents) as a `.tar.gz` to `out`.
///
/// # Errors
/// When writing to `out` fails.
pub fn write(out: impl Write, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    let mtime = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
    for (name, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(contents.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        tar.append_data(&mut header, name, contents.as_slice())?;
    }
    tar.into_inner()?.finish()?.flush()
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn entries_round_trip_with_mode_0600() {
        let mut out = Vec::new();
        super::write(&mut out, &[("profile.pprof".into(), b"cpu".to_vec()), ("heap.pprof".into(), vec![7; 70_000])])
            .unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(out.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            assert_eq!(entry.header().mode().unwrap(), 0o600);
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), data.len()));
        }
        assert_eq!(seen, [("profile.pprof".to_owned(), 3), ("heap.pprof".to_owned(), 70_000)]);
    }
}
