//! Bucket keys of the exponential schema: which bucket a value falls in, a bucket's upper
//! bound, and a key at a lower resolution. No libm: `frexp` is bit manipulation on the `f64`,
//! and the sub-octave bounds come from one table.
//!
//! At schema `s` the bucket with key `k` holds the values in `(2^((k-1)/2^s), 2^(k/2^s)]`, so
//! `k = ceil(log2(v) * 2^s)`, the rule of Prometheus' native histograms. A bucket of schema `s`
//! is exactly two buckets of schema `s + 1`.

/// The lowest and highest schema Prometheus accepts.
pub(crate) const MIN_SCHEMA: i8 = -4;
/// See [`MIN_SCHEMA`].
pub(crate) const MAX_SCHEMA: i8 = 8;

/// `2^(i/256) / 2` for `i` in `0..256`, each the `f64` nearest the exact value (computed with
/// 60-digit decimals): the fractions of an octave at schema 8. Schema `s > 0` uses every
/// `2^(8-s)`-th entry. client_golang's table differs from this one in the last digit of a few
/// entries (e.g. `2^(1/2)/2`, which it has as `0.7071067811865475`), so a value within one ulp
/// of such a bound may land in the neighbouring bucket.
const FRACTIONS: [f64; 256] = [
    0.5,
    0.5013556375251013,
    0.5027149505564014,
    0.5040779490592088,
    0.5054446430258502,
    0.5068150424757447,
    0.5081891574554765,
    0.509566998038869,
    0.5109485743270583,
    0.5123338964485679,
    0.5137229745593819,
    0.5151158188430205,
    0.5165124395106142,
    0.5179128468009786,
    0.5193170509806894,
    0.520725062344158,
    0.5221368912137069,
    0.5235525479396449,
    0.5249720429003436,
    0.5263953865023132,
    0.5278225891802786,
    0.5292536613972564,
    0.530688613644631,
    0.5321274564422322,
    0.5335702003384118,
    0.5350168559101209,
    0.5364674337629878,
    0.5379219445313955,
    0.5393803988785599,
    0.5408428074966076,
    0.5423091811066546,
    0.5437795304588848,
    0.5452538663326288,
    0.5467321995364429,
    0.5482145409081884,
    0.549700901315111,
    0.5511912916539204,
    0.5526857228508706,
    0.5541842058618394,
    0.5556867516724088,
    0.5571933712979462,
    0.5587040757836846,
    0.5602188762048034,
    0.56173778366651,
    0.5632608093041209,
    0.564787964283144,
    0.5663192597993596,
    0.5678547070789027,
    0.5693943173783458,
    0.5709381019847808,
    0.5724860722159021,
    0.5740382394200895,
    0.5755946149764913,
    0.577155210295108,
    0.5787200368168756,
    0.5802891060137494,
    0.5818624293887887,
    0.5834400184762408,
    0.5850218848416251,
    0.5866080400818187,
    0.5881984958251406,
    0.5897932637314379,
    0.5913923554921705,
    0.5929957828304969,
    0.5946035575013605,
    0.5962156912915756,
    0.5978321960199137,
    0.5994530835371903,
    0.6010783657263515,
    0.6027080545025619,
    0.6043421618132908,
    0.6059806996384006,
    0.6076236799902345,
    0.6092711149137042,
    0.6109230164863788,
    0.6125793968185728,
    0.614240268053435,
    0.6159056423670379,
    0.6175755319684667,
    0.6192499490999083,
    0.620928906036742,
    0.622612415087629,
    0.6243004885946024,
    0.6259931389331581,
    0.6276903785123455,
    0.6293922197748583,
    0.6310986751971254,
    0.6328097572894031,
    0.6345254785958666,
    0.6362458516947014,
    0.637970889198196,
    0.6397006037528347,
    0.6414350080393891,
    0.6431741147730128,
    0.6449179367033329,
    0.6466664866145447,
    0.6484197773255048,
    0.6501778216898253,
    0.6519406325959679,
    0.6537082229673387,
    0.6554806057623822,
    0.6572577939746773,
    0.659039800633032,
    0.6608266388015788,
    0.6626183215798707,
    0.6644148621029772,
    0.6662162735415808,
    0.6680225691020729,
    0.6698337620266515,
    0.6716498655934177,
    0.6734708931164729,
    0.6752968579460172,
    0.6771277734684463,
    0.6789636531064506,
    0.6808045103191124,
    0.682650358602006,
    0.6845012114872953,
    0.6863570825438342,
    0.6882179853772651,
    0.690083933630119,
    0.691954940981916,
    0.6938310211492645,
    0.6957121878859631,
    0.6975984549831001,
    0.6994898362691556,
    0.7013863456101024,
    0.7032879969095077,
    0.7051948041086353,
    core::f64::consts::FRAC_1_SQRT_2,
    0.7090239421602076,
    0.7109463010845828,
    0.7128738720527471,
    0.714806669195985,
    0.7167447066838945,
    0.7186879987244912,
    0.7206365595643128,
    0.7225904034885233,
    0.7245495448210175,
    0.7265139979245263,
    0.7284837772007219,
    0.7304588970903235,
    0.7324393720732029,
    0.7344252166684909,
    0.7364164454346838,
    0.7384130729697497,
    0.7404151139112359,
    0.7424225829363762,
    0.7444354947621985,
    0.7464538641456324,
    0.7484777058836177,
    0.7505070348132128,
    0.7525418658117032,
    0.7545822137967114,
    0.7566280937263049,
    0.7586795205991074,
    0.7607365094544073,
    0.7627990753722692,
    0.7648672334736435,
    0.766940998920478,
    0.7690203869158284,
    0.7711054127039704,
    0.7731960915705107,
    0.7752924388425,
    0.7773944698885443,
    0.7795022001189185,
    0.7816156449856788,
    0.7837348199827765,
    0.7858597406461707,
    0.7879904225539432,
    0.7901268813264123,
    0.7922691326262469,
    0.794417192158582,
    0.7965710756711335,
    0.7987307989543135,
    0.8008963778413467,
    0.8030678282083855,
    0.8052451659746271,
    0.8074284071024304,
    0.8096175675974319,
    0.8118126635086644,
    0.8140137109286739,
    0.8162207259936375,
    0.8184337248834822,
    0.8206527238220032,
    0.8228777390769825,
    0.8251087869603089,
    0.8273458838280972,
    0.8295890460808081,
    0.8318382901633682,
    0.8340936325652912,
    0.8363550898207983,
    0.8386226785089392,
    0.8408964152537145,
    0.8431763167241967,
    0.8454623996346526,
    0.8477546807446663,
    0.8500531768592617,
    0.8523579048290256,
    0.8546688815502315,
    0.856986123964963,
    0.859309649061239,
    0.861639473873137,
    0.8639756154809188,
    0.8663180910111555,
    0.8686669176368531,
    0.8710221125775782,
    0.8733836930995845,
    0.8757516765159391,
    0.8781260801866497,
    0.880506921518792,
    0.8828942179666364,
    0.8852879870317774,
    0.8876882462632606,
    0.8900950132577122,
    0.8925083056594675,
    0.8949281411607005,
    0.8973545375015536,
    0.8997875124702676,
    0.902227083903312,
    0.904673269685516,
    0.9071260877501994,
    0.9095855560793042,
    0.9120516927035267,
    0.9145245157024486,
    0.9170040432046712,
    0.9194902933879469,
    0.921983284479313,
    0.9244830347552254,
    0.9269895625416927,
    0.9295028862144102,
    0.9320230241988945,
    0.9345499949706193,
    0.93708381705515,
    0.9396245090282801,
    0.9421720895161673,
    0.9447265771954696,
    0.9472879907934828,
    0.9498563490882777,
    0.9524316709088371,
    0.9550139751351949,
    0.9576032806985737,
    0.9601996065815237,
    0.9628029718180625,
    0.9654133954938136,
    0.9680308967461472,
    0.9706554947643202,
    0.9732872087896166,
    0.9759260581154892,
    0.9785720620877001,
    0.9812252401044637,
    0.9838856116165879,
    0.9865531961276172,
    0.9892280131939755,
    0.9919100824251097,
    0.9945994234836332,
    0.9972960560854701,
];

