//! The surrogate: turns SAM output into card commands and card responses into typed
//! SAM input.
// STUB
