//! Connector tokens, host matching and access-token JWTs (being written).