/// `(frac, exp)` with `v == frac * 2^exp` and `frac` in `[0.5, 1)`, for finite positive `v`
/// (subnormals included), as C's and Go's `frexp`.
#[cfg(all(test, not(loom)))]
pub(crate) fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let (bits, exp, shift) = if exp == 0 {
        // Subnormal: scale it into the normal range first (exact), then take it apart.
        let scaled = (v * pow2(64)).to_bits();
        (scaled, ((scaled >> 52) & 0x7ff) as i32, 64)
    } else {
        (bits, exp, 0)
    };
    // Replace the exponent with the one of 0.5 (1022 biased), keeping sign and mantissa.
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp - 1022 - shift)
}

/// `2^e` as an `f64`: 0 below the smallest subnormal, `+Inf` above the largest finite power.
pub(crate) fn pow2(e: i32) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1 << (e + 1074))
    } else {
        0.0
    }
}

/// The key of the bucket holding `|v|` at `schema` (in `MIN_SCHEMA..=MAX_SCHEMA`), for a `v`
/// that is neither NaN nor zero. Infinities get the key after the largest finite value's, as
/// in client_golang.
#[cfg(all(test, not(loom)))]
pub(crate) fn key(v: f64, schema: i8) -> i32 {
    FineKey::of(v).at(schema)
}

