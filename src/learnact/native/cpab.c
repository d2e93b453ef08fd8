/* DiTAC, fused CPU kernels: lookup-table mode (below, see ops/cpab/lut.py cpab_lut_op for the
 * math) and exact mode (further down, the closed-form flow of ops/cpab/common.py _trajectory).
 *
 * Forward, per element: r = bin(x), x~ = x + D[r], out = x~ s(x).
 * Backward: w = g s(x), gx = w S[r] + g s'(x) x~, and hist[r] += w (the table's gradient).
 * hist holds C nb bins and LA_SPARE (16) spare slots per copy (la_lut_copies: four for small
 * tables) and per thread (la_lut_stride apart; the kernel adds its copies into the first): the
 * outside bins' sums are not needed, and a third of normal inputs fall there, so their adds go
 * round-robin to the spare slots instead (adds to one slot in a row wait on each other: the
 * GELU-gated backward measured 1.2x slower with them), or are dropped before the adds
 * (AVX-512).
 *
 * One pass over memory each way, where eager PyTorch needs ~10 (index, gather, gate, product)
 * and inductor's CPU code reads the table with a scalar loop. Plain C with no PyTorch headers:
 * it builds in a few seconds with the system compiler (ops/_native.py), and is called
 * through ctypes on data pointers, one contiguous element range per thread.
 *
 * Bins (same rule as the PyTorch path): v = off + k x, clamped to [0, n + 1.5], truncated,
 * clamped to [0, n + 1]; bins 0 and n + 1 are the outside bins (D = 0, S = 1). NaN lands in
 * bin 0 and stays NaN through x + D.
 *
 * Channels: element i belongs to channel (i / R) % C of a (B, C, R) layout (shared tables:
 * C = 1); the table rows are nb = n + 2 long. Every loop body is branch-free so that the
 * compiler vectorises it; the loader builds with -march=native per machine (on x86-64 the
 * native tuning also turns on hardware gathers, which generic tuning emulates 2.5x slower).
 *
 * float32 gates use the polynomials below (no libm call, so the loops vectorise; GELU's s
 * within 1e-7 like PyTorch's float32 erf); float64 uses libm (for tests and gradcheck).
 * (LA_VEC sections are x86-64 specific; everything else is portable C.)
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LA_BLOCK 256
#define LA_COPIES 8 /* histogram copies per thread in the exact-mode backward */
#define LA_SPARE 16 /* spare histogram slots after the LUT bins (outside-bin adds) */

/* the per-element helpers must inline into each clone (a call would run the default ISA) */
#if defined(__GNUC__)
#define LA_INLINE inline __attribute__((always_inline))
#else
#define LA_INLINE inline
#endif

/* AVX-512 paths (GCC vectors and intrinsics): the lookup kernel's float32 segments, the
 * register-table exact kernel and the compressed histogram adds; elsewhere, and for float64,
 * the generic loops run (tests run both: la_flow_vec_set) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define LA_VEC 1
#include <immintrin.h>
#endif
static int32_t la_vec_on = 1; /* the AVX-512 paths, if built (la_flow_vec_set: tests) */

enum { GATE_GELU = 0, GATE_LEAKY_RELU = 1, GATE_SILU = 2, GATE_IDENTITY = 3 };

/* CALL(G, ...) with the runtime gate as a literal: each call inlines to a loop body of its own
 * (straight-line code, no gate test per element) */
#define LA_BY_GATE(CALL, ...)                                                                  \
    do {                                                                                       \
        if (gate == GATE_GELU) CALL(GATE_GELU, __VA_ARGS__);                                   \
        else if (gate == GATE_SILU) CALL(GATE_SILU, __VA_ARGS__);                              \
        else if (gate == GATE_LEAKY_RELU) CALL(GATE_LEAKY_RELU, __VA_ARGS__);                  \
        else CALL(GATE_IDENTITY, __VA_ARGS__);                                                 \
    } while (0)

/* Float math, written once (cpab_math.h, included twice below) for scalars, which the compiler
 * vectorises in the loops below, and for GCC vectors (the register-table exact kernel further
 * down); a comparison gives 0/1 for scalars and 0/-1 lanes for vectors.
 *
 * expf: 2^n p(r), r = x - n ln2 in two parts, p the degree-7 minimax polynomial of the Cephes
 * library; arguments clamped to [-87, 88] (NaN -> -87: callers never need NaN from here, their
 * products carry the input's NaN).
 * logf (normal x > 0): Cephes logf (mantissa in [sqrt(1/2), sqrt(2)), degree-8 polynomial,
 * exponent added in two parts).
 * gate: s(x) and s'(x). GELU: s = erfc(-x/sqrt2)/2 with erfc(z) ~ q(t) e^{-z^2}, t = 1/(1 + p z),
 * q of degree 5 (Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 in erf, the formula PyTorch's
 * own vectorised float32 erf uses); e^{-z^2} = e^{-x^2/2} is also s'(x) sqrt(2 pi), so one exp
 * serves both.
 * E(z) = expm1(z)/z with expm1 = 2^n (e^r - 1) + (2^n - 1) on expf's reduction (no
 * cancellation near 0, no series), E'(z) = (e^z (z - 1) + 1)/z^2 = (E (z - 1) + 1)/z (series
 * below |z| = 0.5), L(z) = log1p(z)/z by Kahan's log(u)/(u - 1), u = 1 + z, and L'(z) =
 * (1/u - L)/z (series below |z| = 0.05); E' and L' take E and L (at the same z) from their
 * caller. */

