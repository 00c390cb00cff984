//! What a failed request says: whether it may pass if sent again, and a
//! sentence for the user in the store's own words.

/// Whether a store error may pass if the request is sent again: no
/// connection, a reset, a timeout, a body cut short, a 5xx answer, 408 or
/// 429 (throttling). Refusals (4xx), missing objects and failed conditions
/// are answers, not failures.
pub(crate) fn is_transient(error: &object_store::Error) -> bool {
    if !matches!(error, object_store::Error::Generic { .. }) {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<object_store::client::HttpError>().is_some() {
            return true;
        }
        source = e.source();
    }
    match status_of(error) {
        // S3 answers 400 RequestTimeout when a request body came too slowly.
        Some(400) => chain_text(error).contains("RequestTimeout"),
        // 501 Not Implemented and 505 are answers: they will not pass.
        Some(501 | 505) => false,
        Some(status) => status >= 500 || status == 408 || status == 429,
        None => {
            let text = chain_text(error);
            text.contains("SlowDown") || text.contains("InternalError")
        }
    }
}

/// The HTTP status an error reports, if any (object_store says it only in
/// its message: "Server returned non-2xx status code: 503 ...").
pub(crate) fn status_of(error: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let text = chain_text(error);
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// What went wrong with a request, in the store's own words where it
/// answered: "the store answered 500 Internal Server Error (InternalError:
/// No writable volumes)", or "no answer: connection refused".
pub(crate) fn describe(error: &object_store::Error) -> String {
    let text = chain_text(error);
    if let Some(status) = status_of(error) {
        let reason = http_reason(status);
        let said = match (xml_field(&text, "Code"), xml_field(&text, "Message")) {
            (Some(code), Some(message)) => format!(" ({code}: {message})"),
            (Some(code), None) => format!(" ({code})"),
            (None, Some(message)) => format!(" ({message})"),
            (None, None) => {
                let body = text
                    .rsplit_once(&format!("{status} {reason}: "))
                    .map(|(_, body)| body.trim());
                match body {
                    Some(body) if !body.is_empty() => format!(" ({})", body.chars().take(200).collect::<String>()),
                    _ => String::new(),
                }
            }
        };
        let next = if is_transient(error) {
            ", and kept failing; try again later"
        } else {
            ""
        };
        return format!("the store answered {status} {reason}{said}{next}");
    }
    if is_transient(error) {
        return format!(
            "no answer from the store ({}); check the endpoint and the network",
            innermost(error)
        );
    }
    innermost(error)
}

/// The text of `<NAME>...</NAME>` in an S3 error document.
fn xml_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    Some(text[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

fn http_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

pub(crate) fn chain_mentions(error: &object_store::Error, needle: &str) -> bool {
    chain_text(error).contains(needle)
}

pub(crate) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(" | ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The most specific message in an error chain ("Connection refused", say).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
