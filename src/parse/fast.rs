//! The fast path of [`super::parse_chunk`]: the 64 bytes from each line's start become bit masks
//! of its commas, line breaks and quotes at once.
//!
//! The reference parser scans each byte twice (once for the line break, once for commas) and
//! loops over every byte. Here the 64 bytes from a line's start become three 64-bit masks (and
//! the next 64 too when the line is longer), by the fastest [`Kernel`] the CPU has (AVX-512BW,
//! AVX2 or SSE2 on x86_64, found at run time; a byte loop elsewhere). The masks, lined up with the
//! line's start, give its end (first line break), its comma count (`popcount`), whether it has a
//! quote, and its first commas (`tzcnt`, with no loop condition when they lie in its first 64
//! bytes). Bytes are classified about once and a half rather than once, which costs fewer
//! instructions than sliding a window of aligned blocks' masks under each line (callgrind). Only
//! the five analysed fields are decoded. With AVX2 or AVX-512 the whole line loop is compiled for
//! that CPU (`#[target_feature]`), so every mask operation is one instruction, and the three
//! temperatures are decoded together in one vector register, with no branch on their spellings.
//!
//! **Identical results by construction.** A line is decoded here only if it has no quote and
//! exactly `fields - 1` commas (so it is not blank either); each field goes through a fast decoder
//! for the usual spelling (`dd/mm/yyyy`, `HH:MM`, `-12.3`, `991`) or else through the reference decoder
//! itself. When anything fails, the line is handed to the reference [`LineParser`], which produces
//! the reading or the reject with its exact reason. The fast decoders therefore only have to be
//! right when they succeed, and `tests/differential.rs` checks exactly that against the reference.

use super::{is_blank, parse_date, parse_time, reject, LineParser, Parsed, Reading, DATE_CACHE_START};
use crate::date::Day;
use crate::schema::Schema;
use crate::tenths::Tenths;

/// Block size of the scan: one bit per byte in a `u64` mask.
const BLOCK: usize = 64;

/// Most comma positions a line keeps: schemas whose analysed fields lie further right go to the
/// reference parser whole (a fixed array lets the compiler drop the bounds checks).
const MAX_CUTS: usize = 64;

/// How the 64-byte blocks are classified. All give the same masks (see the tests); the choice
/// exists so that every kernel the machine can run is tested against the portable one, and
/// [`Kernel::best`] picks the fastest at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Byte loop: every platform.
    Scalar,
    /// SSE2 compares (x86_64 baseline); the scalar loop on other targets.
    Simd,
    /// AVX2 compares, with the line loop compiled for AVX2, BMI1 and POPCNT (one `tzcnt` or
    /// `popcnt` per mask operation rather than a bit-twiddling sequence). Only on x86_64 CPUs
    /// that have them; [`Kernel::available`] says whether this one does.
    Avx2,
    /// AVX-512BW: one 64-byte compare per character straight into a mask register, the line loop
    /// compiled for it as for [`Kernel::Avx2`]. Only on CPUs that have AVX-512F and BW.
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU runs (detected once, then cached by `std`).
    pub fn best() -> Kernel {
        if Kernel::Avx512.available() {
            Kernel::Avx512
        } else if Kernel::Avx2.available() {
            Kernel::Avx2
        } else {
            Kernel::Simd
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Simd => true,
            Kernel::Avx2 => Avx2::detect().is_some(),
            Kernel::Avx512 => Avx512::detect().is_some(),
        }
    }

    /// Every kernel this CPU can run, for the differential checks.
    pub fn all_available() -> Vec<Kernel> {
        [Kernel::Scalar, Kernel::Simd, Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|k| k.available())
            .collect()
    }

    /// The masks of one block, as this kernel computes them (for the tests); `None` if the CPU
    /// cannot run the kernel.
    pub fn classify(self, block: &[u8; BLOCK]) -> Option<Masks> {
        match self {
            Kernel::Scalar => Some(classify_scalar(block)),
            Kernel::Simd => Some(classify_simd(block)),
            Kernel::Avx2 => Avx2::detect().map(|k| k.classify_block(block)),
            Kernel::Avx512 => Avx512::detect().map(|k| k.classify_block(block)),
        }
    }
}

/// One bit per byte of a block: which bytes are commas, line breaks, quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Masks {
    /// `,` positions.
    pub comma: u64,
    /// `\n` positions.
    pub newline: u64,
    /// `"` positions.
    pub quote: u64,
}

/// A block classifier the line loop is compiled with (one copy of the loop per kernel).
trait Classify: Copy {
    fn classify_block(self, block: &[u8; BLOCK]) -> Masks;

    /// The three temperatures at `from` (each `len` bytes long) in `data`, all at once, if the
    /// kernel has a way to and all three have a usual spelling; `None` sends them one by one to
    /// [`tenths`].
    #[inline(always)]
    fn temperatures(self, _data: &[u8], _from: [usize; 3], _len: [usize; 3]) -> Option<[i32; 3]> {
        None
    }
}

/// The byte loop.
#[derive(Clone, Copy)]
struct Scalar;

impl Classify for Scalar {
    #[inline(always)]
    fn classify_block(self, block: &[u8; BLOCK]) -> Masks {
        classify_scalar(block)
    }
}

/// SSE2 (or the byte loop off x86_64).
#[derive(Clone, Copy)]
struct Sse2;

impl Classify for Sse2 {
    #[inline(always)]
    fn classify_block(self, block: &[u8; BLOCK]) -> Masks {
        classify_simd(block)
    }
}

