//! Issuer and clearing-office operations. (stub: issuer helper)
