//! The resource every span carries: service.name, service.version, process.pid, host.name.

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

/// The resource of the service `name`.
pub(crate) fn resource(name: &str) -> Resource {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    Resource::builder_empty()
        .with_service_name(name.to_owned())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("process.pid", i64::from(std::process::id())),
            KeyValue::new("host.name", host),
        ])
        .build()
}
