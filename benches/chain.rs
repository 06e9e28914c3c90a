//! Throughput of the DSP core, reported as real-time factor and ns/sample.
//!
//! `cargo bench --bench chain`. Criterion reports time per iteration; each
//! iteration processes one second of stereo audio at 48 kHz, so
//! real-time factor = 1 s / time, and ns per sample (per channel) =
//! time / 96 000.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tubeline::dsp::chain::{Chain, ChainSettings, PreampType, Source};
use tubeline::dsp::mic::{MicModel, MicSettings};
use tubeline::dsp::oversampling::Quality;

const RATE: f64 = 48_000.0;
const BLOCK: usize = 512;

fn signal(len: usize) -> Vec<Vec<f32>> {
    let mut s = 0x1234_5678u32;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32 - 0.5) * 0.5
    };
    (0..2).map(|_| (0..len).map(|_| next()).collect()).collect()
}

fn bench_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain_stereo_48k_1s");
    group.throughput(Throughput::Elements(2 * RATE as u64));
    group.sample_size(20);
    let input = signal(RATE as usize);
    // A mic track into the live preamp, and the same with a dynamic mic on
    // 300 ohm.
    let preamp = ChainSettings {
        source: Source::Mic,
        pre_on: true,
        ..ChainSettings::default()
    };
    let dynamic_mic = ChainSettings {
        mic: MicSettings {
            model: MicModel::Dynamic,
            in_z_ohms: 300.0,
        },
        ..preamp
    };
    for (name, settings) in [
        ("all_out_live", ChainSettings::default()),
        ("preamp_live", preamp),
        // Issue 16, item 7: what a loading mic adds to the live chain, and
        // the input transformer behind it.
        ("preamp_live_dynamic_mic", dynamic_mic),
        (
            "preamp_live_dynamic_mic_xfmr",
            ChainSettings {
                in_xfmr: true,
                ..dynamic_mic
            },
        ),
        // The solid-state preamp in the tube's place.
        (
            "preamp_live_solid_state",
            ChainSettings {
                pre_type: PreampType::SolidState,
                ..preamp
            },
        ),
        (
            "preamp_high",
            ChainSettings {
                quality: Quality::High,
                ..preamp
            },
        ),
        (
            "pad_polarity_mix_high",
            ChainSettings {
                pad: true,
                polarity: true,
                mix: 0.5,
                quality: Quality::High,
                ..ChainSettings::default()
            },
        ),
    ] {
        let mut chain = Chain::new();
        chain.set_settings(settings);
        chain.prepare(RATE, 2);
        let mut buf = input.clone();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                buf.clone_from(&input);
                for start in (0..buf[0].len()).step_by(BLOCK) {
                    let end = (start + BLOCK).min(buf[0].len());
                    let (l, r) = buf.split_at_mut(1);
                    chain.process(&mut [&mut l[0][start..end], &mut r[0][start..end]]);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chain);
criterion_main!(benches);
