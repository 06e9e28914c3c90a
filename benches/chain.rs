//! Throughput of the DSP core, reported as real-time factor and ns/sample.
//!
//! `cargo bench --bench chain`. Criterion reports time per iteration; each
//! iteration processes one second of stereo audio at 48 kHz, so
//! real-time factor = 1 s / time, and ns per sample (per channel) =
//! time / 96 000.

mod common;

use common::{configurations, prepared, process, signal, RATE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn bench_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain_stereo_48k_1s");
    group.throughput(Throughput::Elements(2 * RATE as u64));
    group.sample_size(20);
    let input = signal(RATE as usize);
    for (name, settings) in configurations() {
        let mut chain = prepared(settings);
        let mut buf = input.clone();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| process(&mut chain, &mut buf, &input))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chain);
criterion_main!(benches);
