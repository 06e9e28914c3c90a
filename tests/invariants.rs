//! Chain invariants: identity, pad, polarity, block-size invariance, NaN
//! recovery, no start-up thump, determinism, click-free switching.

mod util;

use tubeline::dsp::chain::{Chain, ChainSettings, PreampType, Source};
use tubeline::dsp::headphone::{HeadphoneModel, HeadphoneSettings};
use tubeline::dsp::mic::{MicModel, MicSettings};
use tubeline::dsp::oversampling::Quality;
use tubeline::dsp::transformer::{DiPad, DiSettings, DiSource, Mains, TurnsRatio};
use tubeline::dsp::tube::{HighPass, PreampSettings, TubeType};
use tubeline::dsp::Isa;
use util::*;

/// Settings with the tube preamp switched in and driven, with auto-gain.
fn with_preamp() -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        preamp: PreampSettings {
            gain_db: 40.0,
            level_db: -30.0,
            tube: TubeType::Tube12AT7,
            bias: 0.4,
            hpf: HighPass::Hz80,
            output_db: -3.0,
        },
        mic: MicSettings {
            model: MicModel::Ribbon,
            in_z_ohms: 1200.0,
        },
        ..ChainSettings::default()
    }
}

/// Settings with the headphone amp switched in, driving an IEM from 33 Ω
/// with a low swing limit so it clips on loud input.
fn with_headphone() -> ChainSettings {
    ChainSettings {
        hp_on: true,
        headphone: HeadphoneSettings {
            amp_z_ohms: 33.0,
            volume_db: 6.0,
            swing_volts: 2.0,
            model: HeadphoneModel::Iem,
            normalize: true,
        },
        ..ChainSettings::default()
    }
}

/// Settings with the DI switched in, with hum (ground lift off) and a pad.
fn with_di() -> ChainSettings {
    ChainSettings {
        di_on: true,
        di: DiSettings {
            ratio: TurnsRatio::R10,
            pad: DiPad::Db15,
            ground_lift: false,
            mains_hz: Mains::Hz60,
            source: DiSource::PassivePickup,
            load_ohms: 600.0,
            cable_m: 5.0,
        },
        ..ChainSettings::default()
    }
}

const RATES: [f64; 4] = [44_100.0, 48_000.0, 96_000.0, 192_000.0];

fn stereo(len: usize, sr: f64) -> Vec<Vec<f32>> {
    vec![sine(997.0, 0.5, sr, len), noise(0.3, len, 7)]
}

#[test]
fn every_stage_out_is_an_exact_identity_delayed_by_the_latency() {
    for sr in RATES {
        for quality in [Quality::Live, Quality::High] {
            for cal_dbu in [18.0, 20.0, 22.0, 24.0] {
                let s = ChainSettings {
                    cal_dbu,
                    quality,
                    ..ChainSettings::default()
                };
                let input = stereo(4000, sr);
                let (out, lat) = run_chain(s, &input, sr, 256);
                for (x, y) in input.iter().zip(&out) {
                    assert!(y[..lat].iter().all(|&v| v == 0.0));
                    assert_eq!(&y[lat..], &x[..x.len() - lat], "sr {sr} cal {cal_dbu}");
                }
            }
        }
    }
}

#[test]
fn trims_that_cancel_are_an_exact_identity_too() {
    let sr = 48_000.0;
    let s = ChainSettings {
        in_trim_db: 7.5,
        out_trim_db: -7.5,
        ..ChainSettings::default()
    };
    let input = stereo(3000, sr);
    let (out, lat) = run_chain(s, &input, sr, 64);
    for (x, y) in input.iter().zip(&out) {
        assert_eq!(&y[lat..], &x[..x.len() - lat]);
    }
}