static LA_INLINE int32_t la_as_i(float x) {
    int32_t i;
    memcpy(&i, &x, sizeof i);
    return i;
}
static LA_INLINE float la_as_f(int32_t i) {
    float x;
    memcpy(&x, &i, sizeof x);
    return x;
}
#define LA_SEL(m, a, b) ((m) ? (a) : (b))
#define LA_ONE(m) (m)
#define LA_F2I(x) ((int32_t)(x))
#define LA_I2F(i) ((float)(i))
#define LA_FLOOR(x) __builtin_floorf(x)
#define LA_SUF
#define LA_F float
#define LA_I int32_t
#define LA_SELF LA_SEL
#define LA_ABS(x) __builtin_fabsf(x)
#define LA_ONE_OF LA_ONE
#define LA_AS_I la_as_i
#define LA_AS_F la_as_f
#define LA_EXPF la_expf
#include "cpab_math.h"

/* the same math on 16-lane GCC vectors (AVX-512 paths only) */
#ifdef LA_VEC
typedef float la_vf __attribute__((vector_size(64)));
typedef int32_t la_vi __attribute__((vector_size(64)));
/* selects by a comparison mask (0/-1 lanes); "- (la_vf){}" broadcasts a scalar and keeps the
 * value of every float, -0 included */
#define LA_VSELF(m, a, b) ((la_vf)(((la_vi)((a) - (la_vf){}) & (m)) | ((la_vi)((b) - (la_vf){}) & ~(m))))
#define LA_VSELI(m, a, b) ((((a) + (la_vi){}) & (m)) | (((b) + (la_vi){}) & ~(m)))
#define LA_VONE(m) (-(m))
#define LA_VAS_I(x) ((la_vi)(x))
#define LA_VAS_F(i) ((la_vf)(i))
#define LA_VF2I(x) __builtin_convertvector((x), la_vi)
#define LA_VI2F(i) __builtin_convertvector((i), la_vf)
/* expf with AVX-512's rounding and scaling (vrndscaleps, vscalefps): the same reduction and
 * polynomial in ~14 operations instead of ~20 (the gate's exp is most of its cost) */
static LA_INLINE la_vf la_expf_vx(la_vf xv) {
    __m512 x = _mm512_max_ps((__m512)xv, _mm512_set1_ps(-87.0f)); /* NaN -> -87 as la_expf */
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    la_vf rv = (la_vf)r;
    la_vf p = (((((1.9875691500e-4f * rv + 1.3981999507e-3f) * rv + 8.3334519073e-3f) * rv
                 + 4.1665795894e-2f) * rv + 1.6666665459e-1f) * rv + 5.0000001201e-1f)
              * (rv * rv) + rv + 1.0f;
    return (la_vf)_mm512_scalef_ps((__m512)p, n);
}
#define LA_SUF _v
#define LA_F la_vf
#define LA_I la_vi
#define LA_SELF LA_VSELF
#define LA_ABS(x) ((la_vf)((la_vi)(x) & 0x7fffffff))
#define LA_ONE_OF LA_VONE
#define LA_AS_I LA_VAS_I
#define LA_AS_F LA_VAS_F
#define LA_F2I LA_VF2I
#define LA_I2F LA_VI2F
#define LA_FLOOR(x) ((la_vf)_mm512_roundscale_ps((__m512)(x), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC))
#define LA_EXPF la_expf_vx
#include "cpab_math.h"
static LA_INLINE __mmask16 la_first(int64_t cnt) { /* lanes 0 .. cnt - 1 (cnt <= 16) */
    return (__mmask16)((1u << cnt) - 1u);
}
/* the lanes k of v, packed, stored at dst (16 slots written) */
static LA_INLINE void la_vkeep_f(float *dst, __mmask16 k, la_vf v) {
    _mm512_storeu_ps(dst, _mm512_maskz_compress_ps(k, (__m512)v));
}
static LA_INLINE void la_vkeep_i(int32_t *dst, __mmask16 k, la_vi v) {
    _mm512_storeu_si512(dst, _mm512_maskz_compress_epi32(k, (__m512i)v));
}
#endif

static LA_INLINE void gate_d(double x, int32_t gate, double alpha, double *s, double *ds) {
    if (gate == GATE_GELU) {
        *s = 0.5 * erfc(-x * 0.70710678118654752);
        *ds = exp(-0.5 * x * x) * 0.39894228040143268;
    } else if (gate == GATE_SILU) {
        double sg = 1.0 / (1.0 + exp(-x));
        *s = sg;
        *ds = sg * (1.0 - sg);
    } else if (gate == GATE_LEAKY_RELU) {
        *s = x > 0.0 ? 1.0 : alpha;
        *ds = 0.0;
    } else {
        *s = 1.0;
        *ds = 0.0;
    }
}

/* the (channel, length, channel step) segment starting at element i of a (B, C, R) layout */
static LA_INLINE int64_t segment(int64_t i, int64_t end, int64_t C, int64_t R, int64_t nb,
                              int64_t *c, int32_t *step) {
    int64_t row = i / R, seg;
    *c = row % C;
    if (R > 1) {
        seg = (row + 1) * R - i;
        *step = 0;
    } else {
        seg = C - *c;
        *step = (int32_t)nb;
    }
    return seg < end - i ? seg : end - i;
}

