//! A measured impedance curve: reading it from a CSV file or a saved
//! state, and checking it, before `custom.rs` designs a filter from it.
//!
//! A file is decoded (UTF-8 with or without a byte-order mark, UTF-16 LE/BE,
//! Latin-1; at most `MAX_CSV_BYTES`, and text, not binary), then parsed as
//! rows of frequency (Hz), |Z| (ohms) and optionally phase (degrees);
//! a saved state's points are checked the same way (`from_points`). Every
//! failure is an error that names the line or point and what to fix.

use num_complex::Complex;
use std::fmt;

type C64 = Complex<f64>;

/// Most points a measured curve may have, in a CSV file or in a saved
/// state. A measurement exported at 1/96 octave from 1 Hz to 100 kHz has
/// ~1600; a linear FFT export of 16k bins fits. Each point costs ~60 bytes
/// of JSON in the plugin state, so a session stays under ~1 MB.
pub const MAX_POINTS: usize = 16_384;
/// Largest CSV file accepted, bytes (1 MiB): 16k points of three numbers
/// fit with room for comments; anything larger is not an impedance curve.
pub const MAX_CSV_BYTES: usize = 1 << 20;

/// A measured impedance curve: strictly increasing frequencies and the
/// complex impedance at each.
#[derive(Clone, Debug, PartialEq)]
pub struct ImpedanceCurve {
    /// Measurement frequencies, Hz, strictly increasing.
    pub freqs_hz: Vec<f64>,
    /// Complex impedance at each frequency, ohms.
    pub z_ohms: Vec<C64>,
}

impl ImpedanceCurve {
    /// Complex impedance at `freq_hz`: ln|Z| and phase interpolated
    /// linearly in ln f, held at the end values outside the measured range.
    pub fn impedance(&self, freq_hz: f64) -> C64 {
        let f = &self.freqs_hz;
        let n = f.len();
        if n == 0 {
            return C64::new(32.0, 0.0);
        }
        if freq_hz <= f[0] {
            return self.z_ohms[0];
        }
        if freq_hz >= f[n - 1] {
            return self.z_ohms[n - 1];
        }
        let i = f.partition_point(|&x| x <= freq_hz).clamp(1, n - 1);
        let (f0, f1) = (f[i - 1], f[i]);
        let t = (freq_hz / f0).ln() / (f1 / f0).ln();
        let (z0, z1) = (self.z_ohms[i - 1], self.z_ohms[i]);
        let m = (z0.norm().ln() * (1.0 - t) + z1.norm().ln() * t).exp();
        let p = z0.arg() * (1.0 - t) + z1.arg() * t;
        C64::from_polar(m, p)
    }

    /// Nominal impedance for the damping factor and the 1/8 rule: |Z| at
    /// 1 kHz (where headphone impedance is rated).
    pub fn nominal_ohms(&self) -> f64 {
        self.impedance(1000.0).norm()
    }
}

