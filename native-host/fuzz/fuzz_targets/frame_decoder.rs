//! The native-messaging frame decoder on arbitrary input, cut into arbitrary pieces:
//! it never panics, never yields a frame over the limit, and decodes the same events
//! however the input is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use native_host::frame::{Decoder, Event, MAX_INBOUND};

fn events(pieces: &[&[u8]]) -> (Vec<Event>, bool) {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        while let Some(e) = dec.decode(&mut input) {
            if let Event::Frame(f) = &e {
                assert!(f.len() <= MAX_INBOUND);
            }
            out.push(e);
        }
        assert!(input.is_empty());
    }
    (out, dec.finish().is_ok())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let whole = events(&[rest]);
    let at = usize::from(cut).min(rest.len());
    let split = events(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split);
});
