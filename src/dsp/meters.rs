//! Level taps along the chain, for the editor's meters and the renderer's
//! report.
//!
//! The chain accumulates, per tap and per host chunk, the largest absolute
//! sample and the sum of squares of every channel (in volts, at the host
//! rate). [`crate::dsp::chain::Chain::take_meters`] turns the sums into a
//! [`ChainMeters`] reading (peak = max over channels and samples; rms =
//! √(mean over channels and samples of x²), i.e. the power mean over the
//! channels) and restarts the accumulation. Nothing here allocates.
//!
//! Tap points (see the chain diagram in `chain.rs`):
//! input (after dBFS → volts, source and input trim) → DI box → pad and
//! polarity (what reaches the preamp's mic input) → preamp, auto-gain and
//! output level → headphone amp (volts across the headphone) → output (the
//! wet signal in volts before the output trim and the volts → dBFS
//! conversion; mix and bypass are not included).
//!
//! Units: volts. A sample value `x` dBFS stands for `x · full_scale_peak_volts(cal)`
//! volts (peak), so a tap's level in dBFS is `volts / full_scale_peak_volts(cal)`.

/// Peak and mean-square of one signal point since the last `Chain::take_meters`, max/mean over channels, in volts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelReading {
    /// Largest absolute instantaneous value over every channel and sample, volts.
    pub peak_volts: f64,
    /// Root of the mean square over every channel and sample, volts rms.
    pub rms_volts: f64,
}

/// Every meter of the chain, as read by `Chain::take_meters`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChainMeters {
    /// After input calibration/source/in_trim (volts at the chain input).
    pub input: LevelReading,
    /// After the DI box (== input when DI out).
    pub di_out: LevelReading,
    /// After pad/polarity: what arrives at the mic input.
    pub preamp_in: LevelReading,
    /// After auto-gain and preamp output level.
    pub preamp_out: LevelReading,
    /// Volts across the headphone (after the headphone amp; == preamp_out when it is out).
    pub headphone: LevelReading,
    /// Chain output in volts before out_trim/volts->dBFS (so dBFS = volts / full_scale_peak_volts(cal)).
    pub output: LevelReading,
    /// Most positive instantaneous grid-to-cathode voltage of triode stage 1 and 2 (V).
    pub grid_peak_volts: [f64; 2],
    /// Their current bias (Vgk at rest, shifts with grid-current charging).
    pub grid_bias_volts: [f64; 2],
    /// Vgk where grid current starts (the model's diode onset).
    pub grid_conduction_volts: f64,
    /// DI core: peak |B| / B_sat (0 … >1), 0 when DI out.
    pub di_saturation: f64,
    /// Mean power into the headphone (0 when out).
    pub headphone_power_watts: f64,
    /// RMS current (0 when out).
    pub headphone_current_amps: f64,
    /// Host samples covered by this reading.
    pub samples: u64,
}

/// The tap points, in chain order (indices into [`TapSums`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tap {
    /// Chain input.
    Input = 0,
    /// After the DI box.
    DiOut = 1,
    /// After pad and polarity.
    PreampIn = 2,
    /// After auto-gain and the preamp's output level.
    PreampOut = 3,
    /// Across the headphone.
    Headphone = 4,
    /// Chain output (volts, before the output trim).
    Output = 5,
}

/// Number of [`Tap`]s.
pub(crate) const TAPS: usize = 6;

/// Running peak and sum of squares of every tap, summed over channels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TapSums {
    /// Largest |x| per tap.
    peak: [f64; TAPS],
    /// Σ x² per tap, over channels and samples.
    sum_sq: [f64; TAPS],
}

impl TapSums {
    /// Fold one channel's chunk at `tap` into the sums.
    #[inline]
    pub(crate) fn add(&mut self, tap: Tap, block: &[f64]) {
        let (mut peak, mut sum) = (self.peak[tap as usize], 0.0);
        for v in block {
            peak = peak.max(v.abs());
            sum += v * v;
        }
        self.peak[tap as usize] = peak;
        self.sum_sq[tap as usize] += sum;
    }

