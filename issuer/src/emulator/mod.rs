//! The card emulator behind vsmartcard vpcd. (stub: emulator helper)
