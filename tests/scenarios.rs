//! The scenarios people ask about, end to end through the renderer: volts
//! in (a +4 dBu line signal under the converter calibration), dBu out; and
//! through the chain itself: loudness matching (compare, auto-gain)
//! measured with an integrated BS.1770 loudness computed here.

mod util;

use std::path::Path;
use std::process::Command;

use num_complex::Complex64;
use tubeline::dsp::chain::{Chain, ChainSettings, PreampType, Source};
use tubeline::dsp::mic::{MicModel, MicSettings};
use tubeline::dsp::signals::{k_weighted_48k, music_like, pink_noise};
use tubeline::dsp::tube::{HighPass, PreampSettings, TubeType};
use util::*;

const RATE: u32 = 48_000;
const CAL_DBU: f64 = 18.0;

/// A 1 kHz sine at `dbu` rms under the default calibration: a full-scale
/// sine (peak 1.0) is +18 dBu rms.
fn tone_at_dbu(dbu: f64, secs: f64) -> Vec<f32> {
    let peak = 10f64.powf((dbu - CAL_DBU) / 20.0);
    sine(
        1000.0,
        peak,
        f64::from(RATE),
        (secs * f64::from(RATE)) as usize,
    )
}

fn render(input: &[f32], sets: &[&str]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let (i, o) = (dir.path().join("in.wav"), dir.path().join("out.wav"));
    write_mono(&i, input);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tubeline-render"));
    cmd.arg(&i).arg(&o);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut r = hound::WavReader::open(&o).unwrap();
    r.samples::<f32>().map(Result::unwrap).collect()
}

