//! Fuzzes the TLS ClientHello server-name parser of the proxy's SNI routing: any bytes, never a
//! panic; a name found always lies inside the input; every prefix of a complete hello asks for
//! more or gives the same answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::proxy::tls::{Sni, parse};

fuzz_target!(|data: &[u8]| {
    let r = parse(data);
    if let Sni::Name(n) = r {
        let start = n.as_ptr() as usize - data.as_ptr() as usize;
        assert!(start + n.len() <= data.len());
    }
    if r != Sni::NeedMore {
        for cut in 0..data.len().min(64) {
            let p = parse(&data[..cut]);
            assert!(p == Sni::NeedMore || p == Sni::Absent || p == r, "{p:?} vs {r:?}");
        }
    }
});