    /// The reading of `tap` over `values` channel-samples (0 gives zeros).
    pub(crate) fn reading(&self, tap: Tap, values: f64) -> LevelReading {
        let i = tap as usize;
        if values <= 0.0 {
            return LevelReading::default();
        }
        LevelReading {
            peak_volts: self.peak[i],
            rms_volts: (self.sum_sq[i] / values).max(0.0).sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::chain::{Chain, ChainSettings, Source};
    use crate::dsp::transformer::DiSettings;
    use crate::dsp::tube::PreampSettings;
    use std::f64::consts::TAU;

    /// 0 dBu in volts rms, typed in from its definition: √(1 mW · 600 Ω).
    fn dbu_volts(dbu: f64) -> f64 {
        (0.001f64 * 600.0).sqrt() * 10f64.powf(dbu / 20.0)
    }

    /// A `dbfs` sine (peak 10^(dbfs/20)) of `freq` Hz on both channels.
    fn sine(freq: f64, dbfs: f64, len: usize) -> Vec<f32> {
        let a = 10f64.powf(dbfs / 20.0);
        (0..len)
            .map(|i| (a * (TAU * freq * i as f64 / 48_000.0).sin()) as f32)
            .collect()
    }

    fn chain(s: ChainSettings) -> Chain {
        let mut c = Chain::new();
        c.set_settings(s);
        c.prepare(48_000.0, 2);
        c
    }

    fn run(c: &mut Chain, x: &[f32]) {
        let (mut l, mut r) = (x.to_vec(), x.to_vec());
        for (l, r) in l.chunks_mut(100).zip(r.chunks_mut(100)) {
            c.process(&mut [l, r]);
        }
    }

    /// Settle for 0.2 s, then meter exactly 1 s (1000 whole cycles of 1 kHz).
    fn metered(s: ChainSettings, dbfs: f64) -> ChainMeters {
        let mut c = chain(s);
        c.set_metering(true);
        let x = sine(1000.0, dbfs, 48_000 * 6 / 5);
        run(&mut c, &x[..9_600]);
        c.take_meters();
        run(&mut c, &x[9_600..]);
        c.take_meters()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn a_sine_of_known_dbfs_reads_its_calibrated_volts() {
        // "0 dBFS = cal dBu": a −12 dBFS sine is (cal − 12) dBu rms, and the
        // source scales it from the +4 dBu line to its nominal level.
        for (cal, source, nominal) in [
            (24.0, Source::ProLine, 4.0),
            (18.0, Source::ProLine, 4.0),
            (18.0, Source::Mic, -50.0),
            (20.0, Source::Instrument, -20.0),
        ] {
            let s = ChainSettings {
                cal_dbu: cal,
                source,
                ..ChainSettings::default()
            };
            let m = metered(s, -12.0);
            let rms = dbu_volts(cal - 12.0 + nominal - 4.0);
            assert!(
                close(m.input.rms_volts, rms, 1e-5),
                "{cal} {source:?}: {m:?}"
            );
            assert!(close(m.input.peak_volts, rms * 2f64.sqrt(), 1e-4), "{m:?}");
            // Every stage out: the output is the input, delayed.
            assert!(close(m.output.rms_volts, rms, 1e-5), "{m:?}");
            assert!(close(m.output.peak_volts, rms * 2f64.sqrt(), 1e-4), "{m:?}");
            assert_eq!(m.samples, 48_000);
            // In the output's own scale: volts / full-scale peak volts is
            // the dBFS peak (the track's level, since source scaling
            // is undone at the output).
            let full_scale = dbu_volts(cal) * 2f64.sqrt();
            let out_dbfs = 20.0 * (m.output.peak_volts / full_scale).log10();
            let expected = -12.0 + nominal - 4.0;
            assert!(
                (out_dbfs - expected).abs() < 1e-3,
                "{out_dbfs} vs {expected}"
            );
        }
    }

    #[test]
    fn di_out_reads_the_input_and_di_in_changes_it() {
        let m = metered(ChainSettings::default(), -6.0);
        assert_eq!(m.di_out, m.input);
        assert_eq!(m.di_saturation, 0.0);
        let m = metered(
            ChainSettings {
                di_on: true,
                di: DiSettings::default(),
                ..ChainSettings::default()
            },
            -6.0,
        );
        // A 12:1 step-down: about −21.6 dB.
        let db = 20.0 * (m.di_out.rms_volts / m.input.rms_volts).log10();
        assert!((db - -21.58).abs() < 0.3, "{db}");
        assert!(m.di_saturation > 0.0 && m.di_saturation < 1.0, "{m:?}");
    }

    #[test]
    fn pad_puts_the_preamp_input_20_db_below_the_di_output() {
        for di_on in [false, true] {
            let s = ChainSettings {
                pad: true,
                di_on,
                ..ChainSettings::default()
            };
            let m = metered(s, -6.0);
            let rms = m.preamp_in.rms_volts / m.di_out.rms_volts;
            let peak = m.preamp_in.peak_volts / m.di_out.peak_volts;
            assert!(close(rms, 0.1, 1e-9), "{rms}");
            assert!(close(peak, 0.1, 1e-9), "{peak}");
        }
    }

    #[test]
    fn stages_out_pass_the_reading_on() {
        let m = metered(ChainSettings::default(), -6.0);
        // The preamp's stand-in is a pure delay: the same steady sine.
        assert!(close(m.preamp_out.rms_volts, m.preamp_in.rms_volts, 1e-9));
        assert!(close(m.preamp_out.peak_volts, m.preamp_in.peak_volts, 1e-6));
        assert_eq!(m.headphone, m.preamp_out);
        assert_eq!(m.headphone_power_watts, 0.0);
        assert_eq!(m.headphone_current_amps, 0.0);
    }

    #[test]
    fn metering_off_reads_all_zero() {
        let mut c = chain(ChainSettings {
            pre_on: true,
            di_on: true,
            hp_on: true,
            ..ChainSettings::default()
        });
        run(&mut c, &sine(1000.0, -6.0, 4800));
        assert_eq!(c.take_meters(), ChainMeters::default());
        c.set_metering(true);
        c.set_metering(false);
        run(&mut c, &sine(1000.0, -6.0, 4800));
        assert_eq!(c.take_meters(), ChainMeters::default());
    }

    #[test]
    fn a_hot_preamp_drives_the_grid_into_conduction_and_the_bias_shifts() {
        let s = ChainSettings {
            source: Source::Mic,
            pre_on: true,
            preamp: PreampSettings {
                gain_db: 60.0,
                ..PreampSettings::default()
            },
            ..ChainSettings::default()
        };
        // Silence: the peak is the bias, which is the cathode voltage below 0.
        let mut c = chain(s);
        c.set_metering(true);
        run(&mut c, &vec![0.0; 4800]);
        let quiet = c.take_meters();
        for i in 0..2 {
            assert!(quiet.grid_bias_volts[i] < -0.5, "{quiet:?}");
            assert!((quiet.grid_peak_volts[i] - quiet.grid_bias_volts[i]).abs() < 1e-6);
        }
        assert_eq!(quiet.grid_conduction_volts, 0.0);
        // A −6 dBFS sine standing for a hot mic (−56 dBu rms) at +60 dB
        // gain swings the second grid by volts: it conducts and charges its
        // coupling capacitor, moving the bias down.
        run(&mut c, &sine(1000.0, -6.0, 9600));
        let hot = c.take_meters();
        assert!(
            hot.grid_peak_volts[1] > hot.grid_conduction_volts,
            "{hot:?}"
        );
        assert!(
            hot.grid_bias_volts[1] < quiet.grid_bias_volts[1] - 0.1,
            "{hot:?}"
        );
    }
}
