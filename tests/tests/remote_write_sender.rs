//! diagd's remote write sender (`remote_write:`), from outside: pushed to a real Prometheus
//! (`--web.enable-remote-write-receiver`) under every runtime, the values come back through
//! the query API; while the receiver is stopped for 30 s, the newest `queue_size` requests are
//! kept and arrive after it returns, and the loss beyond the bound is counted exactly. Against
//! a small local receiver: the protocol's headers and auth, a 4xx dropped and counted without
//! a retry, a 503 retried at once and a 429 retried after its `Retry-After`; over HTTPS with
//! a test CA and a client certificate (mTLS), and a wrong CA failing clearly.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diag_tests::otlp::{Pki, tls_server};
use diag_tests::prometheus::Prometheus;
use diag_tests::{Diagd, RUNTIMES, TempDir, wait_for};
use prost::Message;

/// `prometheus.WriteRequest` of remote write 1.0, to decode what diagd sends.
#[derive(Clone, PartialEq, Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
struct Label {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(double, tag = "1")]
    value: f64,
    #[prost(int64, tag = "2")]
    timestamp: i64,
}

fn decode(body: &[u8]) -> WriteRequest {
    let raw = snap::raw::Decoder::new().decompress_vec(body).expect("a snappy block");
    WriteRequest::decode(raw.as_slice()).expect("a WriteRequest")
}

/// The value of the series `key` (name and labels as exposed) in diagd's `/metrics`.
fn metric(diagd: &Diagd, key: &str) -> f64 {
    let text = diagd.get("/metrics").text();
    let prefix = format!("{key} ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {key} in:\n{text}"));
    line[prefix.len()..].trim().parse().unwrap()
}

const SENT: &str = "diag_remote_write_requests_total{result=\"sent\"}";
const FAILED: &str = "diag_remote_write_requests_total{result=\"failed\"}";
const REJECTED: &str = "diag_remote_write_requests_total{result=\"rejected\"}";

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    head: String,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A local HTTP/1.1 receiver answering request `n` (from 0) with `answer(n)`, a whole
/// response; it records every request.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(answer: impl Fn(usize) -> String + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let len = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let n = {
                    let mut got = record.lock().unwrap();
                    got.push(Received { at: Instant::now(), head, body });
                    got.len() - 1
                };
                let _ = stream.write_all(answer(n).as_bytes());
            }
        });
        Self { addr, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<Received> {
        wait_for(&format!("{n} remote write requests"), Duration::from_secs(30), || {
            let got = self.got();
            (got.len() >= n).then_some(got).ok_or_else(|| format!("{} so far", self.got().len()))
        })
    }
}

