//! The triode: Koren's plate-current equation, its partial derivatives, the
//! grid-current diode, and the Newton solvers for one stage's grid loop,
//! plate and DC operating point.
//!
//! # Triode model (Koren 1996)
//!
//! N. Koren, "Improved VT models for SPICE simulations", Glass Audio 5/1996,
//! and his published SPICE model library (normankoren.com):
//! `E1 = Vpk/kp · ln(1 + exp(kp·(1/μ + Vgk/√(kvb + Vpk²))))`,
//! `Ip = (E1^ex + sgn(E1)|E1|^ex)/kg1` = `2·E1^ex/kg1` for E1 > 0 (his
//! `PWR + PWRS` pair), grid current a diode (IS = 1 nA, n = 1) in series with
//! `RGI` = 2 kΩ from grid to cathode (Koren's `D3`/`R1` with model `DX`).
//! Interelectrode capacitances Cgk and Cgp are datasheet typicals (RCA).
//! The constants of each tube are in [`super::TubeType::constants`].
//!
//! # Solvers
//!
//! Used only in `prepare` (the curve tables, see `table.rs`) and for the
//! operating points; the sample loop evaluates the tables. The grid loop
//! `vd + rt·Ig(vd) = u` is convex and increasing in vd: Newton from the
//! right converges monotonically. The plate `vpk + Ra·Ip(vgk, vpk) = vs` is
//! solved by Newton safeguarded with bisection on [0, vs]; the cathode
//! voltage of the DC operating point (`Vk = Rk·Ip`) by bisection around it.

use super::stage::StageCircuit;

/// Koren triode constants plus the grid-current diode and the interelectrode
/// capacitances that set the Miller low-pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KorenTriode {
    /// Amplification factor μ (Koren's MU).
    pub mu: f64,
    /// Exponent of the 3/2-power law (Koren's EX).
    pub ex: f64,
    /// Perveance scale (Koren's KG1), in V^ex/A.
    pub kg1: f64,
    /// Knee sharpness near cut-off (Koren's KP).
    pub kp: f64,
    /// Knee voltage term (Koren's KVB), in V².
    pub kvb: f64,
    /// Grid-current series resistance (Koren's RGI).
    pub rgi_ohms: f64,
    /// Saturation current of the grid diode (Koren's model DX: IS = 1 nA).
    pub grid_is_amps: f64,
    /// Thermal voltage of the grid diode (n = 1 at 300 K).
    pub grid_vt_volts: f64,
    /// Grid-to-cathode capacitance, datasheet typical.
    pub cgk_farads: f64,
    /// Grid-to-plate capacitance, datasheet typical (multiplied by the Miller effect).
    pub cgp_farads: f64,
}

/// Grid-to-cathode voltage at which grid current starts in this model:
/// the grid diode conducts for Vd > 0 (Koren's `DX` without an offset) and
/// Vgk = Vd + RGI·Ig, so Ig > 0 exactly when Vgk > 0 V.
pub const GRID_CONDUCTION_VOLTS: f64 = 0.0;

#[inline]
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x + (-x).exp()
    } else {
        x.exp().ln_1p()
    }
}