/* Helpers of the typed kernels (cpab_kernels.h, included at the end of this file, once per
 * float type; the gate is dispatched outside their loops, so each loop body is straight-line
 * code). */

/* kwb[q] added into bin kib[q] of copy q mod copies (copies 1 or 4, cs doubles apart): with
 * one copy, neighbours in one bin (repeated or quantised inputs, zero padding, sorted runs)
 * chain each add on the one before (2.8 ns/element for sorted inputs, 0.72 with four
 * copies; random bins 0.60 -> 0.52; one thread) */
#define LA_HIST_ADDS(h, kib, kwb, k, cs, copies)                                              \
    do {                                                                                       \
        int64_t q_ = 0;                                                                        \
        if ((copies) == 4)                                                                     \
            for (; q_ + 4 <= (k); q_ += 4) {                                                   \
                (h)[(kib)[q_]] += (double)(kwb)[q_];                                           \
                (h)[(cs) + (kib)[q_ + 1]] += (double)(kwb)[q_ + 1];                            \
                (h)[2 * (cs) + (kib)[q_ + 2]] += (double)(kwb)[q_ + 2];                        \
                (h)[3 * (cs) + (kib)[q_ + 3]] += (double)(kwb)[q_ + 3];                        \
            }                                                                                  \
        for (; q_ < (k); ++q_) (h)[(kib)[q_]] += (double)(kwb)[q_];                            \
    } while (0)

/* h[ib[j]] += wb[j] over one block (LA_HIST_ADDS' copies), except indices >= limit (the spare
 * slots of the outside bins, whose sums are dropped): float32 on AVX-512 compresses those adds
 * away first (a third of normal inputs fall outside DiTAC's window) */
static LA_INLINE void lut_hist_f32(double *restrict h, const int32_t *restrict ib,
                                   const float *restrict wb, int64_t len, int32_t limit,
                                   int64_t cs, int copies) {
#ifdef LA_VEC
    int32_t kib[LA_BLOCK + 16];
    float kwb[LA_BLOCK + 16];
    int64_t k = 0, j = 0;
    for (; j + 16 <= len; j += 16) {
        la_vi iv;
        la_vf wv;
        memcpy(&iv, ib + j, sizeof iv), memcpy(&wv, wb + j, sizeof wv);
        __mmask16 m = _mm512_cmplt_epi32_mask((__m512i)iv, _mm512_set1_epi32(limit));
        la_vkeep_i(kib + k, m, iv);
        la_vkeep_f(kwb + k, m, wv);
        k += __builtin_popcount(m);
    }
    for (; j < len; ++j) {
        kib[k] = ib[j], kwb[k] = wb[j];
        k += ib[j] < limit;
    }
    LA_HIST_ADDS(h, kib, kwb, k, cs, copies);
#else
    LA_HIST_ADDS(h, ib, wb, len, cs, copies);
    (void)limit;
#endif
}
static LA_INLINE void lut_hist_f64(double *restrict h, const int32_t *restrict ib,
                                   const double *restrict wb, int64_t len, int32_t limit,
                                   int64_t cs, int copies) {
    LA_HIST_ADDS(h, ib, wb, len, cs, copies);
    (void)limit;
}

#ifdef LA_VEC
/* The lookup kernels' float32 segments on 16-lane vectors: the same bins and formulas as
 * fwd_seg/bwd_seg below, the gate's exp by la_expf_vx */
static const la_vi la_lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
/* one instruction per clamp (vmaxps returns its second operand where either is NaN: NaN ->
 * 0, bin 0, as lut_bin; then vminps, vpminsd), where the selects took a compare and a blend */
static LA_INLINE la_vi lut_bin_v(la_vf xv, float k, float off, int32_t top) {
    __m512 v = (__m512)(off + k * xv);
    v = _mm512_max_ps(v, _mm512_setzero_ps());
    v = _mm512_min_ps(v, _mm512_set1_ps((float)top + 0.5f));
    return (la_vi)_mm512_min_epi32(_mm512_cvttps_epi32(v), _mm512_set1_epi32(top));
}
/* The segment loops take `step` (0 for a run of one channel's elements, the row length nb
 * where lanes are channels) from wrappers that pass a literal 0 where they can: the lane
 * offsets' broadcast, multiply and adds fold away (a tenth of the forward's vector
 * instructions, which bound it: 0.62 ns/element in cache, one thread, against 0.09 for a
 * scale-and-copy) */