/// The bucket of `|v|` at the highest schema, from which its bucket at every schema follows (a
/// bucket of schema `s` is exactly `2^(8-s)` buckets of schema 8): an observation computes it
/// before it takes a stripe, and only shifts it to the stripe's schema inside.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FineKey {
    /// The schema-8 key minus 1: what [`reduce`] shifts, kept ready so that the shift follows
    /// the table loads at once.
    below: i32,
    inf: bool,
}

impl FineKey {
    /// The key of `|v|` for a `v` that is neither NaN nor zero (for those it is meaningless,
    /// and never used, but computing it is harmless). Integer operations on the bits only: a
    /// float operation and the moves between float and integer registers would sit on the
    /// path of every observation.
    #[inline(always)]
    pub(crate) fn of(v: f64) -> Self {
        let bits = v.to_bits() & !(1 << 63);
        // One predicted branch for the rare exponents (zero and subnormals: 0; infinities and
        // NaN: 0x7ff) instead of a compare and select on the way to the table loads.
        if ((bits >> 52) + 1) & 0x7ff <= 1 {
            return Self::of_extreme(bits);
        }
        Self { below: Self::normal(bits) - 1, inf: false }
    }

    /// The schema-8 key of the positive normal `f64` with these bits: with `frexp`'s
    /// `(frac, exp)`, the step of `frac` within its octave plus 256 per octave (`exp - 1`);
    /// `frac`'s mantissa is the value's own.
    #[inline]
    fn normal(bits: u64) -> i32 {
        let exp = (bits >> 52) as i32 - 1022;
        octave_step(bits & MANTISSA) + (exp - 1) * 256
    }

    /// [`Self::of`] for zero, a subnormal (scaled into the normal range first, exactly), an
    /// infinity or NaN (the largest finite value's key, marked infinite).
    #[cold]
    #[inline(never)]
    fn of_extreme(bits: u64) -> Self {
        if bits >> 52 != 0 {
            return Self { below: Self::normal(f64::MAX.to_bits()) - 1, inf: true };
        }
        let scaled = (f64::from_bits(bits) * pow2(64)).to_bits();
        Self { below: Self::normal(scaled) - 64 * 256 - 1, inf: false }
    }

    /// The key at `schema` (in `MIN_SCHEMA..=MAX_SCHEMA`). Infinities get the key after the
    /// largest finite value's, as in client_golang.
    #[inline]
    pub(crate) fn at(self, schema: i8) -> i32 {
        // `reduce` without its clamp: a schema in range shifts by 0 to 12.
        let by = (MAX_SCHEMA - schema) as u32;
        (self.below.wrapping_shr(by) + 1) + i32::from(self.inf)
    }
}

/// The mantissa bits of an `f64`.
const MANTISSA: u64 = (1 << 52) - 1;

/// How many of [`FRACTIONS`] are below the `frac` (in `[0.5, 1)`) with mantissa `mantissa`:
/// the schema-8 key within its octave. The top 9 bits of the mantissa name one of 512 *cells*
/// of `frac`; a cell is narrower (`2^-10`) than the gap between two fractions (at least
/// `2^-1 × (2^(1/256) − 1)`), so it holds at most one of them. Two loads that do not wait for
/// each other and one integer compare (the fractions share `frac`'s exponent, so their
/// mantissas order like them), with no branch to mispredict: this sits on the path of every
/// observation.
///
/// On bare-metal targets, where flash counts more, [`octave_step_small`] instead: 256 bytes of
/// table instead of 4.5 KiB, and two loads that wait for a first one.
#[inline(always)]
fn octave_step(mantissa: u64) -> i32 {
    if cfg!(target_os = "none") { octave_step_small(mantissa) } else { octave_step_cells(mantissa) }
}

