//! Clearing-office verification of a settlement batch (spec section 7).
// STUB: owned by the clearing helper.
