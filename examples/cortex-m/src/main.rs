//! diag-core on a Cortex-M3 (qemu's `lm3s6965evb`), with no allocator and no runtime.
//!
//! Registers 4 components, 10 counters and 2 histograms, drives the components through
//! starting → ok (one of them through degraded and recovering) with fake millisecond
//! timestamps, and serves HTTP requests with `diag_core::http::Connection` over an in-memory
//! connection: the requests come from a static byte string, read a few bytes at a time; the
//! responses stream straight to the host's stdout through semihosting. Then it reports the
//! stack it used and exits qemu with a semihosting exit code.
//!
//! Output, checked by `run-qemu.sh`:
//! ```text
//! === connection 1 ===       raw HTTP: GET /readyz while starting
//! === connection 2 ===       raw HTTP: /metrics (0.0.4), /metrics (OpenMetrics), /readyz?verbose, /readyz
//!                            (feature `protobuf`: /metrics in protobuf after the OpenMetrics one, with a native histogram)
//! === end ===
//! stack <bytes used> of <bytes>
//! ```

#![no_std]
#![no_main]

#[cfg(feature = "http")]
use core::convert::Infallible;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};
#[cfg(not(feature = "http"))]
use diag_core::http::Request;
use diag_core::http::Service;
#[cfg(feature = "http")]
use diag_core::http::{Closed, Connection};
use diag_core::{Collect, Counter, Family, Histogram, Registry, StateTable};
use lm3s6965 as _; // the device's interrupt vectors
use panic_halt as _;

/// The pid the readiness bodies report (a microcontroller has no processes).
const PID: u32 = 1;

/// Fixed buffers of the HTTP connection: the largest request head accepted, and the chunk
/// every response head and body chunk is written through.
#[cfg(feature = "http")]
const HEAD_BYTES: usize = 512;
const CHUNK_BYTES: usize = 1024;

static STATES: StateTable<4> = StateTable::new();
const COMPONENTS: [&str; 4] = ["auth", "node", "sensor", "uplink"];

/// Counter `i` is incremented `(i + 1) * 3` times.
static COUNTERS: [Counter; 10] = [const { Counter::new() }; 10];
const COUNTER_NAMES: [(&str, &str); 10] = [
    ("fw_packets_received_total", "Packets received on the radio."),
    ("fw_packets_sent_total", "Packets sent on the radio."),
    ("fw_crc_errors_total", "Frames dropped for a bad CRC."),
    ("fw_retries_total", "Transmissions retried."),
    ("fw_watchdog_kicks_total", "Times the watchdog was fed."),
    ("fw_adc_samples_total", "ADC samples taken."),
    ("fw_i2c_errors_total", "I2C transfers that failed."),
    ("fw_uart_overruns_total", "UART receive overruns."),
    ("fw_flash_writes_total", "Flash pages written."),
    ("fw_config_reloads_total", "Times the configuration was reloaded."),
];

static LOOP_BOUNDS: [f64; 6] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025];
static LOOP_SECONDS: Histogram<6> = Histogram::new(&LOOP_BOUNDS);
static PAYLOAD_BOUNDS: [f64; 5] = [16.0, 32.0, 64.0, 128.0, 256.0];
static PAYLOAD_BYTES: Histogram<5> = Histogram::new(&PAYLOAD_BOUNDS);

