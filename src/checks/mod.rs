//! Active checks: tcp, http(s), exec.
