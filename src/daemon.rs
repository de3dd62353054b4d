//! Wiring: checks -> engine -> desired routes -> sessions; signals; shutdown.