/// Readings per sensor and channel: the sensor's name is known only at run time (made from the
/// CPU's id here; a probe's serial number on a real board), copied into the family.
static READINGS: Family<Counter, (&'static str, u8), 4, 40> = Family::new(["sensor", "channel"], ());

/// With the `protobuf` feature, a native histogram (what Prometheus scrapes over protobuf only):
/// schema 3, at most 16 populated buckets, fed values computed at run time from the CPU's id.
#[cfg(feature = "protobuf")]
static SETTLE_SECONDS: diag_core::NativeHistogram<16> =
    diag_core::NativeHistogram::new(diag_core::NativeConfig::new(3));

static REGISTRY: Registry<'static, 14> = Registry::new();

#[cfg(feature = "http")]
/// Requests before any heartbeat.
const REQUESTS_STARTING: &[u8] = b"GET /readyz HTTP/1.1\r\nHost: mcu\r\n\r\n";

/// With the `protobuf` feature, a scrape asking what Prometheus asks with native histograms on.
#[cfg(feature = "protobuf")]
macro_rules! protobuf_scrape {
    () => {
        "GET /metrics HTTP/1.1\r\nHost: mcu\r\nAccept: application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3\r\n\r\n"
    };
}
#[cfg(all(feature = "http", not(feature = "protobuf")))]
macro_rules! protobuf_scrape {
    () => {
        ""
    };
}

#[cfg(feature = "http")]
/// Requests once every component is ok, pipelined on one connection.
const REQUESTS_READY: &[u8] = concat!(
    "GET /metrics HTTP/1.1\r\nHost: mcu\r\n\r\n",
    "GET /metrics HTTP/1.1\r\nHost: mcu\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
    protobuf_scrape!(),
    "GET /readyz?verbose HTTP/1.1\r\nHost: mcu\r\n\r\n",
    "GET /readyz HTTP/1.1\r\nHost: mcu\r\nConnection: close\r\n\r\n",
)
.as_bytes();

#[entry]
fn main() -> ! {
    paint_stack();
    let code = match run() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(what) => {
            print(b"error: ");
            print(what.as_bytes());
            print(b"\n");
            debug::EXIT_FAILURE
        }
    };
    let (used, total) = stack_used();
    let mut n = [[0u8; 20]; 2];
    print(b"stack ");
    print(fmt_usize(&mut n[0], used));
    print(b" of ");
    print(fmt_usize(&mut n[1], total));
    print(b"\n");
    debug::exit(code);
    #[allow(clippy::empty_loop, reason = "qemu has exited; on hardware, halt here")]
    loop {}
}

fn run() -> Result<(), &'static str> {
    for name in COMPONENTS {
        STATES.expect(name).map_err(|_| "state table full")?;
    }
    for (counter, (name, help)) in COUNTERS.iter().zip(COUNTER_NAMES) {
        REGISTRY.register(name, help, counter).map_err(|_| "register counter")?;
    }
    REGISTRY.register("fw_loop_seconds", "Main loop iteration time.", &LOOP_SECONDS).map_err(|_| "register")?;
    REGISTRY.register("fw_payload_bytes", "Radio payload sizes.", &PAYLOAD_BYTES).map_err(|_| "register")?;
    REGISTRY.register("fw_sensor_readings_total", "Sensor readings taken.", &READINGS).map_err(|_| "register")?;
    #[cfg(feature = "protobuf")]
    REGISTRY
        .register("fw_settle_seconds", "Sensor settling time (native histogram).", &SETTLE_SECONDS)
        .map_err(|_| "register")?;

    let sources: [&dyn Collect; 1] = [&REGISTRY];
    let service = Service::new(&STATES, &sources, PID);
    let mut server = Server::new(&service)?;
    server.before_heartbeats()?;

    // Work and heartbeats, with fake monotonic milliseconds.
    for (i, counter) in COUNTERS.iter().enumerate() {
        for _ in 0..(i + 1) * 3 {
            counter.inc();
        }
    }
    for seconds in [0.0003, 0.0007, 0.0007, 0.0012, 0.004, 0.03] {
        LOOP_SECONDS.observe(seconds);
    }
    for bytes in [12.0, 40.0, 64.0, 200.0, 512.0] {
        PAYLOAD_BYTES.observe(bytes);
    }
    let mut name = [0u8; 12];
    let sensor = sensor_name(&mut name, cpuid());
    for channel in 0..2u8 {
        READINGS.get_or_create((sensor, channel)).map_err(|_| "sensor series")?.inc_by(5 + u64::from(channel));
    }
    // Values known only at run time (from the CPU's id): check_output.py derives them from the
    // sensor name and checks schema, count, sum, zero bucket and every native bucket.
    #[cfg(feature = "protobuf")]
    {
        let base = 1.0 + f64::from(cpuid() % 97) / 100.0;
        SETTLE_SECONDS.observe(0.0);
        for k in 1..=5u32 {
            SETTLE_SECONDS.observe(base * 0.001 * f64::from(k));
        }
    }
    for name in COMPONENTS {
        STATES.heartbeat_ok(name, 100).map_err(|_| "heartbeat")?;
    }
    STATES.heartbeat_failed("uplink", 1_000).map_err(|_| "heartbeat")?; // degraded
    STATES.heartbeat_ok("uplink", 2_000).map_err(|_| "heartbeat")?; // recovering
    STATES.heartbeat_ok("uplink", 12_001).map_err(|_| "heartbeat")?; // ok: 10 s window passed

    server.after_heartbeats()?;
    #[cfg(feature = "remote-write")]
    remote_write(&sources)?;
    print(b"=== end ===\n");
    Ok(())
}

