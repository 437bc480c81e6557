//! Every wire string of the error catalogs, exactly as the docs spell them (spec §2, §3.2, §10).
//! The message text is the identifier: there are no numeric codes (spec §10.8).

// --- HTTP: POST /api/v1/access-token (spec §2.1, §10.2) ------------------------------------
pub const MISSING_AUTHENTICATION_HEADERS: &str = "Missing authentication headers";
pub const CONNECTOR_TOKEN_DOES_NOT_EXIST: &str = "Connector token does not exist";
pub const FAILED_TO_VALIDATE_CONNECTOR: &str = "Failed to validate connector";
pub const CONNECTOR_MISSING_HOST_DOMAIN: &str = "Connector missing host domain";
pub const FAILED_TO_CREATE_ACCESS_TOKEN: &str = "Failed to create access token";

// --- HTTP: POST /api/v1/sessions (spec §2.2, §10.3) -----------------------------------------
pub const MISSING_ACCESS_TOKEN: &str = "Missing access token";
// `Missing authentication headers` (malformed `Authorization`) is shared with the table above.
pub const INVALID_ACCESS_TOKEN: &str = "Invalid access token";
pub const ERROR_PARSING_REQUEST: &str = "Error parsing request";
pub const FAILED_TO_CREATE_SESSION: &str = "Failed to create session";

// --- HTTP: rate limiting (spec §10.5, §12 A11); the docs give no string, only the status -----
pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";

// --- WebSocket handshake (spec §3.2); plain-text bodies (spec §12 C6) ----------------------
pub const SESSION_NOT_FOUND: &str = "session not found";
pub const AUTHENTICATION_FAILED: &str = "authentication failed";
pub const CONNECTION_LIMIT_EXCEEDED: &str = "connection limit exceeded for session";
/// The mock's own: every one of the server's `max_connections` sockets is open (503).
pub const SERVER_CONNECTION_LIMIT: &str = "server connection limit reached";
pub const INVALID_CONNECTION_PARAMETERS: &str = "invalid connection parameters";

// --- In-band: invalid client events (spec §10.6, §12 B13) ----------------------------------
pub const UNKNOWN_EVENT_OR_INVALID_FORMAT: &str = "Unknown event type or invalid message format";
/// Followed by the offending type: `Event type not allowed: EVENT_TYPE_POLY_AGENT_MESSAGE`.
pub const EVENT_TYPE_NOT_ALLOWED_PREFIX: &str = "Event type not allowed: ";
pub const MESSAGE_TOO_LARGE: &str = "Message too large";

// --- In-band: agent errors (spec §10.7) ----------------------------------------------------
pub const HIGH_LOAD: &str = "Our system is experiencing high load. Please try again in a moment.";
pub const UNABLE_TO_START_CONVERSATION: &str =
    "Sorry, I'm unable to start a conversation right now. Please try again later.";
pub const TROUBLE_RESPONDING: &str =
    "Sorry, I'm having trouble responding right now. Please try again.";
pub const STREAMING_ERROR: &str = "Sorry, I encountered an error. Please try again.";

// --- In-band: session state (spec §10.8) ---------------------------------------------------
pub const ERROR_SESSION_NOT_FOUND: &str = "Error: Session not found";
pub const ERROR_UNABLE_TO_RETRIEVE_SESSION: &str = "Error: Unable to retrieve session";
pub const ERROR_CONNECTOR_NOT_FOUND: &str = "Error: Connector not found";
pub const ERROR_CONVERSATION_NOT_FOUND: &str = "Error: Conversation not found";
pub const ERROR_CONVERSATION_ID_NOT_FOUND: &str = "Error: Conversation ID not found in session";

// --- In-band: handoff (spec §10.8) ---------------------------------------------------------
pub const HANDOFF_COULD_NOT_CONNECT: &str =
    "Sorry, we could not connect you to an agent. Please try again.";
pub const FAILED_TO_FORWARD_TO_LIVE_AGENT: &str = "Failed to forward message to live agent";
pub const HANDOFF_COULD_NOT_BE_INITIATED: &str = "Sorry, handoff could not be initiated.";
