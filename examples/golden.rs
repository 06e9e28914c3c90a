//! Same sound, proved: renders a fixed set of settings, signals and moves
//! through the chain and either writes the outputs (`golden write DIR`) or
//! compares them with a set written before (`golden compare DIR`).
//!
//! Used when the DSP core is restructured: write with the old code, compare
//! with the new. `compare` prints, per case, how many samples differ and by
//! how many `f32` ulps at most, and exits non-zero if any case differs by
//! more than `--max-ulps` (default 0: bit-identical).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

use tubeline::dsp::chain::{Chain, ChainSettings, Source};
use tubeline::dsp::headphone::HeadphoneModel;
use tubeline::dsp::oversampling::Quality;
use tubeline::dsp::transformer::{DiPad, DiSource, TurnsRatio};
use tubeline::dsp::tube::{HighPass, TubeType};

/// One render: settings at the start, then settings changes at given samples.
struct Case {
    name: String,
    sample_rate: f64,
    channels: usize,
    block: usize,
    signal: fn(f64, usize, usize) -> f32,
    start: ChainSettings,
    moves: Vec<(usize, ChainSettings)>,
}

const SECONDS: f64 = 0.6;

fn sine_1k(sr: f64, c: usize, i: usize) -> f32 {
    (0.125 * (TAU * 1000.0 * i as f64 / sr + c as f64).sin()) as f32
}

fn sine_7k(sr: f64, _c: usize, i: usize) -> f32 {
    (0.125 * (TAU * 7000.0 * i as f64 / sr).sin()) as f32
}

fn noise(_sr: f64, c: usize, i: usize) -> f32 {
    // A hash of (channel, index): order independent, deterministic.
    let mut s = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (c as u64 + 7) << 40;
    s ^= s >> 31;
    s = s.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    s ^= s >> 29;
    let u = (s >> 11) as f64 / (1u64 << 53) as f64;
    (0.2 * (2.0 * u - 1.0)) as f32
}

fn burst(sr: f64, c: usize, i: usize) -> f32 {
    let t = i as f64 / sr;
    if t < 0.25 {
        (0.9 * (TAU * 220.0 * t + c as f64).sin()) as f32
    } else {
        0.0
    }
}

fn cases() -> Vec<Case> {
    let base = ChainSettings::default();
    let pre = ChainSettings {
        pre_on: true,
        ..base
    };
    let mut out = Vec::new();
    let mut add = |name: &str,
                   sr: f64,
                   ch: usize,
                   block: usize,
                   signal: fn(f64, usize, usize) -> f32,
                   start: ChainSettings,
                   moves: Vec<(usize, ChainSettings)>| {
        out.push(Case {
            name: name.to_string(),
            sample_rate: sr,
            channels: ch,
            block,
            signal,
            start,
            moves,
        });
    };
    add("all_out", 48000.0, 2, 256, noise, base, vec![]);
    for (q, qn) in [(Quality::Live, "live"), (Quality::High, "high")] {
        for (t, tn) in [
            (TubeType::Tube12AX7, "ax7"),
            (TubeType::Tube12AT7, "at7"),
            (TubeType::Tube12AU7, "au7"),
        ] {
            for gain in [20.0, 45.0, 60.0] {
                let mut s = pre;
                s.quality = q;
                s.preamp.tube = t;
                s.preamp.gain_db = gain;
                add(
                    &format!("pre_{qn}_{tn}_g{gain}_1k"),
                    48000.0,
                    2,
                    256,
                    sine_1k,
                    s,
                    vec![],
                );
            }
        }
        let mut s = pre;
        s.quality = q;
        s.preamp.gain_db = 50.0;
        add(
            &format!("pre_{qn}_g50_7k"),
            48000.0,
            2,
            256,
            sine_7k,
            s,
            vec![],
        );
        add(
            &format!("pre_{qn}_g50_noise_mono"),
            44100.0,
            1,
            100,
            noise,
            s,
            vec![],
        );
        add(
            &format!("pre_{qn}_g50_burst_96k"),
            96000.0,
            2,
            512,
            burst,
            s,
            vec![],
        );
    }
    {
        let mut s = pre;
        s.auto_gain = false;
        s.preamp.bias = 0.7;
        s.preamp.hpf = HighPass::Hz80;
        s.preamp.level_db = -6.0;
        s.preamp.output_db = 3.0;
        s.pad = true;
        s.polarity = true;
        s.source = Source::Mic;
        s.in_trim_db = 6.0;
        add(
            "pre_noag_bias_hpf_pad_pol",
            48000.0,
            2,
            333,
            noise,
            s,
            vec![],
        );
    }
    for (src, sn) in [
        (DiSource::LineOut, "line"),
        (DiSource::Keyboard, "keys"),
        (DiSource::PassivePickup, "pickup"),
    ] {
        let mut s = base;
        s.di_on = true;
        s.di.source = src;
        s.di.ratio = TurnsRatio::R10;
        s.di.pad = DiPad::Db15;
        s.di.ground_lift = false;
        s.source = Source::Instrument;
        add(&format!("di_{sn}"), 48000.0, 2, 256, burst, s, vec![]);
        s.pre_on = true;
        s.preamp.gain_db = 40.0;
        add(&format!("di_{sn}_pre"), 48000.0, 2, 256, noise, s, vec![]);
    }
    for (m, mn) in [
        (HeadphoneModel::Closed32, "closed32"),
        (HeadphoneModel::Dynamic80, "dyn80"),
        (HeadphoneModel::Dynamic250, "dyn250"),
        (HeadphoneModel::Open300, "open300"),
        (HeadphoneModel::Dynamic600, "dyn600"),
        (HeadphoneModel::Planar, "planar"),
    ] {
        let mut s = base;
        s.hp_on = true;
        s.headphone.model = m;
        s.headphone.amp_z_ohms = 120.0;
        s.headphone.volume_db = 6.0;
        s.headphone.swing_volts = 2.0;
        add(&format!("hp_{mn}"), 48000.0, 2, 256, burst, s, vec![]);
    }
    {
        let mut s = pre;
        s.hp_on = true;
        s.di_on = true;
        s.mix = 0.7;
        s.out_trim_db = -3.0;
        s.compare = false;
        add("everything_in", 48000.0, 2, 256, noise, s, vec![]);
        let mut c = s;
        c.compare = true;
        add("compare", 48000.0, 2, 256, noise, c, vec![]);
    }
    // Moves while audio plays: every kind of change the chain handles.
    {
        let n = |t: f64| (t * 48000.0) as usize;
        let mut a = pre;
        a.preamp.gain_db = 20.0;
        let mut b = a;
        b.preamp.gain_db = 55.0;
        let mut c = b;
        c.preamp.tube = TubeType::Tube12AU7;
        let mut d = c;
        d.di_on = true;
        let mut e = d;
        e.quality = Quality::High;
        let mut f = e;
        f.in_trim_db = 12.0;
        let mut g = f;
        g.pre_on = false;
        let mut h = g;
        h.hp_on = true;
        h.headphone.amp_z_ohms = 50.0;
        let mut i = h;
        i.bypass = true;
        add(
            "moves",
            48000.0,
            2,
            128,
            noise,
            a,
            vec![
                (n(0.05), b),
                (n(0.1), c),
                (n(0.13), d),
                (n(0.2), e),
                (n(0.3), f),
                (n(0.35), g),
                (n(0.42), h),
                (n(0.5), i),
            ],
        );
        let mut p = a;
        p.auto_gain = false;
        let mut q = p;
        q.preamp.level_db = -20.0;
        q.polarity = true;
        let mut r = q;
        r.pre_on = false;
        let mut t = r;
        t.pre_on = true;
        t.auto_gain = true;
        add(
            "moves_mono",
            44100.0,
            1,
            97,
            sine_1k,
            p,
            vec![(n(0.1), q), (n(0.2), r), (n(0.3), t)],
        );
    }
    out
}