static LA_INLINE void lut_fwd_loop(const float *restrict x, float *restrict out, int64_t len,
                                   const float *restrict Dc, int32_t step, int32_t top, float k,
                                   float off, int32_t gate, float alpha) {
    for (int64_t j = 0; j < len; j += 16) {
        __mmask16 kl = la_first(len - j < 16 ? len - j : 16);
        la_vf xv = (la_vf)_mm512_maskz_loadu_ps(kl, x + j), s, ds;
        la_vi r = lut_bin_v(xv, k, off, top) + (la_lane + (int32_t)j) * step;
        la_vf D = (la_vf)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), kl, (__m512i)r, Dc, 4);
        gate_f_v(xv, gate, alpha, &s, &ds);
        _mm512_mask_storeu_ps(out + j, kl, (__m512)((xv + D) * s));
    }
}
static LA_INLINE int lut_fwd_vec(const float *restrict x, float *restrict out, int64_t len,
                                 const float *restrict Dc, int32_t step, int32_t top, float k,
                                 float off, int32_t gate, float alpha) {
    if (!la_vec_on)
        return 0;
    if (step == 0)
        lut_fwd_loop(x, out, len, Dc, 0, top, k, off, gate, alpha);
    else
        lut_fwd_loop(x, out, len, Dc, step, top, k, off, gate, alpha);
    return 1;
}
static LA_INLINE void lut_bwd_loop(const float *restrict x, const float *restrict g,
                                   float *restrict gx, int32_t *restrict ib, float *restrict wb,
                                   int64_t len, const float *restrict Dc,
                                   const float *restrict Sc, int32_t step, int32_t top,
                                   int32_t spare, float k, float off, int32_t gate,
                                   float alpha) {
    for (int64_t j = 0; j < len; j += 16) { /* j + 16 <= LA_BLOCK: ib, wb take whole vectors */
        __mmask16 kl = la_first(len - j < 16 ? len - j : 16);
        la_vf xv = (la_vf)_mm512_maskz_loadu_ps(kl, x + j), s, ds;
        la_vf gv = (la_vf)_mm512_maskz_loadu_ps(kl, g + j);
        la_vi lj = la_lane + (int32_t)j;
        la_vi rb = lut_bin_v(xv, k, off, top), r = rb + lj * step;
        la_vf D = (la_vf)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), kl, (__m512i)r, Dc, 4);
        la_vf S = (la_vf)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), kl, (__m512i)r, Sc, 4);
        gate_f_v(xv, gate, alpha, &s, &ds);
        la_vf w = gv * s;
        _mm512_mask_storeu_ps(gx + j, kl, (__m512)(w * S + gv * ds * (xv + D)));
        la_vi iv = LA_VSELI((rb == 0) | (rb == top), spare + (lj & (LA_SPARE - 1)), r);
        memcpy(ib + j, &iv, sizeof iv);
        memcpy(wb + j, &w, sizeof w);
    }
}
static LA_INLINE int lut_bwd_vec(const float *restrict x, const float *restrict g,
                                 float *restrict gx, int32_t *restrict ib, float *restrict wb,
                                 int64_t len, const float *restrict Dc,
                                 const float *restrict Sc, int32_t step, int32_t top,
                                 int32_t spare, float k, float off, int32_t gate, float alpha) {
    if (!la_vec_on)
        return 0;
    if (step == 0)
        lut_bwd_loop(x, g, gx, ib, wb, len, Dc, Sc, 0, top, spare, k, off, gate, alpha);
    else
        lut_bwd_loop(x, g, gx, ib, wb, len, Dc, Sc, step, top, spare, k, off, gate, alpha);
    return 1;
}
#define la_lut_fwd_fast_f32 lut_fwd_vec
#define la_lut_bwd_fast_f32 lut_bwd_vec
#else
#define la_lut_fwd_fast_f32(...) 0
#define la_lut_bwd_fast_f32(...) 0
#endif

/* ---------------------------------------------------------------------------------------
 * Exact mode: the closed-form CPAB flow per element (ops/cpab/common.py _trajectory and
 * _table_terms, the same formulas and selects), fused with DiTAC's window and gate.
 * Tables (ops/cpab/common.py _Tables): A, B (C 2N: the field and its mirror per channel), P (C 2
 * (N + 1): cumulative knot-to-knot times per row), stop (C 2N, int32). Work goes in blocks of
 * LA_BLOCK elements through three vectorised phases (up to the search target; the binary
 * search, one vector loop per step; the last cell, T and the gate), so no loop body holds an
 * inner loop (float32 with one shared table of <= 15 cells on AVX-512: the register-table
 * kernel below instead). Backward adds per element into hist = [(dL/dA, dL/dB) pairs (C 2N x
 * 2) | time differences D (C 2 (N + 1))], LA_COPIES copies per thread (threads
 * la_flow_stride apart); the caller adds them and turns D into the crossing times' gradient
 * by a cumulative sum.
 * float32: E, L, E', L' as in cpab_math.h; float64: libm with the PyTorch path's series
 * thresholds. */

static LA_INLINE double E_d(double z) {
    return fabs(z) < 1e-4 ? 1.0 + z * (0.5 + z / 6.0) : expm1(z) / z;
}
/* E' and L' below |z| = 0.05 by their Taylor series to z^11 (E'(z) = sum_k k z^(k-1)/(k+1)!,
 * L'(z) = sum_k (-1)^k k z^(k-1)/(k+1), as learnact/core/cpab.py's): below 1e-16 relative there,
 * where the closed forms lose ~1e-13 (the series to z^5 were off by 2.5e-8 relative at 0.05) */
static const double la_dE_series[12] = {
    1.0 / 2, 2.0 / 6, 3.0 / 24, 4.0 / 120, 5.0 / 720, 6.0 / 5040, 7.0 / 40320, 8.0 / 362880,
    9.0 / 3628800, 10.0 / 39916800, 11.0 / 479001600, 12.0 / 6227020800.0};
static const double la_dL_series[12] = {
    -1.0 / 2, 2.0 / 3, -3.0 / 4, 4.0 / 5, -5.0 / 6, 6.0 / 7, -7.0 / 8, 8.0 / 9, -9.0 / 10,
    10.0 / 11, -11.0 / 12, 12.0 / 13};