fn answer(status: &str, headers: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

#[test]
fn a_4xx_is_dropped_and_counted_without_a_retry_with_the_protocol_headers_and_basic_auth() {
    let receiver = Receiver::start(|_| answer("400 Bad Request", "", "out of bounds"));
    let dir = TempDir::new("rw-basic");
    let password = dir.path().join("password");
    std::fs::write(&password, "s3cret\n").unwrap();
    let diagd = Diagd::start(
        "smol",
        Some(&format!(
            "remote_write:\n  url: http://{}/api/v1/write\n  interval: 300ms\n  external_labels: {{job: rejecting}}\n  \
             basic_auth: {{username: agent, password_file: {}}}\n",
            receiver.addr,
            password.display()
        )),
    );
    receiver.wait_for(3);
    // The two counters and the receiver are read one after the other while the sender keeps
    // sending (every 300 ms): read them between two sends, where the request count read
    // before and after is the same, and every sample of those requests is counted as dropped.
    let (rejected, got) = wait_for("the rejection counters between two sends", Duration::from_secs(20), || {
        let before = metric(&diagd, REJECTED) as usize;
        let dropped = metric(&diagd, "diag_remote_write_dropped_samples_total{reason=\"rejected\"}") as usize;
        let got = receiver.got();
        let after = metric(&diagd, REJECTED) as usize;
        if before != after || got.len() < before {
            return Err(format!("a send in between ({before} then {after} rejected, {} received)", got.len()));
        }
        let series: usize = got[..before].iter().map(|r| decode(&r.body).timeseries.len()).sum();
        if dropped != series {
            return Err(format!("{dropped} samples counted as dropped for {before} requests of {series} samples"));
        }
        Ok((before, got))
    });
    assert!(rejected >= 2 && got.len() >= rejected, "{rejected} rejected, {} received", got.len());
    assert_eq!((metric(&diagd, SENT), metric(&diagd, FAILED)), (0.0, 0.0), "a 400 is not retried");
    let bodies: HashSet<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(bodies.len(), got.len(), "no request was sent twice");

    let first = &got[0];
    assert!(first.head.starts_with("POST /api/v1/write HTTP/1.1\r\n"), "{}", first.head);
    assert_eq!(first.header("content-encoding"), Some("snappy"));
    assert_eq!(first.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(first.header("x-prometheus-remote-write-version"), Some("0.1.0"));
    assert!(first.header("user-agent").is_some_and(|ua| ua.starts_with("diag/")), "{}", first.head);
    assert_eq!(
        first.header("authorization"),
        Some("Basic YWdlbnQ6czNjcmV0"),
        "agent:s3cret, the newline not part of it"
    );
    let request = decode(&first.body);
    let state = request
        .timeseries
        .iter()
        .find(|s| s.labels.iter().any(|l| l.name == "__name__" && l.value == "process_state"))
        .expect("process_state is pushed");
    let labels: Vec<(&str, &str)> = state.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    assert_eq!(labels[0], ("__name__", "process_state"));
    assert!(labels.contains(&("job", "rejecting")), "{labels:?}");
    assert!(labels.iter().any(|(n, v)| *n == "instance" && !v.is_empty()), "the host name by default: {labels:?}");
    assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "sorted by name: {labels:?}");
    assert_eq!(state.samples.len(), 1);
    let stderr = diagd.stderr();
    assert!(stderr.contains("remote write request rejected") && stderr.contains("out of bounds"), "{stderr}");
}

#[test]
fn a_503_is_retried_at_once_and_a_429_after_its_retry_after() {
    let receiver = Receiver::start(|n| match n {
        0 => answer("503 Service Unavailable", "", "starting"),
        1 => answer("429 Too Many Requests", "retry-after: 2\r\n", "slow down"),
        _ => answer("204 No Content", "", ""),
    });
    // A long interval: every request seen is the first push, retried.
    let diagd = Diagd::start(
        "async-std",
        Some(&format!(
            "remote_write:\n  url: http://{}/api/v1/write\n  interval: 1m\n  bearer_token: t0ken\n",
            receiver.addr
        )),
    );
    let got = receiver.wait_for(3);
    assert!(got.iter().all(|r| r.body == got[0].body), "the same request, retried");
    assert!(
        got[2].at - got[1].at >= Duration::from_millis(1950),
        "429 waits its Retry-After: {:?}",
        got[2].at - got[1].at
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer t0ken"));
    wait_for("the retried request counted as sent", Duration::from_secs(10), || {
        let (sent, failed) = (metric(&diagd, SENT), metric(&diagd, FAILED));
        (sent == 1.0 && failed == 2.0).then_some(()).ok_or_else(|| format!("sent {sent}, failed {failed}"))
    });
    assert_eq!(metric(&diagd, "diag_remote_write_queue_length"), 0.0);
    let samples = decode(&got[0].body).timeseries.len() as f64;
    assert_eq!(metric(&diagd, "diag_remote_write_sent_samples_total"), samples);
    assert!(metric(&diagd, "diag_remote_write_last_success_timestamp_seconds") > 1.7e9);
    assert_eq!(receiver.got().len(), 3, "nothing more to send within the minute");
}

/// Percent-encodes a PromQL expression for a query string.
fn enc(expr: &str) -> String {
    expr.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_.-".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

/// Every raw sample of the series of `selector` in the last 10 minutes, by series name
/// with labels (`name{k="v",…}` without the external labels) and by timestamp in ms.
fn samples(prometheus: &Prometheus, selector: &str) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let matrix = prometheus.query(&enc(&format!("{selector}[10m]"))).expect("range query");
    let mut all = BTreeMap::new();
    for series in matrix {
        let metric = series["metric"].as_object().unwrap();
        let labels: Vec<String> = metric
            .iter()
            .filter(|(k, _)| !["__name__", "job", "instance"].contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let key = format!("{}{{{}}}", metric["__name__"].as_str().unwrap(), labels.join(","));
        let values = series["values"].as_array().unwrap();
        let points = values
            .iter()
            .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse().unwrap()))
            .collect();
        all.insert(key, points);
    }
    all
}

#[test]
fn diagd_pushes_to_prometheus_on_every_runtime_and_fills_in_after_an_outage() {
    const QUEUE: usize = 5;
    let mut prometheus = Prometheus::start("global: {}\n", &["--web.enable-remote-write-receiver"]);
    let config = |runtime: &str| {
        format!(
            "remote_write:\n  url: http://{}/api/v1/write\n  interval: 1s\n  timeout: 1s\n  queue_size: {QUEUE}\n  \
             external_labels: {{job: rw-outage, instance: {runtime}}}\n",
            prometheus.addr
        )
    };
    let agents: Vec<(&str, Diagd)> = RUNTIMES.iter().map(|rt| (*rt, Diagd::start(rt, Some(&config(rt))))).collect();

    // The values come back through the query API.
    for (runtime, diagd) in &agents {
        let selector = |name: &str| enc(&format!("{name}{{job=\"rw-outage\",instance=\"{runtime}\"}}"));
        wait_for(&format!("{runtime}: process_state ok in Prometheus"), Duration::from_secs(30), || {
            let r = prometheus.query(&selector("process_state"))?;
            let v = r.first().map(|s| s["value"][1].as_str().unwrap().to_owned());
            (v.as_deref() == Some("0")).then_some(()).ok_or_else(|| format!("{r:?}"))
        });
        let component = prometheus.query(&selector("diag_component_state")).unwrap();
        assert_eq!(component[0]["metric"]["component"], "agent", "{component:?}");
        assert_eq!(component[0]["value"][1], "0");
        let capacity = prometheus.query(&selector("diag_remote_write_queue_capacity")).unwrap();
        assert_eq!(capacity[0]["value"][1], QUEUE.to_string());
        wait_for(&format!("{runtime}: pushes sent"), Duration::from_secs(20), || {
            let sent = metric(diagd, SENT);
            (sent >= 3.0).then_some(()).ok_or_else(|| format!("{sent} sent"))
        });
        // diagd's request-duration series appear with its first request (this test's own
        // /metrics reads): wait until a push has carried them, so that every push from here
        // on holds the same series.
        wait_for(&format!("{runtime}: request durations pushed"), Duration::from_secs(30), || {
            let r = prometheus.query(&selector("diag_http_request_duration_seconds_count"))?;
            (!r.is_empty()).then_some(()).ok_or_else(|| "not yet".to_owned())
        });
    }

    // The receiver goes away for 30 s, every agent pushing meanwhile.
    prometheus.stop();
    std::thread::sleep(Duration::from_secs(30));
    prometheus.restart();
    let sent_before: Vec<f64> = agents.iter().map(|(_, d)| metric(d, SENT)).collect();
    for ((runtime, diagd), before) in agents.iter().zip(&sent_before) {
        wait_for(&format!("{runtime}: queue drained"), Duration::from_secs(60), || {
            let (sent, queued) = (metric(diagd, SENT), metric(diagd, "diag_remote_write_queue_length"));
            // The kept requests, then two pushes made after the receiver returned.
            (sent >= before + QUEUE as f64 + 2.0 && queued == 0.0)
                .then_some(())
                .ok_or_else(|| format!("{sent} sent ({before} before), {queued} queued"))
        });
    }

    for (runtime, diagd) in &agents {
        let failed = metric(diagd, FAILED);
        let dropped = metric(diagd, "diag_remote_write_dropped_samples_total{reason=\"queue_full\"}") as usize;
        assert_eq!(metric(diagd, REJECTED), 0.0, "{runtime}: nothing rejected");
        assert!(failed > 0.0, "{runtime}: the outage made attempts fail");
        let all = samples(&prometheus, &format!("{{job=\"rw-outage\",instance=\"{runtime}\"}}"));
        let pushes = &all["diag_remote_write_pushes_total{}"];
        let sent = &all["diag_remote_write_requests_total{result=\"sent\"}"];
        // Each push carries its own number: which arrived, which are missing.
        let numbers: Vec<(i64, u64)> = pushes.iter().map(|(&t, &v)| (t, v as u64)).collect();
        assert!(numbers.windows(2).all(|w| w[0].1 < w[1].1), "{runtime}: pushes arrive in order: {numbers:?}");
        let arrived: HashSet<u64> = numbers.iter().map(|&(_, n)| n).collect();
        let last = numbers.last().unwrap().1;
        let missing: Vec<u64> = (1..=last).filter(|n| !arrived.contains(n)).collect();
        let (first_lost, last_lost) = (missing[0], *missing.last().unwrap());
        assert_eq!(
            missing,
            (first_lost..=last_lost).collect::<Vec<_>>(),
            "{runtime}: the outage lost one run of pushes: {numbers:?}"
        );
        assert!(first_lost > 3, "{runtime}: pushes before the outage arrived: {numbers:?}");
        // The pushes kept in the queue were made before the receiver took one again (the
        // sent count they carry is the one from before the outage); the next one after.
        let time_of = |n: u64| numbers.iter().find(|&&(_, m)| m == n).map(|&(t, _)| t).unwrap();
        let sent_in = |n: u64| sent[&time_of(n)];
        let kept = (last_lost + 1..=last).take_while(|&n| sent_in(n) == sent_in(last_lost + 1)).count();
        assert_eq!(kept, QUEUE, "{runtime}: exactly the queue's bound of pushes kept through the outage: {numbers:?}");
        assert!(last > last_lost + QUEUE as u64, "{runtime}: a push after the outage arrived");
        let queue_length = &all["diag_remote_write_queue_length{}"];
        assert_eq!(queue_length[&time_of(last_lost + 1)], QUEUE as f64, "{runtime}: the queue was full then");
        // The loss beyond the bound, counted exactly: every series of every lost push.
        let series_at = |t: i64| all.values().filter(|points| points.contains_key(&t)).count();
        let (before, after) = (series_at(time_of(first_lost - 1)), series_at(time_of(last_lost + 1)));
        assert_eq!(before, after, "{runtime}: every push has the same series");
        let lost = (last_lost - first_lost + 1) as usize;
        assert_eq!(dropped, lost * after, "{runtime}: {lost} pushes of {after} series lost");
    }
}

/// An HTTPS remote write receiver (hyper on tokio with rustls) answering 204 to every request
/// and keeping the bodies.
struct HttpsReceiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpsReceiver {
    fn start(tls: tokio_rustls::rustls::ServerConfig) -> Self {
        use http_body_util::BodyExt as _;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let record = Arc::clone(&bodies);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (acceptor, record) = (acceptor.clone(), Arc::clone(&record));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let record = Arc::clone(&record);
                        async move {
                            let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            record.lock().unwrap().push(body.to_vec());
                            hyper::Response::builder()
                                .status(204)
                                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Self { port, bodies, _runtime: runtime }
    }
}

#[test]
fn mtls_pushes_to_an_https_receiver_and_a_wrong_ca_fails_clearly() {
    let (pki, other) = (Pki::new(), Pki::new());
    let receiver = HttpsReceiver::start(tls_server(&pki, Some(&pki.ca_pem)));
    let dir = TempDir::new("rw-tls");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (client, client_key) = (write("client.pem", &pki.client.0), write("client-key.pem", &pki.client.1));
    let config = |ca: &str| {
        format!(
            "remote_write:\n  url: https://localhost:{}/api/v1/write\n  interval: 500ms\n  ca_certs: ['{ca}']\n  \
             https_keypairs: [{{cert_file: '{client}', key_file: '{client_key}'}}]\n",
            receiver.port
        )
    };
    let trusted = Diagd::start("tokio", Some(&config(&write("ca.pem", &pki.ca_pem))));
    let body = wait_for("a push over mTLS", Duration::from_secs(30), || {
        receiver.bodies.lock().unwrap().first().cloned().ok_or_else(|| "nothing yet".to_owned())
    });
    let request = decode(&body);
    assert!(
        request.timeseries.iter().any(|s| s.labels.iter().any(|l| l.value == "diag_remote_write_pushes_total")),
        "the sender's own families are pushed"
    );
    wait_for("sent counted", Duration::from_secs(10), || {
        let sent = metric(&trusted, SENT);
        (sent >= 1.0).then_some(()).ok_or_else(|| format!("{sent}"))
    });

    let untrusting = Diagd::start("smol", Some(&config(&write("other-ca.pem", &other.ca_pem))));
    let line = wait_for("the TLS failure in the log", Duration::from_secs(30), || {
        let log = untrusting.stderr();
        log.lines().find(|l| l.contains("remote write failed")).map(str::to_owned).ok_or(log)
    });
    assert!(line.contains("TLS") && (line.contains("certificate") || line.contains("UnknownIssuer")), "{line}");
    assert!(metric(&untrusting, FAILED) >= 1.0);
    assert_eq!(metric(&untrusting, SENT), 0.0);
}
