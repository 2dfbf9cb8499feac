//! Bodies on their way through the proxy: streamed frame by frame, never collected, and
//! cut off with [`BodyTooLarge`] once more than the limit has passed.

use std::{
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::AppError;

/// A body went past the proxy's size limit.
#[derive(Debug, thiserror::Error)]
#[error("the body is larger than {0} bytes")]
pub struct BodyTooLarge(pub u64);

/// The caller's request body as the proxy forwards it.
pub enum ProxyBody {
    /// Small enough to be held: it can be sent again after a refresh.
    Replayable(Bytes),
    /// Streamed as it arrives: sent once.
    Streaming(reqwest::Body),
}

impl ProxyBody {
    /// Reads `body` up to `replay` bytes: a body that ends by then is held (replayable);
    /// a longer one streams on, what was read first included, cut off past `limit` bytes
    /// in all.
    ///
    /// # Errors
    /// `PayloadTooLarge` past `limit` within the first `replay` bytes; `InvalidRequest`
    /// when the body cannot be read.
    pub async fn read<B>(mut body: B, replay: usize, limit: u64) -> Result<Self, AppError>
    where
        B: Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt as _;

        let mut held = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                AppError::InvalidRequest("the request body could not be read".into())
            })?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are hop-by-hop here
            };
            held.extend_from_slice(&data);
            if held.len() as u64 > limit {
                return Err(AppError::PayloadTooLarge(format!(
                    "the request body is larger than the proxy's limit of {limit} bytes"
                )));
            }
            if held.len() > replay {
                let rest = Prefixed {
                    first: Some(held.freeze()),
                    rest: body,
                };
                return Ok(Self::Streaming(reqwest::Body::wrap(Limited::new(
                    rest, limit,
                ))));
            }
        }
        Ok(Self::Replayable(held.freeze()))
    }

    /// The body to send now, and what is left to send again (none for a stream).
    pub(crate) fn take(&mut self) -> reqwest::Body {
        match std::mem::replace(self, Self::Replayable(Bytes::new())) {
            Self::Replayable(bytes) => {
                let body = reqwest::Body::from(bytes.clone());
                *self = Self::Replayable(bytes);
                body
            }
            Self::Streaming(body) => {
                *self = Self::Streaming(reqwest::Body::from(Bytes::new()));
                body
            }
        }
    }

    /// Whether [`Self::take`] can give the same body again.
    pub(crate) fn is_replayable(&self) -> bool {
        matches!(self, Self::Replayable(_))
    }
}

/// What was read already, then the rest of the body.
struct Prefixed<B> {
    first: Option<Bytes>,
    rest: B,
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// `inner`, ending with [`BodyTooLarge`] past `limit` bytes. The mutex only makes the
/// body `Sync` (the HTTP client asks for it); it is reached through `&mut`, never locked.
pub struct Limited<B> {
    inner: Mutex<B>,
    remaining: u64,
    limit: u64,
}

impl<B> Limited<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, limit: u64) -> Self {
        Self {
            inner: Mutex::new(inner),
            remaining: limit,
            limit,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Ok(inner) = this.inner.get_mut() else {
            return Poll::Ready(Some(Err("a proxied body panicked".into())));
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > this.remaining {
                        this.remaining = 0;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge(this.limit)))));
                    }
                    this.remaining -= len;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.lock().map_or(true, |b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .lock()
            .map_or_else(|_| SizeHint::default(), |b| b.size_hint())
    }
}

/// Whether `e`, or any error it was caused by, is [`BodyTooLarge`].
pub(crate) fn is_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<BodyTooLarge>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    #[tokio::test]
    async fn a_short_body_is_held_a_long_one_streams_whole() {
        let short = ProxyBody::read(Full::new(Bytes::from_static(b"abc")), 4, 100)
            .await
            .expect("read");
        assert!(short.is_replayable());
        let long = ProxyBody::read(Full::new(Bytes::from_static(b"abcdefgh")), 4, 100)
            .await
            .expect("read");
        let ProxyBody::Streaming(body) = long else {
            panic!("a body past the replay size streams");
        };
        assert_eq!(body.collect().await.expect("body").to_bytes(), "abcdefgh");
        let over = ProxyBody::read(Full::new(Bytes::from_static(b"abcdefgh")), 100, 4).await;
        assert!(matches!(over, Err(AppError::PayloadTooLarge(_))));
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes_a_larger_one_is_cut_off() {
        let ok = Limited::new(Full::new(Bytes::from_static(b"hello")), 5);
        assert_eq!(ok.collect().await.expect("body").to_bytes(), "hello");
        let big = Limited::new(Full::new(Bytes::from_static(b"hello!")), 5);
        let err = big.collect().await.expect_err("over the limit");
        assert!(is_too_large(err.as_ref()));
    }
}