static LA_INLINE double la_series12(const double *c, double z) {
    double acc = c[11];
    for (int k = 10; k >= 0; --k) acc = acc * z + c[k];
    return acc;
}
static LA_INLINE double dE_d(double z, double E) {
    return fabs(z) < 0.05 ? la_series12(la_dE_series, z) : (E * (z - 1.0) + 1.0) / z;
}
static LA_INLINE double L_d(double z) {
    return fabs(z) < 1e-4 ? 1.0 + z * (-0.5 + z / 3.0) : log1p(z) / z;
}
static LA_INLINE double dL_d(double z, double L) {
    return fabs(z) < 0.05 ? la_series12(la_dL_series, z) : (1.0 / (1.0 + z) - L) / z;
}

/* Doubles from one part's histogram to the next (the caller allocates parts x stride): the
 * part's accumulators rounded up to 128 bytes, plus 128 bytes, so that no two threads write
 * into one pair of adjacent cache lines (the adjacent-line prefetcher moves lines in pairs:
 * with the parts back to back the exact-mode backward's adds ran 2.5x slower on 2 threads). */
static int64_t la_part_stride(int64_t used) { return (used + 15) / 16 * 16 + 16; }
/* a lookup histogram's copies (tables of at most LA_LUT_SMALL bins: four, in L2; larger ones,
 * per channel, one) and the doubles from one copy to the next; la_lut_stride: a part's row */
#define LA_LUT_SMALL 16384
static int la_lut_copies(int64_t bins) { return bins <= LA_LUT_SMALL ? 4 : 1; }
static int64_t la_lut_copy_stride(int64_t bins) { return la_part_stride(bins + LA_SPARE); }
int64_t la_lut_stride(int64_t bins);
int64_t la_flow_stride(int64_t C, int32_t n);

/* ---------------------------------------------------------------------------------------
 * Exact mode, float32 with one shared table of at most LA_VEC_CELLS cells: the same formulas
 * per 16 lanes in GCC vector types, every table held in registers (a row of A, B, P or stop
 * fits one 16-lane vector; a lookup of the right or the left row is one two-table permute,
 * vpermt2ps, where the loops above pay a memory gather each), the search for the last knot as
 * a branch-free count, and all three phases in one pass without the block buffers. Built where GCC targets AVX-512 (elsewhere the generic loops run). */
#define LA_VEC_CELLS 15
#ifdef LA_VEC
/* lane i reads R[idx_i] (the right-moving row) or L[idx_i] (the left row, where left_i) */
#define LA_LUT2(R, L, idx, left) __builtin_shuffle((R), (L), (idx) | ((left) & 16))

typedef struct {
    la_vf Ar, Al, Br, Bl, Pr, Pl; /* rows of the field (a, b) and of the knot times P */
    la_vi Sr, Sl;                 /* stop */
} la_vtab;

/* The flow of 16 lanes inside the window (flow_block_f32's formulas and selects): returns x~
 * and, with bwd, dx~/dx in *dxt and the histogram terms of the upstream gradients gs (=
 * dL/dx~): w[5] (dL/da_m, dL/db_m, dL/da_0, dL/db_0, h) at bins id[0..3], id[4] the crossing
 * lanes (the others' dL/da_0, dL/db_0 and h are exactly 0). */