/// AVX2: a value exists only once the CPU is known to have AVX2, BMI1 and POPCNT (found by
/// `detect`, or by `Avx512::detect`: AVX-512F implies AVX2).
#[derive(Clone, Copy)]
struct Avx2 {
    _detected: (),
}

impl Avx2 {
    /// `Some` exactly when this CPU runs AVX2, BMI1 and POPCNT.
    fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("popcnt")
        {
            return Some(Avx2 { _detected: () });
        }
        None
    }
}

impl Classify for Avx2 {
    /// Two 32-byte compares per character, `movemask` to bits. Inlined only into
    /// [`run_avx2`], which is compiled for AVX2.
    #[inline(always)]
    fn classify_block(self, block: &[u8; BLOCK]) -> Masks {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` value exists only when `detect` found AVX2 on this CPU. Both loads
        // read 32 bytes at offset 0 or 32 of a 64-byte array (in bounds, no alignment needed).
        unsafe {
            use std::arch::x86_64::{
                __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_set1_epi8,
            };
            let low = _mm256_loadu_si256(block.as_ptr().cast::<__m256i>());
            let high = _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>());
            let mut masks = [0u64; 3];
            for (mask, byte) in masks.iter_mut().zip([b',', b'\n', b'"']) {
                let c = _mm256_set1_epi8(byte as i8);
                let l = _mm256_movemask_epi8(_mm256_cmpeq_epi8(low, c)) as u32;
                let h = _mm256_movemask_epi8(_mm256_cmpeq_epi8(high, c)) as u32;
                *mask = u64::from(l) | u64::from(h) << 32;
            }
            Masks { comma: masks[0], newline: masks[1], quote: masks[2] }
        }
        #[cfg(not(target_arch = "x86_64"))]
        classify_scalar(block)
    }

    /// See [`temperatures_avx2`]. Inlined only into [`run_avx2`] and [`run_avx512`].
    #[inline(always)]
    fn temperatures(self, data: &[u8], from: [usize; 3], len: [usize; 3]) -> Option<[i32; 3]> {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` value exists only when `detect` found AVX2 on this CPU (or, made by
        // `Avx512::temperatures`, AVX-512F, which implies it).
        unsafe {
            temperatures_avx2(data, from, len)
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }
}

/// AVX-512: a value exists only once the CPU is known to have AVX-512F, AVX-512BW, BMI1 and
/// POPCNT.
#[derive(Clone, Copy)]
struct Avx512 {
    _detected: (),
}

impl Avx512 {
    /// `Some` exactly when this CPU runs AVX-512F, AVX-512BW, BMI1 and POPCNT.
    fn detect() -> Option<Avx512> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("bmi1")
            && std::is_x86_feature_detected!("popcnt")
        {
            return Some(Avx512 { _detected: () });
        }
        None
    }
}

impl Classify for Avx512 {
    /// One 64-byte load, one compare per character giving the mask directly. Inlined only into
    /// [`run_avx512`], which is compiled for AVX-512.
    #[inline(always)]
    fn classify_block(self, block: &[u8; BLOCK]) -> Masks {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx512` value exists only when `detect` found AVX-512F and BW on this CPU.
        // The load reads the 64 bytes of the array (in bounds, no alignment needed).
        unsafe {
            use std::arch::x86_64::{_mm512_cmpeq_epi8_mask, _mm512_loadu_si512, _mm512_set1_epi8};
            let v = _mm512_loadu_si512(block.as_ptr().cast());
            Masks {
                comma: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b',' as i8)),
                newline: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\n' as i8)),
                quote: _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8)),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        classify_scalar(block)
    }

    /// The AVX2 decoder: every CPU with AVX-512F has AVX2.
    #[inline(always)]
    fn temperatures(self, data: &[u8], from: [usize; 3], len: [usize; 3]) -> Option<[i32; 3]> {
        Avx2 { _detected: () }.temperatures(data, from, len)
    }
}

/// The three temperatures of a line, `-?d{1,3}.d` or `-?d{1,3}` each, decoded together in the
/// 64-bit lanes of one AVX2 register; `None` if any has another spelling (or lies within 8 bytes
/// of the data's end), for [`tenths`] to read one by one.
///
/// No branch depends on the spellings. Decoding each field on its own branched on its length (3,
/// 4, 1 or 2 bytes in turn, as temperatures cross 10 degrees or lose their decimal), and those
/// branches were mispredicted so often that the parser ran 10% faster on a file whose
/// temperatures all had one length. Here each field, less a leading `-`, is shifted so that its
/// last byte is its lane's top byte, with `0` digits shifted in below it, and a field without a
/// point gets `.0` appended; the digits then sit in fixed bytes (whole digits in 0 to 5, the point
/// in 6, the tenth in 7), and are checked and combined in every lane at once. Leading zeros do
/// not change a value, as in the reference.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn temperatures_avx2(data: &[u8], from: [usize; 3], len: [usize; 3]) -> Option<[i32; 3]> {
    use std::arch::x86_64::*;
    const ZEROS: i64 = 0x3030_3030_3030_3030;
    const POINT_ZERO: i64 = 0x302E << 48; // ".0" in bytes 6 and 7
    if from[0].max(from[1]).max(from[2]) + 8 > data.len() {
        return None;
    }
    // SAFETY (the loads): each reads 8 bytes from `from[i]`, and `from[i] + 8 <= data.len()`.
    let word = |i: usize| std::ptr::read_unaligned(data.as_ptr().add(from[i]).cast::<i64>());
    // Lane 3 holds a valid "0" (one byte, the digit 0) so that it never fails the checks.
    let w = _mm256_set_epi64x(0x30, word(2), word(1), word(0));
    let lens = _mm256_set_epi64x(1, len[2] as i64, len[1] as i64, len[0] as i64);
    let negative =
        _mm256_and_si256(_mm256_cmpeq_epi8(w, _mm256_set1_epi8(b'-' as i8)), _mm256_set1_epi64x(1));
    let body = _mm256_sub_epi64(lens, negative);
    // A body of 1 to 5 bytes (the shifts below give 0 for any other, which the checks refuse).
    let bad_length = _mm256_or_si256(
        _mm256_cmpgt_epi64(body, _mm256_set1_epi64x(5)),
        _mm256_cmpgt_epi64(_mm256_set1_epi64x(1), body),
    );
    let shift = _mm256_sub_epi64(_mm256_set1_epi64x(64), _mm256_slli_epi64::<3>(body));
    let aligned = _mm256_sllv_epi64(_mm256_srlv_epi64(w, _mm256_slli_epi64::<3>(negative)), shift);
    let below =
        _mm256_andnot_si256(_mm256_sllv_epi64(_mm256_set1_epi64x(-1), shift), _mm256_set1_epi64x(ZEROS));
    let aligned = _mm256_or_si256(aligned, below);
    let byte6 = _mm256_and_si256(aligned, _mm256_set1_epi64x(0xFF << 48));
    let dotted = _mm256_cmpeq_epi64(byte6, _mm256_set1_epi64x(0x2E << 48));
    let appended = _mm256_or_si256(_mm256_srli_epi64::<16>(aligned), _mm256_set1_epi64x(POINT_ZERO));
    let aligned = _mm256_blendv_epi8(appended, aligned, dotted);
    let d = _mm256_xor_si256(aligned, _mm256_set1_epi64x(ZEROS & !(0xFF << 48) | 0x2E << 48));
    // Bytes 3, 4, 5 and 7 below 10 (as in `hh_mm`); 0 to 2 (leading zeros) and 6 (the point) 0.
    let digits = _mm256_or_si256(_mm256_add_epi64(d, _mm256_set1_epi64x(0x7600_7676_7600_0000)), d);
    let bad = _mm256_or_si256(
        _mm256_and_si256(digits, _mm256_set1_epi64x(0x8000_8080_8000_0000u64 as i64)),
        _mm256_and_si256(d, _mm256_set1_epi64x(0x00FF_0000_00FF_FFFF)),
    );
    if _mm256_testz_si256(_mm256_or_si256(bad, bad_length), _mm256_set1_epi8(-1)) == 0 {
        return None;
    }
    // 1000·b3 + 100·b4 + 10·b5 + b7: byte pairs to 16 bits (b3; 10·b4 + b5; b7), then to 32 bits.
    let pairs = _mm256_maddubs_epi16(d, _mm256_set1_epi64x(0x0100_010A_0100_0000));
    let halves = _mm256_madd_epi16(pairs, _mm256_set1_epi64x(0x0001_000A_03E8_0000));
    let value = _mm256_add_epi32(halves, _mm256_srli_epi64::<32>(halves));
    let sign = _mm256_sub_epi64(_mm256_setzero_si256(), negative);
    let value = _mm256_sub_epi32(_mm256_xor_si256(value, sign), sign);
    Some([
        _mm256_extract_epi32::<0>(value),
        _mm256_extract_epi32::<2>(value),
        _mm256_extract_epi32::<4>(value),
    ])
}

/// The line loop compiled for AVX-512, BMI1 and POPCNT (see [`run_avx2`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,bmi1,popcnt")]
fn run_avx512(scan: &mut Scan<'_, '_>, kernel: Avx512) {
    scan.run(kernel)
}

/// The line loop compiled for AVX2, BMI1 and POPCNT, so that the `Avx2` kernel's intrinsics and
/// the mask operations (`tzcnt`, `popcnt`, `blsr`) are inlined as single instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,popcnt")]
fn run_avx2(scan: &mut Scan<'_, '_>, kernel: Avx2) {
    scan.run(kernel)
}

/// Classifies a block with a byte loop: the portable kernel and the oracle for the vector ones.
pub fn classify_scalar(block: &[u8; BLOCK]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        let bit = 1u64 << i;
        match b {
            b',' => m.comma |= bit,
            b'\n' => m.newline |= bit,
            b'"' => m.quote |= bit,
            _ => {}
        }
    }
    m
}

/// Classifies a block with SSE2: four 16-byte compares per character, `movemask` to bits.
#[cfg(target_arch = "x86_64")]
pub fn classify_simd(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8};
    let mut m = Masks::default();
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics are always available on
    // this target. Each `_mm_loadu_si128` reads 16 bytes at offset 0, 16, 32 or 48 of a 64-byte
    // array (in bounds), and the unaligned load has no alignment requirement.
    unsafe {
        let (comma, newline, quote) =
            (_mm_set1_epi8(b',' as i8), _mm_set1_epi8(b'\n' as i8), _mm_set1_epi8(b'"' as i8));
        for i in 0..BLOCK / 16 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast::<__m128i>());
            let bits = |c| u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, c)) as u16) << (16 * i);
            m.comma |= bits(comma);
            m.newline |= bits(newline);
            m.quote |= bits(quote);
        }
    }
    m
}

/// The portable kernel stands in for SSE2 off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub fn classify_simd(block: &[u8; BLOCK]) -> Masks {
    classify_scalar(block)
}

/// Parses `data` like [`super::parse_chunk_reference`], with the given block kernel.
pub fn parse_chunk_with(
    kernel: Kernel,
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    at_end: bool,
) -> Parsed {
    parse_chunk_into(kernel, data, first_line, schema, at_end, Vec::new())
}

/// [`parse_chunk_with`], filling `readings` (cleared first) rather than a new vector.
pub fn parse_chunk_into(
    kernel: Kernel,
    data: &[u8],
    first_line: u64,
    schema: &Schema,
    at_end: bool,
    mut readings: Vec<Reading>,
) -> Parsed {
    if schema.fields < 2 || schema.last_needed() + 1 >= MAX_CUTS {
        return super::parse_chunk_reference(data, first_line, schema, at_end);
    }
    readings.clear();
    readings.reserve(data.len() / 64 + 1);
    let mut scan = Scan::new(data, first_line, schema, at_end, readings);
    match kernel {
        Kernel::Scalar => scan.run(Scalar),
        Kernel::Simd => scan.run(Sse2),
        Kernel::Avx2 => match Avx2::detect() {
            // SAFETY: `detect` found AVX2, BMI1 and POPCNT on this CPU.
            #[cfg(target_arch = "x86_64")]
            Some(avx2) => unsafe { run_avx2(&mut scan, avx2) },
            _ => panic!("the AVX2 kernel was asked for on a CPU without AVX2, BMI1 and POPCNT"),
        },
        Kernel::Avx512 => match Avx512::detect() {
            // SAFETY: `detect` found AVX-512F, AVX-512BW, BMI1 and POPCNT on this CPU.
            #[cfg(target_arch = "x86_64")]
            Some(avx512) => unsafe { run_avx512(&mut scan, avx512) },
            _ => panic!(
                "the AVX-512 kernel was asked for on a CPU without AVX-512F, AVX-512BW, BMI1 and POPCNT"
            ),
        },
    }
    scan.parsed
}

/// The state of one pass over a chunk: the current line, and the masks of the blocks around it.
struct Scan<'d, 's> {
    data: &'d [u8],
    schema: &'s Schema,
    at_end: bool,
    parsed: Parsed,
    line_no: u64,
    /// Where the current line starts.
    line_start: usize,
    /// Commas in the current line.
    commas: usize,
    /// Commas in a line with the header's number of fields.
    commas_wanted: usize,
    /// Where the current line's fields are: field `i` is `bounds[i] + 1 .. bounds[i + 1]`
    /// (wrapping), for `i` up to `last_needed`. `bounds[0]` is one before the line's start,
    /// `bounds[i + 1]` the comma after field `i`, or the line's end for its last field.
    bounds: [usize; MAX_CUTS],
    last_needed: usize,
    /// The unrolled comma pick applies when more commas than this lie in the line's first 64
    /// bytes (`last_needed`, or never when more than 8 positions are needed).
    unrolled_above: u32,
    /// The last analysed field is the line's last field: it ends at the line's end.
    last_is_analysed: bool,
    last_date: ([u8; 10], Day),
    fallback: LineParser<'s>,
}

impl<'d, 's> Scan<'d, 's> {
    fn new(
        data: &'d [u8],
        first_line: u64,
        schema: &'s Schema,
        at_end: bool,
        readings: Vec<Reading>,
    ) -> Scan<'d, 's> {
        let last_needed = schema.last_needed();
        Scan {
            data,
            schema,
            at_end,
            parsed: Parsed { readings, ..Parsed::default() },
            line_no: first_line,
            line_start: 0,
            commas: 0,
            commas_wanted: schema.fields - 1,
            bounds: [0; MAX_CUTS],
            last_needed,
            unrolled_above: if last_needed < 8 { last_needed as u32 } else { u32::MAX },
            last_is_analysed: last_needed + 1 == schema.fields,
            last_date: DATE_CACHE_START,
            fallback: LineParser::new(schema, true),
        }
    }

    /// Walks the chunk a line at a time, reading each line off the masks of the 64 bytes from its
    /// start, and of the 64 after them when its line break is not among the first. Longer lines
    /// (and a last line without a line break) walk their aligned blocks.
    #[inline(always)]
    fn run(&mut self, kernel: impl Classify) {
        let len = self.data.len();
        while self.line_start < len {
            let start = self.line_start;
            let first = self.masks_at(start, kernel);
            let (length, commas, quoted) = if first.newline != 0 {
                let length = first.newline.trailing_zeros() as usize;
                let inside = (1u64 << length) - 1;
                (length, (first.comma & inside, 0), first.quote & inside != 0)
            } else {
                let second = self.masks_at(start + BLOCK, kernel);
                if second.newline == 0 {
                    self.long_line(kernel);
                    continue;
                }
                let high = second.newline.trailing_zeros() as usize;
                let inside = (1u64 << high) - 1;
                (
                    BLOCK + high,
                    (first.comma, second.comma & inside),
                    (first.quote | second.quote & inside) != 0,
                )
            };
            let low = commas.0.count_ones();
            self.commas = (low + commas.1.count_ones()) as usize;
            self.bounds[0] = start.wrapping_sub(1);
            if low > self.unrolled_above {
                self.pick_commas(commas.0);
            } else {
                self.take_commas(commas);
            }
            self.end_line(start + length, true, quoted, kernel);
        }
    }

    /// The masks of the 64 bytes from `from`: zero past the end of the data (bytes past it count
    /// as zeros, and no zero byte is a separator).
    #[inline(always)]
    fn masks_at(&self, from: usize, kernel: impl Classify) -> Masks {
        match self.data.get(from..from + BLOCK) {
            Some(block) => kernel.classify_block(block.try_into().expect("a slice of BLOCK bytes")),
            None if from < self.data.len() => {
                let mut padded = [0u8; BLOCK];
                padded[..self.data.len() - from].copy_from_slice(&self.data[from..]);
                kernel.classify_block(&padded)
            }
            None => Masks::default(),
        }
    }

    /// The masks of block `index`: zero past the end of the data, the last partial block padded
    /// with zeros (no zero byte is a separator).
    #[inline(always)]
    fn masks(&self, index: usize, kernel: impl Classify) -> Masks {
        self.masks_at(index * BLOCK, kernel)
    }

    /// Records the positions of the current line's first 8 commas, all in its first 64 bytes
    /// (bit `i` of `low` is the byte `i` after the line's start), with no loop condition: the
    /// common case. Positions past the last comma are junk that no field reads.
    #[inline(always)]
    fn pick_commas(&mut self, mut low: u64) {
        for k in 1..=8 {
            self.bounds[k] = self.line_start + low.trailing_zeros() as usize;
            low &= low.wrapping_sub(1);
        }
    }

    /// Records the positions of the current line's commas up to `last_needed` (bit `i` of `low`
    /// is the byte `i` after the line's start, of `high` the byte `64 + i`), wherever they lie in
    /// its first 128 bytes.
    #[inline(always)]
    fn take_commas(&mut self, (mut low, mut high): (u64, u64)) {
        let mut n = 0;
        while low != 0 && n <= self.last_needed {
            self.bounds[(n + 1) % MAX_CUTS] = self.line_start + low.trailing_zeros() as usize;
            n += 1;
            low &= low - 1;
        }
        while high != 0 && n <= self.last_needed {
            self.bounds[(n + 1) % MAX_CUTS] = self.line_start + BLOCK + high.trailing_zeros() as usize;
            n += 1;
            high &= high - 1;
        }
    }

    /// A line with no line break in the 128 bytes after its start: its blocks are classified
    /// again one by one until the line break (or the end of the data) is found.
    #[cold]
    fn long_line(&mut self, kernel: impl Classify) {
        let start = self.line_start;
        let (mut commas, mut n, mut quoted) = (0usize, 0usize, false);
        self.bounds[0] = start.wrapping_sub(1);
        let mut block = start / BLOCK;
        let mut skip = start % BLOCK;
        loop {
            let m = self.masks(block, kernel);
            let after = u64::MAX << skip;
            let (newlines, base) = (m.newline & after, block * BLOCK);
            let before = newlines.wrapping_sub(1) & !newlines;
            let mut mine = m.comma & after & before;
            quoted |= m.quote & after & before != 0;
            commas += mine.count_ones() as usize;
            while mine != 0 && n <= self.last_needed {
                self.bounds[(n + 1) % MAX_CUTS] = base + mine.trailing_zeros() as usize;
                n += 1;
                mine &= mine - 1;
            }
            if newlines != 0 {
                self.commas = commas;
                return self.end_line(base + newlines.trailing_zeros() as usize, true, quoted, kernel);
            }
            if base + BLOCK >= self.data.len() {
                self.commas = commas;
                return self.end_line(self.data.len(), false, quoted, kernel);
            }
            block += 1;
            skip = 0;
        }
    }

    /// Finishes the line that ends at `end` (its `\n`, or the end of the data), whose commas are
    /// recorded.
    #[inline(always)]
    fn end_line(&mut self, end: usize, terminated: bool, quoted: bool, kernel: impl Classify) {
        self.parsed.lines += 1;
        let simple = !quoted && self.commas == self.commas_wanted;
        if self.last_is_analysed {
            self.bounds[self.schema.fields % MAX_CUTS] = self.stop(end);
        }
        match simple.then(|| self.decode(kernel)).flatten() {
            Some(reading) => self.parsed.readings.push(reading),
            None => self.slow(end, terminated),
        }
        self.line_no += 1;
        self.line_start = end + 1;
    }

    /// Where the current line's content ends if it ends at `end`: before a `\r` that precedes
    /// the line break. Only the last field and the reference path need it, so the common line,
    /// whose last field is not analysed, never looks.
    #[inline(always)]
    fn stop(&self, end: usize) -> usize {
        match end.checked_sub(1) {
            Some(before) if before >= self.line_start && self.data[before] == b'\r' => before,
            _ => end,
        }
    }

    /// The reference path for one line: blank lines, odd lines and every reject.
    #[cold]
    fn slow(&mut self, end: usize, terminated: bool) {
        let (start, stop) = (self.line_start, self.stop(end));
        let line = &self.data[start..stop];
        if is_blank(line) {
            self.parsed.blank += 1;
            return;
        }
        match self.fallback.parse(line, self.line_no) {
            Ok(reading) => self.parsed.readings.push(reading),
            Err(reason) => {
                let truncated = !terminated && self.at_end;
                self.parsed.rejects.push(reject(line, self.line_no, reason, truncated));
            }
        }
    }

    /// Field `index` (at most `last_needed`) of the current line, which has exactly
    /// `fields - 1` commas. Not bounds-checked: the two checks per field were 6% of the parser's
    /// instructions (callgrind), and the positions are in bounds by construction.
    #[inline(always)]
    fn field(&self, index: usize) -> &'d [u8] {
        let (from, to) = (self.bounds[index % MAX_CUTS].wrapping_add(1), self.bounds[(index + 1) % MAX_CUTS]);
        debug_assert!(
            from <= to && to <= self.data.len(),
            "field {index}: {from}..{to} of {}",
            self.data.len()
        );
        // SAFETY: `decode` runs only for a line with exactly `fields - 1` commas, all of whose
        // positions up to `last_needed + 1` were recorded for this line (`pick_commas` when at
        // least `last_needed + 1` of them lie in its first 64 bytes, otherwise `take_commas` or
        // `long_line`, which record `min(commas, last_needed + 1)`), and `last_needed + 1 <
        // MAX_CUTS` (checked in `parse_chunk_into`), so no index wraps. `bounds[0]` is one before
        // the line's start (wrapping to `usize::MAX` at 0, so `from` is 0), each recorded comma lies
        // after it and before the line's end, in increasing order, and the line's end is at most
        // `data.len()`. When the last field is analysed, `bounds[fields]` is the line's end less a
        // `\r` before it, which lies after the last comma. So `from <= to <= data.len()`.
        unsafe { self.data.get_unchecked(from..to) }
    }

