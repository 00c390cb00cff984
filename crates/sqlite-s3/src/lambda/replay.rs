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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_http_request_is_the_request_again() {
        #[derive(Debug, Clone, PartialEq)]
        struct RequestContext(&'static str);
        let mut request = http::Request::builder()
            .method("POST")
            .uri("https://example.com/todos?x=1")
            .header("content-type", "application/json")
            .body(b"{\"title\":\"a\"}".to_vec())
            .unwrap();
        request.extensions_mut().insert(RequestContext("apigw"));
        let again = request.replay();
        assert_eq!(again.method(), request.method());
        assert_eq!(again.uri(), request.uri());
        assert_eq!(again.version(), request.version());
        assert_eq!(again.headers(), request.headers());
        assert_eq!(again.body(), request.body());
        assert_eq!(
            again.extensions().get::<RequestContext>(),
            Some(&RequestContext("apigw"))
        );
    }

    #[cfg(feature = "lambda-http")]
    #[test]
    fn lambda_http_bodies_keep_their_kind() {
        use lambda_http::Body;
        for body in [Body::Empty, Body::Text("t".into()), Body::Binary(vec![0, 1])] {
            assert_eq!(body.replay_body(), body);
        }
    }
}