static LA_INLINE la_vf flow_vec16(la_vf xv, la_vf gs, const la_vtab *tb, int32_t n, float t,
                                  float lo, float hi, int32_t bwd, la_vf *dxt, la_vf *w,
                                  la_vi *id) {
    const float inv = 1.0f / (hi - lo), invn = 1.0f / (float)n, fn = (float)n;
    la_vf u = (xv - lo) * inv;
    la_vf fc = u * fn;
    fc = LA_VSELF(fc > 0.0f, fc, 0.0f);
    la_vi c0 = LA_VF2I(fc);
    c0 = LA_VSELI(c0 < n - 1, c0, n - 1);
    la_vf a0 = __builtin_shuffle(tb->Ar, c0), b0 = __builtin_shuffle(tb->Br, c0);
    la_vf v = a0 * u + b0;
    la_vi left = v < 0.0f;
    la_vf xf = LA_VSELF(left, 1.0f - u, u);
    la_vi cl = LA_VSELI(left, n - 1 - c0, c0);
    /* the mirror's cell n - 1 - c0: a' = a, b' = -(a + b) (functional/cpab.py) */
    la_vf af = a0, bf = LA_VSELF(left, -(a0 + b0), b0);
    la_vf vf = af * xf + bf;
    la_vf e = LA_VI2F(cl + 1) * invn;
    la_vf dl = e - xf;
    la_vf ve = af * e + bf;
    la_vi can = (vf > 1.17549435e-38f) & (cl < n - 1) & (ve > 0.0f);
    la_vf sv = LA_VSELF(can, vf, 1.0f);
    la_vf q = dl / sv;
    la_vf z = LA_VSELF(can, af * q, 0.0f);
    z = LA_VSELF(z < 1e30f, z, 1e30f);
    la_vf Lz = L_f_v(z);
    la_vf t0 = LA_VSELF(can, q * Lz, (float)INFINITY);
    la_vi cross = t0 < t;
    la_vi k1 = LA_VSELI(cross, cl + 1, cl);
    la_vf t1 = LA_VSELF(cross, t - t0, t);
    la_vf pk = LA_LUT2(tb->Pr, tb->Pl, k1, left);
    la_vf tg = pk + t1;
    /* the last knot with P <= tg (P rises along a row; P[0] = 0 <= tg): a count of knots
       1..n below the target, n independent compares (a binary search chains its lookups) */
    la_vi pos = (la_vi){};
    for (int32_t k = 1; k <= n; ++k)
        pos -= LA_VSELF(left, tb->Pl[k], tb->Pr[k]) <= tg;
    la_vi st = LA_LUT2(tb->Sr, tb->Sl, k1, left);
    la_vi m = LA_VSELI(cross, LA_VSELI(pos < st, pos, st), cl);
    la_vf tm = LA_VSELF(cross, t1 - (LA_LUT2(tb->Pr, tb->Pl, m, left) - pk), t1);
    tm = LA_VSELF(tm > 0.0f, tm, 0.0f);
    la_vf xm = LA_VSELF(cross, LA_VI2F(m) * invn, xf);
    la_vf am = LA_LUT2(tb->Ar, tb->Al, m, left), bm = LA_LUT2(tb->Br, tb->Bl, m, left);
    la_vf vm = am * xm + bm;
    la_vf za = tm * am;
    za = LA_VSELF(za < 80.7f, za, 80.7f);
    la_vf Em = E_f_v(za);
    la_vf wv = tm * Em * vm;
    la_vf psi = xm + wv;
    la_vf Tv = LA_VSELF(left, 1.0f - psi, psi);
    la_vf xt = lo + (hi - lo) * Tv;
    if (!bwd)
        return xt;
    la_vf psit = vm + am * wv;
    *dxt = LA_VSELF(cross, psit / sv, 1.0f + za * Em);
    la_vf gT = gs * (hi - lo);
    la_vf gf = LA_VSELF(left, -gT, gT);
    la_vf h = LA_VSELF(cross, -gf * psit, 0.0f);
    la_vf dtb = -q / ve;
    la_vf dta = q * q * dL_f_v(z, Lz) + xf * dtb;
    w[0] = gf * (tm * tm * dE_f_v(za, Em) * vm + xm * tm * Em);
    w[1] = gf * tm * Em;
    w[2] = LA_VSELF(cross, h * dta, 0.0f);
    w[3] = LA_VSELF(cross, h * dtb, 0.0f);
    w[4] = h;
    la_vi nl = left & n, kl = left & (n + 1);
    id[0] = m + nl;  /* the last cell in its row */
    id[1] = cl + nl; /* the first */
    id[2] = kl + k1; /* knots: row * (n + 1) + k */
    id[3] = kl + m;
    id[4] = cross;
    return xt;
}

/* The block's histogram terms (of lanes inside the window: outside, dx~/dtheta = 0), the first
 * cell's and the knots' terms only of crossing lanes (the others' are 0), compressed
 * (vcompressps). The (dL/da, dL/db) terms are kept as adjacent pairs, added to their adjacent
 * bins by one 128-bit float64 add each. */
typedef struct {
    float pm[2 * LA_BLOCK + 32], p0[2 * LA_BLOCK + 32]; /* (dL/da, dL/db): last, first cell */
    float h[LA_BLOCK + 16];
    int32_t i_m[LA_BLOCK + 16], i_0[LA_BLOCK + 16], i_k[LA_BLOCK + 16], i_g[LA_BLOCK + 16];
    int32_t nm, nc; /* lanes kept: inside; crossing */
} la_vhist;

/* the kept lanes of a and b as pairs (a_0, b_0, a_1, b_1, ...) */
static LA_INLINE void la_vkeep_pairs(float *dst, __mmask16 k, la_vf a, la_vf b) {
    const la_vi lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    la_vf ca = (la_vf)_mm512_maskz_compress_ps(k, (__m512)a);
    la_vf cb = (la_vf)_mm512_maskz_compress_ps(k, (__m512)b);
    la_vf p1 = __builtin_shuffle(ca, cb, lo), p2 = __builtin_shuffle(ca, cb, lo + 8);
    memcpy(dst, &p1, sizeof p1);
    memcpy(dst + 16, &p2, sizeof p2);
}

/* keeps the terms of lanes km (the valid ones), the crossing ones' second part too */
static LA_INLINE void flow_vec_keep(la_vhist *hb, __mmask16 km, const la_vf *w, const la_vi *id) {
    __mmask16 kc = km & _mm512_test_epi32_mask((__m512i)id[4], (__m512i)id[4]);
    la_vkeep_pairs(hb->pm + 2 * hb->nm, km, w[0], w[1]);
    la_vkeep_i(hb->i_m + hb->nm, km, id[0]);
    hb->nm += __builtin_popcount(km);
    la_vkeep_pairs(hb->p0 + 2 * hb->nc, kc, w[2], w[3]);
    la_vkeep_f(hb->h + hb->nc, kc, w[4]);
    la_vkeep_i(hb->i_0 + hb->nc, kc, id[1]);
    la_vkeep_i(hb->i_k + hb->nc, kc, id[2]);
    la_vkeep_i(hb->i_g + hb->nc, kc, id[3]);
    hb->nc += __builtin_popcount(kc);
}

static LA_INLINE void la_add_pair(double *dst, const float *pair) {
    __m128d v = _mm_cvtps_pd(_mm_castpd_ps(_mm_load_sd((const double *)pair)));
    _mm_storeu_pd(dst, _mm_add_pd(_mm_loadu_pd(dst), v));
}