/// [`octave_step`] by the 512 cells.
#[inline]
fn octave_step_cells(mantissa: u64) -> i32 {
    let cell = (mantissa >> 43) as usize & 0x1ff;
    i32::from(CELLS_BELOW[cell]) + i32::from(CELL_SPLITS[cell] < mantissa)
}

/// [`octave_step`] in less flash: the top 8 bits of the mantissa pick a first guess (how many
/// fractions lie below the lowest `frac` with those bits), and two compares finish it, because
/// such a cell of width `2^-9` spans at most `256 × log2(1 + 1/256) < 1.45` fractions.
#[inline]
fn octave_step_small(mantissa: u64) -> i32 {
    let guess = usize::from(CELLS_BELOW_SMALL[(mantissa >> 44) as usize & 0xff]);
    let below = |i: usize| usize::from(FRACTIONS.get(i).is_some_and(|f| f.to_bits() & MANTISSA < mantissa));
    (guess + below(guess) + below(guess + 1)) as i32
}

/// How many of [`FRACTIONS`] are below `0.5 + t/512`, the lowest `frac` whose top 8 mantissa
/// bits are `t` (at most 255, so it fits a byte: the compares add the last one).
static CELLS_BELOW_SMALL: [u8; 256] = {
    let mut below = [0u8; 256];
    let mut t = 0;
    while t < 256 {
        let mut n = 0;
        while n < 256 && FRACTIONS[n] < 0.5 + t as f64 / 512.0 {
            n += 1;
        }
        below[t] = if n > 255 { 255 } else { n as u8 };
        t += 1;
    }
    below
};

/// The lowest `frac` of cell `c`.
const fn cell_start(c: usize) -> f64 {
    0.5 + c as f64 / 1024.0
}

/// How many of [`FRACTIONS`] are below each cell's lowest value (255 for the last ones, where
/// all 256 are: their [`CELL_SPLITS`] entry then counts the last).
static CELLS_BELOW: [u8; 512] = {
    let mut below = [0u8; 512];
    let mut c = 0;
    while c < 512 {
        let mut n = 0;
        while n < 256 && FRACTIONS[n] < cell_start(c) {
            n += 1;
        }
        below[c] = if n > 255 { 255 } else { n as u8 };
        c += 1;
    }
    below
};

/// The mantissa of the fraction inside each cell, or `u64::MAX` (above every mantissa) if none
/// is; for the cells with all 256 fractions below them, the last fraction's (so it counts).
static CELL_SPLITS: [u64; 512] = {
    let mut splits = [u64::MAX; 512];
    let mut c = 0;
    while c < 512 {
        let end = if c == 511 { 1.0 } else { cell_start(c + 1) };
        let mut n = 0;
        let mut inside = 0;
        while n < 256 {
            if FRACTIONS[n] >= cell_start(c) && FRACTIONS[n] < end {
                splits[c] = FRACTIONS[n].to_bits() & MANTISSA;
                inside += 1;
            }
            n += 1;
        }
        assert!(inside <= 1, "a cell holds two fractions");
        if FRACTIONS[255] < cell_start(c) {
            splits[c] = FRACTIONS[255].to_bits() & MANTISSA;
        }
        c += 1;
    }
    splits
};

/// The key at schema `to` (`<= from`) of the bucket that holds bucket `key` of schema `from`.
#[inline]
pub(crate) fn reduce(key: i32, from: i8, to: i8) -> i32 {
    let by = (from - to).clamp(0, 31);
    ((key - 1) >> by) + 1
}

