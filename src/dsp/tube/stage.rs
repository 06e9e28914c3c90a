//! One common-cathode triode stage: its circuit, its operating point and
//! coefficients, its small-signal response, and a standalone `process`.
//!
//! # Circuit
//!
//! The `docs/DESIGN.md` reference stage ([`StageCircuit::REFERENCE`]: B+
//! 250 V, Ra 100 kΩ, Rk 1.5 kΩ held, grid leak Rg 1 MΩ, coupling
//! capacitor 47 nF), driven through a source resistance Rsrc that depends
//! on the tube type (the preamp's stage 2 is driven by stage 1's
//! Ra ‖ rp). As the preamp wires it, a stage also has a load behind its
//! plate's coupling capacitor (`load_ohms`: the curve is solved on the AC
//! load line Ra ‖ RL through the operating point, and its output is the
//! loaded plate voltage; with `output_coupling_farads`, that capacitor's
//! charge moves the load line under drive, from a second table at a raised
//! supply, `cathode.rs`), a cathode bypass capacitor (`bypass_farads`:
//! the cathode moves, `cathode.rs`), and, for stage 2, a potentiometer as
//! its grid leak ([`TriodeStage::with_pot`]: the wiper's division is the
//! caller's gain; the Thevenin resistance behind the grid,
//! `Rbot·(Rtop + Rsrc)/(Rp + Rsrc)`, sets the Miller corner and the grid
//! current's charging, [`TriodeStage::set_wiper`]; where the grid
//! conducts, at each sample from the plate before it as it is there,
//! [`GridBlend`]). The static plate
//! curve is a table (`table.rs`) averaged with ADAA (`adaa.rs`); around
//! it, linear filters, run per sample by `kernel.rs`:
//!
//! Coupling capacitor (the "blocking" that makes a driven stage breathe): KCL
//! at the grid-leak node gives `C·dvc/dt = (x − vc)/(Rsrc + Rg) + Ig·Rg/(Rsrc + Rg)`,
//! discretised with the exact pole of the linear part,
//! `vc += k·(x − vc) + k·Rg·Ig`, `k = 1 − exp(−T/τ)`, `τ = C·(Rsrc + Rg)`.
//! Grid current charges vc through the small source resistance (fast) and it
//! discharges through Rg (τ ≈ 48 ms): the bias recovers after a loud burst
//! with that time constant. The Ig term uses the previous sample's grid
//! current (a one-sample delay of a ≈ 0.7 ms charging process, which breaks the
//! loop-carried dependency through the table and keeps the loop stable:
//! loop gain per sample T/(C·Rt) < 0.03 at 48 kHz).
//!
//! Miller capacitance `Cin = Cgk + Cgp·(1 + A)` (A = stage gain at the
//! operating point, on its load line) with `Rth + Rs` forms a one-pole
//! low-pass applied to Vth (TPT / bilinear with pre-warping), e.g. ≈ 47 kHz
//! at stage 2 of the preamp for a 12AX7 at Level 0 and ≈ 19 kHz at Level
//! −20.
//!
//! Each stage is inverting (plate falls when the grid rises); two stages make
//! the preamp non-inverting.
//!
//! # Accuracy (measured, see tests)
//!
//! Against an independent plain-Newton solution of the reference stage:
//! small-signal gain within 0.01 dB, H2/H3 within 0.1 dB at 0.05/0.2/1.0 V peak.
//!
//! Latency: 0 samples (plus the fractional ADAA group delay, ≈ 0.11
//! oversampled samples per stage, not an integer latency). Units: source
//! volts in, AC plate volts out (open circuit without a load; the loaded
//! plate with one).

use super::adaa::adaa_compensation;
use super::cathode::{CathodeCoefs, CathodeLanes};
use super::grid_blend::{GridBlend, PlateSource};
use super::kernel::{StageKernel, StageLanes, CHUNK};
use super::koren::operating_point;
use super::table::CurveTable;
use super::TubeType;
use crate::dsp::fma::{Fused, MulAdd, Unfused};
use crate::dsp::ProcessSpec;
use num_complex::Complex;
use std::f64::consts::PI;