/* adds the kept terms into hist (layout and LA_COPIES copies as flow_hist_f32) */
static LA_INLINE void flow_vec_hist(double *restrict hist, int32_t n, const la_vhist *hb) {
    int64_t hrow = 2 * n, hsize = 2 * hrow + 2 * (n + 1); /* [(a, b) pairs | D] */
    for (int32_t j = 0; j < hb->nm; ++j)
        la_add_pair(hist + (j & (LA_COPIES - 1)) * hsize + 2 * hb->i_m[j], hb->pm + 2 * j);
    for (int32_t j = 0; j < hb->nc; ++j) {
        double *hab = hist + (j & (LA_COPIES - 1)) * hsize, *hd = hab + 2 * hrow;
        la_add_pair(hab + 2 * hb->i_0[j], hb->p0 + 2 * j);
        hd[hb->i_k[j]] += (double)hb->h[j];
        hd[hb->i_g[j]] -= (double)hb->h[j];
    }
}

/* One block in three passes. 1: the gate of every lane, and the lanes inside the window
 * compressed into xin (with g s(x) into gin): a third of normal inputs lie outside DiTAC's
 * window, where x~ = x, and the flow skips them. 2: the flow on the dense lanes, two
 * independent vectors per step (one chain has ~250 cycles of latency — divisions, log, exp,
 * dependent lookups — that left the core idle; GCC's pre-allocation scheduling interleaves
 * the two: 1.5x). 3: x~ (and dx~/dx) expanded back to their lanes, the outputs. A tail
 * shorter than a vector runs with its extra lanes masked off. */
static LA_INLINE void flow_vec_block(const float *restrict x, const float *restrict g,
                                     float *restrict out, double *restrict hist, int64_t len,
                                     const la_vtab *tb, int32_t n, float t, float lo, float hi,
                                     int32_t gate, float alpha, int32_t bwd) {
    float s_[LA_BLOCK], ds_[LA_BLOCK];
    float xin[LA_BLOCK + 32], gin[LA_BLOCK + 32], tin[LA_BLOCK + 32], din[LA_BLOCK + 32];
    __mmask16 kin[LA_BLOCK / 16];
    int64_t nin = 0;
    for (int64_t j = 0; j < len; j += 16) { /* pass 1 */
        __mmask16 kl = la_first(len - j < 16 ? len - j : 16);
        la_vf xv = (la_vf)_mm512_maskz_loadu_ps(kl, x + j), gv = {0}, sg, dsg;
        gate_f_v(xv, gate, alpha, &sg, &dsg);
        memcpy(s_ + j, &sg, sizeof sg);
        if (bwd) {
            gv = (la_vf)_mm512_maskz_loadu_ps(kl, g + j);
            memcpy(ds_ + j, &dsg, sizeof dsg);
        }
        __mmask16 k = kl & _mm512_cmp_ps_mask((__m512)xv, _mm512_set1_ps(lo), _CMP_GE_OQ)
                      & _mm512_cmp_ps_mask((__m512)xv, _mm512_set1_ps(hi), _CMP_LE_OQ);
        kin[j / 16] = k;
        la_vkeep_f(xin + nin, k, xv);
        if (bwd)
            la_vkeep_f(gin + nin, k, gv * sg);
        nin += __builtin_popcount(k);
    }
    for (int64_t j = nin; j < nin + 32; ++j) /* padding: a valid point, no gradient */
        xin[j] = lo, gin[j] = 0.0f;
    la_vhist hb;
    hb.nm = hb.nc = 0;
    int32_t keep = bwd && hist;
    for (int64_t j = 0; j < nin; j += 32) { /* pass 2 */
        la_vf x0, x1, g0, g1, e0 = {0}, e1 = {0}, w0[5], w1[5];
        la_vi d0[5], d1[5];
        memcpy(&x0, xin + j, sizeof x0), memcpy(&x1, xin + j + 16, sizeof x1);
        memcpy(&g0, gin + j, sizeof g0), memcpy(&g1, gin + j + 16, sizeof g1);
        la_vf t0 = flow_vec16(x0, g0, tb, n, t, lo, hi, bwd, &e0, w0, d0);
        la_vf t1 = flow_vec16(x1, g1, tb, n, t, lo, hi, bwd, &e1, w1, d1);
        memcpy(tin + j, &t0, sizeof t0), memcpy(tin + j + 16, &t1, sizeof t1);
        if (bwd)
            memcpy(din + j, &e0, sizeof e0), memcpy(din + j + 16, &e1, sizeof e1);
        if (keep) {
            flow_vec_keep(&hb, la_first(nin - j < 16 ? nin - j : 16), w0, d0);
            if (nin - j > 16)
                flow_vec_keep(&hb, la_first(nin - j - 16 < 16 ? nin - j - 16 : 16), w1, d1);
        }
    }
    for (int64_t j = nin; j < nin + 16; ++j) /* pass 3 reads whole vectors from c <= nin */
        tin[j] = 0.0f, din[j] = 1.0f;
    int64_t c = 0;
    for (int64_t j = 0; j < len; j += 16) { /* pass 3 */
        __mmask16 kl = la_first(len - j < 16 ? len - j : 16), k = kin[j / 16];
        la_vf xv = (la_vf)_mm512_maskz_loadu_ps(kl, x + j), sg, res;
        memcpy(&sg, s_ + j, sizeof sg);
        la_vf xt = (la_vf)_mm512_mask_expand_ps((__m512)xv, k, _mm512_loadu_ps(tin + c));
        if (bwd) {
            la_vf gv = (la_vf)_mm512_maskz_loadu_ps(kl, g + j), dsg;
            memcpy(&dsg, ds_ + j, sizeof dsg);
            la_vf dx = (la_vf)_mm512_mask_expand_ps(_mm512_set1_ps(1.0f), k,
                                                    _mm512_loadu_ps(din + c));
            res = gv * sg * dx + gv * xt * dsg;
        } else {
            res = xt * sg;
        }
        _mm512_mask_storeu_ps(out + j, kl, (__m512)res);
        c += __builtin_popcount(k);
    }
    if (keep)
        flow_vec_hist(hist, n, &hb);
}

