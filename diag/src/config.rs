//! The YAML configuration diagd reads and [`Diagnostics::from_config`](crate::Diagnostics::from_config)
//! reads the same way (docs/config.md): parsed with serde, unknown keys refused, every error
//! naming the key it is about.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// Most components one agent watches (the capacity of its state table).
pub const MAX_COMPONENTS: usize = 64;

/// Most bytes of a component name (the name capacity of its state table).
pub const MAX_COMPONENT_NAME: usize = 64;

/// The whole file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the diagnostic endpoints; off when absent.
    #[serde(default, deserialize_with = "addr")]
    pub diag_addr: Option<SocketAddr>,
    /// Where the agent keeps its files (the debug socket); default `/var/lib/diagd`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// `log:`.
    #[serde(default)]
    pub log: Log,
    /// `debug_service:`.
    #[serde(default)]
    pub debug_service: DebugService,
    /// `tracing_service:`.
    #[serde(default)]
    pub tracing_service: TracingService,
    /// `components:`; none means one component, `agent`, that reports itself.
    #[serde(default)]
    pub components: Vec<Component>,
    /// How long the diagnostic address keeps answering after SIGTERM/SIGINT, `/readyz` 503
    /// and `/healthz` 200, before it stops accepting; default [`DEFAULT_SHUTDOWN_DELAY`].
    #[serde(default, deserialize_with = "some_duration")]
    pub shutdown_delay: Option<Duration>,
    /// `remote_write:`: push the metrics to a Prometheus remote write receiver; off when
    /// absent.
    #[serde(default)]
    pub remote_write: Option<crate::push::RemoteWrite>,
}

/// `shutdown_delay` when neither the key nor `--shutdown-delay` is given: 5 s, the library's
/// default (`Limits::DEFAULT.shutdown_delay_ms`). Long enough for a prober polling `/readyz`
/// every second or two to see several 503s, and for Kubernetes to take the pod out of its
/// endpoints; short enough that, with the 10 s drain, diagd exits well within Kubernetes'
/// default 30 s termination grace period.
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_millis(diag_core::http::Limits::DEFAULT.shutdown_delay_ms);

/// `log:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// `log.severity`.
    #[serde(default)]
    pub severity: Severity,
}

/// `log.severity`, with the reference's spellings in any case: `trace`, `debug`, `info`,
/// `warn` (`warning`), `error` (`err`); Teleport's own files write `DEBUG`, `INFO`, `WARN`, ….
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`, the default.
    #[default]
    Info,
    /// `warn` or `warning`.
    Warn,
    /// `error` or `err`.
    Error,
}

/// The spellings of `log.severity`, for the error message.
const SEVERITIES: &[&str] = &["trace", "debug", "info", "warn", "warning", "error", "err"];

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" | "warning" => Ok(Self::Warn),
            "error" | "err" => Ok(Self::Error),
            _ => Err(de::Error::unknown_variant(&name, SEVERITIES)),
        }
    }
}

impl Severity {
    /// The level as a tracing filter directive: `trace` … `error`.
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// `debug_service:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugService {
    /// `debug_service.enabled` (default true): false leaves the socket only the health routes.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for DebugService {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn yes() -> bool {
    true
}

/// `tracing_service:` (docs/tracing.md#configuration; used by [`telemetry`](crate::telemetry)).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingService {
    /// Export spans.
    #[serde(default)]
    pub enabled: bool,
    /// Where: `grpc://host:port` (or `host:port`), `http://…`, `https://…`, `file:///dir`.
    #[serde(default)]
    pub exporter_url: Option<String>,
    /// Root spans sampled per million (0: only those an incoming sampled `traceparent` asks for).
    #[serde(default)]
    pub sampling_rate_per_million: Option<u32>,
    /// PEM files of the CAs that verify an `https://` collector (default: the system's roots).
    #[serde(default)]
    pub ca_certs: Vec<PathBuf>,
    /// The client certificate for mTLS (at most one).
    #[serde(default)]
    pub https_keypairs: Vec<KeyPair>,
}

