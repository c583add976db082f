//! The OTLP/HTTP exporter's client: reqwest's blocking client (it runs on the SDK's batch
//! thread), keeping the full cause of the last failure. The exporter reports a failed send as
//! a bare "network error"; [`Cause`] lets the log say why (refused, timed out, which
//! certificate problem).

use std::sync::{Arc, Mutex, PoisonError};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// The cause of the last failed send, with its whole source chain.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cause(Arc<Mutex<Option<String>>>);

impl Cause {
    /// Takes the cause recorded since the last call.
    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn set(&self, e: &HttpError) {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            let s_text = s.to_string();
            // reqwest repeats a source's text in its own message at times.
            if !text.contains(&s_text) {
                text.push_str(": ");
                text.push_str(&s_text);
            }
            source = s.source();
        }
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
    }
}

/// reqwest's blocking client, recording failures in a [`Cause`].
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) inner: reqwest::blocking::Client,
    pub(crate) cause: Cause,
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let result = self.inner.send_bytes(request).await;
        if let Err(e) = &result {
            self.cause.set(e);
        }
        result
    }
}
