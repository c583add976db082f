//! A smol service with diag inside; see examples/README.md for how to run and probe it.

use std::time::Duration;

use diag::{Component, Counter, Diagnostics, Registry};

diag::profiling::jemalloc!(); // heap profiles of this service, through the debug socket

static JOBS: Counter = Counter::new();
static REGISTRY: Registry<'static, 4> = Registry::new();

fn main() -> Result<(), Box<dyn std::error::Error>> {
    smol::block_on(async {
        REGISTRY.register("worker_jobs_total", "Jobs done by the worker.", &JOBS)?;
        let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
        let diag = Diagnostics::builder()
            .component(Component::new("worker").ttl(Duration::from_secs(3)))
            .registry(&REGISTRY)
            .debug_socket(env("DATA_DIR", "/tmp/example-smol"))
            .build()?;
        // Signals are watched from here on: a SIGTERM as soon as the endpoints answer is not lost.
        let signal = diag::shutdown_signal();
        let serving = diag.serve_smol(env("ADDR", "127.0.0.1:8081").parse()?).await?;
        println!("listening on http://{}", serving.local_addr());

        // The worker reports each job it finishes; if it stops, `worker` turns degraded in 3 s.
        let worker = diag.heartbeat("worker")?;
        smol::spawn(async move {
            loop {
                let job = worker.start();
                JOBS.inc();
                job.ok();
                smol::Timer::after(Duration::from_millis(500)).await;
            }
        })
        .detach();

        signal.await?;
        serving.shutdown().await?; // /readyz 503 for the shutdown delay, then drain
        Ok(())
    })
}