/// One `tracing_service.https_keypairs` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    /// The PEM private key.
    pub key_file: PathBuf,
    /// The PEM certificate chain.
    pub cert_file: PathBuf,
}

/// One `components:` entry: a name and exactly one heartbeat check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// The component's name (`/readyz/<name>`).
    pub name: String,
    /// `tcp: host:port`: connecting succeeds.
    #[serde(default, deserialize_with = "tcp_addr")]
    pub tcp: Option<String>,
    /// `http: url`: `GET` answers 2xx.
    #[serde(default)]
    pub http: Option<String>,
    /// `exec: [cmd, args…]`: exits 0.
    #[serde(default)]
    pub exec: Option<Vec<String>>,
    /// How often the check runs (default 5 s); each run is bounded by it.
    #[serde(default = "default_period", deserialize_with = "duration")]
    pub heartbeat_period: Duration,
    /// How long a degraded component must keep succeeding to be ok again (default 10 s).
    #[serde(default = "default_window", deserialize_with = "duration")]
    pub recovery_window: Duration,
    /// Time to live: after a silence longer than this the component turns degraded (none by
    /// default; must be longer than `heartbeat_period`).
    #[serde(default, deserialize_with = "some_duration")]
    pub ttl: Option<Duration>,
}

fn default_period() -> Duration {
    Duration::from_secs(5)
}

fn default_window() -> Duration {
    Duration::from_millis(diag_core::state::DEFAULT_RECOVERY_WINDOW_MS)
}

/// What a component's heartbeat does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// Connect to `host:port`.
    Tcp(String),
    /// `GET` an `http://` URL, expecting 2xx.
    Http(hyper::Uri),
    /// Run a command, expecting exit status 0.
    Exec(Vec<String>),
    /// Always succeeds: the agent reporting that it runs.
    Itself,
}

impl Component {
    /// The component the agent watches when none is configured: itself.
    pub fn agent() -> Self {
        Self {
            name: "agent".into(),
            tcp: None,
            http: None,
            exec: None,
            heartbeat_period: default_period(),
            recovery_window: default_window(),
            ttl: None,
        }
    }

    /// The check, once validated.
    pub fn check(&self) -> Check {
        match (&self.tcp, &self.http, &self.exec) {
            (Some(addr), _, _) => Check::Tcp(addr.clone()),
            (_, Some(url), _) => Check::Http(url.parse().unwrap_or_default()),
            (_, _, Some(argv)) => Check::Exec(argv.clone()),
            _ => Check::Itself,
        }
    }
}

/// `host:port` with a port.
fn tcp_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(Some(s)),
        _ => Err(de::Error::custom(format!("expected host:port, got {s:?}"))),
    }
}

/// A socket address such as `127.0.0.1:3000`.
fn addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_addr(&s).map(Some).map_err(de::Error::custom)
}

/// Parses a listen address, with an error that says what is expected.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| format!("invalid address {s:?}: expected IP:PORT such as 127.0.0.1:3000"))
}

/// [`duration`], present.
fn some_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// A duration: `500ms`, `5s`, `1m`, or a number of seconds.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct V;
    impl de::Visitor<'_> for V {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 500ms, 5s or 1m, or a number of seconds")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("a duration cannot be negative"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|e| E::custom(e))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            humantime::parse_duration(v).map_err(|e| E::custom(format!("invalid duration {v:?}: {e}")))
        }
    }
    d.deserialize_any(V)
}

