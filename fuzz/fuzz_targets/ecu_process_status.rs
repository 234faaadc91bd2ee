//! Fuzzes the ECU's reader of the watchdog's status file (`<run-dir>/watchdog/status.json`):
//! it must never panic, and an accepted file must render to metrics with one `up` sample per
//! service.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ecu::{metrics, processes};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = processes::parse(data) else {
        return;
    };
    let text = metrics::encode_text(
        &Err(seesaw_ecu::engine_view::ViewError::Unavailable(
            "fuzz".into(),
        )),
        Some(&p),
    );
    let ups = text
        .lines()
        .filter(|l| l.starts_with("seesaw_process_up{"))
        .count();
    assert_eq!(ups, p.services.len());
});