/// The upper bound of bucket `key` at `schema`: `2^(key / 2^schema)`.
pub(crate) fn upper_bound(key: i32, schema: i8) -> f64 {
    if schema <= 0 {
        return pow2(key.saturating_mul(1 << -i32::from(schema)));
    }
    let per_octave = 1i32 << schema;
    let octave = key.div_euclid(per_octave);
    let step = key.rem_euclid(per_octave) as usize;
    // 2 * FRACTIONS[i] is 2^(step/2^s), in [1, 2): scale it by the octave.
    2.0 * FRACTIONS[step << (MAX_SCHEMA - schema)] * pow2(octave)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn frexp_takes_apart_normal_and_subnormal_values() {
        assert_eq!(frexp(1.0), (0.5, 1));
        assert_eq!(frexp(0.75), (0.75, 0));
        assert_eq!(frexp(6.0), (0.75, 3));
        assert_eq!(frexp(f64::MAX).1, 1024);
        assert_eq!(frexp(f64::from_bits(1)), (0.5, -1073)); // the smallest subnormal
        assert_eq!(frexp(f64::MIN_POSITIVE), (0.5, -1021));
        assert_eq!(frexp(3.0 * f64::from_bits(1 << 40)), (0.75, -1074 + 42));
    }

    #[test]
    fn fractions_are_the_octave_roots() {
        assert_eq!(FRACTIONS[0], 0.5);
        for w in FRACTIONS.windows(2) {
            assert!(w[0] < w[1]);
        }
        for (i, f) in FRACTIONS.iter().enumerate() {
            // (2 f)^256 == 2^i, to rounding: a libm-free check of 2 f == 2^(i/256).
            let mut p = 2.0 * f;
            for _ in 0..8 {
                p *= p;
            }
            let want = pow2(i as i32);
            assert!((p / want - 1.0).abs() < 1e-12, "{i}: {p} vs {want}");
        }
    }

    #[test]
    fn keys_follow_prometheus_rules() {
        // Schema 0: (0.5, 1] is key 0, (1, 2] key 1, (2, 4] key 2.
        assert_eq!([0.75, 1.0, 1.5, 2.0, 3.0, 4.0].map(|v| key(v, 0)), [0, 0, 1, 1, 2, 2]);
        // Schema 1 halves each octave at sqrt(2).
        assert_eq!([1.0, 1.2, 1.5, 2.0, 0.6].map(|v| key(v, 1)), [0, 1, 2, 2, -1]);
        // Schema -1: buckets of 4x: (1, 4] is key 1, (4, 16] key 2, (0.25, 1] key 0.
        assert_eq!([1.0, 1.5, 4.0, 5.0, 16.0, 0.3].map(|v| key(v, -1)), [0, 1, 1, 2, 2, 0]);
        // Schema 3: 8 buckets per octave.
        assert_eq!(key(1.0, 3), 0);
        assert_eq!(key(2.0, 3), 8);
        assert_eq!(key(1.1, 3), 2); // 2^(1/8) = 1.09 < 1.1 <= 2^(2/8) = 1.19
        assert_eq!(key(-1.1, 3), 2, "the sign is kept apart");
        assert_eq!(key(f64::INFINITY, 0), key(f64::MAX, 0) + 1);
        assert_eq!(key(f64::from_bits(1), 8), -1074 * 256);
        assert_eq!(key(f64::MAX, 8), 1024 * 256);
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe integer arithmetic only; a million interpreted compares")]
    fn octave_steps_count_the_fractions_below() {
        // Every fraction, its neighbours one ulp away, and points in between.
        let around =
            FRACTIONS.iter().flat_map(|f| [f64::from_bits(f.to_bits() - 1), *f, f64::from_bits(f.to_bits() + 1)]);
        let between = (0..4096).map(|i| 0.5 + i as f64 / 8192.0);
        for frac in around.chain(between).filter(|f| (0.5..1.0).contains(f)) {
            let want = FRACTIONS.iter().filter(|f| **f < frac).count() as i32;
            assert_eq!(octave_step_cells(frac.to_bits() & MANTISSA), want, "{frac}");
            assert_eq!(octave_step_small(frac.to_bits() & MANTISSA), want, "{frac}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "safe arithmetic only; minutes of interpreted float maths")]
    fn every_value_is_inside_its_bucket() {
        let mut v = 1e-300;
        while v < 1e300 {
            for schema in MIN_SCHEMA..=MAX_SCHEMA {
                let k = key(v, schema);
                assert!(v <= upper_bound(k, schema), "{v} schema {schema} key {k}");
                assert!(v > upper_bound(k - 1, schema), "{v} schema {schema} key {k}");
                for to in MIN_SCHEMA..=schema {
                    assert_eq!(reduce(k, schema, to), key(v, to), "{v} from {schema} to {to}");
                }
            }
            v *= 1.37;
        }
    }
}