/// Serves the requests through the HTTP connection handler.
#[cfg(feature = "http")]
struct Server<'s> {
    connection: Connection<'s, 'static>,
}

#[cfg(feature = "http")]
impl<'s> Server<'s> {
    fn new(service: &'s Service<'s>) -> Result<Self, &'static str> {
        let head = cortex_m::singleton!(: [u8; HEAD_BYTES] = [0; HEAD_BYTES]).ok_or("buffers taken")?;
        let chunk = cortex_m::singleton!(: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES]).ok_or("buffers taken")?;
        Ok(Self { connection: Connection::new(service, head, chunk) })
    }

    fn before_heartbeats(&mut self) -> Result<(), &'static str> {
        print(b"=== connection 1 ===\n");
        match embassy_futures::block_on(self.connection.serve(Pipe::new(REQUESTS_STARTING))) {
            Ok(Closed::ByPeer) => Ok(()),
            _ => Err("connection 1 did not end with the peer closing"),
        }
    }

    fn after_heartbeats(&mut self) -> Result<(), &'static str> {
        print(b"=== connection 2 ===\n");
        match embassy_futures::block_on(self.connection.serve(Pipe::new(REQUESTS_READY))) {
            Ok(Closed::ByServer) => Ok(()),
            _ => Err("connection 2 did not end with Connection: close"),
        }
    }
}

/// Without the `http` feature: the same requests answered by `Service::respond`, each body
/// filled chunk by chunk into one fixed buffer and printed between markers.
#[cfg(not(feature = "http"))]
struct Server<'s> {
    service: &'s Service<'s>,
    chunk: &'static mut [u8; CHUNK_BYTES],
}

#[cfg(not(feature = "http"))]
impl<'s> Server<'s> {
    fn new(service: &'s Service<'s>) -> Result<Self, &'static str> {
        let chunk = cortex_m::singleton!(: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES]).ok_or("buffers taken")?;
        Ok(Self { service, chunk })
    }

    fn before_heartbeats(&mut self) -> Result<(), &'static str> {
        self.body("readyz-starting", &Request::get("/readyz"))
    }

    fn after_heartbeats(&mut self) -> Result<(), &'static str> {
        self.body("metrics-text", &Request::get("/metrics"))?;
        let accept = Some("application/openmetrics-text;version=1.0.0,text/plain;q=0.5");
        self.body("metrics-openmetrics", &Request { accept, ..Request::get("/metrics") })?;
        self.body("readyz-verbose", &Request::get("/readyz?verbose"))?;
        self.body("readyz", &Request::get("/readyz"))
    }

    /// Prints `=== body NAME STATUS CONTENT-TYPE ===`, the body, and `\n=== end body ===`.
    fn body(&mut self, name: &str, request: &Request<'_>) -> Result<(), &'static str> {
        let response = self.service.respond(request);
        let mut status = [0u8; 20];
        for part in [b"=== body ", name.as_bytes(), b" ", fmt_usize(&mut status, response.status().into()), b" "] {
            print(part);
        }
        print(response.content_type().as_bytes());
        print(b" ===\n");
        let mut body = response.into_body();
        loop {
            match body.fill(&mut self.chunk[..]).map_err(|_| "a series does not fit the chunk buffer")? {
                0 => break,
                n => print(&self.chunk[..n]),
            }
        }
        print(b"\n=== end body ===\n");
        Ok(())
    }
}

#[cfg(feature = "http")]
/// The server's end of an in-memory connection: reads `input` 7 bytes at a time (so heads
/// arrive in pieces, as from a TCP stack), then the peer closes; writes go to the host's
/// stdout.
struct Pipe {
    input: &'static [u8],
}

#[cfg(feature = "http")]
impl Pipe {
    fn new(input: &'static [u8]) -> Self {
        Self { input }
    }
}

#[cfg(feature = "http")]
impl embedded_io_async::ErrorType for Pipe {
    type Error = Infallible;
}