    /// Decodes the five analysed fields, or `None` if any of them is not valid.
    #[inline(always)]
    fn decode(&mut self, kernel: impl Classify) -> Option<Reading> {
        let s = self.schema;
        let day = self.date(self.field(s.date))?;
        let minute = self.time(s.time)?;
        let [outside, hi, low] = self.temperatures([s.outside, s.hi, s.low], kernel)?;
        Some(Reading { line: self.line_no, day, minute, outside, hi, low })
    }

    /// The three temperature fields: together when the kernel can, else one by one.
    #[inline(always)]
    fn temperatures(&self, index: [usize; 3], kernel: impl Classify) -> Option<[Tenths; 3]> {
        let from = index.map(|i| self.bounds[i % MAX_CUTS].wrapping_add(1));
        let to = index.map(|i| self.bounds[(i + 1) % MAX_CUTS]);
        let len = [0, 1, 2].map(|i| to[i].wrapping_sub(from[i]));
        match kernel.temperatures(self.data, from, len) {
            Some(values) => Some(values.map(Tenths)),
            None => Some([
                tenths(self.field(index[0]))?,
                tenths(self.field(index[1]))?,
                tenths(self.field(index[2]))?,
            ]),
        }
    }

    /// The minute of the day in field `index`: the usual `HH:MM` read as one word (the five bytes
    /// and three after them, which every line but a chunk's last has: its line break at least),
    /// anything else by the reference [`parse_time`].
    #[inline(always)]
    fn time(&self, index: usize) -> Option<u16> {
        let from = self.bounds[index % MAX_CUTS].wrapping_add(1);
        if self.bounds[(index + 1) % MAX_CUTS] == from + 5 {
            if let Some(word) = self.data.get(from..from + 8) {
                if let Some(minute) = hh_mm(u64::from_le_bytes(word.try_into().expect("8 bytes"))) {
                    return Some(minute);
                }
            }
        }
        self.odd_time(index)
    }

