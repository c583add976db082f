//! Building the span exporter an `exporter_url` names: OTLP over gRPC (tonic), over HTTP or
//! HTTPS (protobuf bodies, reqwest with rustls), or the rotating file exporter.

use std::time::Duration;

use anyhow::{Context as _, bail};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use crate::config::TracingService;
use crate::telemetry::file::FileExporter;
use crate::telemetry::http_client::{self, Cause};
use crate::telemetry::tls;
use crate::telemetry::url::ExporterUrl;

/// Longest one export may take; a slower collector loses that batch (counted as dropped).
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// One of the exporters.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "one per process, built once")]
pub(crate) enum Exporter {
    Otlp(opentelemetry_otlp::SpanExporter),
    File(FileExporter),
}

/// Builds the exporter for `config`. Nothing here connects: a collector that is down fails
/// exports later (counted), never start-up. gRPC needs a tokio runtime entered by the caller.
///
/// # Errors
/// A bad URL or TLS file, naming the key; `grpc://` in a build without tokio.
/// Failures of the HTTP client are recorded in `cause`.
pub(crate) fn build(config: &TracingService, url: &ExporterUrl, cause: &Cause) -> anyhow::Result<Exporter> {
    let tls_files = !config.ca_certs.is_empty() || !config.https_keypairs.is_empty();
    if tls_files && !url.is_tls() {
        bail!("tracing_service.ca_certs, tracing_service.https_keypairs: only used with an https:// exporter_url");
    }
    match url {
        ExporterUrl::Grpc(endpoint) => {
            #[cfg(not(feature = "tokio"))]
            bail!("tracing_service.exporter_url: gRPC export needs a diagd built with the tokio feature ({endpoint})");
            #[cfg(feature = "tokio")]
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .map(Exporter::Otlp)
                .with_context(|| {
                    format!("tracing_service.exporter_url: cannot set up the gRPC exporter for {endpoint}")
                })
        }
        ExporterUrl::Http { endpoint, tls } => {
            tls::install_provider();
            let mut client = reqwest::blocking::Client::builder()
                .timeout(EXPORT_TIMEOUT)
                .connect_timeout(EXPORT_TIMEOUT)
                .user_agent(concat!("diagd/", env!("CARGO_PKG_VERSION")));
            if *tls {
                client = client.tls_backend_preconfigured(tls::client_config(
                    "tracing_service",
                    &config.ca_certs,
                    &config.https_keypairs,
                )?);
            }
            let inner = client.build().context("tracing_service: cannot set up the HTTP client")?;
            let client = http_client::Client { inner, cause: cause.clone() };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_http_client(client)
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .map(Exporter::Otlp)
                .with_context(|| {
                    format!("tracing_service.exporter_url: cannot set up the HTTP exporter for {endpoint}")
                })
        }
        ExporterUrl::File { dir, limit } => FileExporter::new(dir, *limit).map(Exporter::File).with_context(|| {
            format!("tracing_service.exporter_url: cannot create the trace directory {}", dir.display())
        }),
    }
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self {
            Self::Otlp(e) => e.export(batch).await,
            Self::File(e) => e.export(batch).await,
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Self::Otlp(e) => e.force_flush(),
            Self::File(e) => e.force_flush(),
        }
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        match self {
            Self::Otlp(e) => e.set_resource(resource),
            Self::File(e) => e.set_resource(resource),
        }
    }
}
