//! BGP speaker: our own framing/parsing of received bytes, zettabgp-backed encoding, per-peer sessions.
