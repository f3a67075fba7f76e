//! The SAM (spec section 5).
// STUB