/// Grid drive resistances a potentiometer-fed stage has curve tables for
/// (per tube; the wiper picks the nearest in ratio). Behind a 1 MΩ pot
/// fed from a plate's ≈ 10–40 kΩ, Rth runs from the source alone at
/// Level 0 up to ≈ 260 kΩ near −6 dB and down towards 0 at low Levels;
/// the grid only conducts with the pot above about −40 dB (Rth ≳ 10 kΩ).
/// Neighbours are 1.47× apart (a nearest pick is at most 1.21× off): with
/// the table solved at Level 0's 37 kΩ for the pot's 90 kΩ at Level −20,
/// H2 in grid current (Gain 50, 12AX7, 1 kHz) was 2.6 dB off ngspice's;
/// at its own resistance 0.03 dB, from the nearest table (100 kΩ) 0.24 dB.
const POT_TABLE_OHMS: [f64; 10] = [
    10e3, 14.7e3, 21.5e3, 31.6e3, 46.4e3, 68.1e3, 100e3, 147e3, 215e3, 316e3,
];

/// The supply step of the shifted tables (`tables_d`).
pub(super) const SUPPLY_STEP_VOLTS: f64 = 20.0;

/// The ADAA compensation keeps the stage flat to this frequency ...
const ADAA_FLAT_HZ: f64 = 20_000.0;
/// ... within this loss (dB).
const ADAA_FLAT_DB: f64 = 0.025;

/// The fixed components of one common-cathode stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageCircuit {
    /// Plate supply B+.
    pub supply_volts: f64,
    /// Plate load resistor Ra.
    pub plate_ohms: f64,
    /// Cathode resistor Rk at bias 0 (bypassed).
    pub cathode_ohms: f64,
    /// Grid leak resistor Rg (to ground, after the coupling capacitor).
    pub grid_leak_ohms: f64,
    /// Grid stopper Rs in series with the grid.
    pub grid_stopper_ohms: f64,
    /// Input coupling capacitor Cc.
    pub coupling_farads: f64,
    /// Load behind the plate's output coupling capacitor (∞: unloaded),
    /// in parallel with Ra for signals: the AC load line.
    pub load_ohms: f64,
    /// Cathode bypass capacitor (∞: the cathode held at its rest voltage).
    pub bypass_farads: f64,
    /// Output coupling capacitor into `load_ohms` (∞: its charge held at
    /// rest): under drive its charge follows the plate's average and moves
    /// the load line (`cathode.rs`, "The output coupling capacitor").
    pub output_coupling_farads: f64,
}

impl StageCircuit {
    /// The `docs/DESIGN.md` reference stage with a 1 MΩ grid leak and 47 nF
    /// coupling.
    pub const REFERENCE: StageCircuit = StageCircuit {
        supply_volts: 250.0,
        plate_ohms: 100e3,
        cathode_ohms: 1.5e3,
        grid_leak_ohms: 1e6,
        grid_stopper_ohms: 0.0,
        coupling_farads: 47e-9,
        load_ohms: f64::INFINITY,
        bypass_farads: f64::INFINITY,
        output_coupling_farads: f64::INFINITY,
    };

    /// The plate's output resistance Ra ‖ rp, for the valve's
    /// `gp = ∂Ip/∂Vpk = 1/rp` at its point.
    pub fn plate_output_ohms(&self, gp: f64) -> f64 {
        self.plate_ohms / (1.0 + self.plate_ohms * gp)
    }

    /// The AC load: Ra ‖ the load behind the output coupling capacitor.
    pub fn ac_load_ohms(&self) -> f64 {
        let (ra, rl) = (self.plate_ohms, self.load_ohms);
        if rl.is_finite() {
            ra * rl / (ra + rl)
        } else {
            ra
        }
    }
}

