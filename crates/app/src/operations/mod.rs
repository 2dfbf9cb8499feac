//! Operations: what the health routes report (`health`), the proof that a restorable
//! backup exists (`backup`) and the daily usage counts (`usage`).

pub mod backup;
pub mod health;
pub mod usage;