fn render(case: &Case) -> Vec<f32> {
    let len = (SECONDS * case.sample_rate) as usize;
    let mut chain = Chain::new();
    chain.set_settings(case.start);
    chain.prepare(case.sample_rate, case.channels);
    let mut bufs: Vec<Vec<f32>> = vec![vec![0.0; case.block]; case.channels];
    let mut out = Vec::with_capacity(len * case.channels);
    let mut pos = 0;
    let mut next_move = 0;
    while pos < len {
        let mut n = case.block.min(len - pos);
        if let Some(&(at, s)) = case.moves.get(next_move) {
            if at <= pos {
                chain.set_settings(s);
                next_move += 1;
                continue;
            }
            n = n.min(at - pos);
        }
        for (c, b) in bufs.iter_mut().enumerate() {
            for (k, v) in b[..n].iter_mut().enumerate() {
                *v = (case.signal)(case.sample_rate, c, pos + k);
            }
        }
        let mut slices: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[..n]).collect();
        chain.process(&mut slices);
        for k in 0..n {
            for b in &bufs {
                out.push(b[k]);
            }
        }
        pos += n;
    }
    out
}

fn ulps(a: f32, b: f32) -> u64 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32;
        i64::from(if i < 0 { i32::MIN - i } else { i })
    };
    key(a).abs_diff(key(b))
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.f32"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: golden write DIR | golden compare DIR [--max-ulps N] [--only SUBSTR]";
    let (mode, dir) = match (args.get(1), args.get(2)) {
        (Some(m), Some(d)) => (m.as_str(), PathBuf::from(d)),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let max_ulps: u64 = flag("--max-ulps").map_or(0, |v| v.parse().expect("--max-ulps N"));
    let only = flag("--only");
    let mut worst_case = 0u64;
    for case in cases() {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        let out = render(&case);
        let p = path(&dir, &case.name);
        match mode {
            "write" => {
                std::fs::create_dir_all(&dir).expect("create the directory");
                let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(&p, bytes).expect("write a case");
                println!("{:<32} {} samples", case.name, out.len());
            }
            "compare" => {
                let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                let old: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                assert_eq!(old.len(), out.len(), "{}: length differs", case.name);
                let (mut differ, mut worst, mut worst_abs) = (0usize, 0u64, 0f32);
                for (&a, &b) in old.iter().zip(&out) {
                    let u = ulps(a, b);
                    if u > 0 {
                        differ += 1;
                        worst = worst.max(u);
                        worst_abs = worst_abs.max((a - b).abs());
                    }
                }
                worst_case = worst_case.max(worst);
                let verdict = if worst == 0 {
                    "identical"
                } else if worst <= max_ulps {
                    "within"
                } else {
                    "DIFFERS"
                };
                println!(
                    "{:<32} {verdict:<9} {differ:>7} of {:>7} samples differ, worst {worst} ulp ({worst_abs:.3e})",
                    case.name,
                    out.len()
                );
            }
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
    if mode == "compare" {
        println!("worst difference: {worst_case} ulp");
        if worst_case > max_ulps {
            std::process::exit(1);
        }
    }
}
