//! Hover help for every control, in the words of README.md's parameter
//! table ("What it does"), so the manual and the editor say the same thing.
//! A test checks every parameter has help and that the text matches the
//! README's row (markdown removed), so the two cannot drift apart.

/// What the control with this parameter ID (or widget name) does; empty
/// for an unknown ID.
pub fn help(id: &str) -> &'static str {
    match id {
        "cal" => "Converter calibration: the dBu rms level of a full-scale sine. Used at the input (dBFS → volts) and the output (volts → dBFS), so on its own it changes nothing; it sets how hard the analog stages are driven.",
        "source" => "What the track stands for electrically: the level a +4 dBu line would have on this track stands for the source's nominal level. With every stage out, mic is 54 dB quieter, as a mic plugged into a line input is.",
        "in_trim" => "Gain before the chain.",
        "di_on" => "Switches the passive DI box in (a 20 ms crossfade).",
        "di_ratio" => "Step-down turns ratio: −21.58 / −20.00 / −18.06 dB. 12:1 is the Jensen JT-DB-E of the Radial JDI.",
        "di_pad" => "Resistive pad at the DI input.",
        "di_lift" => "Off: a ground loop adds hum (−65 dBu, mains frequency and harmonics) at the DI output.",
        "mains_hz" => "Frequency of the hum.",
        "di_source" => "What drives the DI. A pickup's resonance with its cable, against the DI's ~140 kΩ input, loads the top end.",
        "di_load" => "Input impedance of the mic preamp the DI feeds: it damps the transformer's high-frequency resonance.",
        "cable_m" => "The cable from the source to the DI, 100 pF per metre across the DI input. With the pickup the resonance moves down as the cable grows: 4.9 kHz on 3 m, 3.0 kHz on 10 m, 1.8 kHz on 30 m; on the 100 Ω line out 30 m change nothing measurable (< 0.01 dB to 20 kHz).",
        "mic" => "The microphone feeding the preamp, as its output impedance Z_mic(f) against the preamp's input impedance: the preamp gets V·Z_in/(Z_in + Z_mic(f)). none: an ideal source. dynamic: a moving coil behind its transformer (SM57 class: 303 Ω at 1 kHz, a bump at its 150 Hz resonance, 588 Ω at 20 kHz). ribbon: a passive ribbon through its step-up transformer (R-121 class: 293 Ω at 1 kHz, a 1 kΩ peak at its 30 Hz resonance, rising at the top). condenser: an active output, 100 Ω flat. It acts with the preamp in: it is the preamp's input that loads the mic.",
        "in_z" => "The preamp's input impedance, what the mic sees. A dynamic loses 5.7 dB at 1 kHz on 300 Ω and its response spans 6.1 dB from 20 Hz to 20 kHz; on 2.4 kΩ, 0.9 dB and 1.4 dB. A ribbon loses 1.9 dB on 1.2 kΩ (span 3.5 dB), 0.3 dB on 10 kΩ (span 0.6 dB). A ribbon wants at least 5× its impedance.",
        "in_xfmr" => "A 1:10 step-up mic transformer (Jensen JT-115K-E class, nickel core) in front of the preamp: +20.00 dB at 1 kHz into its rated 1.5 kΩ, with the Gain control counting it (switching it keeps the 1 kHz level and changes the character). Its core saturates at low frequencies on hot signals (1 % THD at 20 Hz at −2.5 dBu at the primary, 0.19 % at −10 dBu, against 0.00006 % at 1 kHz) with hysteresis, and its leakage and winding capacitance resonate near 107 kHz, damped by the termination in_z·N² (+0.3 dB at 20 kHz on 10 kΩ, none at 1.2 kΩ and below). The mic sees its real input impedance.",
        "pre_on" => "Switches the preamp in (tube or solid-state, pre_type).",
        "pre_type" => "tube: the two triode stages. solid_state: a transformerless op-amp mic pre as in an audio interface (THAT 1510 class), clean to its rails (±13.3 V on ±15 V: it clips at +21.7 dBu at its output, with under 0.001 % THD 1 dB below that) with the same Gain, Level, high-pass and output level; at the same settings it plays at the 12AX7's level, so A/B is one click (Auto Gain matches the rest). Tube and Bias do nothing on it.",
        "gain" => "Gain at the mic input: how hard the first triode's grid is driven by the voltage that arrives.",
        "level" => "The Level pot between the two triode stages (1 MΩ, audio taper): its wiper drives the second grid, so it sets how hard that stage is driven and the resistance behind its grid (the treble its input capacitance takes). Gain up and Level down is \"dirty but quiet\".",
        "tube" => "Koren model constants for both stages (μ ≈ 100 / 60 / 17).",
        "bias" => "Scales the cathode resistors by 2^(−bias): moves the operating point and the balance of H2 and H3.",
        "hpf" => "12 dB/oct Butterworth high-pass.",
        "pre_out" => "Output level of the preamp (after the auto-gain).",
        "auto_gain" => "Keeps the output loudness matched to the track's (K-weighted, 3 s), so you judge character, not level.",
        "pad" => "−20 dB at the preamp input.",
        "polarity" => "Polarity (phase) reverse at the preamp input.",
        "hp_on" => "Switches the headphone amp and its load in.",
        "amp_z" => "The amp's output impedance Zo. Typical: ideal 0.1, interface headphone out 10, consumer jack 33, IEC 61938 120, a preamp line out 600 Ω. The headphone gets V·Z(f)/(Z(f)+Zo).",
        "amp_vol" => "Gain of the amp before its swing limit.",
        "amp_swing" => "The amp's rails: soft clipping that never exceeds them.",
        "hp_model" => "The headphone load: a modelled one (lumped driver model; the IEM is a two-way balanced-armature network whose impedance rises from 8 to ~40 Ω), or custom, a measured impedance curve (CSV: frequency Hz, |Z| Ω, phase °) whose points are saved in the plugin state (hp_curve, with the file's path hp_csv as a hint), so the curve travels with the session or preset to a machine without the file. The filter is designed off the audio thread, and redesigned when amp_z moves; a malformed file keeps the previous load.",
        "hp_norm" => "Keep the 1 kHz level and keep the shape (off by default: the level loss is part of the lesson).",
        "out_trim" => "Gain after the chain.",
        "mix" => "Dry/wet. The dry signal is delayed to line up with the wet path's latency.",
        "bypass" => "The host's bypass: a 20 ms crossfade to the time-aligned dry signal.",
        "compare" => "Level-matched bypass: plays the time-aligned dry signal at the output's loudness (K-weighted, about 3 s), with a 20 ms crossfade, so you compare character, not level.",
        "quality" => "Oversampling of the preamp: Live 4× with low latency (polyphase IIR half-bands, 4–6 samples), High 16× and linear phase (FIR half-bands, 37–103 samples), and the tube preamp's output capacitor charging under heavy drive, as in the circuit (Live leaves that out to save CPU). Offline rendering always uses High. The mic source adds 6 samples and the headphone amp 4 to either, whatever is switched in.",
        "hp_csv" => "Path of a measured impedance curve (CSV: frequency Hz, |Z| ohm, phase degrees), used when Headphone is \"Measured curve (CSV)\". Press Enter to load it (UTF-8, UTF-16 or Latin-1 text, at most 1 MiB); its points are saved with the plugin state, so the session keeps the curve where the file is missing.",
        "presets" => "Factory presets named after real gain-staging situations, and your own presets (JSON files in the user folder shown in the menu). Loading goes through the host, so it can be undone.",
        "slot_A" | "slot_B" => "A/B: two complete settings, switched instantly. Each slot keeps every parameter; switching goes through the host.",
        "copy_slot" => "Copy the active slot's settings into the other slot.",
        "preset_name" => "Name of the preset to save (also its file name in the user folder).",
        "save_preset" => "Save the current settings as a user preset with this name (written to a temporary file and renamed into place).",
        "meter_input" | "meter_di" | "meter_mic" | "meter_preamp" | "meter_output" => "The level where the stage ends: dBu rms and dBFS peak. The LEDs light up to the rms level (dBFS, a full-scale sine reads 0); the single LEDs above are the peak (falling about 77 dB/s) and the peak held for 1.5 s. Yellow above −6, red above 0.",
        "meter_headphone" => "The voltage across the headphone, the power into it and its current. The LEDs show the voltage in dB re the amp's rails (Amp Swing): up to the rms level, the peak and the peak held for 1.5 s. Red above 0: the amp clips softly.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nice_plug::prelude::Params;

    /// The "What it does" cell of each row of README.md's parameter
    /// table, by ID, with the markdown (backticks, escaped bars, bold)
    /// removed.
    fn readme_rows() -> Vec<(String, String)> {
        include_str!("../../README.md")
            .lines()
            .filter(|l| l.starts_with("| `"))
            .filter_map(|l| {
                let cells: Vec<String> = l
                    .trim()
                    .trim_matches('|')
                    .replace("\\|", "\u{1}")
                    .split('|')
                    .map(|c| c.trim().replace('\u{1}', "|"))
                    .collect();
                let id = cells.first()?.trim_matches('`').to_string();
                let what = cells.last()?.replace(['`'], "").replace("**", "");
                Some((id, what))
            })
            .collect()
    }

    #[test]
    fn every_parameter_has_help_and_it_is_the_readme_s_text() {
        let params = crate::params::TubelineParams::default();
        let rows = readme_rows();
        for (id, _, _) in params.param_map() {
            assert!(!help(&id).trim().is_empty(), "{id} has no help");
            let (_, readme) = rows
                .iter()
                .find(|(rid, _)| *rid == id)
                .unwrap_or_else(|| panic!("{id} has no row in README.md's parameter table"));
            assert_eq!(help(&id), readme, "help for {id} differs from README.md");
        }
        assert_eq!(help("no_such_id"), "");
    }
}
