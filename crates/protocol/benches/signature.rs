//! What `Stripe-Signature` verification costs beyond the HMAC it cannot avoid.
//!
//! One group per body size, each with `verify` (header parsing, tolerance, one pre-keyed HMAC and a
//! constant-time compare) beside `bare_hmac` (keying, update and finalize over the same
//! `"<t>." + body` bytes), so the overhead reads off side by side.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use provisio_protocol::signature::{DEFAULT_TOLERANCE_SECS, SigningKeys, header_value};
use sha2::Sha256;

const SECRET: &[u8] = b"whsec_benchmark_secret_0123456789";
const NOW: i64 = 1_767_225_600;

fn sizes(c: &mut Criterion) {
    for (label, len) in [("0B", 0usize), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let header = header_value(&[SECRET], NOW, &body);
        let keys = SigningKeys::new(&[SECRET]);
        let payload = [format!("{NOW}.").as_bytes(), &body].concat();

        let mut group = c.benchmark_group(format!("signature/{label}"));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("verify", |b| {
            b.iter(|| {
                keys.verify(
                    Some(black_box(header.as_bytes())),
                    black_box(&body),
                    NOW,
                    DEFAULT_TOLERANCE_SECS,
                )
            })
        });
        group.bench_function("bare_hmac", |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(black_box(SECRET))
                    .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
                mac.update(black_box(&payload));
                mac.finalize().into_bytes()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, sizes);
criterion_main!(benches);