fn write_mono(path: &Path, x: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &v in x {
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
}

/// dBu rms of the steady second half of a render (a sine's rms is 3.01 dB
/// below its peak, and a full-scale peak is +18 dBu rms).
fn dbu_of(x: &[f32]) -> f64 {
    rms_db(&x[x.len() / 2..]) + 20.0 * 2f64.sqrt().log10() + CAL_DBU
}

#[test]
fn line_level_through_the_di_lands_at_mic_level() {
    let line = tone_at_dbu(4.0, 1.0);
    let base = [
        "source=pro_line",
        "pre_on=off",
        "di_on=on",
        "di_source=line_out",
        "di_load=1500",
    ];
    // 12:1 is −21.58 dB: +4 dBu → −17.58 dBu (the 100 Ω source costs 0.004 dB).
    let out = render(&line, &base);
    let dbu = dbu_of(&out);
    assert!((dbu - (4.0 - 21.584)).abs() < 0.05, "DI out {dbu:.3} dBu");
    // With the DI's −15 dB pad: about −32.6 dBu.
    let mut padded = base.to_vec();
    padded.push("di_pad=-15");
    let dbu = dbu_of(&render(&line, &padded));
    assert!(
        (dbu - (4.0 - 21.584 - 15.0)).abs() < 0.05,
        "padded {dbu:.3} dBu"
    );
}

/// A pro line track into the preamp at moderate gain, auto-gain off: the
/// tube adds audible harmonics.
const LINE_INTO_DRIVEN_PREAMP: [&str; 5] = [
    "source=pro_line",
    "pre_on=on",
    "gain=10",
    "level=-40",
    "auto_gain=off",
];

#[test]
fn the_di_keeps_a_line_signal_clean_at_moderate_preamp_gain() {
    // One second at 48 kHz holds exactly 1000 cycles of 1 kHz: bin 1000 of
    // the steady last 24 000 samples is bin 500.
    let line = tone_at_dbu(4.0, 1.0);
    let straight = render(&line, &LINE_INTO_DRIVEN_PREAMP);
    let mut via_di = LINE_INTO_DRIVEN_PREAMP.to_vec();
    via_di.extend(["di_on=on", "di_pad=-15"]);
    let through_di = render(&line, &via_di);
    let steady = |x: &[f32]| thd(&x[24_000..], 500);
    let (thd_straight, thd_di) = (steady(&straight), steady(&through_di));
    println!(
        "+4 dBu at gain 10 dB / level -40 dB: straight in THD {:.1} %, via DI -15 dB pad {:.3} %",
        100.0 * thd_straight,
        100.0 * thd_di
    );
    // Straight into the mic input the first grid is driven far past conduction.
    assert!(
        thd_straight > 0.10,
        "straight in: THD {:.2} %",
        100.0 * thd_straight
    );
    // Through the DI and its pad the first grid sees 36.6 dB less: clean.
    assert!(thd_di < 0.01, "through the DI: THD {:.3} %", 100.0 * thd_di);
    assert!(thd_straight / thd_di > 30.0);
}

// ---------------------------------------------------------------------------
// Loudness through the chain
// ---------------------------------------------------------------------------

/// K-weighting by the reference filter typed in from BS.1770's tables.
fn k_weighted(x: &[f32]) -> Vec<f64> {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    k_weighted_48k(&x)
}

/// Integrated loudness (LUFS) of stereo at 48 kHz per BS.1770-4: 400 ms
/// blocks every 100 ms, channel powers summed, absolute gate −70 LUFS,
/// relative gate 10 LU below the absolutely gated loudness.
fn integrated_lufs(channels: &[Vec<f32>]) -> f64 {
    let k: Vec<Vec<f64>> = channels.iter().map(|c| k_weighted(c)).collect();
    let (block, step) = (19_200, 4_800);
    let len = k[0].len();
    let z: Vec<f64> = (0..)
        .map(|b| b * step)
        .take_while(|s| s + block <= len)
        .map(|s| {
            k.iter()
                .map(|c| c[s..s + block].iter().map(|v| v * v).sum::<f64>() / block as f64)
                .sum()
        })
        .collect();
    let lufs = |p: f64| -0.691 + 10.0 * p.log10();
    let mean = |zs: &[f64]| zs.iter().sum::<f64>() / zs.len() as f64;
    let abs: Vec<f64> = z.iter().copied().filter(|&p| lufs(p) > -70.0).collect();
    let rel = lufs(mean(&abs)) - 10.0;
    let gated: Vec<f64> = abs.into_iter().filter(|&p| lufs(p) > rel).collect();
    lufs(mean(&gated))
}

/// Scale `x` to `dbfs` rms.
fn at_rms(mut x: Vec<f64>, dbfs: f64) -> Vec<f32> {
    let r = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    let g = 10f64.powf(dbfs / 20.0) / r;
    x.iter_mut().map(|v| (*v * g) as f32).collect()
}

/// Pink noise at `dbfs` rms.
fn pink(len: usize, dbfs: f64, seed: u64) -> Vec<f32> {
    at_rms(pink_noise(len, seed), dbfs)
}

/// Music-like material at `dbfs` rms.
fn music(len: usize, dbfs: f64, seed: u64) -> Vec<f32> {
    at_rms(music_like(len, 48_000.0, seed), dbfs)
}

/// Run stereo through a fresh chain at 48 kHz in blocks of `block`.
fn through(settings: ChainSettings, input: &[Vec<f32>], block: usize) -> Vec<Vec<f32>> {
    run_chain(settings, input, 48_000.0, block).0
}

/// A mic track at −20 dBFS rms into the preamp at high gain (the first grid
/// conducts on peaks), auto-gain on, output trim +6 dB.
fn driven() -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        preamp: PreampSettings {
            gain_db: 60.0,
            ..PreampSettings::default()
        },
        auto_gain: true,
        out_trim_db: 6.0,
        ..ChainSettings::default()
    }
}

#[test]
fn compare_plays_the_dry_signal_at_the_output_loudness() {
    let len = 48_000 * 8;
    for (name, input) in [
        ("pink", vec![pink(len, -20.0, 3), pink(len, -20.0, 5)]),
        ("music", vec![music(len, -20.0, 3), music(len, -20.0, 4)]),
    ] {
        for settings in [
            driven(),
            ChainSettings {
                auto_gain: false,
                preamp: PreampSettings {
                    level_db: -50.0,
                    ..driven().preamp
                },
                ..driven()
            },
        ] {
            let off = through(settings, &input, 256);
            let on = through(
                ChainSettings {
                    compare: true,
                    ..settings
                },
                &input,
                256,
            );
            let (l_off, l_on, l_in) = (
                integrated_lufs(&off),
                integrated_lufs(&on),
                integrated_lufs(&input),
            );
            println!(
                "{name}, auto-gain {}: in {l_in:.2} LUFS, compare off {l_off:.2}, on {l_on:.2}",
                settings.auto_gain
            );
            assert!(
                (l_on - l_off).abs() < 0.5,
                "{name}: compare on {l_on:.2} LUFS, off {l_off:.2} LUFS"
            );
            // The dry signal is really what plays: not the processed one
            // (auto-gain off leaves a large level difference to undo).
            if !settings.auto_gain {
                assert!((l_off - l_in).abs() > 6.0, "{l_off} vs {l_in}");
            }
        }
    }
}

