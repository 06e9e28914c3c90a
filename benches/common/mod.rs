//! What the chain benches share: the input, the settings benched, and one
//! second through a chain in host-sized blocks.

// Each bench uses its part of this module.
#![allow(dead_code)]

use tubeline::dsp::chain::{Chain, ChainSettings, PreampType, Source};
use tubeline::dsp::mic::{MicModel, MicSettings};
use tubeline::dsp::oversampling::Quality;

/// Host rate, Hz.
pub const RATE: f64 = 48_000.0;
/// Host block, samples.
pub const BLOCK: usize = 512;

/// Stereo white noise, ±0.25 peak, `len` samples per channel.
pub fn signal(len: usize) -> Vec<Vec<f32>> {
    let mut s = 0x1234_5678u32;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s as f32 / u32::MAX as f32 - 0.5) * 0.5
    };
    (0..2).map(|_| (0..len).map(|_| next()).collect()).collect()
}

/// A mic track into the live preamp (the tube chain the others are
/// measured against).
pub fn preamp_live() -> ChainSettings {
    ChainSettings {
        source: Source::Mic,
        pre_on: true,
        ..ChainSettings::default()
    }
}

/// The live preamp with a dynamic mic on 300 ohm.
pub fn dynamic_mic() -> ChainSettings {
    ChainSettings {
        mic: MicSettings {
            model: MicModel::Dynamic,
            in_z_ohms: 300.0,
        },
        ..preamp_live()
    }
}

/// The live preamp with a dynamic mic on 300 ohm through the input
/// transformer.
pub fn dynamic_mic_xfmr() -> ChainSettings {
    ChainSettings {
        in_xfmr: true,
        ..dynamic_mic()
    }
}

/// The solid-state preamp in the live tube preamp's place.
pub fn solid_state() -> ChainSettings {
    ChainSettings {
        pre_type: PreampType::SolidState,
        ..preamp_live()
    }
}

/// The benched configurations, by name.
pub fn configurations() -> Vec<(&'static str, ChainSettings)> {
    let preamp = preamp_live();
    vec![
        ("all_out_live", ChainSettings::default()),
        ("preamp_live", preamp),
        // Issue 16, item 7: what a loading mic adds to the live chain, and
        // the input transformer behind it.
        ("preamp_live_dynamic_mic", dynamic_mic()),
        ("preamp_live_dynamic_mic_xfmr", dynamic_mic_xfmr()),
        // The solid-state preamp in the tube's place.
        ("preamp_live_solid_state", solid_state()),
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
    ]
}

/// A chain prepared for stereo at [`RATE`] with `settings`.
pub fn prepared(settings: ChainSettings) -> Chain {
    let mut chain = Chain::new();
    chain.set_settings(settings);
    chain.prepare(RATE, 2);
    chain
}

/// `input` copied into `buf`, then through `chain` in [`BLOCK`]s.
pub fn process(chain: &mut Chain, buf: &mut [Vec<f32>], input: &[Vec<f32>]) {
    for (b, i) in buf.iter_mut().zip(input) {
        b.copy_from_slice(i);
    }
    for start in (0..buf[0].len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(buf[0].len());
        let (l, r) = buf.split_at_mut(1);
        chain.process(&mut [&mut l[0][start..end], &mut r[0][start..end]]);
    }
}