#[cfg(feature = "http")]
impl embedded_io_async::Read for Pipe {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let n = buf.len().min(self.input.len()).min(7);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

#[cfg(feature = "http")]
impl embedded_io_async::Write for Pipe {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        print(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Builds the series of `sources` as remote write requests, each compressed and printed in hex
/// as `=== remote-write <hex> ===`: what an agent nobody can scrape would POST to a receiver.
/// The buffers are small on purpose, so the push takes several requests.
#[cfg(feature = "remote-write")]
fn remote_write(sources: &[&dyn Collect; 1]) -> Result<(), &'static str> {
    use diag_core::remote_write::Push;
    use diag_core::snappy::{Compressor, max_compressed_len};

    const REQUEST_BYTES: usize = 512;
    const TEXT_BYTES: usize = 512;
    let text = cortex_m::singleton!(: [u8; TEXT_BYTES] = [0; TEXT_BYTES]).ok_or("buffers taken")?;
    let request = cortex_m::singleton!(: [u8; REQUEST_BYTES] = [0; REQUEST_BYTES]).ok_or("buffers taken")?;
    let wire = cortex_m::singleton!(: [u8; max_compressed_len(REQUEST_BYTES)] = [0; max_compressed_len(REQUEST_BYTES)])
        .ok_or("buffers taken")?;
    let snappy = cortex_m::singleton!(: Compressor<256> = Compressor::new()).ok_or("buffers taken")?;
    // The time would come from an RTC or SNTP; a fixed one here (2023-11-14T22:13:20Z).
    let external = [("job", "firmware"), ("instance", "lm3s6965")];
    let mut push = Push::new(sources, &external, 1_700_000_000_000, text);
    while let Some(len) = push.next_request(request).map_err(|_| "remote write request")? {
        let n = snappy.compress(&request[..len], wire).map_err(|_| "snappy buffer")?;
        print(b"=== remote-write ");
        for b in &wire[..n] {
            let hex = b"0123456789abcdef";
            print(&[hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]);
        }
        print(b" ===\n");
    }
    Ok(())
}

/// Writes bytes to the host's stdout; if semihosting is unavailable there is nowhere to
/// report that, and the test sees the output missing.
fn print(bytes: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(bytes);
    }
}

fn fmt_usize(buf: &mut [u8; 20], mut n: usize) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The CPU's id register (CPUID), read at run time.
fn cpuid() -> u32 {
    // SAFETY: a read of the read-only CPUID base register, which every
    // Cortex-M has; nothing else accesses the SCB here.
    unsafe { (*cortex_m::peripheral::CPUID::PTR).base.read() }
}

/// `cpu-` and `id` in 8 hex digits, in `buf`.
fn sensor_name(buf: &mut [u8; 12], id: u32) -> &str {
    buf[..4].copy_from_slice(b"cpu-");
    for (i, b) in buf[4..].iter_mut().enumerate() {
        *b = b"0123456789abcdef"[(id >> (28 - 4 * i) & 0xf) as usize];
    }
    core::str::from_utf8(buf).unwrap_or("cpu-?")
}

/// Stack high-water mark: the free RAM between the end of the statics and the stack is filled
/// with a pattern at start; the lowest word that changed tells how deep the stack went.
const PAINT: u32 = 0xDEAD_BEEF;

unsafe extern "C" {
    /// End of `.bss`/`.data` and start of the unused RAM (cortex-m-rt's linker script).
    static __sheap: u32;
    /// Initial stack pointer, the top of RAM (cortex-m-rt's linker script).
    static _stack_start: u32;
}

fn ram_bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken (safe with `&raw const`), never
    // their contents.
    (&raw const __sheap as usize, &raw const _stack_start as usize)
}

fn paint_stack() {
    let (bottom, _) = ram_bounds();
    // Leave 256 bytes below the current stack pointer for this function's own frame.
    let limit = cortex_m::register::msp::read() as usize - 256;
    let mut p = bottom;
    while p < limit {
        // SAFETY: [bottom, limit) is RAM between the statics and the live stack, used by
        // nothing yet (no heap); `p` is word-aligned because `__sheap` is.
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// (bytes of stack used, bytes available to the stack).
fn stack_used() -> (usize, usize) {
    let (bottom, top) = ram_bounds();
    let mut p = bottom;
    // SAFETY: reads word-aligned RAM between the statics and the stack top.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (top - p, top - bottom)
}
