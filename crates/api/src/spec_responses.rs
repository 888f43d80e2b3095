//! The problem responses every operation can give, declared once and added
//! to each operation the document describes, so that a client generated
//! from `/api/openapi.json` knows every status it can meet: a secured
//! operation can be 401 and 403, one with a body 400, 413, 415 and 422, one
//! with query parameters 422, one with path parameters 404, and any 429
//! (the rate limit sits in front of every route) or 503 (the database away
//! or busy, the request out of time). An operation's own
//! description of a status (a more specific 403, say) is kept, and gets the
//! problem body here, so annotations name only status and description; an
//! own 503 gets the shared reasons appended.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{Content, ContentBuilder, OpenApi, Ref, RefOr};

/// (name, status, description)
const SHARED: [(&str, &str, &str); 9] = [
    (
        "BadRequest",
        "400",
        "The body is not well-formed JSON (`malformed_json`)",
    ),
    (
        "Unauthorized",
        "401",
        "No valid credentials: missing, expired, revoked or forged (`unauthorized`)",
    ),
    (
        "Forbidden",
        "403",
        "The caller's role, token scopes or tenant policy do not allow this (`forbidden`, `reauthentication_required`, …)",
    ),
    (
        "NotFound",
        "404",
        "No such resource for this caller; another tenant's is not found either (`not_found`)",
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is over the limit (`payload_too_large`)",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not `application/json` (`unsupported_media_type`)",
    ),
    (
        "Unprocessable",
        "422",
        "A field or query parameter breaks a rule; nothing was changed (`validation_failed`, …)",
    ),
    (
        "TooManyRequests",
        "429",
        "Over the rate limit; `Retry-After` says when to try again (`rate_limited`)",
    ),
    (
        "ServiceUnavailable",
        "503",
        "The database is away or busy, or the request ran out of time; try again, with the same `Idempotency-Key` where the operation takes one (`database_unavailable`, `request_timeout`, `busy`)",
    ),
];

fn problem_content() -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ProblemDoc")))
        .build()
}

/// Declares the shared responses and adds them to every operation.
pub fn add_shared_responses(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, _, description) in SHARED {
        let problem = ResponseBuilder::new()
            .description(description)
            .content("application/problem+json", problem_content())
            .build();
        components
            .responses
            .insert(name.to_owned(), RefOr::T(problem));
    }
    for item in doc.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_to(operation);
        }
    }
}

/// An operation's own error responses (`(status = 409, description = …)`)
/// carry only their description; every error is a problem, said here once.
fn add_problem_bodies(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let RefOr::T(response) = response
            && is_error
            && response.content.is_empty()
        {
            response.content.insert(
                "application/problem+json".to_owned(),
                problem_content().into(),
            );
        }
    }
}

fn add_to(operation: &mut Operation) {
    add_problem_bodies(operation);
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let has_body = operation.request_body.is_some();
    let parameter_in = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let (has_path, has_query) = (
        parameter_in(ParameterIn::Path),
        parameter_in(ParameterIn::Query),
    );
    for (name, status, _) in SHARED {
        let applies = match status {
            "401" | "403" => secured,
            "400" | "413" | "415" => has_body,
            "422" => has_body || has_query,
            "404" => has_path,
            _ => true,
        };
        if !applies {
            continue;
        }
        match operation.responses.responses.get_mut(status) {
            None => {
                operation
                    .responses
                    .responses
                    .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
            }
            // An operation's own 503 (its DNS server or Stripe away) is
            // still a 503 for the shared reasons too.
            Some(RefOr::T(own)) if status == "503" && !own.description.contains("; or: ") => {
                let shared = shared_unavailable();
                let mut chars = shared.chars();
                own.description.push_str("; or: ");
                own.description
                    .extend(chars.next().map(|c| c.to_ascii_lowercase()));
                own.description.push_str(chars.as_str());
            }
            Some(_) => {}
        }
    }
}

fn shared_unavailable() -> &'static str {
    SHARED
        .iter()
        .find(|(_, status, _)| *status == "503")
        .map_or("", |(_, _, description)| description)
}
