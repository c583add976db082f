//! [`RouteBody`]: the request body an extra route reads, whichever server received the request
//! (the built-in one, or an application's own router through [`Handler::call`](crate::server::Handler::call)).

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::boxed::Box;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

/// The error of a [`RouteBody`]: whatever the server's body type failed with.
pub type BoxError = Box<dyn core::error::Error + Send + Sync>;

/// A request body as [`Routes`](crate::server::Routes) receive it: hyper's own body on the
/// built-in servers (no allocation), any other body (an axum or a tower stack's) boxed.
///
/// # Examples
/// ```
/// use diag_core::server::RouteBody;
/// use http_body::Body as _;
/// let body = RouteBody::new(String::from("level=debug"));
/// assert_eq!(body.size_hint().exact(), Some(11));
/// ```
pub struct RouteBody {
    kind: Kind,
}

enum Kind {
    Incoming(Incoming),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl RouteBody {
    /// Wraps any body whose chunks are [`Bytes`] (an axum body, a `String`, `http_body_util::Full`).
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self { kind: Kind::Boxed(body.map_err(Into::into).boxed_unsync()) }
    }
}

impl From<Incoming> for RouteBody {
    fn from(body: Incoming) -> Self {
        Self { kind: Kind::Incoming(body) }
    }
}

impl fmt::Debug for RouteBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Incoming(b) => f.debug_tuple("RouteBody").field(b).finish(),
            Kind::Boxed(_) => f.write_str("RouteBody(boxed)"),
        }
    }
}

impl Body for RouteBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Both kinds are `Unpin`.
        match &mut self.get_mut().kind {
            Kind::Incoming(b) => Pin::new(b).poll_frame(cx).map(|f| f.map(|r| r.map_err(Into::into))),
            Kind::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Incoming(b) => b.is_end_stream(),
            Kind::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Incoming(b) => b.size_hint(),
            Kind::Boxed(b) => b.size_hint(),
        }
    }
}
