//! Throughput of the individual stages and of the chain with each stage in,
//! reported by criterion as time per second of stereo 48 kHz audio:
//! real-time factor = 1 s / time; ns per sample per channel = time / 96 000.
//!
//! `cargo bench --bench stages`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tubeline::dsp::chain::{Chain, ChainSettings, Source, LIVE_FACTOR};
use tubeline::dsp::headphone::{design_loads, HeadphoneAmp, HeadphoneModel, HeadphoneSettings};
use tubeline::dsp::mic::{MicModel, MicSettings, MicSource};
use tubeline::dsp::oversampling::Quality;
use tubeline::dsp::stage::Stage;
use tubeline::dsp::transformer::{DiBox, DiSettings, MicTransformer, MicTransformerSettings};
use tubeline::dsp::tube::Preamp;
use tubeline::dsp::ProcessSpec;

const RATE: f64 = 48_000.0;
const BLOCK: usize = 512;

/// One second of stereo program-like noise at about −18 dBFS.
fn signal(len: usize, amp: f32) -> Vec<Vec<f32>> {
    let mut s = 0x9e37_79b9u32;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32 - 0.5) * 2.0 * amp
    };
    (0..2).map(|_| (0..len).map(|_| next()).collect()).collect()
}

fn run_chain(chain: &mut Chain, buf: &mut [Vec<f32>]) {
    for start in (0..buf[0].len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(buf[0].len());
        let (l, r) = buf.split_at_mut(1);
        chain.process(&mut [&mut l[0][start..end], &mut r[0][start..end]]);
    }
}

fn bench_chain_with_stages(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain_with_stage_stereo_48k_1s");
    group.throughput(Throughput::Elements(2 * RATE as u64));
    group.sample_size(10);
    let input = signal(RATE as usize, 0.2);
    let silence = vec![vec![0.0f32; RATE as usize]; 2];
    let di = ChainSettings {
        di_on: true,
        ..ChainSettings::default()
    };
    let pre = ChainSettings {
        source: Source::Mic,
        pre_on: true,
        ..ChainSettings::default()
    };
    for (name, settings, signal) in [
        ("di_live", di, &input),
        ("preamp_live", pre, &input),
        ("preamp_live_silence", pre, &silence),
        (
            "preamp_high",
            ChainSettings {
                quality: Quality::High,
                ..pre
            },
            &input,
        ),
    ] {
        let mut chain = Chain::new();
        chain.set_settings(settings);
        chain.prepare(RATE, 2);
        let mut buf = signal.clone();
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clone_from(signal);
                run_chain(&mut chain, &mut buf);
            })
        });
    }
    group.finish();
}