#[test]
fn pad_gives_minus_20_db() {
    let sr = 48_000.0;
    let input = vec![sine(1000.0, 0.5, sr, 48_000)];
    let (dry, _) = run_chain(ChainSettings::default(), &input, sr, 512);
    let pad = ChainSettings {
        pad: true,
        ..ChainSettings::default()
    };
    let (wet, _) = run_chain(pad, &input, sr, 512);
    let diff = rms_db(&wet[0][4800..]) - rms_db(&dry[0][4800..]);
    assert!((diff + 20.0).abs() < 0.005, "pad measured {diff:.4} dB");
}

#[test]
fn trims_give_their_db() {
    let sr = 44_100.0;
    let input = vec![sine(440.0, 0.25, sr, 44_100)];
    let (dry, _) = run_chain(ChainSettings::default(), &input, sr, 512);
    for (in_db, out_db) in [(-6.0, 0.0), (0.0, 3.0), (12.0, -24.0)] {
        let s = ChainSettings {
            in_trim_db: in_db,
            out_trim_db: out_db,
            ..ChainSettings::default()
        };
        let (wet, _) = run_chain(s, &input, sr, 512);
        let diff = rms_db(&wet[0][4410..]) - rms_db(&dry[0][4410..]);
        assert!(
            (diff - (in_db + out_db)).abs() < 0.005,
            "{in_db}/{out_db}: {diff}"
        );
    }
}

#[test]
fn source_sets_the_level_that_reaches_the_chain() {
    // With every stage out the output shows the source's offset from pro line.
    let sr = 48_000.0;
    let input = vec![sine(1000.0, 0.5, sr, 24_000)];
    let (dry, _) = run_chain(ChainSettings::default(), &input, sr, 512);
    for (source, expected_db) in [
        (Source::Mic, -54.0),
        (Source::Instrument, -24.0),
        (Source::ConsumerLine, -11.78),
        (Source::ProLine, 0.0),
    ] {
        let s = ChainSettings {
            source,
            ..ChainSettings::default()
        };
        let (wet, _) = run_chain(s, &input, sr, 512);
        let diff = rms_db(&wet[0][2400..]) - rms_db(&dry[0][2400..]);
        assert!((diff - expected_db).abs() < 0.01, "{source:?}: {diff}");
    }
}

#[test]
fn polarity_gives_exact_negation() {
    let sr = 96_000.0;
    let input = stereo(20_000, sr);
    for pad in [false, true] {
        let base = ChainSettings {
            pad,
            ..ChainSettings::default()
        };
        let (a, _) = run_chain(base, &input, sr, 100);
        let (b, _) = run_chain(
            ChainSettings {
                polarity: true,
                ..base
            },
            &input,
            sr,
            100,
        );
        for (x, y) in a.iter().zip(&b) {
            for (p, q) in x.iter().zip(y) {
                assert_eq!(*q, -*p);
            }
        }
    }
}