#[inline]
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl KorenTriode {
    /// Plate current in amperes for grid and plate voltages relative to the cathode.
    pub fn plate_current(&self, vgk: f64, vpk: f64) -> f64 {
        self.plate_current_and_partials(vgk, vpk).0
    }

    /// Plate current and its partial derivatives (gm = ∂Ip/∂Vgk, gp = ∂Ip/∂Vpk = 1/rp).
    pub fn plate_current_and_partials(&self, vgk: f64, vpk: f64) -> (f64, f64, f64) {
        if vpk <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let s = (self.kvb + vpk * vpk).sqrt();
        let x = self.kp * (1.0 / self.mu + vgk / s);
        let sp = softplus(x);
        let sg = sigmoid(x);
        let e1 = vpk / self.kp * sp;
        if e1 <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let de1_dvg = vpk * sg / s;
        let de1_dvp = sp / self.kp - vpk * vpk * vgk * sg / (s * s * s);
        let p = e1.powf(self.ex - 1.0);
        let ip = 2.0 * p * e1 / self.kg1;
        let dip_de1 = 2.0 * self.ex * p / self.kg1;
        (ip, dip_de1 * de1_dvg, dip_de1 * de1_dvp)
    }

    /// Grid diode current (without RGI) and its derivative, for the diode voltage `vd`.
    /// Reverse leakage is left out, so the current is exactly zero for vd ≤ 0.
    pub fn grid_diode_current(&self, vd: f64) -> (f64, f64) {
        if vd <= 0.0 {
            return (0.0, 0.0);
        }
        let e = (vd / self.grid_vt_volts).exp();
        (
            self.grid_is_amps * (e - 1.0),
            self.grid_is_amps * e / self.grid_vt_volts,
        )
    }

    /// Solve the grid loop `vd + rt·Ig(vd) = u` (rt includes RGI). Returns (vd, ig, dIg/du).
    pub(super) fn solve_grid(&self, u: f64, rt: f64) -> (f64, f64, f64) {
        if u <= 0.0 {
            return (u, 0.0, 0.0);
        }
        // f(vd) = vd + rt·Ig(vd) − u is convex and increasing; starting right of
        // the root, Newton converges monotonically.
        let mut vd = u.min(self.grid_vt_volts * (1.0 + u / (rt * self.grid_is_amps)).ln());
        for _ in 0..200 {
            let (ig, dig) = self.grid_diode_current(vd);
            let f = vd + rt * ig - u;
            let step = f / (1.0 + rt * dig);
            vd -= step;
            if step.abs() < 1e-14 {
                break;
            }
        }
        let (ig, dig) = self.grid_diode_current(vd);
        (vd, ig, dig / (1.0 + rt * dig))
    }

    /// Solve the plate `vpk + ra·Ip(vgk, vpk) = vs` for vpk in [0, vs] with
    /// safeguarded Newton. Returns (vpk, dvpk/dvgk).
    pub(super) fn solve_plate(&self, vgk: f64, vs: f64, ra: f64, guess: f64) -> (f64, f64) {
        let (mut lo, mut hi) = (0.0, vs);
        let mut v = guess.clamp(0.0, vs);
        for _ in 0..200 {
            let (ip, _, gp) = self.plate_current_and_partials(vgk, v);
            let f = v + ra * ip - vs;
            if f > 0.0 {
                hi = v;
            } else {
                lo = v;
            }
            let mut next = v - f / (1.0 + ra * gp);
            if !(next > lo && next < hi) {
                next = 0.5 * (lo + hi);
            }
            let done = (next - v).abs() < 1e-12 * vs.max(1.0);
            v = next;
            if done || hi - lo < 1e-13 {
                break;
            }
        }
        let (_, gm, gp) = self.plate_current_and_partials(vgk, v);
        (v, -ra * gm / (1.0 + ra * gp))
    }
}

/// Solve the DC operating point of a stage with cathode resistor `rk`
/// exactly (no table): returns (Vk, Vpk, Ip).
pub(super) fn operating_point(t: &KorenTriode, c: &StageCircuit, rk: f64) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (0.0, c.supply_volts * rk / (rk + c.plate_ohms));
    let mut vpk = c.supply_volts;
    for _ in 0..200 {
        let vk = 0.5 * (lo + hi);
        vpk = t.solve_plate(-vk, c.supply_volts - vk, c.plate_ohms, vpk).0;
        let ip = (c.supply_volts - vk - vpk) / c.plate_ohms;
        if vk - rk * ip > 0.0 {
            hi = vk;
        } else {
            lo = vk;
        }
    }
    let vk = 0.5 * (lo + hi);
    let vpk = t.solve_plate(-vk, c.supply_volts - vk, c.plate_ohms, vpk).0;
    (vk, vpk, (c.supply_volts - vk - vpk) / c.plate_ohms)
}
