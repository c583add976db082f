//! The black-box suite as one test binary: every file here is a module of it, so the suite
//! links once instead of once per file (most of a cold build's time went to linking the same
//! dependencies 34 times). Run it with cargo-nextest (`cargo nextest run -p diag-tests`, as
//! `.ci/run` does), which still gives every test a process of its own: several tests change
//! process-wide state (resource limits, environment, the exemplar source).

mod cli;
mod component_names;
mod connection_flood;
mod data_dir_permissions;
mod debug_cli;
mod debug_pprof;
mod debug_profiles;
mod debug_socket;
mod docs_links;
mod drain;
mod examples;
mod exposition;
mod exposition_start_time;
mod fault_load;
mod hostile_clients;
mod prometheus_exemplars;
mod prometheus_http_durations;
mod prometheus_native_histogram;
mod prometheus_protobuf_scrape;
mod prometheus_scrape;
mod protobuf_go_decoder;
mod recorder;
mod remote_write;
mod remote_write_sender;
mod routes;
mod state_walk;
mod teleport_words;
mod tracing_collector_down;
mod tracing_config;
mod tracing_file;
mod tracing_https;
mod tracing_otlp_grpc;
mod tracing_otlp_http;
mod utf8_names;
