//! The mic sources' output impedances Z_mic(s): each model's lumped
//! network, its component values (referred to the mic's output pins), and
//! the network written twice: as a complex impedance for the analytic
//! response (`MicModel::impedance`, the fit's target) and as a rational
//! function of s for the digital design (`MicModel::rat`). Where the
//! numbers come from is in the header of `dsp/mic.rs`.

use super::MicModel;
use crate::dsp::divider::Rat;
use num_complex::Complex;
use std::f64::consts::PI;

type C64 = Complex<f64>;

/// A parallel R-L-C (a moving system's motional impedance): a peak of
/// `r_ohms` at `f0_hz` with quality factor `q`,
/// L = R / (w0 Q), C = Q / (w0 R).
#[derive(Clone, Copy, Debug)]
pub(super) struct Motional {
    /// Height of the impedance peak (the parallel resistance), ohms.
    pub r_ohms: f64,
    /// Resonance frequency, Hz.
    pub f0_hz: f64,
    /// Quality factor of the resonance (unloaded).
    pub q: f64,
}

impl Motional {
    /// (L in henries, C in farads).
    pub(super) fn l_c(&self) -> (f64, f64) {
        let w0 = 2.0 * PI * self.f0_hz;
        (self.r_ohms / (w0 * self.q), self.q / (w0 * self.r_ohms))
    }

    /// The same resonance seen through an ideal 1:`n` step-up
    /// transformer: every impedance times n^2 (R and L up, C down).
    const fn referred(self, n: f64) -> Motional {
        Motional {
            r_ohms: self.r_ohms * n * n,
            ..self
        }
    }

    fn z(&self, s: C64) -> C64 {
        let (l, c) = self.l_c();
        1.0 / (1.0 / self.r_ohms + 1.0 / (s * l) + s * c)
    }

    fn rat(&self) -> Rat {
        let (l, c) = self.l_c();
        Rat::resistor(self.r_ohms)
            .parallel(&Rat::inductor(l))
            .parallel(&Rat::capacitor(c))
    }
}

// Dynamic (SM57/SM58 class), everything referred to the output pins:
// R_dc + (L_e || R_e) + motional.

/// Coil plus transformer windings, ohms: the impedance below the
/// resonance (Whitlock: "under 150 ohms at very low frequencies").
pub(super) const DYN_DC_OHMS: f64 = 140.0;
/// Voice-coil inductance referred through the transformer, henries.
pub(super) const DYN_COIL_HENRIES: f64 = 0.040;
/// Eddy-current loss across the coil inductance, ohms: the rise levels
/// off (measured curves are "flatter and more resistive" than a pure L).
pub(super) const DYN_COIL_LOSS_OHMS: f64 = 450.0;
/// The diaphragm resonance: a bump to ~325 ohms at 150 Hz.
pub(super) const DYN_MOTIONAL: Motional = Motional {
    r_ohms: 180.0,
    f0_hz: 150.0,
    q: 1.4,
};

// Passive ribbon (R-121 / 4038 class): ribbon and its resonance on the
// primary, stepped up by a 1:35 transformer, plus the transformer's
// winding resistance and leakage inductance on the secondary.

/// Turns ratio of the ribbon transformer, 1:n.
pub(super) const RIB_TURNS: f64 = 35.0;
/// Ribbon (and primary) resistance, ohms: 0.19 * 35^2 = 233 ohms.
pub(super) const RIB_RIBBON_OHMS: f64 = 0.19;
/// The ribbon's resonance on the primary side: 0.612 ohm at 30 Hz,
/// Q 2 (750 ohms referred: a ~1 kohm peak at the output).
pub(super) const RIB_MOTIONAL: Motional = Motional {
    r_ohms: 0.612,
    f0_hz: 30.0,
    q: 2.0,
};
/// Secondary winding resistance, ohms (233 + 60 = ~293 ohms midband).
pub(super) const RIB_WINDING_OHMS: f64 = 60.0;
/// Leakage inductance referred to the secondary, henries: the top rise
/// (+314 ohms reactive at 20 kHz).
pub(super) const RIB_LEAKAGE_HENRIES: f64 = 2.5e-3;

// Condenser (transformerless FET output).

/// Output resistance of the active output stage, ohms.
pub(super) const COND_OUT_OHMS: f64 = 100.0;

impl MicModel {
    /// The model's output impedance Z_mic(j 2 pi f), ohms (0 for `None`,
    /// the ideal source).
    pub fn impedance(self, freq_hz: f64) -> C64 {
        let s = C64::new(0.0, 2.0 * PI * freq_hz);
        match self {
            MicModel::None => C64::new(0.0, 0.0),
            MicModel::Dynamic => {
                let coil = s * DYN_COIL_HENRIES * DYN_COIL_LOSS_OHMS
                    / (s * DYN_COIL_HENRIES + DYN_COIL_LOSS_OHMS);
                DYN_DC_OHMS + coil + DYN_MOTIONAL.z(s)
            }
            MicModel::Ribbon => {
                let n2 = RIB_TURNS * RIB_TURNS;
                RIB_WINDING_OHMS
                    + n2 * RIB_RIBBON_OHMS
                    + RIB_MOTIONAL.referred(RIB_TURNS).z(s)
                    + s * RIB_LEAKAGE_HENRIES
            }
            MicModel::Condenser => C64::new(COND_OUT_OHMS, 0.0),
        }
    }

    /// Z_mic(s) as a rational function (None for the ideal source).
    pub(super) fn rat(self) -> Option<Rat> {
        Some(match self {
            MicModel::None => return None,
            MicModel::Dynamic => Rat::resistor(DYN_DC_OHMS)
                .series(
                    &Rat::inductor(DYN_COIL_HENRIES).parallel(&Rat::resistor(DYN_COIL_LOSS_OHMS)),
                )
                .series(&DYN_MOTIONAL.rat()),
            MicModel::Ribbon => {
                Rat::resistor(RIB_WINDING_OHMS + RIB_TURNS * RIB_TURNS * RIB_RIBBON_OHMS)
                    .series(&RIB_MOTIONAL.referred(RIB_TURNS).rat())
                    .series(&Rat::inductor(RIB_LEAKAGE_HENRIES))
            }
            MicModel::Condenser => Rat::resistor(COND_OUT_OHMS),
        })
    }
}