/// Why a CSV impedance curve was rejected. Line numbers count from 1.
#[derive(Clone, Debug, PartialEq)]
pub enum CsvError {
    /// No data at all.
    Empty,
    /// A data line with fewer than three columns.
    MissingColumns {
        /// Line number.
        line: usize,
        /// Columns found.
        found: usize,
    },
    /// A field that is not a finite number.
    NotANumber {
        /// Line number.
        line: usize,
        /// Column (1-based).
        column: usize,
        /// The offending text.
        text: String,
    },
    /// A frequency not above the previous one (or not above 0 Hz).
    NonIncreasingFrequency {
        /// Line number.
        line: usize,
        /// This line's frequency, Hz.
        freq_hz: f64,
        /// The previous frequency, Hz.
        previous_hz: f64,
    },
    /// A negative or zero impedance magnitude.
    NegativeImpedance {
        /// Line number.
        line: usize,
        /// The value, ohms.
        ohms: f64,
    },
    /// Fewer than 8 data points.
    TooFewPoints {
        /// Points found.
        found: usize,
    },
    /// More than [`MAX_POINTS`] data points.
    TooManyPoints {
        /// Line of the first point past the limit.
        line: usize,
    },
    /// The file is larger than [`MAX_CSV_BYTES`].
    TooLarge {
        /// The file's size, bytes.
        bytes: u64,
    },
    /// The bytes are not text in an encoding the reader knows.
    NotText {
        /// What gave it away, for a person.
        reason: String,
    },
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CsvError::Empty => write!(f, "the impedance file is empty: no data lines (expected frequency Hz, |Z| ohm, phase degrees)"),
            CsvError::MissingColumns { line, found } => write!(
                f,
                "line {line}: missing columns: expected 3 (frequency Hz, |Z| ohm, phase degrees), found {found}"
            ),
            CsvError::NotANumber { line, column, text } => {
                write!(f, "line {line}: column {column} is not a number: \"{text}\"")
            }
            CsvError::NonIncreasingFrequency {
                line,
                freq_hz,
                previous_hz,
            } => write!(
                f,
                "line {line}: frequencies must increase: {freq_hz} Hz does not follow {previous_hz} Hz"
            ),
            CsvError::NegativeImpedance { line, ohms } => write!(
                f,
                "line {line}: negative or zero impedance {ohms} ohm (|Z| must be above 0)"
            ),
            CsvError::TooFewPoints { found } => write!(
                f,
                "too few points: {found} data lines, at least 8 are needed"
            ),
            CsvError::TooManyPoints { line } => write!(
                f,
                "line {line}: too many points: at most {MAX_POINTS} are accepted (export the measurement with fewer points, e.g. 1/48 octave)"
            ),
            CsvError::TooLarge { bytes } => write!(
                f,
                "is too large for an impedance curve: {bytes} bytes ({:.1} MiB), the limit is {MAX_CSV_BYTES} bytes (1 MiB); export the measurement with fewer points (e.g. 1/48 octave)",
                *bytes as f64 / f64::from(1u32 << 20)
            ),
            CsvError::NotText { reason } => write!(
                f,
                "is not a text file ({reason}); an impedance curve must be text (CSV: frequency Hz, |Z| ohm, phase degrees, in UTF-8, UTF-16 or Latin-1): export it from the measurement program as text or CSV"
            ),
        }
    }
}

impl CsvError {
    /// The message for a person, naming `file`: "FILE is not a text file
    /// …", "FILE: line 3: …".
    pub fn about(&self, file: &str) -> String {
        match self {
            CsvError::TooLarge { .. } | CsvError::NotText { .. } => format!("{file} {self}"),
            _ => format!("{file}: {self}"),
        }
    }
}

/// Why a list of curve points (from a saved state) was rejected. Points
/// count from 1.
#[derive(Clone, Debug, PartialEq)]
pub enum PointsError {
    /// Fewer than 8 points.
    TooFew {
        /// Points found.
        found: usize,
    },
    /// More than [`MAX_POINTS`] points.
    TooMany {
        /// Points found.
        found: usize,
    },
    /// A value that is not a finite number.
    NotFinite {
        /// Point number.
        point: usize,
    },
    /// A frequency not above the previous one (or not above 0 Hz).
    NonIncreasingFrequency {
        /// Point number.
        point: usize,
        /// Its frequency, Hz.
        freq_hz: f64,
        /// The previous frequency, Hz.
        previous_hz: f64,
    },
    /// A zero or negative |Z|.
    NonPositiveImpedance {
        /// Point number.
        point: usize,
        /// The value, ohms.
        ohms: f64,
    },
}

impl fmt::Display for PointsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointsError::TooFew { found } => {
                write!(f, "{found} points, at least 8 are needed")
            }
            PointsError::TooMany { found } => {
                write!(f, "{found} points, at most {MAX_POINTS} are accepted")
            }
            PointsError::NotFinite { point } => {
                write!(f, "point {point} has a value that is not a finite number")
            }
            PointsError::NonIncreasingFrequency { point: 1, freq_hz, .. } => write!(
                f,
                "point 1: the frequency {freq_hz} Hz is not above 0 Hz"
            ),
            PointsError::NonIncreasingFrequency {
                point,
                freq_hz,
                previous_hz,
            } => write!(
                f,
                "point {point}: frequencies must increase: {freq_hz} Hz does not follow {previous_hz} Hz"
            ),
            PointsError::NonPositiveImpedance { point, ohms } => write!(
                f,
                "point {point}: negative or zero impedance {ohms} ohm (|Z| must be above 0)"
            ),
        }
    }
}