/// One common-cathode triode stage (inverting): coupling capacitor, grid leak,
/// grid current, Miller low-pass, static plate curve with first-order ADAA.
/// Output is the AC plate voltage (open circuit; the caller applies the
/// source resistance).
#[derive(Clone, Debug)]
pub struct TriodeStage {
    /// Fixed components.
    circuit: StageCircuit,
    /// Source resistance driving the coupling capacitor, per tube type.
    source_ohms: [f64; 3],
    /// `Some(a)` when the grid leak is a potentiometer whose wiper, at
    /// fraction `a` of it from ground, drives the grid (the preamp's Level);
    /// `None` when the grid sits on top of the grid leak.
    wiper: Option<f64>,
    /// The bypassed cathode's coefficients (`cathode.rs`).
    pub(super) cathode: CathodeCoefs,
    /// Curve tables (built in `prepare`; empty before): one per tube type,
    /// or, with a pot, one per tube and [`POT_TABLE_OHMS`] (tube-major).
    pub(super) tables: Vec<CurveTable>,
    /// With an output coupling capacitor, the same tables at a supply
    /// raised by [`SUPPLY_STEP_VOLTS`] (same grid of u): their difference
    /// from `tables` is the plate's sensitivity to the load line's shift.
    tables_d: Vec<CurveTable>,
    /// With a pot, the index in [`POT_TABLE_OHMS`] of the table in use.
    pot_table: usize,
    /// `1/(R + Rs + RGI)` of each pot table (falling; [`GridBlend`]).
    pub(super) pot_conductances: [f64; POT_TABLE_OHMS.len()],
    /// The selected tube's grid resistance RGI.
    pub(super) rgi_ohms: f64,
    /// Selected tube.
    tube: TubeType,
    /// Bias control, −1 … +1 (cathode resistor × 2^(−bias)).
    bias: f64,
    /// Sample rate in Hz.
    fs: f64,
    /// Cathode voltage at the operating point (grid at 0 V DC).
    vk_volts: f64,
    /// Vpk at the operating point.
    vpk_q_volts: f64,
    /// dVpk/du at the operating point (negative: the stage inverts).
    slope_q: f64,
    /// Thevenin divider Rg/(Rsrc + Rg).
    pub(super) kth: f64,
    /// Coupling capacitor pole step 1 − exp(−T/τ).
    k_lin: f64,
    /// Grid-current charging coefficient k_lin·Rg.
    k_ig: f64,
    /// Miller low-pass TPT gain g/(1 + g) (1 when there is no resistance).
    miller_g: f64,
    /// Miller low-pass corner in Hz (for the response).
    miller_hz: f64,
    /// Pole b of the ADAA compensation (1 + b)/(1 + b·z⁻¹).
    comp_b: f64,
    /// Stored-curve value at the current operating point (what the sample
    /// loop subtracts so that silence gives exactly 0), per [`MulAdd`]
    /// flavour (each evaluates the curve with its own rounding).
    dc: [f64; 2],
    /// The same for the shifted table (`tables_d`).
    dc_d: [f64; 2],
    /// State of the standalone `process`.
    state: StageLanes<f64>,
    /// Its cathode's state.
    cathode_state: CathodeLanes<f64>,
    /// Its samples since `reset` (the cathode's ring position).
    counter: u64,
}

impl TriodeStage {
    /// A stage with the given circuit, fed from `source_ohms[tube]`. Allocates
    /// nothing until `prepare`.
    pub fn new(circuit: StageCircuit, source_ohms: [f64; 3]) -> Self {
        Self {
            circuit,
            source_ohms,
            wiper: None,
            cathode: CathodeCoefs::HELD,
            tables: Vec::new(),
            tables_d: Vec::new(),
            pot_table: 0,
            pot_conductances: [0.0; POT_TABLE_OHMS.len()],
            rgi_ohms: 0.0,
            tube: TubeType::Tube12AX7,
            bias: 0.0,
            fs: 48_000.0,
            vk_volts: 0.0,
            vpk_q_volts: 0.0,
            slope_q: 0.0,
            kth: 1.0,
            k_lin: 0.0,
            k_ig: 0.0,
            miller_g: 1.0,
            miller_hz: f64::INFINITY,
            comp_b: 0.0,
            dc: [0.0; 2],
            dc_d: [0.0; 2],
            state: StageLanes::default(),
            cathode_state: CathodeLanes::default(),
            counter: 0,
        }
    }

