//! A pot-fed stage's grid current behind the plate before it, per sample
//! ([`GridBlend`]), and that plate's output resistance along its curve
//! ([`PlateSource`]). Derivation in the doc of [`GridBlend`] and in
//! docs/DESIGN.md ("Solution: a static curve plus linear filters").

use super::kernel::StageKernel;
use super::koren::KorenTriode;
use super::stage::{StageCircuit, TriodeStage};
use super::table::CurveTable;
use crate::dsp::fma::MulAdd;

/// Points of a [`PlateSource`] over the plate's range.
const PLATE_SOURCE_POINTS: usize = 512;

/// A stage's plate as the source of what its coupling capacitor feeds:
/// its output resistance Ra ‖ rp (rp = 1/gp, Koren's ∂Ip/∂Vpk) at each
/// point of its curve, against the plate-to-cathode voltage there, on a
/// uniform grid of that voltage (linear between points). For a 12AX7 on
/// the preamp's stage 1 it runs from 27.5 kΩ with the grid at 0 V through
/// 34.5 kΩ at rest to Ra, 100 kΩ, at cut-off.
#[derive(Clone, Debug, Default)]
pub(super) struct PlateSource {
    /// Lowest plate voltage (the curve's at the table's top).
    lo_volts: f64,
    /// Points per volt.
    inv_h: f64,
    /// Last point as f64 less 1e-9 (the clamp).
    last: f64,
    /// The resistance at each point (ohms).
    ohms: Vec<f64>,
}

impl PlateSource {
    /// Along the curve `table` of triode `t` with grid drive resistance
    /// `r_grid` (allocates).
    pub(super) fn along(
        table: &CurveTable,
        t: &KorenTriode,
        r_grid: f64,
        c: &StageCircuit,
    ) -> Self {
        // The point at grid drive u: (Vpk, Ra ‖ rp) with Vgk = u − R·Ig.
        let at = |u: f64| {
            let (vpk, ig) = table.eval(u);
            let (_, _, gp) = t.plate_current_and_partials(u - r_grid * ig, vpk);
            (vpk, c.plate_output_ohms(gp))
        };
        let (lo, hi) = (table.lo_volts, table.hi_volts);
        let (v_lo, v_hi) = (at(hi).0, at(lo).0);
        let n = PLATE_SOURCE_POINTS;
        let h = (v_hi - v_lo) / (n - 1) as f64;
        let ohms = (0..n)
            .map(|k| {
                // Vpk falls as u rises: bisect for the u of this voltage.
                let v = v_lo + h * k as f64;
                let (mut a, mut b) = (lo, hi);
                for _ in 0..64 {
                    let m = 0.5 * (a + b);
                    if table.eval(m).0 > v {
                        a = m;
                    } else {
                        b = m;
                    }
                }
                at(0.5 * (a + b)).1
            })
            .collect();
        Self {
            lo_volts: v_lo,
            inv_h: 1.0 / h,
            last: (n - 1) as f64 - 1e-9,
            ohms,
        }
    }

    /// The output resistance at plate-to-cathode voltage `vpk` (held
    /// beyond the ends).
    #[inline(always)]
    pub(super) fn ohms_at(&self, vpk: f64) -> f64 {
        let x = ((vpk - self.lo_volts) * self.inv_h).clamp(0.0, self.last);
        let i = x as usize;
        let (a, b) = (self.ohms[i], self.ohms[(i + 1).min(self.ohms.len() - 1)]);
        a + (x - i as f64) * (b - a)
    }
}

/// A pot-fed stage's grid current behind the plate before it, per sample.
/// The grid conducts when that plate swings up, towards its cut-off, where
/// its output resistance is nearly Ra (a 12AX7: 34.5 kΩ at rest, 100 kΩ
/// at cut-off); one table per chunk, solved behind the rest value, held
/// the grid too loosely there. So where a sample's step reaches grid
/// current the stage takes the resistance behind its grid at that sample,
/// `Rth = Rbot·(Rtop + Rs)/(Rp + Rs)` with Rs the plate's at its voltage
/// ([`PlateSource`]), and blends the two pot tables around it. From the
/// grid loop, `Vgk = Vd + RGI·(u − Vd)/(Rth + RGI)`: the grid voltage is
/// linear in the conductance `1/(Rth + RGI)` but for the diode's
/// logarithmic Vd, so the tables are blended linearly in it.
#[derive(Clone, Copy, Debug)]
pub(super) struct GridBlend<'a> {
    /// The pot-fed stage.
    stage: &'a TriodeStage,
    /// The plate before it.
    source: &'a PlateSource,
    /// That plate's Vpk at rest (its AC output is relative to it).
    plate_rest_volts: f64,
}

impl<'a> GridBlend<'a> {
    /// The blend of the pot tables of `stage` behind the plate `source`
    /// resting at `plate_rest_volts`.
    pub(super) fn new(
        stage: &'a TriodeStage,
        source: &'a PlateSource,
        plate_rest_volts: f64,
    ) -> Self {
        Self {
            stage,
            source,
            plate_rest_volts,
        }
    }

    /// For one lane's input `x` (the plate's AC output times the wiper's
    /// division `a`): the kernels of the two pot tables around the grid's
    /// resistance and the weight of the second.
    #[inline(always)]
    pub(super) fn curves<M: MulAdd>(
        &self,
        a: f64,
        x: f64,
    ) -> (StageKernel<'_, M>, StageKernel<'_, M>, f64) {
        let g = &self.stage.pot_conductances;
        let (i, w) = if a > 1e-9 && x.is_finite() {
            let rs = self.source.ohms_at(x / a + self.plate_rest_volts);
            let c = 1.0 / (self.stage.grid_r_behind(rs, Some(a)) + self.stage.rgi_ohms);
            let i = g[1..].iter().take_while(|&&gi| gi > c).count();
            let i = i.min(g.len() - 2);
            (i, ((g[i] - c) / (g[i] - g[i + 1])).clamp(0.0, 1.0))
        } else {
            (0, 0.0)
        };
        (self.stage.pot_kernel(i), self.stage.pot_kernel(i + 1), w)
    }
}
