//! The Jiles-Atherton core: hysteresis and saturation of a transformer's
//! magnetising branch, and its implicit step coupled to a circuit. It holds
//! no constants of its own: a transformer passes its material (`JaMaterial`)
//! in, so another transformer (a mic input, say) reuses it with its own.
//!
//! The model is Jiles & Atherton 1986 with the delta_M correction (the form
//! used by Holters & Zoelzer, "Circuit simulation with inductors and
//! transformers based on the Jiles-Atherton model of magnetization",
//! DAFx-16, and by ChowTape) in normalised units
//! h = H/a, m = M/Ms, q = h + alpha' m, m_an = L(q) (Langevin):
//! `dm/dh = [(1-c) dM (m_an-m)/((1-c) d k' - alpha'(m_an-m)) + c L'(q)] / (1 - c alpha' L'(q))`
//! with k' = k/a, alpha' = alpha Ms/a, d = sign(dh) and dM = 1 when m moves
//! towards m_an (else the irreversible term is 0; its denominator is held
//! at >= 0.2 (1-c) k' so it never crosses zero). Flux
//! `lambda = lambda_s (eps h + m)`, eps = a/Ms; the magnetising current is
//! proportional to h.
//!
//! The step (`JaMaterial::step`) integrates the equation in h with Heun's
//! method (two slope evaluations). The circuit around the core gives one
//! equation in the flux and the current, linear in both; with the slope
//! fixed, m = m0 + g (h - h0) makes it linear in h, so each evaluation is
//! solved directly: there is no Newton loop at all.

/// Material constants of a Jiles-Atherton core, in normalised units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct JaMaterial {
    /// eps = a / Ms: the vacuum part of the flux per unit h.
    pub eps: f64,
    /// k' = k / a: pinning (width of the loop).
    pub k: f64,
    /// c: reversible fraction of the magnetisation change.
    pub c: f64,
    /// alpha' = alpha Ms / a: inter-domain coupling.
    pub alpha: f64,
}

/// State of a core: normalised field and magnetisation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct JaState {
    /// Normalised field h = H / a.
    pub h: f64,
    /// Normalised magnetisation m = M / Ms.
    pub m: f64,
}

impl JaMaterial {
    /// Slope dm/dh for field direction `delta` (+1 rising, -1 falling).
    /// The irreversible term's denominator and the whole's are brought to
    /// one: `(irr_num/den + rev)/d_all = (irr_num + rev·den)/(den·d_all)`,
    /// one division (the step is a chain of dependent operations, and a
    /// division is the longest of them).
    #[inline]
    pub fn slope(&self, h: f64, m: f64, delta: f64) -> f64 {
        let q = h + self.alpha * m;
        let (man, dman) = langevin(q);
        let dm = man - m;
        let kk = (1.0 - self.c) * self.k;
        let rev = self.c * dman;
        let d_all = 1.0 - self.c * self.alpha * dman;
        if dm * delta > 0.0 {
            let den = (kk - self.alpha * dm.abs()).max(0.2 * kk);
            ((1.0 - self.c) * dm.abs() + rev * den) / (den * d_all)
        } else {
            rev / d_all
        }
    }

    /// Small-signal slope of the normalised flux, d(eps h + m)/dh, from
    /// the demagnetised state: eps + (c/3)/(1 - c alpha'/3) (L'(0) = 1/3,
    /// and the irreversible term is 0 at m = m_an = 0).
    pub fn small_signal_flux_slope(&self) -> f64 {
        self.eps + (self.c / 3.0) / (1.0 - self.c * self.alpha / 3.0)
    }

    /// Normalised flux lambda / lambda_s = eps h + m of a state.
    #[inline]
    pub fn flux(&self, s: JaState) -> f64 {
        self.eps * s.h + s.m
    }

    /// One implicit Heun step from `from`, coupled to the circuit equation
    /// `kf (eps h + m) + kh h = p` (the flux and the current both enter
    /// linearly: `kf` weighs the normalised flux, `kh` the field). The new
    /// state; m is clamped to the physical range [-1, 1]. Not finite when
    /// the inputs are not: the caller resets the core then.
    #[inline]
    pub fn step(&self, from: JaState, kf: f64, kh: f64, p: f64) -> JaState {
        let [next] = self.steps([from], [kf], [kh], [p]);
        next
    }

    /// [`Self::step`] for `N` independent cores of this material (a
    /// stereo pair's), side by side: each phase of the step (the
    /// direction, the first slope, its solve, the second slope, the last
    /// solve) runs for every core before the next phase begins. A step is
    /// one chain of dependent operations (two `exp`, six divisions), so
    /// two cores' chains overlap instead of following one another. Each
    /// core's result is bit for bit its own `step` (the same operations).
    #[inline]
    pub fn steps<const N: usize>(
        &self,
        from: [JaState; N],
        kf: [f64; N],
        kh: [f64; N],
        p: [f64; N],
    ) -> [JaState; N] {
        let each: [usize; N] = std::array::from_fn(|i| i);
        let (h0, m0) = (from.map(|s| s.h), from.map(|s| s.m));
        // Direction of the field change (the equation is monotone in h).
        let delta = each.map(|i| {
            let r0 = kf[i] * (self.eps * h0[i] + m0[i]) + kh[i] * h0[i] - p[i];
            if r0 < 0.0 {
                1.0
            } else {
                -1.0
            }
        });
        let solve = |i: usize, g: f64| {
            (p[i] - kf[i] * (m0[i] - g * h0[i])) / (kf[i] * (self.eps + g) + kh[i])
        };
        let g1 = each.map(|i| self.slope(h0[i], m0[i], delta[i]));
        let h1 = each.map(|i| solve(i, g1[i]));
        let m1 = each.map(|i| m0[i] + g1[i] * (h1[i] - h0[i]));
        let g2 = each.map(|i| self.slope(h1[i], m1[i], delta[i]));
        let g = each.map(|i| 0.5 * (g1[i] + g2[i]));
        let h = each.map(|i| solve(i, g[i]));
        each.map(|i| JaState {
            h: h[i],
            m: (m0[i] + g[i] * (h[i] - h0[i])).clamp(-1.0, 1.0),
        })
    }
}

/// Langevin function L(x) = coth(x) - 1/x and its derivative
/// L'(x) = 1/x^2 - 1/sinh^2(x). Near 0 both cancel catastrophically, so
/// |x| < 0.1 uses the Taylor series (error < 1e-13); above, one `exp` and
/// one division: with e = exp(-2|x|), d = 1 - e and r = 1/(d |x|),
/// 1/d = |x| r and 1/|x| = d r, so coth|x| = (1 + e)/d = (1 + e) |x| r
/// and L' = (d r)^2 - 4 e (|x| r)^2 (each square finite for any finite x).
#[inline]
fn langevin(x: f64) -> (f64, f64) {
    let ax = x.abs();
    if ax < 0.1 {
        let x2 = x * x;
        let l = x * (1.0 / 3.0 + x2 * (-1.0 / 45.0 + x2 * (2.0 / 945.0 - x2 / 4725.0)));
        let dl = 1.0 / 3.0 + x2 * (-1.0 / 15.0 + x2 * (2.0 / 189.0 - x2 / 675.0));
        (l, dl)
    } else {
        let e = (-2.0 * ax).exp();
        let d = 1.0 - e;
        let r = 1.0 / (d * ax);
        let (inv, ix) = (ax * r, d * r);
        let l = ((1.0 + e) * inv - ix).copysign(x);
        let dl = ix * ix - 4.0 * e * inv * inv;
        (l, dl)
    }
}
