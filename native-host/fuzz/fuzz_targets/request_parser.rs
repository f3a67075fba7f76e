//! The request parser on arbitrary frame bodies: it never panics and always yields a
//! request or a catalogued failure.
#![no_main]

use libfuzzer_sys::fuzz_target;
use native_host::message::request::parse;

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
});
