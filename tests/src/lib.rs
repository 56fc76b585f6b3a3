//! Harness for the real-broker rig.