    /// The same stage with its grid leak as a potentiometer whose wiper
    /// drives the grid (see [`TriodeStage::set_wiper`]); the wiper starts at
    /// the top.
    pub fn with_pot(mut self) -> Self {
        self.wiper = Some(1.0);
        self
    }

    /// Thevenin resistance of the grid drive for tube `tube` with the
    /// wiper at `wiper` (see `wiper`): Rsrc ‖ Rg; or, for a pot of
    /// Rp = Rtop + Rbot (Rbot = a·Rp) fed from Rsrc through the coupling
    /// capacitor (a short for signals), Rbot ‖ (Rtop + Rsrc) =
    /// Rbot·(Rtop + Rsrc)/(Rp + Rsrc). Plus the grid stopper.
    fn grid_r_at(&self, tube: usize, wiper: Option<f64>) -> f64 {
        self.grid_r_behind(self.source_ohms[tube], wiper)
    }

    /// [`Self::grid_r_at`] for a source resistance `rs`.
    #[inline(always)]
    pub(super) fn grid_r_behind(&self, rs: f64, wiper: Option<f64>) -> f64 {
        let rg = self.circuit.grid_leak_ohms;
        let r = match wiper {
            None => rs * rg / (rs + rg),
            Some(a) => a * rg * ((1.0 - a) * rg + rs) / (rg + rs),
        };
        r + self.circuit.grid_stopper_ohms
    }

    fn grid_r(&self, tube: usize) -> f64 {
        self.grid_r_at(tube, self.wiper)
    }

    /// The grid drive resistance the table in use solves the grid current
    /// behind.
    fn table_grid_r(&self, tube: usize) -> f64 {
        self.table_r(tube, self.pot_table)
    }

    /// The grid drive resistance of table `i` for `tube` (`i` picks one of
    /// [`POT_TABLE_OHMS`] with a pot; a plain grid leak has one table).
    fn table_r(&self, tube: usize, i: usize) -> f64 {
        match self.wiper {
            Some(_) => POT_TABLE_OHMS[i] + self.circuit.grid_stopper_ohms,
            None => self.grid_r_at(tube, None),
        }
    }

    /// Tables per tube.
    fn tables_per_tube(&self) -> usize {
        if self.wiper.is_some() {
            POT_TABLE_OHMS.len()
        } else {
            1
        }
    }

    /// The table in use (tube and, with a pot, the wiper's resistance).
    #[inline]
    fn table(&self) -> Option<&CurveTable> {
        self.tables.get(self.table_index())
    }

    /// Whether `prepare` has built the tables.
    #[inline]
    pub(super) fn prepared(&self) -> bool {
        !self.tables.is_empty()
    }

    /// The curve tables (allocates): one per tube, or with a pot one per
    /// tube and [`POT_TABLE_OHMS`] (tube-major), on the AC load line
    /// through the operating point with its supply raised by
    /// `supply_step` (the same grid of u whatever the step).
    fn build_tables(&self, supply_step: f64) -> Vec<CurveTable> {
        let c = self.circuit;
        let per_tube = self.tables_per_tube();
        TubeType::ALL
            .iter()
            .flat_map(|tt| {
                let t = tt.constants();
                // The AC load line through the operating point (one solve
                // per tube, shared by its tables).
                let (vk, vpk, ip) = operating_point(&t, &c, c.cathode_ohms);
                let rac = c.ac_load_ohms();
                let vs = if c.load_ohms.is_finite() {
                    vpk + rac * ip
                } else {
                    c.supply_volts - vk
                };
                let lo = -3.5 * vs / t.mu - 1.0;
                let vs = vs + supply_step;
                let rs: Vec<f64> = (0..per_tube).map(|i| self.table_r(tt.index(), i)).collect();
                rs.into_iter()
                    .map(move |r| CurveTable::build(&t, vs, rac, r, lo, 40.0, -vk))
            })
            .collect()
    }

