//! `tracing_service.exporter_url`: where spans go, parsed and checked at config load.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// The file exporter's default rotation limit: 100 MiB.
pub(crate) const DEFAULT_FILE_LIMIT: u64 = 100 * 1024 * 1024;

/// A parsed `exporter_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExporterUrl {
    /// OTLP over gRPC (`grpc://host:port` or a bare `host:port`); the endpoint is `http://host:port`.
    Grpc(String),
    /// OTLP over HTTP or HTTPS (`http://` / `https://`); the endpoint is the traces URL.
    Http {
        /// The traces URL.
        endpoint: String,
        /// Whether it is `https://`.
        tls: bool,
    },
    /// Rotating files of OTLP JSON lines in `dir`, each file at most about `limit` bytes.
    File {
        /// The directory the files go in.
        dir: PathBuf,
        /// The size after which a file is rotated.
        limit: u64,
    },
}

impl ExporterUrl {
    /// Parses `url` by the rules in docs/tracing.md#exporter-url.
    ///
    /// # Errors
    /// An unknown scheme, a missing host or port, a relative or empty file path, a bad `?limit=`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let Some((scheme, rest)) = url.split_once("://") else {
            // A bare host:port means gRPC.
            return Self::grpc(url, url);
        };
        match scheme {
            "grpc" => Self::grpc(url, rest),
            "http" | "https" => {
                let uri: hyper::Uri = url.parse().with_context(|| format!("invalid URL {url:?}"))?;
                if uri.host().is_none_or(str::is_empty) {
                    bail!("no host in {url:?}");
                }
                if uri.query().is_some() {
                    bail!("{url:?}: a query is only allowed on file:// URLs");
                }
                // With no path the traces go to the OTLP/HTTP default path.
                let endpoint = match uri.path() {
                    "" | "/" => format!("{}://{}/v1/traces", scheme, uri.authority().map_or("", |a| a.as_str())),
                    _ => url.to_owned(),
                };
                Ok(Self::Http { endpoint, tls: scheme == "https" })
            }
            "file" => {
                let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                if !path.starts_with('/') {
                    bail!("{url:?}: expected file:///absolute/dir");
                }
                let mut limit = DEFAULT_FILE_LIMIT;
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    match pair.split_once('=') {
                        Some(("limit", v)) => {
                            limit = v.parse().ok().filter(|&l| l > 0).with_context(|| {
                                format!("{url:?}: limit must be a positive number of bytes, got {v:?}")
                            })?;
                        }
                        _ => bail!("{url:?}: unknown query parameter {pair:?} (only limit=BYTES)"),
                    }
                }
                Ok(Self::File { dir: PathBuf::from(path), limit })
            }
            other => bail!("{url:?}: unsupported scheme {other:?} (expected grpc, http, https or file)"),
        }
    }

    fn grpc(url: &str, host_port: &str) -> anyhow::Result<Self> {
        let host_port = host_port.strip_suffix('/').unwrap_or(host_port);
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok() => {
                Ok(Self::Grpc(format!("http://{host_port}")))
            }
            _ => bail!("{url:?}: expected grpc://host:port, host:port, http(s)://host[:port][/path] or file:///dir"),
        }
    }

    /// Whether the exporter speaks TLS (the only case `ca_certs` and `https_keypairs` apply to).
    pub fn is_tls(&self) -> bool {
        matches!(self, Self::Http { tls: true, .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let g = |s: &str| ExporterUrl::parse(s).unwrap();
        assert_eq!(g("grpc://collector:4317"), ExporterUrl::Grpc("http://collector:4317".into()));
        assert_eq!(g("collector:4317"), ExporterUrl::Grpc("http://collector:4317".into()));
        assert_eq!(g("http://c:4318"), ExporterUrl::Http { endpoint: "http://c:4318/v1/traces".into(), tls: false });
        assert_eq!(g("https://c/x/traces"), ExporterUrl::Http { endpoint: "https://c/x/traces".into(), tls: true });
        assert_eq!(g("file:///var/t"), ExporterUrl::File { dir: "/var/t".into(), limit: DEFAULT_FILE_LIMIT });
        assert_eq!(g("file:///var/t?limit=100"), ExporterUrl::File { dir: "/var/t".into(), limit: 100 });
        for bad in
            ["ftp://x:1", "collector", "grpc://:1", "file://rel/dir", "file:///d?limit=0", "file:///d?x=1", "http://"]
        {
            assert!(ExporterUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
