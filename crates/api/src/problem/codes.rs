//! The stable machine `code` of every problem the API answers. Clients
//! branch on these strings: never change one; add a new one here.

/// The account is disabled (403).
pub const ACCOUNT_DISABLED: &str = "account_disabled";
pub const TENANT_SUSPENDED: &str = "tenant_suspended";

/// A request that could not be understood (400).
pub const BAD_REQUEST: &str = "bad_request";

/// The server is saturated; retry shortly (503).
pub const BUSY: &str = "busy";

/// The change conflicts with existing data or state (409).
pub const CONFLICT: &str = "conflict";

/// The database cannot be reached (503).
pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";

/// Any other status, when nothing more specific is known.
pub const ERROR: &str = "error";

/// The caller may not do this (403).
pub const FORBIDDEN: &str = "forbidden";

/// A signed order without a usable `Idempotency-Key` (400).
pub const IDEMPOTENCY_KEY_REQUIRED: &str = "idempotency_key_required";

/// The `Idempotency-Key` was first used for another request (422).
pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";

/// Our failure; the cause is only in the log (5xx).
pub const INTERNAL_ERROR: &str = "internal_error";

/// JSON of the wrong shape (422).
pub const INVALID_BODY: &str = "invalid_body";

/// Wrong tenant, e-mail address or password (401).
pub const INVALID_CREDENTIALS: &str = "invalid_credentials";

/// An `Idempotency-Key` that is not 1 to 255 visible characters (400).
pub const INVALID_IDEMPOTENCY_KEY: &str = "invalid_idempotency_key";

/// A query string (or a cursor, limit, filter in it) that is not valid (422).
pub const INVALID_QUERY: &str = "invalid_query";

/// A request that is not valid, when nothing more specific is known (422).
pub const INVALID_REQUEST: &str = "invalid_request";

/// A webhook whose signature is missing, stale or wrong, or names an unknown tenant (401).
pub const INVALID_SIGNATURE: &str = "invalid_signature";

/// A state change not allowed from the current state (409).
pub const INVALID_TRANSITION: &str = "invalid_transition";

/// Too many failed logins (429).
pub const LOGIN_THROTTLED: &str = "login_throttled";

/// A body that is not JSON (400).
pub const MALFORMED_JSON: &str = "malformed_json";

/// The address does not accept the method (405).
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";

/// The policy requires a second factor not yet enrolled (403).
pub const MFA_ENROLLMENT_REQUIRED: &str = "mfa_enrollment_required";

/// Nothing here for this caller (404).
pub const NOT_FOUND: &str = "not_found";

/// Something this depends on is not there yet (503).
pub const NOT_READY: &str = "not_ready";

/// A body over the limit (413).
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";

/// Too many requests (429).
pub const RATE_LIMITED: &str = "rate_limited";

/// A sensitive change that needs the password again (403).
pub const REAUTHENTICATION_REQUIRED: &str = "reauthentication_required";

/// A request with the same `Idempotency-Key` is still running (409).
pub const REQUEST_IN_FLIGHT: &str = "request_in_flight";

/// The request took too long (408).
pub const REQUEST_TIMEOUT: &str = "request_timeout";

/// The service is unavailable (503).
pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";

/// A webhook that names no tenant (400).
pub const TENANT_REQUIRED: &str = "tenant_required";

/// No valid credentials (401).
pub const UNAUTHORIZED: &str = "unauthorized";

/// A body that could not be read (400).
pub const UNREADABLE_BODY: &str = "unreadable_body";

/// A body of the wrong content type (415).
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";

/// Input that breaks a rule; names the field (422).
pub const VALIDATION_FAILED: &str = "validation_failed";
