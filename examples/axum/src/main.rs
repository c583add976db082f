//! An axum service with diag inside; see examples/README.md for how to run and probe it.

use std::time::Duration;

use axum::{Router, extract::Path, routing::get};
use diag::{Component, Diagnostics, ExemplarCounter, Family, Registry, config::TracingService};

diag::profiling::jemalloc!(); // heap profiles of this service, through the debug socket

static GREETINGS: Family<ExemplarCounter, (&'static str,), 1024> = Family::new(["user"], ());
static REGISTRY: Registry<'static, 4> = Registry::new();

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    REGISTRY.register("hello_greetings_total", "Greetings, by user.", &GREETINGS)?;
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let (otlp, all) = (Some(env("OTLP_URL", "grpc://127.0.0.1:4317")), Some(1_000_000)); // sample every request
    let diag = Diagnostics::builder()
        .component(Component::new("db").ttl(Duration::from_secs(3))) // 503 if `db` goes silent 3 s
        .registry(&REGISTRY)
        .metrics_recorder() // `metrics::counter!` and friends appear on /metrics
        .debug_socket(env("DATA_DIR", "/tmp/example-axum")) // `diagd debug profile` of this process
        .tracing(TracingService {
            enabled: true,
            exporter_url: otlp,
            sampling_rate_per_million: all,
            ..Default::default()
        })
        .trace_target("example_axum", tracing::Level::INFO) // export this service's spans
        .trace_exemplars(true) // each greeting count links to the trace of its latest request
        .build()?;
    metrics::describe_counter!("hello_requests_total", "Requests, by route.");

    let db = diag.heartbeat("db")?;
    tokio::spawn(async move {
        loop {
            db.ok(); // a real service pings its database here
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });

    let app = Router::new().route("/hello/{user}", get(hello)).merge(diag.router());
    let listener = tokio::net::TcpListener::bind(env("ADDR", "127.0.0.1:8080")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(diag.drain_on_signal()).await?;
    Ok(())
}

#[tracing::instrument]
async fn hello(Path(user): Path<String>) -> String {
    GREETINGS.get_or_create((&user,)).map(|greetings| greetings.inc()).ok();
    metrics::counter!("hello_requests_total", "route" => "/hello/{user}").increment(1);
    format!("hello, {user}\n")
}
