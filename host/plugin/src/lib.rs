//! inflow plugin runtime.