#[test]
fn switching_compare_on_is_already_matched() {
    // Six seconds with compare off, then on: the second after the switch
    // is as loud as the second before it.
    let len = 48_000 * 8;
    let input = [pink(len, -20.0, 9), pink(len, -20.0, 10)];
    let mut chain = Chain::new();
    chain.set_settings(driven());
    chain.prepare(48_000.0, 2);
    let switch = 48_000 * 6;
    let head: Vec<Vec<f32>> = input.iter().map(|c| c[..switch].to_vec()).collect();
    let tail: Vec<Vec<f32>> = input.iter().map(|c| c[switch..].to_vec()).collect();
    let before = process_with(&mut chain, &head, 512);
    chain.set_settings(ChainSettings {
        compare: true,
        ..driven()
    });
    let after = process_with(&mut chain, &tail, 512);
    let second = |x: &[Vec<f32>], from: usize| -> Vec<Vec<f32>> {
        x.iter().map(|c| c[from..from + 48_000].to_vec()).collect()
    };
    let (l_before, l_after) = (
        integrated_lufs(&second(&before, switch - 48_000)),
        // Skip the 20 ms crossfade.
        integrated_lufs(&second(&after, 960)),
    );
    assert!(
        (l_after - l_before).abs() < 0.5,
        "before {l_before:.2} LUFS, after {l_after:.2} LUFS"
    );
}

#[test]
fn compare_with_every_stage_out_is_the_dry_signal() {
    let len = 48_000 * 3;
    let input = vec![music(len, -20.0, 1), pink(len, -30.0, 2)];
    let s = ChainSettings {
        compare: true,
        ..ChainSettings::default()
    };
    let (out, latency) = run_chain(s, &input, 48_000.0, 100);
    for (o, i) in out.iter().zip(&input) {
        assert!(o[..latency].iter().all(|v| *v == 0.0));
        let worst = o[latency..]
            .iter()
            .zip(i)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "worst difference {worst}");
    }
}

#[test]
fn the_renderer_takes_compare() {
    // `compare=on` reaches the chain: with the preamp driven and auto-gain
    // off, the output is the dry signal at the processed loudness, so the
    // spectrum of a sine keeps no harmonics.
    let tone = tone_at_dbu(4.0, 3.0);
    let wet = render(&tone, &LINE_INTO_DRIVEN_PREAMP);
    let mut with_compare = LINE_INTO_DRIVEN_PREAMP.to_vec();
    with_compare.push("compare=on");
    let dry = render(&tone, &with_compare);
    let tail = |x: &[f32]| thd(&x[x.len() - 48_000..], 1000);
    assert!(tail(&wet) > 0.01, "driven: THD {}", tail(&wet));
    assert!(tail(&dry) < 1e-4, "compare: THD {}", tail(&dry));
    let level = |x: &[f32]| rms_db(&x[x.len() - 48_000..]);
    assert!((level(&wet) - level(&dry)).abs() < 1.0);
}

/// A mic track into the preamp at `gain_db` / `level_db`, auto-gain on.
fn mic_into_auto_gained_preamp(gain_db: f64, level_db: f64) -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        auto_gain: true,
        preamp: PreampSettings {
            gain_db,
            level_db,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    }
}

