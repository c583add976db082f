//! [`Shared`]: the [`Service`] a handler answers with, kept together with whatever it borrows
//! from, so that a server owns its service (nothing leaked, nothing `'static` required of the
//! caller) and a response body streamed after the request keeps both alive.
//!
//! The one `unsafe` idea here is the classic self-borrowing pair: a value on the heap behind an
//! [`Arc`] that is never moved or handed out, and a service borrowing from it whose lifetime is
//! written `'static` but never shown as such. The two blocks are covered by the unit tests at
//! the end, which Miri runs (`cargo +nightly miri test -p diag-core --features hyper --lib
//! server::shared`).

use core::any::Any;
use core::fmt;
use std::sync::Arc;

use crate::http::{Response, Service};
use crate::server::DiagBody;
use crate::server::pool::ChunkPool;

/// A service and what it borrows from.
pub(crate) struct Shared {
    /// Declared before `_owner` so that it is dropped first: it may borrow from `*_owner`.
    /// Its `'static` is a lie told only inside this module: [`service`](Self::service) hands it
    /// out with the lifetime of `&self`.
    service: Service<'static>,
    /// What `service` borrows from, if anything but `'static` data.
    _owner: Option<Arc<dyn Any + Send + Sync>>,
}

impl Shared {
    /// A service that borrows only `'static` data.
    pub(crate) fn new(service: Service<'static>) -> Self {
        Self { service, _owner: None }
    }

    /// `owner`, and the service `make` builds from it.
    pub(crate) fn owning<O: Send + Sync + 'static>(owner: O, make: impl for<'a> FnOnce(&'a O) -> Service<'a>) -> Self {
        let owner = Arc::new(owner);
        let service = make(&owner);
        // SAFETY: `make` works for every lifetime `'a`, so the service borrows nothing but
        // `*owner` and `'static` data. `*owner` lives on the heap behind an `Arc` that is kept
        // in `self` (moving the `Arc` moves no data) and never handed out, so it is never moved,
        // never borrowed mutably, and outlives `service`, which is dropped first (field order).
        // The `'static` never escapes: `service()` shortens it to the borrow of `self`, and a
        // streamed body that outlives the request holds an `Arc<Shared>` (see `stream`).
        let service = unsafe { core::mem::transmute::<Service<'_>, Service<'static>>(service) };
        Self { service, _owner: Some(owner) }
    }

    /// The service, for as long as `self` is borrowed.
    pub(crate) fn service(&self) -> &Service<'_> {
        &self.service
    }

    /// Streams `response`'s body in chunks of at most `chunk_bytes` (continuing in `pool`'s
    /// larger ones), keeping `this` alive until the body is dropped.
    ///
    /// # Safety
    /// `response` must borrow from nothing but `this`'s service (and `'static` data): it must
    /// come from [`Service::respond`] on [`service`](Self::service) of `this`.
    pub(crate) unsafe fn stream(
        this: &Arc<Self>,
        response: Response<'_>,
        chunk_bytes: usize,
        pool: Option<Arc<ChunkPool>>,
    ) -> DiagBody {
        // SAFETY: by the contract, the response borrows only from `this.service` (or `'static`
        // data), which lives as long as the `Arc<Shared>` the body keeps; the body drops its
        // stream before that `Arc` (field order of `DiagBody`), and nothing of the body hands
        // out a reference with the extended lifetime.
        let response = unsafe { core::mem::transmute::<Response<'_>, Response<'static>>(response) };
        DiagBody::stream_pooled(response, chunk_bytes, pool).keeping(Arc::clone(this))
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("service", &self.service).field("owned", &self._owner.is_some()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use core::pin::Pin;
    use core::task::{Context, Poll, Waker};
    use std::string::String;
    use std::vec::Vec;

    use http_body::Body as _;

    use super::*;
    use crate::encoding::{Desc, Encoder, Labels, MetricType, Stop, Value};
    use crate::http::Request;
    use crate::registry::{Collect, Sources};
    use crate::state::StateTable;

    /// A collector that owns heap data, so that Miri sees any use after free.
    struct Owned {
        name: String,
        values: Vec<u64>,
    }

    impl Collect for Owned {
        fn collect(&self, enc: &mut Encoder<'_>) -> Result<(), Stop> {
            let desc = Desc { name: &self.name, help: "Owned values.", metric_type: MetricType::Counter };
            enc.header(&desc)?;
            for (i, v) in self.values.iter().enumerate() {
                if enc.skip_item() {
                    continue;
                }
                let i = [b'0' + (i % 10) as u8];
                let i = core::str::from_utf8(&i).unwrap_or("0");
                enc.sample(&desc, &Labels::new(&["i"], &[i]), Value::U64(*v))?;
            }
            Ok(())
        }
    }

    struct Owner {
        states: StateTable<2>,
        collector: Owned,
    }

    impl Sources for Owner {
        fn source(&self, index: usize) -> Option<&dyn Collect> {
            (index == 0).then_some(&self.collector as &dyn Collect)
        }
    }

    fn body_text(mut body: DiagBody) -> String {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_streamed_body_keeps_the_owned_service_alive_after_every_handle_is_gone() {
        let owner = Owner {
            states: StateTable::new(),
            collector: Owned { name: String::from("owned_total"), values: (0..40).collect() },
        };
        let shared = Arc::new(Shared::owning(owner, |o| Service::from_sources(&o.states, o, 7)));
        let response = shared.service().respond(&Request::get("/metrics"));
        // SAFETY: the response comes from `shared`'s own service.
        let body = unsafe { Shared::stream(&shared, response, 256, None) };
        drop(shared);
        let text = body_text(body);
        assert!(text.contains("# TYPE owned_total counter\n"), "{text}");
        assert!(text.contains("owned_total{i=\"9\"} 39\n"), "{text}");
        assert!(text.contains("process_state 3\n"), "the owner's state table: {text}");
    }

    #[test]
    fn a_body_dropped_half_way_releases_the_service() {
        let owner = Owner {
            states: StateTable::new(),
            collector: Owned { name: String::from("x_total"), values: (0..40).collect() },
        };
        let shared = Arc::new(Shared::owning(owner, |o| Service::from_sources(&o.states, o, 7)));
        let response = shared.service().respond(&Request::get("/metrics"));
        // SAFETY: as above.
        let mut body = unsafe { Shared::stream(&shared, response, 256, None) };
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(Pin::new(&mut body).poll_frame(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert_eq!(Arc::strong_count(&shared), 2, "the body holds the service");
        drop(body);
        assert_eq!(Arc::strong_count(&shared), 1);
    }
}
