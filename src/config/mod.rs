//! Configuration: YAML in, validated `Config` out, with file:line on every error.

mod model;

pub use model::*;