/// The stages alone at the rates the chain runs them: the DI at the host
/// rate, the preamp at the live oversampled rate (4 × 48 kHz), both channels.
fn bench_stages_alone(c: &mut Criterion) {
    let mut group = c.benchmark_group("stage_alone_stereo_48k_live_1s");
    group.throughput(Throughput::Elements(2 * RATE as u64));
    group.sample_size(10);
    let os_rate = RATE * LIVE_FACTOR as f64;
    let len = os_rate as usize;
    let spec = ProcessSpec::new(os_rate, BLOCK * LIVE_FACTOR);
    // Volts: a line signal into the DI, a mic signal into the preamp.
    let line: Vec<Vec<f64>> = signal(len, 1.5)
        .into_iter()
        .map(|c| c.into_iter().map(f64::from).collect())
        .collect();
    let mic: Vec<Vec<f64>> = line
        .iter()
        .map(|c| c.iter().map(|v| v * 0.003).collect())
        .collect();

    let host_line: Vec<Vec<f64>> = line.iter().map(|c| c[..RATE as usize].to_vec()).collect();
    let mut dis = [DiBox::new(), DiBox::new()];
    for d in &mut dis {
        d.prepare(&ProcessSpec::new(RATE, BLOCK));
    }
    let mut buf = host_line.clone();
    group.bench_function("di", |b| {
        b.iter(|| {
            buf.clone_from(&host_line);
            for (d, ch) in dis.iter_mut().zip(buf.iter_mut()) {
                for block in ch.chunks_mut(BLOCK) {
                    d.process(block);
                }
            }
        })
    });

    // The same pair as the chain runs it: both channels in the lanes of
    // one loop, their cores stepped side by side (`DiBox::process_pair`).
    let mut buf = host_line.clone();
    group.bench_function("di_pair", |b| {
        b.iter(|| {
            buf.clone_from(&host_line);
            let [a, b] = &mut dis;
            let (l, r) = buf.split_at_mut(1);
            for (x, y) in l[0].chunks_mut(BLOCK).zip(r[0].chunks_mut(BLOCK)) {
                DiBox::process_pair(a, b, x, y);
            }
        })
    });

    // The same DI with no cable capacitance (`cable_m` 0: one section
    // fewer, the source's pole at 5 MHz gone), to tell the cable's cost.
    let mut dis = [DiBox::new(), DiBox::new()];
    for d in &mut dis {
        d.set_settings(DiSettings {
            cable_m: 0.0,
            ..DiSettings::default()
        });
        d.prepare(&ProcessSpec::new(RATE, BLOCK));
    }
    let mut buf = host_line.clone();
    group.bench_function("di_cable_0m", |b| {
        b.iter(|| {
            buf.clone_from(&host_line);
            for (d, ch) in dis.iter_mut().zip(buf.iter_mut()) {
                for block in ch.chunks_mut(BLOCK) {
                    d.process(block);
                }
            }
        })
    });

    let host_spec = ProcessSpec::new(RATE, BLOCK);
    let designs = design_loads(RATE);
    for model in [HeadphoneModel::Closed32, HeadphoneModel::Iem] {
        let mut amps = [HeadphoneAmp::new(), HeadphoneAmp::new()];
        for a in &mut amps {
            a.prepare_with(&host_spec, &designs);
            a.set_settings(HeadphoneSettings {
                amp_z_ohms: 33.0,
                model,
                ..HeadphoneSettings::default()
            });
            a.reset();
        }
        let mut buf = host_line.clone();
        group.bench_function(format!("headphone_{model:?}"), |b| {
            b.iter(|| {
                buf.clone_from(&host_line);
                for (a, ch) in amps.iter_mut().zip(buf.iter_mut()) {
                    for block in ch.chunks_mut(BLOCK) {
                        a.process(block);
                    }
                }
            })
        });
    }

    // The mic source: each model into 2400 Ω, at the host rate, a stereo
    // pair in the lanes of one loop as the chain's section runs it.
    for model in [
        MicModel::Dynamic,
        MicModel::Ribbon,
        MicModel::Condenser,
        MicModel::None,
    ] {
        let [mut ma, mut mb] = [MicSource::new(), MicSource::new()];
        for m in [&mut ma, &mut mb] {
            m.set_settings(MicSettings {
                model,
                in_z_ohms: 2400.0,
            });
            m.prepare(&host_spec);
        }
        let mut buf = host_line.clone();
        group.bench_function(format!("mic_{model:?}"), |b| {
            b.iter(|| {
                buf.clone_from(&host_line);
                let [l, r] = &mut buf[..] else { unreachable!() };
                for (cl, cr) in l.chunks_mut(BLOCK).zip(r.chunks_mut(BLOCK)) {
                    MicSource::process_pair(&mut ma, &mut mb, cl, cr);
                }
            })
        });
    }

    // The mic input transformer: a 150 Ω mic into
    // 2400 Ω, at the host rate, with a mic-level signal.
    let host_mic: Vec<Vec<f64>> = mic.iter().map(|c| c[..RATE as usize].to_vec()).collect();
    let mut xfmrs = [MicTransformer::new(), MicTransformer::new()];
    for x in &mut xfmrs {
        x.set_settings(MicTransformerSettings {
            source_ohms: 150.0,
            in_z_ohms: 2400.0,
        });
        x.prepare(&host_spec);
    }
    let mut buf = host_mic.clone();
    // (A stereo pair in the lanes of one loop, as the chain's section runs
    // it.)
    let [mut xa, mut xb] = xfmrs;
    group.bench_function("mic_xfmr", |b| {
        b.iter(|| {
            buf.clone_from(&host_mic);
            let [l, r] = &mut buf[..] else { unreachable!() };
            for (cl, cr) in l.chunks_mut(BLOCK).zip(r.chunks_mut(BLOCK)) {
                MicTransformer::process_pair(&mut xa, &mut xb, cl, cr);
            }
        })
    });

    let mut pres = [Preamp::new(), Preamp::new()];
    for p in &mut pres {
        p.prepare(&spec);
    }
    let mut buf = mic.clone();
    group.bench_function("preamp", |b| {
        b.iter(|| {
            buf.clone_from(&mic);
            for (p, ch) in pres.iter_mut().zip(buf.iter_mut()) {
                for block in ch.chunks_mut(BLOCK * LIVE_FACTOR) {
                    p.process(block);
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_chain_with_stages, bench_stages_alone);
criterion_main!(benches);