/// Run with settings that change at fixed sample positions, in host blocks
/// of `block`, split at the change points as a host with sample-accurate
/// automation does, every loop in the build `isa`.
fn run_automated(block: usize, isa: Isa) -> Vec<Vec<f32>> {
    let sr = 48_000.0;
    let len = 30_000;
    let input = stereo(len, sr);
    let changes: [(usize, ChainSettings); 13] = [
        (0, ChainSettings::default()),
        (400, with_headphone()),
        (
            700,
            ChainSettings {
                headphone: HeadphoneSettings {
                    amp_z_ohms: 600.0,
                    model: HeadphoneModel::Closed32,
                    ..with_headphone().headphone
                },
                ..with_headphone()
            },
        ),
        (1_000, with_preamp()),
        (
            1_500,
            ChainSettings {
                mic: MicSettings {
                    model: MicModel::Dynamic,
                    in_z_ohms: 300.0,
                },
                ..with_preamp()
            },
        ),
        (
            1_700,
            ChainSettings {
                pre_type: PreampType::SolidState,
                ..with_preamp()
            },
        ),
        (
            1_900,
            ChainSettings {
                di_on: true,
                auto_gain: false,
                compare: true,
                ..with_preamp()
            },
        ),
        (2_500, with_di()),
        (
            3_700,
            ChainSettings {
                quality: Quality::High,
                ..with_di()
            },
        ),
        (4_300, ChainSettings::default()),
        (
            5_000,
            ChainSettings {
                pad: true,
                in_trim_db: 3.0,
                ..ChainSettings::default()
            },
        ),
        (
            12_345,
            ChainSettings {
                polarity: true,
                mix: 0.4,
                out_trim_db: -2.0,
                ..ChainSettings::default()
            },
        ),
        (
            20_001,
            ChainSettings {
                bypass: true,
                cal_dbu: 24.0,
                ..ChainSettings::default()
            },
        ),
    ];
    let mut chain = Chain::new();
    chain.prepare_with_isa(sr, 2, isa);
    assert_eq!(chain.isa(), isa);
    let mut out = input.clone();
    let mut pos = 0;
    while pos < len {
        let next_change = changes
            .iter()
            .map(|c| c.0)
            .find(|&c| c > pos)
            .unwrap_or(len);
        let n = block.min(next_change - pos);
        let current = changes.iter().rev().find(|c| c.0 <= pos).unwrap().1;
        chain.set_settings(current);
        let mut slices: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
        chain.process(&mut slices);
        pos += n;
    }
    out
}

#[test]
fn block_size_does_not_change_the_output() {
    // In every build this CPU runs (the portable loops too, on a machine
    // that would pick AVX2 + FMA).
    for isa in Isa::all_available() {
        let reference = run_automated(1, isa);
        for block in [7, 64, 513, 4096, 8192] {
            assert!(
                run_automated(block, isa) == reference,
                "{} build: block size {block} differs",
                isa.name()
            );
        }
    }
}

#[test]
fn re_render_is_bit_identical() {
    for isa in Isa::all_available() {
        assert!(
            run_automated(333, isa) == run_automated(333, isa),
            "{}",
            isa.name()
        );
    }
}

#[test]
fn every_build_gives_the_same_sound() {
    // The builds differ only in rounding (fused multiply-adds): through
    // every stage and every kind of change they must agree far below
    // anything audible, here −120 dBFS (f32 output, peak 1.0).
    let builds: Vec<Isa> = Isa::all_available().collect();
    let reference = run_automated(333, builds[0]);
    for &isa in &builds[1..] {
        let y = run_automated(333, isa);
        let worst = reference
            .iter()
            .flatten()
            .zip(y.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-6,
            "{} vs {}: worst difference {worst:e}",
            builds[0].name(),
            isa.name()
        );
    }
}

#[test]
fn non_finite_input_gives_finite_output_and_reset_recovers() {
    let sr = 48_000.0;
    let clean = stereo(4096, sr);
    let mut dirty = clean.clone();
    for (i, v) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::MAX, 1e30]
        .into_iter()
        .enumerate()
    {
        dirty[0][100 + i * 37] = v;
        dirty[1][900 + i * 11] = v;
    }
    for s in [
        ChainSettings::default(),
        ChainSettings {
            pad: true,
            polarity: true,
            mix: 0.5,
            quality: Quality::High,
            ..ChainSettings::default()
        },
        with_di(),
        with_preamp(),
        with_headphone(),
    ] {
        let mut chain = Chain::new();
        chain.set_settings(s);
        chain.prepare(sr, 2);
        let out = process_with(&mut chain, &dirty, 128);
        assert!(out.iter().flatten().all(|v| v.is_finite()));
        chain.reset();
        let after = process_with(&mut chain, &clean, 128);
        let (fresh, _) = run_chain(s, &clean, sr, 128);
        assert!(after == fresh, "reset did not restore a clean state");
    }
}

