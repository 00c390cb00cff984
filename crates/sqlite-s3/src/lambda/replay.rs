//! Requests that can be handed to a handler again, for
//! [`SyncLayer::rerun_on_conflict`](super::SyncLayer::rerun_on_conflict).

/// A request the layer can give the handler once more.
pub trait Replay {
    /// A copy of the request, as it arrived.
    fn replay(&self) -> Self;
}

impl<T: Clone> Replay for lambda_runtime::LambdaEvent<T> {
    fn replay(&self) -> Self {
        self.clone()
    }
}

/// HTTP requests whose body can be copied (lambda_http's, with feature
/// `lambda-http`; any `http::Request<B: Clone>`).
impl<B: ReplayBody> Replay for http::Request<B> {
    fn replay(&self) -> Self {
        let mut request = http::Request::new(self.body().replay_body());
        *request.method_mut() = self.method().clone();
        *request.uri_mut() = self.uri().clone();
        *request.version_mut() = self.version();
        *request.headers_mut() = self.headers().clone();
        *request.extensions_mut() = self.extensions().clone();
        request
    }
}

/// An HTTP request body that can be copied.
pub trait ReplayBody {
    /// A copy of the body.
    fn replay_body(&self) -> Self;
}

impl ReplayBody for String {
    fn replay_body(&self) -> Self {
        self.clone()
    }
}

impl ReplayBody for Vec<u8> {
    fn replay_body(&self) -> Self {
        self.clone()
    }
}

impl ReplayBody for bytes::Bytes {
    fn replay_body(&self) -> Self {
        self.clone()
    }
}

#[cfg(feature = "lambda-http")]
impl ReplayBody for lambda_http::Body {
    fn replay_body(&self) -> Self {
        match self {
            Self::Empty => Self::Empty,
            Self::Text(text) => Self::Text(text.clone()),
            other => Self::Binary(other.as_ref().to_vec()),
        }
    }
}
