//! Digital design of one (mic, input impedance) divider at one rate, with
//! the shared machinery of `crate::dsp::divider`.
//!
//! With Z_mic = N(s)/D(s) and the preamp's input a resistance R, the
//! divider is H(s) = R / (R + Z_mic) = R D / (R D + N): a rational
//! function whose poles are the zeros of the impedance R + Z_mic, a
//! positive-real function, so they lie in the left half plane. H goes
//! through the bilinear transform as it is (no loop: R is a switch, not a
//! smoothed control) into at most MAX_SECTIONS biquads H_b, and the
//! correction N_c(z) / (1 + BETA z^-1)^2 is fitted so that
//! H_b C = z^-LATENCY H on 20 Hz .. 20 kHz.

use super::{MicModel, LATENCY, TAPS};
use crate::dsp::divider::{self, FitGrid, Poly, Section};
use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// Largest number of biquads of a divider: the dynamic's H is of order
/// 3/3, the ribbon's 2/3 (one more zero at Nyquist); the condenser's is a gain.
pub(super) const MAX_SECTIONS: usize = 2;

/// One divider designed at one rate, ready to run (Copy, so switching
/// settings copies it without allocating).
#[derive(Clone, Copy, Debug)]
pub(super) struct MicDesign {
    /// The divider is a plain gain (the ideal source: 1, an exact
    /// LATENCY-sample delay; a resistive source such as the condenser's:
    /// R / (R + R_out)): the output is the input delayed LATENCY samples
    /// times it, and the filters do not run.
    pub(super) plain: Option<f64>,
    /// Bilinear-transformed divider H_b(z) as biquads [b0, b1, b2, a1,
    /// a2], the gain in the first; unused ones are unity.
    pub(super) sections: [Section; MAX_SECTIONS],
    /// Correction FIR numerator (before the fixed double pole), its
    /// `n_taps` first entries (the rest 0).
    pub(super) taps: [f64; TAPS],
    /// Taps of the correction: `TAPS`, or `SHORT_TAPS` at high rates.
    pub(super) n_taps: usize,
    /// Worst complex relative error of the correction fit on its points.
    pub(super) fit_error: f64,
}

impl MicDesign {
    /// The ideal source (also what an unprepared stage runs).
    pub(super) const PASSTHROUGH: MicDesign = MicDesign {
        plain: Some(1.0),
        sections: [[1.0, 0.0, 0.0, 0.0, 0.0]; MAX_SECTIONS],
        taps: [0.0; TAPS],
        n_taps: TAPS,
        fit_error: 0.0,
    };

    /// `model` into `in_z_ohms` at `fs`, the correction of `T` taps (at
    /// most `TAPS`) fitted on `grid`. Allocates.
    pub(super) fn new<const T: usize>(
        model: MicModel,
        in_z_ohms: f64,
        grid: &FitGrid<T>,
        fs: f64,
    ) -> MicDesign {
        let Some(z) = model.rat() else {
            return MicDesign::PASSTHROUGH;
        };
        let r = Poly::constant(in_z_ohms);
        let num = r.mul(&z.den);
        let den = num.add(&z.num);
        if let ([n], [d]) = (&num.trimmed().0[..], &den.trimmed().0[..]) {
            // A resistive source: the divider is a gain.
            return MicDesign {
                plain: Some(n / d),
                ..MicDesign::PASSTHROUGH
            };
        }
        let secs = divider::bilinear(&num, &den, fs);
        assert!(
            secs.len() <= MAX_SECTIONS,
            "{model:?}: {} sections",
            secs.len()
        );
        let mut sections = [[1.0, 0.0, 0.0, 0.0, 0.0]; MAX_SECTIONS];
        sections[..secs.len()].copy_from_slice(&secs);
        let uncorrected: Vec<C64> = grid
            .zi
            .iter()
            .zip(&grid.fixed)
            .map(|(zi, fixed)| divider::cascade(&sections, *zi) * fixed)
            .collect();
        let target: Vec<C64> = grid
            .freqs_hz
            .iter()
            .map(|f| in_z_ohms / (in_z_ohms + model.impedance(*f)))
            .collect();
        let (fit, fit_error) = divider::fit_correction(grid, &uncorrected, &target);
        let mut taps = [0.0; TAPS];
        taps[..T].copy_from_slice(&fit);
        MicDesign {
            plain: None,
            sections,
            taps,
            n_taps: T,
            fit_error,
        }
    }

    /// Digital response at `freq_hz` (rate `fs`) with the LATENCY-sample
    /// delay taken out.
    pub(super) fn response(&self, freq_hz: f64, fs: f64) -> C64 {
        if fs <= 0.0 {
            return C64::new(1.0, 0.0);
        }
        if let Some(g) = self.plain {
            return C64::new(g, 0.0);
        }
        let w = 2.0 * PI * freq_hz / fs;
        let zi = C64::from_polar(1.0, -w);
        let h = divider::cascade(&self.sections, zi);
        h * divider::correction_response(&self.taps, zi) * C64::from_polar(1.0, w * LATENCY as f64)
    }
}
