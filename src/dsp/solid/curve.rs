//! The static curve of an op-amp stage at its rails ([`RailCurve`]): exactly
//! linear up to a knee, a parabolic knee into the output swing, flat beyond;
//! its antiderivative in closed form, and the first-order ADAA step over it
//! (derivation in the module header of `solid.rs`).

/// Where the knee starts, as a fraction of the output swing: the curve is
/// exactly the identity below it (a sine whose peak stays under it, up to
/// 0.92 dB under the clip level, comes out with no distortion at all).
pub(super) const KNEE_START: f64 = 0.9;

/// Below this step between two samples (volts at the curve's input) the
/// ADAA quotient would lose digits, and the curve at the mid-point of the
/// step is used instead. The two errors balance there: the quotient's
/// rounding is about 3·ulp(F)/Δ ≈ 1e-13/Δ V (F ≈ 160 V² at the knee), the
/// mid-point's error f''·Δ²/24 ≤ 0.016·Δ² V (|f''| = 1/w, w = 2.66 V);
/// both are under 1e-9 V (−200 dB re the swing) at Δ = 1e-4 V.
pub(super) const ADAA_MIN_STEP_VOLTS: f64 = 1e-4;

/// 1/6, rounded: t³/6 as `t·t²·SIXTH` (a multiply; a division by 6, as
/// written before, cost a division per antiderivative beside the ADAA
/// quotient's, about as much as the rest of the step; F moves by at most
/// an ulp of its knee term, the average by under 1e-11 V).
const SIXTH: f64 = 1.0 / 6.0;

/// One op-amp stage's output against its ideal (unclipped) output, in volts:
/// `f(x) = x` for |x| ≤ a; in the knee a < |x| < b, with `t = (|x| − a)/w`,
/// `f = sgn(x)·(a + w·(t − t²/2))`; `f = sgn(x)·V` for |x| ≥ b.
/// V is the output swing, a = [`KNEE_START`]·V, w = 2(V − a), b = a + w.
/// f is odd, rises monotonically and is C¹: its slope `f' = 1 − t` falls
/// from 1 to 0 across the knee at the constant curvature −1/w, the least
/// curvature that turns the slope from 1 to 0 within a rise of V − a.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct RailCurve {
    /// Output swing V (the flat top), volts.
    swing: f64,
    /// Start of the knee a, volts.
    knee: f64,
    /// Width of the knee w = 2(V − a), volts.
    width: f64,
    /// 1/w, per volt.
    inv_width: f64,
    /// End of the knee b = a + w (the input that reaches the swing), volts.
    limit: f64,
}

impl RailCurve {
    /// The curve of a stage whose output swings to ±`swing_volts`.
    pub(super) fn new(swing_volts: f64) -> Self {
        let knee = KNEE_START * swing_volts;
        let width = 2.0 * (swing_volts - knee);
        Self {
            swing: swing_volts,
            knee,
            width,
            inv_width: 1.0 / width,
            limit: knee + width,
        }
    }

    /// Where the knee starts (a), volts.
    pub(super) fn knee(&self) -> f64 {
        self.knee
    }

    /// The three regions in one branch-free form, for |x| = u: the part
    /// below the knee m = min(u, a), the knee coordinate
    /// t = clamp((u − a)/w, 0, 1) and the part beyond the knee
    /// s = max(u − b, 0).
    #[inline(always)]
    fn parts(&self, u: f64) -> (f64, f64, f64) {
        let t = ((u - self.knee) * self.inv_width).clamp(0.0, 1.0);
        (u.min(self.knee), t, (u - self.limit).max(0.0))
    }

    /// The curve f(x) = sgn(x)·(m + w·(t − t²/2)) (see [`Self::parts`]):
    /// x itself below the knee (t = 0), ±V beyond it (t = 1).
    #[inline(always)]
    pub(super) fn value(&self, x: f64) -> f64 {
        let (m, t, _) = self.parts(x.abs());
        (m + self.width * t * (1.0 - 0.5 * t)).copysign(x)
    }

    /// The antiderivative F(x) = ∫₀ˣ f (even):
    /// `m²/2 + a·w·t + w²·(t²/2 − t³/6) + V·s` (see [`Self::parts`]):
    /// x²/2 below the knee, `F(b) + V·(|x| − b)` beyond it.
    #[inline(always)]
    pub(super) fn antiderivative(&self, x: f64) -> f64 {
        let (m, t, s) = self.parts(x.abs());
        let (a, w) = (self.knee, self.width);
        0.5 * m * m + w * t * (a + w * t * (0.5 - t * SIXTH)) + self.swing * s
    }

    /// First-order ADAA from the previous input `x_prev` (whose
    /// antiderivative is `big_f_prev`) to `x`: the curve averaged over the
    /// straight line between them, `(F(x) − F(x_prev))/(x − x_prev)`.
    /// Returns it with F(x). Where the quotient is not needed it takes the
    /// curve at the mid-point of the step, which is the average exactly
    /// when both ends are below the knee (`(x + x_prev)/2`, without the
    /// quotient's rounding) or on the same flat top (±V), and within 1e-9 V
    /// of it for a step of at most [`ADAA_MIN_STEP_VOLTS`]. Both are
    /// computed and one is picked, without a branch (a clipped signal
    /// crosses between the regions unpredictably). The result is clamped
    /// to ±V, the range of any average of f, which also turns a NaN into a
    /// finite value.
    #[cfg(test)]
    pub(super) fn adaa(&self, x: f64, x_prev: f64, big_f_prev: f64) -> (f64, f64) {
        let big_f = self.antiderivative(x);
        (self.average(x, x_prev, big_f, big_f_prev), big_f)
    }

    /// The ADAA step of [`Self::adaa`] from `x_prev` to `x` given both
    /// antiderivatives (`big_f` = F(x), `big_f_prev` = F(x_prev)): carries
    /// nothing from one step to the next, so a loop of them vectorises.
    #[inline(always)]
    pub(super) fn average(&self, x: f64, x_prev: f64, big_f: f64, big_f_prev: f64) -> f64 {
        let (a, b) = (self.knee, self.limit);
        let dx = x - x_prev;
        let mid = self.value(0.5 * (x + x_prev));
        let quotient = (big_f - big_f_prev) / dx;
        // (`&` and `|`, not `&&` and `||`: every comparison is made, so
        // nothing branches.)
        let exact_mid = (x.abs() <= a) & (x_prev.abs() <= a)
            | (x >= b) & (x_prev >= b)
            | (x <= -b) & (x_prev <= -b);
        let y = if exact_mid | (dx.abs() <= ADAA_MIN_STEP_VOLTS) {
            mid
        } else {
            quotient
        };
        y.max(-self.swing).min(self.swing)
    }
}