impl Config {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// A missing or unreadable file, malformed YAML, an unknown key or a bad value; the
    /// message names the file and the key.
    pub fn load(path: &Path) -> Result<Self, crate::Error> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Ok(Self::parse_text(&text).with_context(|| format!("invalid config file {}", path.display()))?)
    }

    /// Parses and validates YAML text.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn parse(text: &str) -> Result<Self, crate::Error> {
        Ok(Self::parse_text(text)?)
    }

    fn parse_text(text: &str) -> anyhow::Result<Self> {
        // An empty file is an empty config.
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Self =
            serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text)).map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                // serde_yaml_ng prefixes some messages with (part of) the path itself: keep one.
                let message = match message.split_once(": ") {
                    Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => rest.to_owned(),
                    _ => message,
                };
                if path == "." { anyhow::anyhow!("{message}") } else { anyhow::anyhow!("{path}: {message}") }
            })?;
        config.check()?;
        Ok(config)
    }

    /// Checks what serde cannot: one check per component, unique valid names, URLs, TTLs.
    ///
    /// # Errors
    /// The first problem, naming its key.
    pub fn validate(&self) -> Result<(), crate::Error> {
        Ok(self.check()?)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.components.len() > MAX_COMPONENTS {
            bail!(
                "components: {} components configured, at most {MAX_COMPONENTS} are supported",
                self.components.len()
            );
        }
        let mut names = HashSet::new();
        for (i, c) in self.components.iter().enumerate() {
            let key = format!("components[{i}]");
            if let Err(e) = diag_core::StateTable::<MAX_COMPONENTS, MAX_COMPONENT_NAME>::check_name(&c.name) {
                bail!("{key}.name: {:?} is refused: {e}", c.name);
            }
            if !names.insert(c.name.as_str()) {
                bail!("{key}.name: duplicate component name {:?}", c.name);
            }
            let checks = [c.tcp.is_some(), c.http.is_some(), c.exec.is_some()].iter().filter(|&&b| b).count();
            if checks != 1 {
                bail!("{key}: component {:?} needs exactly one check of tcp, http or exec (found {checks})", c.name);
            }
            if let Some(url) = &c.http {
                let uri: hyper::Uri =
                    url.parse().map_err(|e| anyhow::anyhow!("{key}.http: invalid URL {url:?}: {e}"))?;
                if uri.scheme_str() != Some("http") || uri.host().is_none() {
                    bail!("{key}.http: expected an http://host[:port]/path URL, got {url:?}");
                }
            }
            if let Some(argv) = &c.exec {
                if argv.first().is_none_or(|cmd| cmd.is_empty()) {
                    bail!("{key}.exec: expected [command, args...], got an empty command");
                }
            }
            if c.heartbeat_period.is_zero() {
                bail!("{key}.heartbeat_period: must be greater than zero");
            }
            if let Some(ttl) = c.ttl {
                if ttl <= c.heartbeat_period {
                    bail!(
                        "{key}.ttl: {} must be longer than heartbeat_period ({}), or every check would expire",
                        humantime::format_duration(ttl),
                        humantime::format_duration(c.heartbeat_period)
                    );
                }
            }
        }
        if self.tracing_service.enabled && self.tracing_service.exporter_url.is_none() {
            bail!("tracing_service.exporter_url: required when tracing_service.enabled is true");
        }
        if let Some(url) = &self.tracing_service.exporter_url {
            crate::telemetry::ExporterUrl::parse(url)
                .map_err(|e| anyhow::anyhow!("tracing_service.exporter_url: {e:#}"))?;
        }
        if let Some(remote_write) = &self.remote_write {
            remote_write.check()?;
        }
        if let Some(rate) = self.tracing_service.sampling_rate_per_million {
            if rate > 1_000_000 {
                bail!("tracing_service.sampling_rate_per_million: {rate} is more than 1000000");
            }
        }
        Ok(())
    }

    /// The components to watch: the configured ones, or the agent itself.
    pub fn watched(&self) -> Vec<Component> {
        if self.components.is_empty() { vec![Component::agent()] } else { self.components.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn full_config() {
        let c = Config::parse(
            "diag_addr: 127.0.0.1:3000\ndata_dir: /tmp/d\nlog: {severity: warning}\n\
             components:\n  - {name: db, tcp: 'localhost:5432', heartbeat_period: 500ms, recovery_window: 2}\n\
             \x20 - {name: web, http: 'http://127.0.0.1:8080/health'}\n  - {name: job, exec: [true]}\n",
        )
        .unwrap();
        assert_eq!(c.diag_addr, Some("127.0.0.1:3000".parse().unwrap()));
        assert_eq!(c.log.severity, Severity::Warn);
        assert_eq!(c.components[0].heartbeat_period, Duration::from_millis(500));
        assert_eq!(c.components[0].recovery_window, Duration::from_secs(2));
        assert_eq!(c.components[1].heartbeat_period, Duration::from_secs(5));
        assert_eq!(c.components[1].recovery_window, Duration::from_secs(10));
        assert_eq!(c.components[0].check(), Check::Tcp("localhost:5432".into()));
        assert_eq!(c.components[2].check(), Check::Exec(vec!["true".into()]));
        assert_eq!(c.watched().len(), 3);
        assert_eq!(Config::parse("").unwrap().watched()[0].check(), Check::Itself);
        assert_eq!(c.shutdown_delay, None);
        assert_eq!(Config::parse("shutdown_delay: 1500ms").unwrap().shutdown_delay, Some(Duration::from_millis(1500)));
        assert_eq!(Config::parse("shutdown_delay: 0").unwrap().shutdown_delay, Some(Duration::ZERO));
    }

    #[test]
    fn severity_in_any_case_as_teleport_writes_it() {
        for (text, severity) in [
            ("DEBUG", Severity::Debug),
            ("Info", Severity::Info),
            ("info", Severity::Info),
            ("WARN", Severity::Warn),
            ("WARNING", Severity::Warn),
            ("warning", Severity::Warn),
            ("ERROR", Severity::Error),
            ("err", Severity::Error),
            ("TRACE", Severity::Trace),
        ] {
            let c = Config::parse(&format!("log:\n  severity: {text}\n")).unwrap();
            assert_eq!(c.log.severity, severity, "{text}");
        }
        let e = err("log: {severity: LOUD}");
        assert!(e.contains("log.severity") && e.contains("unknown variant `LOUD`") && e.contains("warning"), "{e}");
        assert!(err("log: {severity: 3}").contains("log.severity"), "{}", err("log: {severity: 3}"));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("diag_adr: 1").contains("unknown field `diag_adr`"), "{}", err("diag_adr: 1"));
        assert!(err("log: {severity: loud}").contains("log.severity"), "{}", err("log: {severity: loud}"));
        assert!(err("diag_addr: nowhere").contains("diag_addr"), "{}", err("diag_addr: nowhere"));
        let e = err("components:\n  - {name: a, tcp: 'x:1', heartbeat_period: soon}\n");
        assert!(e.contains("components[0].heartbeat_period"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'x:1', colour: red}\n");
        assert!(e.starts_with("components[0].colour: unknown field `colour`"), "{e}");
        let e = err("components:\n  - {name: a}\n");
        assert!(e.contains("components[0]") && e.contains("exactly one check"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'x:1'}\n  - {name: a, exec: [true]}\n");
        assert!(e.contains("components[1].name: duplicate"), "{e}");
        let e = err("components:\n  - {name: a, http: 'https://x/'}\n");
        assert!(e.contains("components[0].http"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'nocolon'}\n");
        assert!(e.contains("components[0].tcp"), "{e}");
        let e = err("components:\n  - {name: \"db\\n[+]x ok\", tcp: 'x:1'}\n");
        assert!(e.contains("components[0].name") && e.contains("control character U+000A at byte 2"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'x:1'}\n  - {name: '', tcp: 'x:1'}\n");
        assert!(e.contains("components[1].name") && e.contains("empty"), "{e}");
        let long = "x".repeat(MAX_COMPONENT_NAME + 1);
        let e = err(&format!("components:\n  - {{name: {long}, tcp: 'x:1'}}\n"));
        assert!(e.contains("components[0].name") && e.contains("65 bytes long, more than the 64"), "{e}");
        let e = err("tracing_service: {enabled: true}\n");
        assert!(e.contains("tracing_service.exporter_url"), "{e}");
        let e = err("components: [\n");
        assert!(!e.is_empty());
        let e = err("shutdown_delay: soon");
        assert!(e.starts_with("shutdown_delay: invalid duration"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'x:1', heartbeat_period: 5s, ttl: 5s}\n");
        assert!(e.starts_with("components[0].ttl: 5s must be longer than heartbeat_period (5s)"), "{e}");
        let e = err("components:\n  - {name: a, tcp: 'x:1', ttl: soon}\n");
        assert!(e.starts_with("components[0].ttl: invalid duration"), "{e}");
        let c = Config::parse("components:\n  - {name: a, tcp: 'x:1', heartbeat_period: 1s, ttl: 3s}\n").unwrap();
        assert_eq!(c.components[0].ttl, Some(Duration::from_secs(3)));
        let e = err("shutdown_delay: -1");
        assert!(e.starts_with("shutdown_delay: a duration cannot be negative"), "{e}");
    }

    #[test]
    fn remote_write_keys_and_errors_naming_them() {
        let c = Config::parse(
            "remote_write:\n  url: http://127.0.0.1:9090/api/v1/write\n  interval: 2s\n  timeout: 500ms\n  \
             queue_size: 5\n  external_labels: {job: edge, site: lab}\n  \
             basic_auth: {username: u, password_file: /run/pw}\n",
        )
        .unwrap();
        let rw = c.remote_write.unwrap();
        assert_eq!((rw.interval, rw.timeout, rw.queue_size), (Duration::from_secs(2), Duration::from_millis(500), 5));
        assert_eq!(rw.external_labels.get("site").map(String::as_str), Some("lab"));
        assert_eq!(rw.basic_auth.unwrap().password_file, Some(PathBuf::from("/run/pw")));
        let rw = Config::parse("remote_write: {url: 'http://h/w'}").unwrap().remote_write.unwrap();
        assert_eq!((rw.interval, rw.queue_size), (crate::push::DEFAULT_INTERVAL, crate::push::DEFAULT_QUEUE_SIZE));
        assert!(Config::parse("").unwrap().remote_write.is_none());
        for (yaml, starts) in [
            ("remote_write: {}", "remote_write: missing field `url`"),
            ("remote_write: {url: 'http://h/w', colour: red}", "remote_write.colour: unknown field `colour`"),
            ("remote_write: {url: 'udp://h/w'}", "remote_write.url: expected an http:// or https:// URL"),
            ("remote_write: {url: 'http://h/w', interval: soon}", "remote_write.interval: invalid duration"),
            ("remote_write: {url: 'http://h/w', interval: 0s}", "remote_write.interval: must be greater than zero"),
            ("remote_write: {url: 'http://h/w', timeout: -1}", "remote_write.timeout: a duration cannot be negative"),
            ("remote_write: {url: 'http://h/w', queue_size: 0}", "remote_write.queue_size: 0 is not between 1"),
            ("remote_write: {url: 'http://h/w', queue_size: many}", "remote_write.queue_size: invalid type"),
            ("remote_write: {url: 'http://h/w', external_labels: {'a b': x}}", "remote_write.external_labels: \"a b\""),
            (
                "remote_write: {url: 'http://h/w', basic_auth: {username: u}}",
                "remote_write.basic_auth.password: required",
            ),
            (
                "remote_write: {url: 'http://h/w', basic_auth: {username: u, password: p}, bearer_token: t}",
                "remote_write.basic_auth: give basic_auth or a bearer token, not both",
            ),
            (
                "remote_write: {url: 'http://h/w', ca_certs: [/ca.pem]}",
                "remote_write.ca_certs: only used with an https://",
            ),
            (
                "remote_write: {url: 'https://h/w', https_keypairs: [{cert_file: /c, key_file: /k}, {cert_file: /c, key_file: /k}]}",
                if cfg!(feature = "tls") {
                    "remote_write.https_keypairs: 2 keypairs given"
                } else {
                    "remote_write.url: https:// needs diag's `tls` feature"
                },
            ),
        ] {
            let e = err(yaml);
            assert!(e.starts_with(starts), "{yaml}: {e}");
        }
    }
}
