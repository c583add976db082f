//! In-test OpenTelemetry collectors for the tracing tests: OTLP over HTTP (protobuf bodies),
//! over HTTPS (rustls, optionally requiring a client certificate) and over gRPC (tonic), each
//! on its own tokio runtime, keeping every `ResourceSpans` it receives. [`Collector::kill`]
//! stops one mid-run, as a crashed collector would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::wait_for;

type Received = Arc<Mutex<Vec<ResourceSpans>>>;

/// A running collector.
#[derive(Debug)]
pub struct Collector {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Received,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Collector {
    fn start<F>(serve: impl FnOnce(TcpListener, Received) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind the collector");
        let addr = listener.local_addr().expect("collector address");
        let received = Received::default();
        runtime.spawn(serve(listener, Arc::clone(&received)));
        Self { addr, received, runtime: Some(runtime) }
    }

    /// OTLP/HTTP on `http://addr/v1/traces`.
    pub fn http() -> Self {
        Self::start(|listener, received| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                tokio::spawn(serve_http(TokioIo::new(stream), Arc::clone(&received)));
            }
        })
    }

    /// OTLP/HTTPS on `https://addr/v1/traces` with `tls` (build it with [`tls_server`]).
    pub fn https(tls: tokio_rustls::rustls::ServerConfig) -> Self {
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        Self::start(|listener, received| async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (acceptor, received) = (acceptor.clone(), Arc::clone(&received));
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve_http(TokioIo::new(tls), received).await;
                    }
                });
            }
        })
    }

    /// OTLP/gRPC on `addr` (tonic's generated service over hyper's HTTP/2).
    pub fn grpc() -> Self {
        Self::start(|listener, received| async move {
            let service = TraceServiceServer::new(Grpc(received));
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .http2_only()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    }

    /// Every span received so far, with the resource it came with.
    pub fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let received = self.received.lock().unwrap();
        let mut out = Vec::new();
        for rs in received.iter() {
            let resource = rs.resource.as_ref().map(|r| r.attributes.clone()).unwrap_or_default();
            for ss in &rs.scope_spans {
                out.extend(ss.spans.iter().map(|s| (resource.clone(), s.clone())));
            }
        }
        out
    }

    /// Waits up to 30 s for a span matching `want`.
    ///
    /// # Panics
    /// When none arrives, listing what did.
    pub fn wait_for_span(&self, what: &str, want: impl Fn(&Span) -> bool) -> (Vec<KeyValue>, Span) {
        wait_for(what, Duration::from_secs(30), || {
            let spans = self.spans();
            spans.iter().find(|(_, s)| want(s)).cloned().ok_or_else(|| {
                let names: Vec<_> = spans.iter().map(|(_, s)| (s.name.clone(), hex(&s.trace_id))).collect();
                format!("spans received: {names:?}")
            })
        })
    }

    /// Stops the collector at once: its listener and connections close.
    pub fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lower-case hex of an id.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The string or integer value of attribute `key`, as text.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref()).map(|v| match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

async fn serve_http<IO>(io: IO, received: Received)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let received = Arc::clone(&received);
        async move {
            let path_ok = request.uri().path() == "/v1/traces";
            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let status = match ExportTraceServiceRequest::decode(body) {
                Ok(export) if path_ok => {
                    received.lock().unwrap().extend(export.resource_spans);
                    200
                }
                _ => 400,
            };
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            hyper::Response::builder()
                .status(status)
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::from(reply)))
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).serve_connection(io, service).await;
}

struct Grpc(Received);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().extend(request.into_inner().resource_spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A test PKI made with rcgen: a CA, a server certificate for `localhost` and 127.0.0.1, and a
/// client certificate, all signed by the CA, as PEM text.
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate.
    pub ca_pem: String,
    /// The server certificate and key.
    pub server: (String, String),
    /// The client certificate and key.
    pub client: (String, String),
}

impl Pki {
    /// A fresh PKI.
    ///
    /// # Panics
    /// When rcgen fails (it does not for these parameters).
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "diag test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        Self {
            ca_pem: ca_cert.pem(),
            server: leaf(vec!["localhost".into(), "127.0.0.1".into()]),
            client: leaf(vec!["diagd-client".into()]),
        }
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// A rustls server configuration with `pki`'s server certificate; when `client_ca` is given,
/// clients must present a certificate it signed.
///
/// # Panics
/// On a malformed PEM.
pub fn tls_server(pki: &Pki, client_ca: Option<&str>) -> tokio_rustls::rustls::ServerConfig {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    builder.with_single_cert(chain, key).unwrap()
}

/// A fresh random trace id (32 hex digits) and span id (16), for a `traceparent`.
pub fn new_ids() -> (String, String) {
    use std::hash::{BuildHasher as _, RandomState};
    let r = || RandomState::new().hash_one(std::time::Instant::now()) | 1;
    (format!("{:016x}{:016x}", r(), r()), format!("{:016x}", r()))
}

/// A sampled W3C `traceparent` for the ids.
pub fn traceparent(trace_id: &str, span_id: &str) -> String {
    format!("00-{trace_id}-{span_id}-01")
}

/// `diag_tracing_spans_dropped_total` on `diagd`'s `/metrics`.
///
/// # Panics
/// When the family is missing.
pub fn spans_dropped(diagd: &crate::Diagd) -> u64 {
    let metrics = diagd.get("/metrics").text();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("diag_tracing_spans_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no diag_tracing_spans_dropped_total in:\n{metrics}"))
}