    /// The reference's reading of time field `index`: the usual spelling at a chunk's very end
    /// (no three bytes after it to load), or any other.
    #[cold]
    fn odd_time(&self, index: usize) -> Option<u16> {
        parse_time(self.field(index))
    }

    /// The day of a date field; consecutive rows share their date, so the last one is kept.
    #[inline(always)]
    fn date(&mut self, bytes: &[u8]) -> Option<Day> {
        let key: Option<[u8; 10]> = bytes.try_into().ok();
        match key {
            Some(key) if key == self.last_date.0 => Some(self.last_date.1),
            Some(key) => {
                let day = parse_date(&key)?;
                self.last_date = (key, day);
                Some(day)
            }
            None => parse_date(bytes),
        }
    }
}

/// `HH:MM` in the low five bytes of `word` (little-endian; the other three are ignored) as minutes
/// of the day, or `None` if those bytes are not two digits, a colon and two digits making a time
/// before 24:00. One `xor` turns the digits into 0 to 9 and the colon into 0, one `add` and `or`
/// check all five bytes at once, and one multiply pairs the digits into hours and minutes.
#[inline(always)]
fn hh_mm(word: u64) -> Option<u16> {
    const FIVE: u64 = 0xFF_FFFF_FFFF;
    let d = (word & FIVE) ^ 0x30_30_3A_30_30;
    // A byte below 10 stays below 0x80 after adding 0x76; one of 10 or more does not, and a byte
    // of 0x80 or more shows through the `or` (its carry only spoils a byte already rejected).
    let digits = (d.wrapping_add(0x76_76_76_76_76) | d) & 0x80_80_80_80_80 == 0;
    if !digits || d & 0xFF_0000 != 0 {
        return None;
    }
    let pairs = d.wrapping_mul(0xA01); // byte 1: 10·h1 + h2, byte 4: 10·m1 + m2 (each < 100)
    let (h, m) = ((pairs >> 8) as u16 & 0xFF, (pairs >> 32) as u16 & 0xFF);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `-?d{1,3}.d` or `-?d{1,3}` read directly; any other spelling goes to the reference
/// [`Tenths::parse`]. The byte-loop and SSE2 kernels read every temperature this way; the AVX2
/// and AVX-512 ones only those [`temperatures_avx2`] refuses.
#[inline(always)]
fn tenths(bytes: &[u8]) -> Option<Tenths> {
    match usual_tenths(bytes) {
        Some(value) => Some(Tenths(value)),
        None => Tenths::parse(bytes).ok(),
    }
}

/// The value of `-?d{1,3}.d` or `-?d{1,3}` in tenths, one pattern per length (no loop), or `None`
/// for any other spelling.
#[inline(always)]
fn usual_tenths(bytes: &[u8]) -> Option<i32> {
    let value = match *bytes {
        [a, b'.', f] => number([a, f])?,
        [b'-', a, b'.', f] => -number([a, f])?,
        [a, b, b'.', f] => number([a, b, f])?,
        [b'-', a, b, b'.', f] => -number([a, b, f])?,
        [a] => number([a])? * 10,
        [b'-', a] => -number([a])? * 10,
        [a, b] => number([a, b])? * 10,
        [b'-', a, b] => -number([a, b])? * 10,
        [a, b, c, b'.', f] => number([a, b, c, f])?,
        [b'-', a, b, c, b'.', f] => -number([a, b, c, f])?,
        [a, b, c] => number([a, b, c])? * 10,
        [b'-', a, b, c] => -number([a, b, c])? * 10,
        _ => return None,
    };
    Some(value)
}

/// The number the ASCII digits spell, or `None` if any is not a digit: one check for all of them
/// (their largest value below 10) rather than one branch each.
#[inline(always)]
fn number<const N: usize>(digits: [u8; N]) -> Option<i32> {
    let values = digits.map(|b| b.wrapping_sub(b'0'));
    let largest = values.iter().fold(0, |m, &v| m.max(v));
    (largest < 10).then(|| values.iter().fold(0, |n, &v| n * 10 + i32::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_scalar_kernels_classify_alike() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2000 {
            let mut block = [0u8; BLOCK];
            for b in block.iter_mut() {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *b = b",\n\"\r0a"[(seed >> 33) as usize % 6].wrapping_add(if seed >> 60 == 0 {
                    128
                } else {
                    0
                });
            }
            assert_eq!(classify_simd(&block), classify_scalar(&block));
        }
        let all: [u8; BLOCK] = [b','; BLOCK];
        assert_eq!(classify_simd(&all).comma, u64::MAX);
    }

    /// Rows longer than 128 bytes (the block walk), analysed fields past the first 64
    /// bytes (the loop over both mask words) and past the eighth comma (no unrolled pick), each
    /// cut at every offset so lines cross chunk ends: every kernel must match the reference.
    #[test]
    fn wide_rows_take_the_long_line_and_high_word_paths() {
        use crate::parse::differential::check;
        use crate::schema::Columns;
        let pad = |n: usize, p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        let wanted = ["Date", "Time", "Outside Temperature", "Hi Temperature", "Low Temperature"];
        for (before, after, filler) in [(0, 30, "x"), (12, 3, "wind"), (3, 20, "long-long-value-")] {
            let mut header = pad(before, "Extra ");
            header.extend(wanted.map(String::from));
            header.extend(pad(after, "More "));
            let schema = crate::schema::parse_header(header.join(",").as_bytes(), 1, &Columns::default())
                .expect("a header with the five columns");
            let mut doc = String::new();
            for (i, row) in
                ["07/06/2006,12:30,21.3,22.4,-0.1", "07/06/2006,12:40,9.9,10.0,9.8"].iter().enumerate()
            {
                let mut fields = pad(before, filler);
                fields.push(row.to_string());
                fields.extend(pad(after - i, filler)); // the second row has a field too few
                doc.push_str(&fields.join(","));
                doc.push('\n');
            }
            doc.push_str(&doc.clone().replace('\n', "\r\n"));
            assert!(doc.lines().all(|l| l.len() > 64), "{doc}");
            for cut in 0..doc.len() {
                check(&schema, doc.as_bytes(), &[cut], 2);
            }
            check(&schema, doc.trim_end().as_bytes(), &[], 2); // no line break at the end
        }
    }

    /// Each line is read off the masks of the 64 bytes from its start and, when its line break is
    /// not among them, of the next 64; longer lines walk their blocks. Lines of every length
    /// around those edges (the line break at bytes 32 to 69 and 119 to 134 of the line, with and
    /// without `\r`, padded in the last, unanalysed field or with fields too many) must parse as
    /// the reference parses them, wherever the line starts in a block.
    #[test]
    fn line_lengths_around_the_mask_edges_parse_as_the_reference() {
        use crate::parse::differential::check;
        use crate::schema::Columns;
        let header = "Date,Time,Outside Temperature,Hi Temperature,Low Temperature,Note";
        let schema = crate::schema::parse_header(header.as_bytes(), 1, &Columns::default())
            .expect("a header with the five columns");
        let row = "07/06/2006,12:30,21.3,22.4,-0.1,";
        for length in (20..=70usize).chain(120..=135) {
            for (end, pad) in [("\n", 'x'), ("\r\n", 'y'), ("\n", ',')] {
                let fill = length.saturating_sub(row.len() + end.len());
                let line = format!("{row}{}{end}", String::from(pad).repeat(fill));
                for lead in 0..3 {
                    // A first line of `lead * 21` bytes moves the second line's start in its block.
                    let first = format!("01/06/2006,00:00,1.0,1.0,1.0,{}\n", "z".repeat(lead * 21));
                    let doc = format!("{first}{line}{line}");
                    check(&schema, doc.as_bytes(), &[], 2);
                    check(&schema, doc.as_bytes(), &[first.len() + line.len() / 2], 2);
                }
            }
        }
    }

    /// The AVX2 decoder (when this CPU has AVX2) on `field`, put in each of the three places
    /// with a usual `12.3` in the others and `after` behind the last: it refuses the line or reads
    /// all three as the reference does. Returns whether it read them.
    fn together_agrees(field: &[u8], after: &[u8]) -> bool {
        let Some(kernel) = Avx2::detect() else { return true };
        let mut read = true;
        for place in 0..3 {
            let (mut data, mut from, mut len) = (Vec::new(), [0; 3], [0; 3]);
            for i in 0..3 {
                let f: &[u8] = if i == place { field } else { b"12.3" };
                data.push(b',');
                from[i] = data.len();
                len[i] = f.len();
                data.extend_from_slice(f);
            }
            data.extend_from_slice(after);
            match kernel.temperatures(&data, from, len) {
                Some(values) => {
                    let text = String::from_utf8_lossy(field);
                    assert_eq!(
                        Tenths::parse(field).ok(),
                        Some(Tenths(values[place])),
                        "{text:?} in place {place}"
                    );
                    assert!((0..3).all(|i| i == place || values[i] == 123), "{text:?}: {values:?}");
                }
                None => read = false,
            }
        }
        read
    }

    /// The three temperatures together: every usual spelling is read, in every place, whatever
    /// follows it; any other bytes of the kinds a temperature is made of, at every length up to
    /// 6, are refused or read as the reference reads them; and a field too near the data's end
    /// to load 8 bytes from is refused.
    #[test]
    fn temperatures_read_together_agree_with_the_reference() {
        for whole in 0..1000 {
            for sign in ["", "-"] {
                for frac in (0..10).map(|f| format!(".{f}")).chain([String::new()]) {
                    for whole in [format!("{whole}"), format!("{whole:02}"), format!("{whole:03}")] {
                        let text = format!("{sign}{whole}{frac}");
                        for after in [&b",,,,,,,,"[..], b"\n\n\n\n\n\n\n\n", b"77777777", &[0xFF; 8]] {
                            assert!(together_agrees(text.as_bytes(), after), "{text} not read");
                        }
                    }
                }
            }
        }
        let alphabet = *b"-.09,+ 5:";
        for len in 0..=6u32 {
            for code in 0..alphabet.len().pow(len) {
                let mut field = Vec::new();
                let mut rest = code;
                for _ in 0..len {
                    field.push(alphabet[rest % alphabet.len()]);
                    rest /= alphabet.len();
                }
                together_agrees(&field, b"1.5,-3.2");
            }
        }
        for field in ["1234.5", "-1234", "12.34", "1.2.3", "+1.5", "1e3", "-", "", "--1", " 1.5", "\n1.5"] {
            together_agrees(field.as_bytes(), b"1.5,-3.2");
        }
        if let Some(kernel) = Avx2::detect() {
            let data = b",1.5,2.5,3.5\n";
            assert_eq!(
                kernel.temperatures(&data[..], [1, 5, 9], [3, 3, 3]),
                None,
                "3 bytes left after the last"
            );
            let data = b",1.5,2.5,3.5\n1234";
            assert_eq!(kernel.temperatures(&data[..], [1, 5, 9], [3, 3, 3]), Some([15, 25, 35]));
        }
    }

    #[test]
    fn fast_decoders_agree_with_the_reference_where_they_succeed() {
        // Only five-byte times are read as a word; "9:05" and " 12:00" go to the reference.
        for t in ["00:00", "23:59", "24:00", "12:60", "1a:00"] {
            let word = u64::from_le_bytes(format!("{t},x\n").as_bytes().try_into().expect("8 bytes"));
            assert_eq!(hh_mm(word), parse_time(t.as_bytes()), "{t}");
        }
        // The word decoder: every valid time is read, whatever the three bytes after it, and any
        // byte value at any of the five places is either read as the reference reads it or refused.
        for minute in 0..1440u16 {
            let text = format!("{:02}:{:02}\n,9", minute / 60, minute % 60);
            let word = u64::from_le_bytes(text.as_bytes().try_into().expect("8 bytes"));
            assert_eq!(hh_mm(word), Some(minute), "{text}");
        }
        for place in 0..5 {
            for byte in 0..=255u8 {
                let mut b = *b"12:34,x,";
                b[place] = byte;
                // The reference also takes a padded hour (" 2:34"), which goes to it unread.
                let expected = parse_time(&b[..5]).filter(|_| !matches!(byte, b' ' | b'\t'));
                assert_eq!(hh_mm(u64::from_le_bytes(b)), expected, "{:?}", &b[..5]);
            }
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let read = hh_mm(seed);
            let b = seed.to_le_bytes();
            assert!(read.is_none() || read == parse_time(&b[..5]), "{:?}", &b[..5]);
        }
        for n in [
            "1", "-1", "123", "1234", "1.", "-7.", "1.a", "12a", "-0", "-0.0", "0.0", "999.9", "-12.3", "12",
            "1.25", "+1.0", "-.5", "1000.0", "", "-", ".5", "12.", "1.2.3", "-123.4", "123.4", "-1234",
            "--1", "0.", "9.9", "99", "999", "-999.9", " 1.2", "1.2 ", "1e3", "1-2", "-1.-", "1..", "..1",
            "-12.3.",
        ] {
            assert_eq!(tenths(n.as_bytes()), Tenths::parse(n.as_bytes()).ok(), "{n}");
        }
    }
}