#[test]
fn extreme_and_denormal_input_stays_finite() {
    let sr = 44_100.0;
    let loud = vec![sine(50.0, 1e5, sr, 8192)]; // +100 dBFS
    let (out, _) = run_chain(ChainSettings::default(), &loud, sr, 512);
    assert!(out[0].iter().all(|v| v.is_finite()));
    let tiny = vec![vec![1e-42f32; 8192]];
    for s in [
        ChainSettings::default(),
        with_di(),
        with_preamp(),
        with_headphone(),
    ] {
        let (out, _) = run_chain(s, &loud, sr, 512);
        assert!(out[0].iter().all(|v| v.is_finite()));
        let (out, _) = run_chain(s, &tiny, sr, 512);
        assert!(out[0].iter().all(|v| v.is_finite()));
    }
}

#[test]
fn no_start_up_thump() {
    // Silence in gives exact silence out from the first sample, in every mode.
    for quality in [Quality::Live, Quality::High] {
        for pad in [false, true] {
            let s = ChainSettings {
                quality,
                pad,
                mix: 0.7,
                di_on: true,
                hp_on: true,
                ..with_preamp()
            };
            let (out, _) = run_chain(s, &[vec![0.0; 10_000], vec![0.0; 10_000]], 48_000.0, 512);
            assert!(out.iter().flatten().all(|&v| v == 0.0));
        }
    }
    // A chain that starts with non-default settings starts at them: no ramp
    // from the defaults on the first block.
    let s = ChainSettings {
        pad: true,
        ..ChainSettings::default()
    };
    let input = vec![sine(1000.0, 0.5, 48_000.0, 2000)];
    let (out, lat) = run_chain(s, &input, 48_000.0, 512);
    for (y, x) in out[0][lat..].iter().zip(&input[0]) {
        assert!((f64::from(*y) - 0.1 * f64::from(*x)).abs() < 1e-6);
    }
}

#[test]
fn parameter_steps_and_bypass_do_not_click() {
    // A 100 Hz sine; the largest sample-to-sample change of the output while
    // switching must stay near that of the sine itself (a click would be a
    // jump of the order of the amplitude).
    let sr = 48_000.0;
    let len = 48_000;
    let input = vec![sine(100.0, 0.5, sr, len)];
    let max_step_sine = 0.5 * std::f64::consts::TAU * 100.0 / sr;
    for change in [
        ChainSettings {
            polarity: true,
            ..ChainSettings::default()
        },
        ChainSettings {
            pad: true,
            ..ChainSettings::default()
        },
        ChainSettings {
            bypass: true,
            out_trim_db: -12.0,
            ..ChainSettings::default()
        },
        ChainSettings {
            in_trim_db: 12.0,
            ..ChainSettings::default()
        },
        ChainSettings {
            mix: 0.0,
            in_trim_db: -24.0,
            ..ChainSettings::default()
        },
        // The DI switched in (−21.6 dB): the crossfade must not click. Its
        // output is quieter, so the bound on the sine's slope still holds.
        ChainSettings {
            di_on: true,
            ..ChainSettings::default()
        },
    ] {
        let mut chain = Chain::new();
        chain.prepare(sr, 1);
        let mut out = input.clone();
        let (a, b) = out[0].split_at_mut(len / 2);
        chain.process(&mut [a]);
        chain.set_settings(change);
        chain.process(&mut [b]);
        let worst = out[0]
            .windows(2)
            .map(|w| (f64::from(w[1]) - f64::from(w[0])).abs())
            .fold(0.0, f64::max);
        // A +12 dB trim raises the sine's own slope fourfold.
        assert!(
            worst < 4.0 * max_step_sine * 1.05,
            "{change:?}: step {worst}"
        );
    }
}

#[test]
fn latency_follows_quality_and_dry_stays_aligned() {
    let sr = 48_000.0;
    let input = vec![sine(1000.0, 0.5, sr, 8000)];
    for quality in [Quality::Live, Quality::High] {
        // Half dry, half wet must equal the input delayed: the two paths line up.
        let s = ChainSettings {
            mix: 0.5,
            quality,
            ..ChainSettings::default()
        };
        let (out, lat) = run_chain(s, &input, sr, 64);
        let mut chain = Chain::new();
        chain.set_settings(s);
        chain.prepare(sr, 1);
        assert_eq!(lat, chain.latency_samples());
        for (y, x) in out[0][lat..].iter().zip(&input[0]) {
            assert!((y - x).abs() <= 1e-7, "dry and wet misaligned");
        }
    }
}