#[test]
fn auto_gain_matches_the_demo_at_full_gain_without_a_start_overshoot() {
    // Reported: at Gain 60 dB / Level 0 dB the demo came out 1.5 dB louder
    // (integrated) with a 27 dB peak overshoot at the start, because the
    // chain handed the auto-gain its static compensation only on a
    // settings change, never in `prepare`.
    let input = tubeline::render::demo_signal(48_000.0);
    for (gain_db, level_db) in [(60.0, 0.0), (60.0, -30.0), (30.0, 0.0), (0.0, 0.0)] {
        let s = mic_into_auto_gained_preamp(gain_db, level_db);
        let (out, latency) = run_chain(s, &input, 48_000.0, 512);
        let (l_in, l_out) = (integrated_lufs(&input), integrated_lufs(&out));
        println!("gain {gain_db} level {level_db}: in {l_in:.2} LUFS, out {l_out:.2} LUFS");
        assert!(
            (l_out - l_in).abs() < 0.5,
            "gain {gain_db} level {level_db}: in {l_in:.2} LUFS, out {l_out:.2} LUFS"
        );
        // The first 100 ms peak no higher than the steady tone after it
        // (the tone is constant from 10 ms to 1.5 s).
        let peak = |from: usize, to: usize| {
            out.iter()
                .flat_map(|c| c[latency + from..latency + to].iter())
                .fold(0.0f32, |m, v| m.max(v.abs()))
        };
        let (start, steady) = (peak(0, 4_800), peak(24_000, 72_000));
        let over = 20.0 * (start / steady).log10();
        assert!(
            over < 1.0,
            "gain {gain_db} level {level_db}: start peak {over:.1} dB over steady"
        );
    }
}

#[test]
fn auto_gain_matches_loudness_over_the_gain_and_level_range() {
    // Issue 3: within ±0.5 dB integrated loudness on pink noise and on a
    // music-like signal over the whole Gain and Level range, through the
    // chain as the plugin runs it (mic source, the track at −20 dBFS rms).
    let len = 8 * 48_000;
    let signals = [
        ("pink", vec![pink(len, -20.0, 21), pink(len, -20.0, 22)]),
        ("music", vec![music(len, -20.0, 23), music(len, -20.0, 24)]),
    ];
    for (name, input) in &signals {
        let l_in = integrated_lufs(input);
        let mut worst = 0.0f64;
        for gain_db in [0.0, 20.0, 40.0, 60.0] {
            for level_db in [-60.0, -30.0, 0.0] {
                let out = through(mic_into_auto_gained_preamp(gain_db, level_db), input, 512);
                let l_out = integrated_lufs(&out);
                assert!(
                    (l_out - l_in).abs() <= 0.5,
                    "{name}, gain {gain_db} level {level_db}: in {l_in:.2} LUFS, out {l_out:.2} LUFS"
                );
                worst = worst.max((l_out - l_in).abs());
            }
        }
        println!("{name}: auto-gain within {worst:.2} dB of the input's loudness");
    }
}

// ---------------------------------------------------------------------------
// Every tube type and high-pass setting, end to end through the chain
// ---------------------------------------------------------------------------

/// Amplitude ratio output/input at `freq` through a chain with `preamp`
/// (pro line source, so track and output volts share one scale; auto-gain
/// off), measured with an exact-bin DFT over the last second of three.
fn chain_gain(preamp: PreampSettings, freq: f64, amp: f64) -> f64 {
    let s = ChainSettings {
        source: Source::ProLine,
        pre_on: true,
        auto_gain: false,
        preamp,
        ..ChainSettings::default()
    };
    let x = sine(freq, amp, 48_000.0, 48_000 * 3);
    let (out, _) = run_chain(s, std::slice::from_ref(&x), 48_000.0, 480);
    let bin = freq as usize;
    spectrum(&out[0][96_000..])[bin] / spectrum(&x[96_000..])[bin]
}