    /// Build the curve tables (allocates) and set the rate.
    pub fn prepare(&mut self, spec: &ProcessSpec) {
        if self.tables.is_empty() {
            self.tables = self.build_tables(0.0);
            if self.circuit.output_coupling_farads.is_finite() {
                self.tables_d = self.build_tables(SUPPLY_STEP_VOLTS);
            }
        }
        self.fs = spec.sample_rate;
        self.update();
        self.reset();
    }

    /// Select tube and bias (no allocation). Returns true if anything changed.
    pub fn set_tube_bias(&mut self, tube: TubeType, bias: f64) -> bool {
        let bias = if bias.is_finite() {
            bias.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        if tube == self.tube && bias == self.bias {
            return false;
        }
        self.tube = tube;
        self.bias = bias;
        self.update();
        true
    }

    /// Change the sample rate without allocating.
    pub fn set_sample_rate(&mut self, fs: f64) {
        self.fs = fs;
        self.update();
    }

    /// Recompute operating point and coefficients.
    fn update(&mut self) {
        self.pick_pot_table();
        self.rgi_ohms = self.tube.constants().rgi_ohms;
        let (rs, rgi) = (self.circuit.grid_stopper_ohms, self.rgi_ohms);
        self.pot_conductances = POT_TABLE_OHMS.map(|r| 1.0 / (r + rs + rgi));
        let ti = self.tube.index();
        let Some(table) = self.tables.get(self.table_index()) else {
            return;
        };
        let c = self.circuit;
        let inv_h = table.inv_h;
        let rk = c.cathode_ohms * (-self.bias).exp2();
        let rac = c.ac_load_ohms();
        // Table-consistent operating point: Vk = Rk·(Vs − Vpk(−Vk))/Rac
        // (on the AC load line through the operating point at Bias 0: with
        // a load, another Bias moves the rest point along that line; the
        // true DC point lies on Ra's line).
        let (mut lo, mut hi) = (0.0, table.vs_volts * rk / (rk + rac));
        for _ in 0..64 {
            let vk = 0.5 * (lo + hi);
            let ip = (table.vs_volts - table.eval(-vk).0) / rac;
            if vk > rk * ip {
                hi = vk;
            } else {
                lo = vk;
            }
        }
        self.vk_volts = 0.5 * (lo + hi);
        self.vpk_q_volts = table.eval(-self.vk_volts).0;
        self.slope_q = table.slope(-self.vk_volts);
        let rsrc = self.source_ohms[ti];
        let rg = c.grid_leak_ohms;
        // Through a pot the stage is fed the loaded plate voltage before
        // it (its table has the pot as its AC load): no divider.
        self.kth = if self.wiper.is_some() {
            1.0
        } else {
            rg / (rsrc + rg)
        };
        let tau = c.coupling_farads * (rsrc + rg);
        self.k_lin = -(-1.0 / (self.fs * tau)).exp_m1();
        self.update_wiper();
        let t = self.tube.constants();
        let (_, _, gp) = t.plate_current_and_partials(-self.vk_volts, self.vpk_q_volts);
        let resistors = (rk, rac, 1.0 / gp);
        let ro = c.plate_output_ohms(gp);
        self.cathode = CathodeCoefs::new(c.bypass_farads, resistors, self.slope_q, inv_h, self.fs)
            .with_output_coupling(
                c.output_coupling_farads,
                (c.plate_ohms, c.load_ohms, ro),
                self.fs,
            );
        self.comp_b = adaa_compensation(ADAA_FLAT_HZ, self.fs, ADAA_FLAT_DB);
        self.dc = [0.0; 2];
        self.dc = [
            self.kernel::<Unfused>().rest_value(),
            self.kernel::<Fused>().rest_value(),
        ];
        // (Every pot table is the same curve at rest, so a new wiper needs
        // neither again.)
        self.dc_d = match self.tables_d.get(self.table_index()) {
            Some(t) => [
                self.kernel_on::<Unfused>(t, 0.0).rest_value(),
                self.kernel_on::<Fused>(t, 0.0).rest_value(),
            ],
            None => [0.0; 2],
        };
    }

    /// Move a pot's wiper to fraction `a` of the pot from ground (the
    /// Level's gain; nothing for a plain grid leak): the grid drive's
    /// Thevenin resistance, so the Miller corner and the grid current's
    /// charging move with it. Never allocates; cheap enough per chunk.
    pub fn set_wiper(&mut self, a: f64) {
        if self.wiper.is_some_and(|w| w != a) && a.is_finite() {
            self.wiper = Some(a.clamp(0.0, 1.0));
            self.pick_pot_table();
            self.update_wiper();
        }
    }

    /// With a pot, use the table whose grid resistance is nearest (in
    /// ratio) to the wiper's. Below the grid's conduction all the tables
    /// are the same curve, bit for bit; they differ only in grid current.
    fn pick_pot_table(&mut self) {
        if self.wiper.is_some() {
            let r = self.grid_r(self.tube.index()).max(1.0).ln();
            let d = |i: usize| (POT_TABLE_OHMS[i].ln() - r).abs();
            self.pot_table = (0..POT_TABLE_OHMS.len())
                .min_by(|&i, &j| d(i).total_cmp(&d(j)))
                .unwrap_or(0);
        }
    }

    /// Index of the table in use (changes with the wiper; see
    /// [`Self::set_wiper`]).
    pub(super) fn table_index(&self) -> usize {
        self.tube.index() * self.tables_per_tube() + self.pot_table
    }

    /// The wiper's share of `update`: the Miller low-pass (input
    /// capacitance Cgk + Cgp·(1 − dVpk/du) against the grid drive's
    /// resistance) and the grid current's charging of the coupling
    /// capacitor: `C·dvc/dt = (x − vc + Rg·Ig)/(Rsrc + Rg)` with a grid
    /// leak; through a pot the wiper draws the current through Rbot, and the
    /// caller's input is scaled by a: `k_ig = k·a·Rbot = k·a²·Rp`.
    fn update_wiper(&mut self) {
        let ti = self.tube.index();
        let rg = self.circuit.grid_leak_ohms;
        self.k_ig = self.k_lin * self.wiper.map_or(rg, |a| a * a * rg);
        let t = self.tube.constants();
        let cin = t.cgk_farads + t.cgp_farads * (1.0 - self.slope_q);
        let r = self.grid_r(ti);
        self.miller_hz = if r > 0.0 {
            1.0 / (2.0 * PI * r * cin)
        } else {
            f64::INFINITY
        };
        let g = (PI * (self.miller_hz / self.fs).min(0.49)).tan();
        self.miller_g = if r > 0.0 { g / (1.0 + g) } else { 1.0 };
    }

    /// Settle at the operating point (grid at 0 V, capacitors uncharged).
    pub fn reset(&mut self) {
        self.state = if self.tables.is_empty() {
            StageLanes::default()
        } else {
            StageLanes::rest(&self.kernel::<Unfused>())
        };
        self.cathode_state = CathodeLanes::default();
        self.counter = 0;
    }

    /// Copy of everything the per-sample loop needs (kept in registers).
    #[inline]
    pub(super) fn kernel<M: MulAdd>(&self) -> StageKernel<'_, M> {
        self.kernel_on(&self.tables[self.table_index()], self.dc[M::INDEX])
    }

