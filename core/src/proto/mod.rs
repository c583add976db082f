//! A `no_std`, allocation-free protobuf writer.
//!
//! Protobuf's wire format is small enough to write by hand: [`varint`]s, field keys
//! ([`wire`]), eight-byte doubles, and length-delimited strings and nested messages. This
//! module is the whole of it, shared by everything in diag that speaks protobuf: the
//! Prometheus protobuf exposition (`io.prometheus.client.MetricFamily`, the `encoding::protobuf`
//! module of the `protobuf` feature), remote write's
//! `prometheus.WriteRequest`, and pprof profiles.
//!
//! # Shape
//! - [`Sink`]: where bytes go, with the field writers (`uint64`, `sint64`, `double`,
//!   `string`, `message`, …) as provided methods, so one function generic over `Sink` both
//!   sizes and writes a message.
//! - [`SliceWriter`]: into a caller's slice. Nested messages are written once, their length
//!   reserved and patched in afterwards ([`SliceWriter::nested`], [`SliceWriter::open`]);
//!   [`SliceWriter::pos`] / [`SliceWriter::truncate`] drop a message that did not fit, which
//!   is how a request or a chunk ends at a message boundary instead of being truncated.
//! - [`IoWriter`]: into an `embedded_io::Write` stream; nested messages are sized first, by
//!   running the same code into a [`Size`] ([`Message::encoded_len`]).
//! - [`Message`]: a type that writes its fields into any sink.
//!
//! # Why reserve-and-patch on slices
//! A nested message's length comes before it. A sizing pass walks every message twice, and
//! for nested messages once more per level (a histogram bucket inside a histogram inside a
//! series inside a family is sized four times), and for values read from atomics the two
//! walks may see different values unless everything is snapshotted first. Writing once into
//! a reserved length and patching it reads every value once; the move it needs when the
//! guess is wrong is one short `memmove` of a message already in cache. Streams cannot patch,
//! so [`IoWriter`] sizes: that is the one place the sizing pass is used.
//!
//! # Why not a crate
//! The `no_std` protobuf crates (`micropb`, `femtopb`, `noproto`, `quick-protobuf` without
//! `std`) generate structs from `.proto` files and encode a message once it is built: every
//! repeated field becomes a fixed-capacity container (or a `Vec`, which needs an allocator),
//! so a family of thousands of series would have to be materialised first. diag's data is
//! atomics read item by item, written in chunks that resume at a series; what it needs is a
//! field writer, not a message model. The writer is about 300 lines, has no dependency, and
//! costs no flash for what a firmware does not call.
//!
//! # Examples
//! ```
//! use diag_core::proto::{Sink, SliceWriter};
//!
//! // io.prometheus.client.MetricFamily { name: "up", type: GAUGE, metric: [{ gauge: { value: 1 } }] }
//! let mut buf = [0u8; 64];
//! let mut w = SliceWriter::new(&mut buf);
//! w.string(1, "up")?;
//! w.uint64(3, 1)?;
//! w.nested(4, |w| w.nested(2, |w| w.double(1, 1.0)))?;
//! assert_eq!(w.written(), b"\x0a\x02up\x18\x01\x22\x0b\x12\x09\x09\x00\x00\x00\x00\x00\x00\xf0\x3f");
//! # Ok::<(), diag_core::proto::BufferFull>(())
//! ```

mod message;
mod sink;
mod size;
mod slice;
mod stream;
pub mod varint;
pub mod wire;

pub use message::Message;
pub use sink::Sink;
pub use size::Size;
pub use slice::{BufferFull, Open, SliceWriter};
pub use stream::IoWriter;
pub use wire::WireType;