#[test]
fn each_high_pass_setting_has_its_butterworth_slope() {
    // A 2nd-order Butterworth high-pass at fc: |H(f)| = (f/fc)² / √(1 + (f/fc)⁴).
    // The coupling capacitors add about −0.07 dB at 40 Hz (corners ≤ 3.4 Hz),
    // the partly bypassed cathodes −0.38 dB (computed below).
    let bw = |f: f64, fc: f64| {
        let r = (f / fc).powi(2);
        r / (1.0 + r * r).sqrt()
    };
    for (hpf, fc) in [
        (HighPass::Off, None),
        (HighPass::Hz40, Some(40.0)),
        (HighPass::Hz80, Some(80.0)),
        (HighPass::Hz120, Some(120.0)),
    ] {
        let p = PreampSettings {
            gain_db: 0.0,
            hpf,
            ..PreampSettings::default()
        };
        let amp = 1e-4;
        let measured = 20.0 * (chain_gain(p, 40.0, amp) / chain_gain(p, 1000.0, amp)).log10();
        let expected = fc.map_or(0.0, |fc| 20.0 * (bw(40.0, fc) / bw(1000.0, fc)).log10())
            + cathode_loss_db(TubeType::Tube12AX7, 40.0)
            - cathode_loss_db(TubeType::Tube12AX7, 1000.0);
        assert!(
            (measured - expected).abs() < 0.15,
            "{hpf:?}: 40 Hz re 1 kHz {measured:.2} dB, Butterworth {expected:.2} dB"
        );
    }
}

/// Koren's published constants (μ, ex, kg1, kp, kvb), typed in again.
fn koren(t: TubeType) -> [f64; 5] {
    match t {
        TubeType::Tube12AX7 => [100.0, 1.4, 1060.0, 600.0, 300.0],
        TubeType::Tube12AT7 => [60.0, 1.35, 460.0, 300.0, 300.0],
        TubeType::Tube12AU7 => [21.5, 1.3, 1180.0, 84.0, 300.0],
    }
}

/// Koren plate current for grid and plate voltages re the cathode.
fn koren_ip(k: [f64; 5], vgk: f64, vpk: f64) -> f64 {
    let [mu, ex, kg1, kp, kvb] = k;
    let e1 = vpk / kp * (1.0 + (kp * (1.0 / mu + vgk / (kvb + vpk * vpk).sqrt())).exp()).ln();
    if e1 > 0.0 {
        2.0 * e1.powf(ex) / kg1
    } else {
        0.0
    }
}

/// gm and gp (= 1/rp) of the docs/DESIGN.md stage (B+ 250 V, Ra 100 kΩ,
/// Rk 1.5 kΩ) at its operating point, solved here: bisection on
/// Vk = Rk·Ip with a bisection for the plate, numerical partials.
fn koren_point(t: TubeType) -> (f64, f64) {
    let k = koren(t);
    let (bplus, ra, rk) = (250.0, 100e3, 1.5e3);
    let plate = |vgk: f64, vk: f64| {
        // Vp with Vp = B+ − Ra·Ip, by bisection.
        let (mut lo, mut hi) = (vk, bplus);
        for _ in 0..200 {
            let vp = 0.5 * (lo + hi);
            if vp - bplus + ra * koren_ip(k, vgk, vp - vk) > 0.0 {
                hi = vp;
            } else {
                lo = vp;
            }
        }
        0.5 * (lo + hi)
    };
    let (mut lo, mut hi) = (0.0, 20.0);
    for _ in 0..200 {
        let vk = 0.5 * (lo + hi);
        let ip = (bplus - plate(-vk, vk)) / ra;
        if vk > rk * ip {
            hi = vk;
        } else {
            lo = vk;
        }
    }
    let vk = 0.5 * (lo + hi);
    let vpk = plate(-vk, vk) - vk;
    let h = 1e-4;
    let gm = (koren_ip(k, -vk + h, vpk) - koren_ip(k, -vk - h, vpk)) / (2.0 * h);
    let gp = (koren_ip(k, -vk, vpk + h) - koren_ip(k, -vk, vpk - h)) / (2.0 * h);
    (gm, gp)
}

/// Small-signal 1 kHz gain of the whole preamp, solved here: each stage's
/// gain A = gm·(Ra ‖ rp) at the operating point ([`koren_point`]); two
/// stages, each behind its grid-leak divider Rg/(Rsource + Rg) (1 MΩ;
/// 15 kΩ for the mic transformer, Ra ‖ rp for stage 2 on the Level pot),
/// Level between them, and the output divider 220 kΩ/(220 kΩ + Ra ‖ rp).
/// (Wired, each plate's load is on its curve instead; for small signals
/// the two are the same.)
fn preamp_gain(t: TubeType, gain_db: f64, level_db: f64) -> f64 {
    let (gm, gp) = koren_point(t);
    let ra = 100e3;
    let ro = 1.0 / (1.0 / ra + gp);
    let a = gm * ro;
    let db = |g: f64| 10f64.powf(g / 20.0);
    let rg = 1e6;
    db(gain_db) * rg / (15e3 + rg) * a * db(level_db) * rg / (ro + rg) * a * 220e3 / (220e3 + ro)
}