impl std::error::Error for PointsError {}

/// Turns the bytes of a curve file into text: UTF-8 (with or without a
/// byte-order mark), UTF-16 little- or big-endian (with a byte-order mark,
/// or without one when the text is plain ASCII in two bytes per
/// character, as some Windows measurement programs write it), or, failing
/// UTF-8, Latin-1 / Windows-1252 (a "°" or "Ω" in a header). Refuses more
/// than [`MAX_CSV_BYTES`] and anything with control characters other than
/// tab, line feed, carriage return, form feed and a trailing DOS end-of-file
/// mark: a binary file.
pub fn decode_csv_bytes(bytes: &[u8]) -> Result<String, CsvError> {
    if bytes.len() > MAX_CSV_BYTES {
        return Err(CsvError::TooLarge {
            bytes: bytes.len() as u64,
        });
    }
    let not_text = |reason: String| CsvError::NotText { reason };
    let utf16 = |body: &[u8], little: bool| -> Result<String, CsvError> {
        if !body.len().is_multiple_of(2) {
            return Err(not_text(
                "UTF-16 text with an odd number of bytes".to_string(),
            ));
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|p| {
                if little {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16(&units)
            .map_err(|_| not_text("UTF-16 with an invalid surrogate pair".to_string()))
    };
    let text = if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8(body.to_vec()).map_err(|e| {
            not_text(format!(
                "a UTF-8 byte-order mark, then bytes that are not UTF-8 at offset {}",
                e.utf8_error().valid_up_to() + 3
            ))
        })?
    } else if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        utf16(body, true)?
    } else if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        utf16(body, false)?
    } else if let Some(little) = ascii_utf16_without_bom(bytes) {
        utf16(bytes, little)?
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            // Latin-1 / Windows-1252: every byte is a character; the
            // numbers are ASCII either way.
            Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
        }
    };
    // A DOS end-of-file mark ends the text.
    let text = match text.strip_suffix('\u{1a}') {
        Some(body) => body.to_string(),
        None => text,
    };
    if let Some((offset, c)) = text.char_indices().find(|(_, c)| {
        c.is_control()
            && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')
            && !('\u{80}'..='\u{9f}').contains(c)
    }) {
        return Err(not_text(format!(
            "control character U+{:04X} at character {}",
            u32::from(c),
            text[..offset].chars().count() + 1
        )));
    }
    Ok(text)
}

/// UTF-16 without a byte-order mark, recognised only when the first
/// characters are ASCII stored in two bytes each (a zero byte in every
/// other position): `Some(true)` little-endian, `Some(false)` big-endian.
fn ascii_utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let head = &bytes[..bytes.len().min(64) & !1];
    if head.len() < 8 {
        return None;
    }
    let ascii = |b: u8| (0x09..0x7f).contains(&b);
    let pairs = || head.chunks_exact(2);
    if pairs().all(|p| ascii(p[0]) && p[1] == 0) {
        Some(true)
    } else if pairs().all(|p| p[0] == 0 && ascii(p[1])) {
        Some(false)
    } else {
        None
    }
}

impl std::error::Error for CsvError {}