/// `text` without its `#[cfg(test)]` items (an inline `mod tests { … }`, a
/// test-only `fn` or `impl`, or a `mod tests;` line): the production code of
/// a whole file, not only what comes before its first test item.
fn production_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        // The item ends at its `;` (a `mod x;` line) or at the brace that
        // closes its first `{`, whichever comes first.
        let semi = item.find(';').unwrap_or(item.len());
        let open = item.find('{').unwrap_or(item.len());
        if semi < open {
            rest = &item[semi + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = item.len();
        for (i, c) in item.char_indices().skip(open) {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn production_code_reads_past_test_items() {
    let text = "a\n#[cfg(test)]\nmod tests;\nb\n#[cfg(test)]\nmod t {\n fn x() { {} }\n}\nc\n";
    assert_eq!(production_code(text), "a\n\nb\n\nc\n");
}

#[test]
fn dsp_core_knows_nothing_of_the_framework() {
    fn visit(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                visit(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![root.join("dsp.rs")];
    visit(&root.join("dsp"), &mut files);
    let mut checked_lines = 0;
    for f in files {
        let whole = std::fs::read_to_string(&f).unwrap();
        // Test files report through their assertions, not by printing.
        if f.ends_with("tests.rs") {
            for banned in [
                "println!",
                "eprintln!",
                "dbg!",
                "nice_plug",
                "egui",
                "Mutex",
            ] {
                assert!(!whole.contains(banned), "{} mentions {banned}", f.display());
            }
            continue;
        }
        let text = production_code(&whole);
        checked_lines += text.lines().count();
        for banned in [
            "nice_plug",
            "egui",
            // Locks (atomics and `Arc` are lock-free and allowed).
            "Mutex",
            "RwLock",
            "Condvar",
            "mpsc",
            "nice_log",
            "println!",
            "eprintln!",
            "dbg!",
        ] {
            assert!(!text.contains(banned), "{} mentions {banned}", f.display());
        }
    }
    // The whole core is read, not the part before each file's first test.
    assert!(checked_lines > 8_000, "only {checked_lines} lines read");
}

#[test]
fn processing_never_allocates_with_every_stage_compare_and_meters() {
    use nice_assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
    // The counter must count here, or this test would pass vacuously.
    reset_violation_count();
    let v = assert_no_alloc(|| std::hint::black_box(Vec::<u8>::with_capacity(16)));
    assert_eq!(
        violation_count(),
        1,
        "the allocation counter is not installed"
    );
    drop(v);
    reset_violation_count();

    let sr = 48_000.0;
    let mut chain = Chain::new();
    chain.prepare(sr, 2);
    let input = stereo(20_000, sr);
    let mut out = input.clone();
    let all_in = ChainSettings {
        di_on: true,
        hp_on: true,
        headphone: with_headphone().headphone,
        ..with_preamp()
    };
    let steps = [
        all_in,
        ChainSettings {
            compare: true,
            ..all_in
        },
        ChainSettings {
            compare: true,
            quality: Quality::High,
            ..all_in
        },
        ChainSettings::default(),
    ];
    assert_no_alloc(|| {
        chain.set_metering(true);
        let mut pos = 0;
        for (k, s) in steps.iter().cycle().take(16).enumerate() {
            chain.set_settings(*s);
            let n = 1_250;
            let (l, r) = out.split_at_mut(1);
            chain.process(&mut [&mut l[0][pos..pos + n], &mut r[0][pos..pos + n]]);
            pos += n;
            if k % 3 == 0 {
                std::hint::black_box(chain.take_meters());
            }
        }
        chain.reset();
    });
    assert_eq!(violation_count(), 0, "the chain allocated while processing");
    assert!(out.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn a_full_scale_sine_meters_0_dbfs_peak_and_minus_3_01_db_rms_without_allocating() {
    use nice_assert_no_alloc::{assert_no_alloc, reset_violation_count, violation_count};
    use tubeline::dsp::full_scale_peak_volts;
    use tubeline::meters::SharedMeters;
    let sr = 48_000.0;
    // Every stage out, a line source: the taps see the input's volts.
    let settings = ChainSettings {
        source: Source::ProLine,
        cal_dbu: 18.0,
        ..ChainSettings::default()
    };
    let mut chain = Chain::new();
    chain.set_settings(settings);
    chain.prepare(sr, 2);
    // A full-scale 1 kHz sine (peak 1.0): 0.2 s to settle, then exactly one
    // second, 1000 whole cycles, metered.
    let x = sine(1000.0, 1.0, sr, 57_600);
    let (mut l, mut r) = (x.clone(), x);
    let shared = SharedMeters::new();
    reset_violation_count();
    assert_no_alloc(|| {
        chain.set_metering(true);
        let (settle_l, run_l) = l.split_at_mut(9_600);
        let (settle_r, run_r) = r.split_at_mut(9_600);
        for (a, b) in settle_l.chunks_mut(480).zip(settle_r.chunks_mut(480)) {
            chain.process(&mut [a, b]);
        }
        chain.take_meters();
        for (a, b) in run_l.chunks_mut(480).zip(run_r.chunks_mut(480)) {
            chain.process(&mut [a, b]);
        }
        shared.publish(&chain.take_meters());
    });
    assert_eq!(violation_count(), 0, "metering allocated");
    let (m, _) = shared.read();
    assert_eq!(m.samples, 48_000);
    let full_scale = full_scale_peak_volts(18.0);
    // 0 dBFS peak; rms 1/√2 of it: 10·log10(1/2) = −3.0103 dB.
    for (tap, level) in [("input", m.input), ("output", m.output)] {
        let peak_dbfs = 20.0 * (level.peak_volts / full_scale).log10();
        let rms_dbfs = 20.0 * (level.rms_volts / full_scale).log10();
        assert!(peak_dbfs.abs() < 1e-5, "{tap}: peak {peak_dbfs} dBFS");
        assert!(
            (rms_dbfs - -3.0103).abs() < 1e-4,
            "{tap}: rms {rms_dbfs} dBFS"
        );
    }
}

#[test]
fn a_stereo_pair_is_bit_identical_to_two_mono_chains() {
    // The chain runs a stereo pair's oversampled stages in the lanes of one
    // preamp; each channel must come out exactly as a mono chain makes it,
    // including while the preamp crossfades in and the quality changes.
    let sr = 48_000.0;
    let input = stereo(12_000, sr);
    let run = |channels: &[Vec<f32>], isa: Isa| {
        let mut chain = Chain::new();
        chain.prepare_with_isa(sr, channels.len(), isa);
        let mut out = channels.to_vec();
        let mut pos = 0;
        for (k, s) in [
            with_preamp(),
            ChainSettings::default(),
            ChainSettings {
                quality: Quality::High,
                ..with_preamp()
            },
        ]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
        {
            chain.set_settings(*s);
            let n = 1_000 + 333 * k;
            let mut slices: Vec<&mut [f32]> =
                out.iter_mut().map(|c| &mut c[pos..pos + n]).collect();
            chain.process(&mut slices);
            pos += n;
        }
        out
    };
    for isa in Isa::all_available() {
        let pair = run(&input, isa);
        for (c, x) in input.iter().enumerate() {
            let mono = run(std::slice::from_ref(x), isa);
            assert!(
                mono[0] == pair[c],
                "{} build: channel {c} differs from mono",
                isa.name()
            );
        }
    }
}