/// The two bypassed cathodes' loss at f against full bypass, dB: each
/// stage's gain is −μ·Rac/(rp + Rac + (μ + 1)·Zk), Zk = 1.5 kΩ ‖ 22 µF,
/// Rac = Ra ‖ 1 MΩ (stage 1, loaded by the Level pot) and Ra ‖ 220 kΩ
/// (stage 2, by the output).
fn cathode_loss_db(t: TubeType, f: f64) -> f64 {
    let (gm, gp) = koren_point(t);
    let (rp, mu) = (1.0 / gp, gm / gp);
    let zk = Complex64::new(1.5e3, 0.0)
        / Complex64::new(1.0, 2.0 * std::f64::consts::PI * f * 1.5e3 * 22e-6);
    [1e6, 220e3]
        .iter()
        .map(|rl| {
            let rac = 100e3 * rl / (100e3 + rl);
            20.0 * ((rp + rac) / (zk * (mu + 1.0) + rp + rac).norm()).log10()
        })
        .sum()
}

#[test]
fn each_tube_type_gives_its_koren_small_signal_gain() {
    let mut gains = Vec::new();
    for t in [
        TubeType::Tube12AX7,
        TubeType::Tube12AT7,
        TubeType::Tube12AU7,
    ] {
        let p = PreampSettings {
            gain_db: 0.0,
            level_db: -20.0,
            tube: t,
            ..PreampSettings::default()
        };
        let measured = 20.0 * chain_gain(p, 1000.0, 1e-4).log10();
        let expected = 20.0 * preamp_gain(t, 0.0, -20.0).log10();
        println!("{t:?}: measured {measured:.2} dB, Koren {expected:.2} dB");
        assert!(
            (measured - expected).abs() < 0.2,
            "{t:?}: measured {measured:.2} dB, Koren small-signal {expected:.2} dB"
        );
        gains.push(measured);
    }
    // High-μ gains most, low-μ least, by several dB each.
    assert!(
        gains[0] > gains[1] + 3.0 && gains[1] > gains[2] + 3.0,
        "{gains:?}"
    );
}

// ---------------------------------------------------------------------------
// The mic's loading of the preamp input, end to end through the chain
// ---------------------------------------------------------------------------

/// A parallel R-L-C resonance (a motional impedance): peak `r` ohms at
/// `f0` Hz with quality `q` (L = R/(ω0 Q), C = Q/(ω0 R)).
fn motional(r: f64, f0: f64, q: f64, s: Complex64) -> Complex64 {
    let w0 = 2.0 * std::f64::consts::PI * f0;
    let (l, c) = (r / (w0 * q), q / (w0 * r));
    1.0 / (1.0 / r + 1.0 / (s * l) + s * c)
}

/// A microphone's output impedance at `f` Hz, from the component values
/// docs/DESIGN.md gives (§ Mic source), typed in again.
fn z_mic(model: MicModel, f: f64) -> Complex64 {
    let s = Complex64::new(0.0, 2.0 * std::f64::consts::PI * f);
    match model {
        MicModel::None => Complex64::new(0.0, 0.0),
        // R_dc + (L_e ‖ R_e) + motional.
        MicModel::Dynamic => {
            let le = s * 0.040;
            140.0 + le * 450.0 / (le + 450.0) + motional(180.0, 150.0, 1.4, s)
        }
        // R_w + n² (R_r + motional) + s L_k, 1:35.
        MicModel::Ribbon => 60.0 + 1225.0 * (0.19 + motional(0.612, 30.0, 2.0, s)) + s * 2.5e-3,
        MicModel::Condenser => Complex64::new(100.0, 0.0),
    }
}