    /// The kernel of the shifted table (`tables_d`, when there is one),
    /// for the ADAA of the same coordinates (the same grid of u): less its
    /// own value at rest, so that its difference from `kernel`'s is zero
    /// at rest.
    #[inline]
    pub(super) fn shifted_kernel<M: MulAdd>(&self) -> Option<StageKernel<'_, M>> {
        let t = self.tables_d.get(self.table_index())?;
        Some(self.kernel_on(t, self.dc_d[M::INDEX]))
    }

    /// The sample loop's copy for curve table `t`, less `dc`.
    #[inline]
    fn kernel_on<'a, M: MulAdd>(&'a self, t: &'a CurveTable, dc: f64) -> StageKernel<'a, M> {
        let kth = self.kth * t.inv_h * (1.0 + self.comp_b);
        let g = self.miller_g;
        StageKernel {
            seg: t.segments(),
            mad: std::marker::PhantomData,
            kg: g * kth,
            kg2: 2.0 * g * kth,
            m_y: 1.0 - g,
            m_s: 1.0 - 2.0 * g,
            v_a: 1.0 - self.k_lin,
            comp_b: self.comp_b,
            off: (-self.vk_volts - t.lo_volts) * t.inv_h,
            last: t.last,
            f_lo: t.f_lo,
            f_hi: t.f_hi,
            ig_start: (t.ig_start_volts - t.lo_volts) * t.inv_h,
            ig_slope: t.ig_slope_hi / t.inv_h,
            k_lin: self.k_lin,
            k_ig: self.k_ig,
            dc,
            vk_a: self.cathode.decay,
            vk_u: self.cathode.k_u,
            vk_q: self.cathode.k_q,
        }
    }

    /// The sample loop's copy for pot table `i` of the tube in use (with
    /// a pot; see [`GridBlend`]).
    #[inline(always)]
    pub(super) fn pot_kernel<M: MulAdd>(&self, i: usize) -> StageKernel<'_, M> {
        let base = self.tube.index() * self.tables_per_tube();
        self.kernel_on(&self.tables[base + i], self.dc[M::INDEX])
    }

    /// With a pot, the blend of its grid-current tables behind the plate
    /// `source` (the stage before it, resting at `plate_rest_volts`): see
    /// [`GridBlend`]. `None` without a pot or before `prepare`.
    pub(super) fn grid_blend<'a>(
        &'a self,
        source: &'a PlateSource,
        plate_rest_volts: f64,
    ) -> Option<GridBlend<'a>> {
        if self.wiper.is_none() || !self.prepared() {
            return None;
        }
        Some(GridBlend::new(self, source, plate_rest_volts))
    }

    /// The plate as a source for each tube (allocates): its output
    /// resistance Ra ‖ rp along its curve, against its plate-to-cathode
    /// voltage (see [`PlateSource`]). Empty before `prepare`.
    pub(super) fn plate_sources(&self) -> Vec<PlateSource> {
        if !self.prepared() {
            return Vec::new();
        }
        TubeType::ALL
            .iter()
            .map(|tt| {
                let ti = tt.index();
                // (With a pot, its first table: the plate's resistance
                // does not depend on the grid's.)
                let table = &self.tables[ti * self.tables_per_tube()];
                PlateSource::along(table, &tt.constants(), self.table_r(ti, 0), &self.circuit)
            })
            .collect()
    }

    /// Vpk at the operating point (the plate-to-cathode voltage at rest).
    pub(super) fn rest_plate_volts(&self) -> f64 {
        self.vpk_q_volts
    }

    /// Process a block in place (source volts in, AC plate volts out).
    pub fn process(&mut self, block: &mut [f64]) {
        if self.tables.is_empty() {
            block.fill(0.0);
            return;
        }
        let k = self.kernel::<Unfused>();
        let c = self.cathode;
        let mut st = self.state;
        let mut cs = self.cathode_state;
        let mut f_prev = k.big_f(st.q_prev);
        let mut counter = self.counter;
        for s in block.iter_mut() {
            let x = if s.is_finite() { *s } else { 0.0 };
            let pos = (counter % CHUNK as u64) as usize;
            let d = cs.drives(pos, 1)[0];
            let q_before = st.q_prev;
            let y = k.tick(&mut st, &mut f_prev, x, d);
            let trace = (q_before, st.q_prev, st.vk, st.ig_prev);
            *s = cs.close_one::<Unfused, true>(&c, pos, k.off, y, trace);
            // Per-sample flush: this standalone path is not the hot one, and
            // flushing per sample keeps it independent of block size.
            st.flush();
            counter += 1;
            if counter.is_multiple_of(CHUNK as u64) {
                cs.flush();
            }
            if !st.finite() || !cs.finite() {
                st = StageLanes::rest(&k);
                cs = CathodeLanes::default();
                f_prev = k.big_f(st.q_prev);
            }
        }
        self.state = st;
        self.cathode_state = cs;
        self.counter = counter;
    }

    /// Static transfer from source voltage to AC plate voltage (capacitor
    /// uncharged, Miller ignored): the curve the editor can plot.
    pub fn transfer_curve(&self, x: f64) -> f64 {
        if self.tables.is_empty() {
            return 0.0;
        }
        self.tables[self.table_index()]
            .eval(x * self.kth - self.vk_volts)
            .0
            - self.vpk_q_volts
    }

    /// Small-signal response from source voltage to AC plate voltage at the
    /// current sample rate (digital filters evaluated exactly, including the
    /// ADAA average (1 + z⁻¹)/2 and its compensation (1 + b)/(1 + b·z⁻¹),
    /// and the bypassed cathode: with S the curve's slope and
    /// `H = k_u·(segments per volt)/(1 − e·z⁻¹)` the cathode's rise per volt
    /// of pre-emphasised grid drive (`cathode.rs`), the plate is
    /// `S·Avg·(1 − H) + k_out·H` times that drive).
    pub fn response(&self, freq_hz: f64) -> Complex<f64> {
        let one = Complex::new(1.0, 0.0);
        let z1 = Complex::from_polar(1.0, -2.0 * PI * freq_hz / self.fs);
        let coupling = (one - z1) / (one - z1 * (1.0 - self.k_lin));
        let miller = if self.miller_g < 1.0 {
            let g = (PI * (self.miller_hz / self.fs).min(0.49)).tan();
            let s = Complex::new(0.0, (PI * freq_hz / self.fs).tan() / g);
            one / (s + 1.0)
        } else {
            one
        };
        let avg = (one + z1) * 0.5;
        let comp = (1.0 + self.comp_b) / (one + z1 * self.comp_b);
        let c = &self.cathode;
        let h = one * (c.k_u * -c.k_q) / (one - z1 * c.decay);
        let table = avg * (one - h) * self.slope_q + h * c.k_out;
        coupling * miller * comp * table * self.kth
    }

    /// Operating point: (Vk, Vp, Ip) in volts, volts, amperes.
    pub fn operating_point(&self) -> (f64, f64, f64) {
        let vs = self.table().map_or(0.0, |t| t.vs_volts);
        let ip = (vs - self.vpk_q_volts) / self.circuit.ac_load_ohms();
        (self.vk_volts, self.vpk_q_volts + self.vk_volts, ip)
    }

    /// DC shift of the grid caused by the charged coupling capacitor (0 at rest,
    /// negative after grid current): the "breathing" bias.
    pub fn grid_bias_volts(&self) -> f64 {
        -self.state.vc * self.kth
    }

    /// Grid-to-cathode voltage at table coordinate `q` (the grid drive u
    /// less the drop of the grid current across Rth + Rs): how the meters
    /// turn a peak coordinate into volts.
    pub(super) fn vgk_at(&self, q: f64) -> f64 {
        let Some(t) = self.table() else {
            return 0.0;
        };
        let u = t.lo_volts + q / t.inv_h;
        u - self.table_grid_r(self.tube.index()) * t.eval(u).1
    }

    /// Plate output resistance Ra ‖ rp at the operating point.
    pub fn output_ohms(&self) -> f64 {
        let (vk, vp, _) = self.operating_point();
        let (_, _, gp) = self
            .tube
            .constants()
            .plate_current_and_partials(-vk, vp - vk);
        self.circuit.plate_output_ohms(gp)
    }
}