/// Splits a line into fields: semicolon (with decimal commas allowed),
/// tab, comma, or runs of spaces, as REW, ARTA, Dayton DATS and
/// spreadsheets export.
fn fields(line: &str) -> Vec<String> {
    if line.contains(';') {
        line.split(';')
            .map(|s| s.trim().replace(',', "."))
            .collect()
    } else if line.contains('\t') {
        line.split('\t')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else if line.contains(',') {
        line.split(',').map(|s| s.trim().to_string()).collect()
    } else {
        line.split_whitespace().map(|s| s.to_string()).collect()
    }
}

/// Parses a measured impedance curve: frequency (Hz), |Z| (ohm), phase
/// (degrees) per line; extra columns are ignored. Blank lines and comments
/// (starting with `#`, `*` or `//`) are skipped; a header line (first
/// field not a number) is accepted before the first data line.
pub fn parse_impedance_csv(text: &str) -> Result<ImpedanceCurve, CsvError> {
    let points = parse_impedance_points(text)?;
    Ok(ImpedanceCurve::from_checked_points(&points))
}

/// Parses a measured impedance curve (as [`parse_impedance_csv`]) into its
/// points as written: `[frequency Hz, |Z| ohm, phase degrees]`, 8 to
/// [`MAX_POINTS`] of them, frequencies above 0 and strictly increasing,
/// |Z| above 0. [`ImpedanceCurve::from_points`] turns them into a curve.
pub fn parse_impedance_points(text: &str) -> Result<Vec<[f64; 3]>, CsvError> {
    let mut points: Vec<[f64; 3]> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('*')
            || line.starts_with("//")
        {
            continue;
        }
        let cols = fields(line);
        let first_is_number = cols.first().is_some_and(|c| c.parse::<f64>().is_ok());
        if points.is_empty() && !first_is_number {
            // Header line (e.g. "Freq(Hz), Z(ohm), Phase(deg)").
            continue;
        }
        if cols.len() < 3 || cols[..3].iter().any(|c| c.is_empty()) {
            let found = cols.iter().filter(|c| !c.is_empty()).count();
            return Err(CsvError::MissingColumns {
                line: line_no,
                found,
            });
        }
        let mut v = [0.0; 3];
        for (k, c) in cols[..3].iter().enumerate() {
            match c.parse::<f64>() {
                Ok(x) if x.is_finite() => v[k] = x,
                _ => {
                    return Err(CsvError::NotANumber {
                        line: line_no,
                        column: k + 1,
                        text: c.clone(),
                    })
                }
            }
        }
        let prev = points.last().map_or(0.0, |p| p[0]);
        if v[0] <= prev {
            return Err(CsvError::NonIncreasingFrequency {
                line: line_no,
                freq_hz: v[0],
                previous_hz: prev,
            });
        }
        if v[1] <= 0.0 {
            return Err(CsvError::NegativeImpedance {
                line: line_no,
                ohms: v[1],
            });
        }
        if points.len() == MAX_POINTS {
            return Err(CsvError::TooManyPoints { line: line_no });
        }
        points.push(v);
    }
    if points.is_empty() {
        return Err(CsvError::Empty);
    }
    if points.len() < 8 {
        return Err(CsvError::TooFewPoints {
            found: points.len(),
        });
    }
    Ok(points)
}

impl ImpedanceCurve {
    /// The curve through `points` (`[frequency Hz, |Z| ohm, phase
    /// degrees]`, as [`parse_impedance_points`] gives them), checked as the
    /// CSV parser checks a file: 8 to [`MAX_POINTS`] points, all finite,
    /// frequencies above 0 and strictly increasing, |Z| above 0. Points
    /// from a saved state come through here, so a corrupt state is an
    /// error, never a panic or a NaN filter.
    pub fn from_points(points: &[[f64; 3]]) -> Result<Self, PointsError> {
        if points.len() < 8 {
            return Err(PointsError::TooFew {
                found: points.len(),
            });
        }
        if points.len() > MAX_POINTS {
            return Err(PointsError::TooMany {
                found: points.len(),
            });
        }
        let mut previous_hz = 0.0;
        for (i, p) in points.iter().enumerate() {
            let point = i + 1;
            if !p.iter().all(|v| v.is_finite()) {
                return Err(PointsError::NotFinite { point });
            }
            if p[0] <= previous_hz {
                return Err(PointsError::NonIncreasingFrequency {
                    point,
                    freq_hz: p[0],
                    previous_hz,
                });
            }
            if p[1] <= 0.0 {
                return Err(PointsError::NonPositiveImpedance { point, ohms: p[1] });
            }
            previous_hz = p[0];
        }
        Ok(Self::from_checked_points(points))
    }

    /// The curve through points already checked. One conversion for the
    /// CSV and the saved state, so both give bit-identical curves.
    fn from_checked_points(points: &[[f64; 3]]) -> Self {
        ImpedanceCurve {
            freqs_hz: points.iter().map(|p| p[0]).collect(),
            z_ohms: points
                .iter()
                .map(|p| C64::from_polar(p[1], p[2].to_radians()))
                .collect(),
        }
    }
}