/// Gain at `freq` from the track to the output of a chain with the preamp
/// in (auto-gain off unless `auto_gain`) and the mic `mic`, over the last
/// second of three.
fn gain_with_mic(mic: MicSettings, auto_gain: bool, freq: f64) -> f64 {
    let s = ChainSettings {
        source: Source::ProLine,
        pre_on: true,
        auto_gain,
        mic,
        preamp: PreampSettings {
            gain_db: 0.0,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    };
    let x = sine(freq, 1e-3, 48_000.0, 48_000 * 3);
    let (out, _) = run_chain(s, std::slice::from_ref(&x), 48_000.0, 480);
    let bin = freq as usize;
    spectrum(&out[0][96_000..])[bin] / spectrum(&x[96_000..])[bin]
}

#[test]
fn the_mic_is_loaded_by_the_preamp_input_through_the_chain() {
    // The preamp's input gets V_mic · Z_in / (Z_in + Z_mic(f)): against
    // the ideal source, every mic on its input impedance loses what the
    // divider of its network says, within 0.05 dB (the tubes are nearly
    // linear at this level, and the ratio takes out what they do).
    for (model, in_z, freq) in [
        (MicModel::Dynamic, 300.0, 1000.0),
        (MicModel::Dynamic, 300.0, 150.0),
        (MicModel::Dynamic, 2400.0, 1000.0),
        (MicModel::Ribbon, 1200.0, 1000.0),
        (MicModel::Ribbon, 300.0, 30.0),
        (MicModel::Condenser, 600.0, 1000.0),
    ] {
        let ideal = gain_with_mic(MicSettings::default(), false, freq);
        let mic = MicSettings {
            model,
            in_z_ohms: in_z,
        };
        let measured = 20.0 * (gain_with_mic(mic, false, freq) / ideal).log10();
        let expected = 20.0 * (in_z / (in_z + z_mic(model, freq))).norm().log10();
        assert!(
            (measured - expected).abs() < 0.05,
            "{model:?} into {in_z} ohm at {freq} Hz: {measured:.3} dB, the divider gives {expected:.3} dB"
        );
    }
}

#[test]
fn auto_gain_takes_back_the_mic_loading_at_once() {
    // The section's small-signal gain includes the mic loading at 1 kHz,
    // so the auto-gain's static compensation takes it back: a dynamic on
    // 300 ohm (−5.7 dB at 1 kHz) plays a 1 kHz tone at the level of the
    // ideal source.
    let ideal = gain_with_mic(MicSettings::default(), true, 1000.0);
    let mic = MicSettings {
        model: MicModel::Dynamic,
        in_z_ohms: 300.0,
    };
    let loaded = 20.0 * (gain_with_mic(mic, true, 1000.0) / ideal).log10();
    assert!(
        loaded.abs() < 0.05,
        "{loaded:.3} dB against the ideal source"
    );
}

// ---------------------------------------------------------------------------
// The solid-state preamp, end to end through the chain
// ---------------------------------------------------------------------------

/// Output of a chain with the solid-state preamp at `gain_db` / `level_db`
/// (pro line source, auto-gain off) for a 1 kHz sine of peak `amp`: the
/// last second of three.
fn solid_state_out(gain_db: f64, level_db: f64, amp: f64) -> (Vec<f32>, Vec<f32>) {
    let s = ChainSettings {
        source: Source::ProLine,
        pre_on: true,
        pre_type: PreampType::SolidState,
        auto_gain: false,
        preamp: PreampSettings {
            gain_db,
            level_db,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    };
    let x = sine(1000.0, amp, 48_000.0, 48_000 * 3);
    let (out, latency) = run_chain(s, std::slice::from_ref(&x), 48_000.0, 480);
    (
        out[0][96_000..].to_vec(),
        x[96_000 - latency..144_000 - latency].to_vec(),
    )
}

#[test]
fn the_solid_state_preamp_is_clean_up_to_its_clip_level_through_the_chain() {
    // Its clean gain is Gain + Level + 69.6 dB (the 12AX7 preamp's own
    // small-signal gain above Gain + Level, so both play at one level), and
    // it stays under 0.001 % THD up to 1 dB under its clip level: ±13.3 V
    // peak at the output, +21.7 dBu.
    let (gain_db, level_db) = (30.0, -20.0);
    let gain = 10f64.powf((gain_db + level_db + 69.6) / 20.0);
    // Volts per track unit at the default calibration (+18 dBu full scale).
    let volts = 10f64.powf(CAL_DBU / 20.0) * 0.774_596_669_241_483_4 * 2f64.sqrt();
    let clip_peak = 13.3;
    let amp = clip_peak * 10f64.powf(-1.0 / 20.0) / gain / volts;
    let (out, x) = solid_state_out(gain_db, level_db, amp);
    let measured = 20.0 * (spectrum(&out)[1000] / spectrum(&x)[1000]).log10();
    let expected = gain_db + level_db + 69.6;
    assert!(
        (measured - expected).abs() < 0.02,
        "gain {measured:.3} dB, expected {expected:.3} dB"
    );
    let clean = thd(&out, 1000);
    assert!(
        clean < 1e-5,
        "THD {:.2e} % at 1 dB under clip",
        clean * 100.0
    );
    // 4 dB over the clip level it clips: the output's peak stays at the
    // swing (within 2 %: the downsampler band-limits the clipped wave,
    // whose Gibbs ringing overshoots a little) and the distortion is plain.
    let (out, _) = solid_state_out(gain_db, level_db, amp * 10f64.powf(4.0 / 20.0));
    let peak = out.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64 * volts;
    assert!(peak < clip_peak * 1.02, "peak {peak:.3} V over the swing");
    assert!(
        thd(&out, 1000) > 0.01,
        "no clipping 4 dB over the clip level"
    );
}

/// A chain with the input transformer `in_xfmr` (ideal source into
/// `in_z`), the clean solid-state preamp at Gain 0 / Level −60 dB, auto-gain
/// off: the output for a sine of `freq` at `dbu` rms at the primary (pro
/// line source: the track's volts are the primary's), the last second of
/// three.
fn through_input_transformer(in_xfmr: bool, in_z: f64, freq: f64, dbu: f64) -> Vec<f32> {
    let s = ChainSettings {
        source: Source::ProLine,
        pre_on: true,
        pre_type: PreampType::SolidState,
        auto_gain: false,
        in_xfmr,
        mic: MicSettings {
            model: MicModel::None,
            in_z_ohms: in_z,
        },
        preamp: PreampSettings {
            gain_db: 0.0,
            level_db: -60.0,
            ..PreampSettings::default()
        },
        ..ChainSettings::default()
    };
    let x = tone_at_dbu_freq(dbu, freq, 3.0);
    let (out, _) = run_chain(s, std::slice::from_ref(&x), 48_000.0, 480);
    out[0][96_000..].to_vec()
}

/// A sine of `freq` at `dbu` rms under the default calibration.
fn tone_at_dbu_freq(dbu: f64, freq: f64, secs: f64) -> Vec<f32> {
    let peak = 10f64.powf((dbu - CAL_DBU) / 20.0);
    sine(freq, peak, 48_000.0, (48_000.0 * secs) as usize)
}

#[test]
fn the_input_transformer_keeps_the_level_and_saturates_at_the_bottom() {
    // The Gain control counts the transformer's 20 dB: switched in, the
    // 1 kHz level stays within the transformer's own deviation from its
    // ratio at that termination (its input impedance is 2.10 kohm on the
    // 2.4 kohm setting, core loss; 0.1 dB).
    for in_z in [1200.0, 2400.0] {
        let level = |on| {
            let y = through_input_transformer(on, in_z, 1000.0, -30.0);
            spectrum(&y)[1000]
        };
        let change = 20.0 * (level(true) / level(false)).log10();
        assert!(
            change.abs() < 0.1,
            "{in_z} ohm: {change:.3} dB switching it in"
        );
    }
    // Its core saturates at low frequencies: at −30 dBu at the primary the
    // 20 Hz sine comes out with at least 20 dB more THD than the 1 kHz one,
    // and far more than without it (the solid-state pre is clean here).
    let thd_at = |on, f: f64| thd(&through_input_transformer(on, 2400.0, f, -30.0), f as usize);
    let (low, mid, low_without) = (
        thd_at(true, 20.0),
        thd_at(true, 1000.0),
        thd_at(false, 20.0),
    );
    assert!(
        low > 10.0 * mid && low > 10.0 * low_without,
        "THD at 20 Hz {:.4} % (without it {:.6} %), at 1 kHz {:.6} %",
        100.0 * low,
        100.0 * low_without,
        100.0 * mid
    );
}