#define LA_VEC_CALL(G, BWD)                                                                   \
    flow_vec_block(x + i, g ? g + i : g, out + i, hist, len, &tb, n, t, lo, hi, G, alpha, BWD)

/* Runs la_flow_f32's work on the register-table kernel and returns 1 where it applies (one
 * shared table, n <= LA_VEC_CELLS, not switched off); else returns 0. */
static int la_flow_vec_f32(const float *x, const float *g, float *out, double *hist,
                           int64_t start, int64_t end, const float *A, const float *B,
                           const float *P, const int32_t *stop, int64_t C, int32_t n, float t,
                           float lo, float hi, int32_t gate, float alpha) {
    if (C != 1 || n > LA_VEC_CELLS || !la_vec_on)
        return 0;
    la_vtab tb;
    float buf[6][16] = {{0}};
    int32_t sbuf[2][16] = {{0}};
    for (int32_t k = 0; k < n; ++k) {
        buf[0][k] = A[k], buf[1][k] = A[n + k], buf[2][k] = B[k], buf[3][k] = B[n + k];
        sbuf[0][k] = stop[k], sbuf[1][k] = stop[n + k];
    }
    for (int32_t k = 0; k <= n; ++k)
        buf[4][k] = P[k], buf[5][k] = P[n + 1 + k];
    memcpy(&tb.Ar, buf[0], 64), memcpy(&tb.Al, buf[1], 64), memcpy(&tb.Br, buf[2], 64);
    memcpy(&tb.Bl, buf[3], 64), memcpy(&tb.Pr, buf[4], 64), memcpy(&tb.Pl, buf[5], 64);
    memcpy(&tb.Sr, sbuf[0], 64), memcpy(&tb.Sl, sbuf[1], 64);
    for (int64_t i = start; i < end;) {
        int64_t len = end - i < LA_BLOCK ? end - i : LA_BLOCK;
        if (g) /* literal gate and direction, as in la_flow_f32 */
            LA_BY_GATE(LA_VEC_CALL, 1);
        else
            LA_BY_GATE(LA_VEC_CALL, 0);
        i += len;
    }
    return 1;
}
#else
#define la_flow_vec_f32(...) 0
#endif

/* whether the AVX-512 paths (the register-table exact kernel, the vector lookup segments) are
 * built (1) and used (la_flow_vec_set(0) turns them off: tests) */
int la_flow_vec(void) {
#ifdef LA_VEC
    return la_vec_on;
#else
    return 0;
#endif
}
void la_flow_vec_set(int on) { la_vec_on = on != 0; }

/* ---------------------------------------------------------------------------------------
 * The typed kernels (cpab_kernels.h), once per float type: float32 with the polynomial math and
 * the AVX-512 fast paths where built, float64 with libm and the generic loops only. */
#define LA_SUF _f32
#define LA_T float
#define LA_GATE gate_f
#define LA_EF E_f
#define LA_DEF dE_f
#define LA_LF L_f
#define LA_DLF dL_f
#define LA_TINY 1.17549435e-38f
#define LA_ZMAX 1e30f
#define LA_ZAMAX 80.7f
#define LA_FAST_FLOW la_flow_vec_f32
#define LA_FAST_LUT_FWD la_lut_fwd_fast_f32
#define LA_FAST_LUT_BWD la_lut_bwd_fast_f32
#include "cpab_kernels.h"

#define LA_SUF _f64
#define LA_T double
#define LA_GATE gate_d
#define LA_EF E_d
#define LA_DEF dE_d
#define LA_LF L_d
#define LA_DLF dL_d
#define LA_TINY 2.2250738585072014e-308
#define LA_ZMAX 1e300
#define LA_ZAMAX 701.7
#define LA_FAST_FLOW(...) 0    /* float64 has no register-table kernel */
#define LA_FAST_LUT_FWD(...) 0 /* ... nor vector lookup segments */
#define LA_FAST_LUT_BWD(...) 0
#include "cpab_kernels.h"

/* the lookup tables from the cells and back, in one call each (la_lut_grid*) */
#include "cpab_grid.h"

/* 1 if the entry points above run on OpenMP threads */
int la_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* the accumulator layout constants, for the caller's allocations */
int64_t la_lut_stride(int64_t bins) { return la_lut_copies(bins) * la_lut_copy_stride(bins); }
int la_flow_copies(void) { return LA_COPIES; }
int64_t la_flow_stride(int64_t C, int32_t n) {
    return la_part_stride(LA_COPIES * (C * 2 * n * 2 + C * 2 * (n + 1)));
}

/* ABI check for the loader: the one number of native/abi.h (bump it when a signature
   changes) */
#include "abi.h"
int la_abi(void) { return LA_ABI; }
