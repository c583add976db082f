//! [`Chunks`]: a response body as a sequence of wire chunks, gzipped (with flate2) when the
//! response says so. The std frontends stream gzipped bodies through it (plain ones are
//! encoded straight into hyper's buffers by `server::DiagBody`), so none of them repeats the
//! compression loop.
//!
//! Memory is bounded by the chunk size (plus the compressor's fixed state), not by the body:
//! each step fills one plain chunk from [`Body::fill`] and compresses just that.

use std::io::Write as _;
use std::vec;
use std::vec::Vec;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::error::EncodeError;
use crate::http::{Body, Response};

/// A body streamed chunk by chunk, gzipped on request.
///
/// # Examples
/// ```
/// use diag_core::gzip::Chunks;
/// use diag_core::http::{Request, Service};
/// use diag_core::StateTable;
/// static STATES: StateTable<4> = StateTable::new();
/// let service = Service::new(&STATES, &[], 1);
/// let request = Request { accept_encoding: Some("gzip"), ..Request::get("/metrics") };
/// let mut chunks = Chunks::from_response(service.respond(&request), 4096);
/// let mut wire = Vec::new();
/// while let Some(chunk) = chunks.next_chunk().unwrap() {
///     wire.extend_from_slice(chunk);
/// }
/// assert_eq!(&wire[..2], &[0x1f, 0x8b], "gzip magic");
/// ```
pub struct Chunks<'a> {
    body: Body<'a>,
    plain: Vec<u8>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    done: bool,
}

impl<'a> Chunks<'a> {
    /// Streams `body` in plain chunks of at most `chunk_bytes`, gzipped when `gzip`.
    pub fn new(body: Body<'a>, chunk_bytes: usize, gzip: bool) -> Self {
        let gzip = gzip.then(|| GzEncoder::new(Vec::with_capacity(chunk_bytes / 2), Compression::default()));
        Self { body, plain: vec![0; chunk_bytes.max(1)], gzip, done: false }
    }

    /// Streams a response's body, gzipped exactly when [`Response::gzip`] says so (the
    /// response's headers carry `Content-Encoding: gzip` then). Read the headers first.
    pub fn from_response(response: Response<'a>, chunk_bytes: usize) -> Self {
        let gzip = response.gzip();
        Self::new(response.into_body(), chunk_bytes, gzip)
    }

    /// Whether the chunks are gzipped.
    pub fn is_gzip(&self) -> bool {
        self.gzip.is_some()
    }

    /// The next chunk to send, or `None` when the body is complete. A gzipped stream ends
    /// with the gzip trailer, so the concatenated chunks are one gzip member.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when one series does not fit in a chunk;
    /// [`EncodeError::Write`] if the compressor fails. The body is then incomplete: the
    /// frontend must abort the response (never end it as if it were whole).
    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, EncodeError> {
        if self.done {
            return Ok(None);
        }
        let Some(gzip) = &mut self.gzip else {
            let n = self.body.fill(&mut self.plain)?;
            self.done = n == 0;
            return Ok((n > 0).then(|| &self.plain[..n]));
        };
        gzip.get_mut().clear();
        loop {
            let n = self.body.fill(&mut self.plain)?;
            if n == 0 {
                self.done = true;
                gzip.try_finish().map_err(|_| EncodeError::Write(embedded_io::ErrorKind::Other))?;
                break;
            }
            gzip.write_all(&self.plain[..n]).map_err(|_| EncodeError::Write(embedded_io::ErrorKind::Other))?;
            // The compressor keeps small inputs back; feed it until it has output.
            if !gzip.get_ref().is_empty() {
                break;
            }
        }
        let out = gzip.get_ref();
        Ok((!out.is_empty()).then_some(out.as_slice()))
    }
}

impl core::fmt::Debug for Chunks<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Chunks")
            .field("body", &self.body)
            .field("chunk_bytes", &self.plain.len())
            .field("gzip", &self.gzip.is_some())
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::io::Read as _;
    use std::string::String;

    use super::*;
    use crate::http::{Request, Service};
    use crate::{Collect, Counter, Family, Registry, StateTable};

    static STATES: StateTable<2> = StateTable::new();
    static HITS: Family<Counter, (&str,), 512> = Family::new(["path"], ());
    static REGISTRY: Registry<'static, 4> = Registry::new();

    fn service() -> Service<'static> {
        static SETUP: std::sync::Once = std::sync::Once::new();
        SETUP.call_once(|| {
            REGISTRY.register("hits_total", "Hits by path.", &HITS).unwrap();
            for i in 0..500 {
                let path = std::format!("/some/longish/path/number/{i}");
                HITS.get_or_create((&path,)).unwrap().inc();
            }
        });
        static SOURCES: [&dyn Collect; 1] = [&REGISTRY];
        Service::new(&STATES, &SOURCES, 7)
    }

    fn collect(mut chunks: Chunks<'_>, sizes: &mut Vec<usize>) -> Vec<u8> {
        let mut wire = Vec::new();
        while let Some(chunk) = chunks.next_chunk().unwrap() {
            assert!(!chunk.is_empty(), "no empty chunks");
            sizes.push(chunk.len());
            wire.extend_from_slice(chunk);
        }
        assert_eq!(chunks.next_chunk().unwrap(), None, "stays done");
        wire
    }

    #[test]
    fn gzip_stream_decodes_to_the_plain_stream_and_chunks_are_bounded() {
        let service = service();
        let mut plain_sizes = Vec::new();
        let plain =
            collect(Chunks::new(service.respond(&Request::get("/metrics")).into_body(), 1024, false), &mut plain_sizes);
        assert!(plain_sizes.len() > 10, "many chunks: {}", plain_sizes.len());
        assert!(plain_sizes.iter().all(|&n| n <= 1024));

        let request = Request { accept_encoding: Some("gzip"), ..Request::get("/metrics") };
        let response = service.respond(&request);
        assert!(response.gzip());
        let chunks = Chunks::from_response(response, 1024);
        assert!(chunks.is_gzip());
        let mut gz_sizes = Vec::new();
        let gz = collect(chunks, &mut gz_sizes);
        assert!(gz.len() < plain.len() / 3, "compresses: {} of {}", gz.len(), plain.len());
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_string(&mut decoded).unwrap();
        // The scrapes differ only in the scrape counter (`promhttp_*{code="200"}` is 1, then 2).
        let without_promhttp = |text: &str| -> String {
            text.lines().filter(|l| !l.starts_with("promhttp_")).flat_map(|l| [l, "\n"]).collect()
        };
        let plain = String::from_utf8(plain).unwrap();
        assert!(without_promhttp(&decoded) == without_promhttp(&plain), "decoded gzip differs from the plain body");
        assert_eq!(decoded.len(), plain.len());
        assert!(decoded.contains("hits_total{path=\"/some/longish/path/number/499\"} 1\n"));
    }

    #[test]
    fn a_series_larger_than_the_chunk_is_an_error_not_a_truncation() {
        let service = service();
        let mut chunks = Chunks::new(service.respond(&Request::get("/metrics")).into_body(), 16, true);
        assert_eq!(chunks.next_chunk(), Err(EncodeError::BufferTooSmall));
    }

    #[test]
    fn fixed_bodies_stream_too() {
        let service = service();
        let mut sizes = Vec::new();
        let body = collect(Chunks::new(service.respond(&Request::get("/healthz")).into_body(), 4, false), &mut sizes);
        assert_eq!(body, br#"{"status":"ok"}"#);
        assert_eq!(sizes, [4, 4, 4, 3]);
    }
}
