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

/* Vector paths (GCC vectors and intrinsics). AVX-512 (LA_V512, 16 lanes): the lookup kernel's
 * float32 segments, the register-table exact kernel and the compressed histogram adds. AVX2
 * with FMA (8 lanes; AMD Zen 1-3, Intel client cores): the register-table exact kernel, its
 * table lookups by permutes and its compressions by scalar loops (the generic loops, which GCC
 * vectorises with gathers, ran DiTAC's exact forward at ~28 ns/element on a Zen 3 core).
 * Elsewhere, and for float64, the generic loops run (tests run both: la_flow_vec_set). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define LA_VEC 1
#define LA_V512 1
#define LA_VL 16 /* float lanes per vector */
#include <immintrin.h>
#elif defined(__GNUC__) && !defined(__clang__) && defined(__AVX2__) && defined(__FMA__)
#define LA_VEC 1
#define LA_VL 8
#include <immintrin.h>
#endif
static int32_t la_vec_on = 1; /* the vector paths, if built (la_flow_vec_set: tests) */

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

/* the same math on GCC vectors of LA_VL lanes (vector paths only) */
#ifdef LA_VEC
typedef float la_vf __attribute__((vector_size(4 * LA_VL)));
typedef int32_t la_vi __attribute__((vector_size(4 * LA_VL)));
/* selects by a comparison mask (0/-1 lanes); "- (la_vf){}" broadcasts a scalar and keeps the
 * value of every float, -0 included */
#define LA_VSELF(m, a, b) ((la_vf)(((la_vi)((a) - (la_vf){}) & (m)) | ((la_vi)((b) - (la_vf){}) & ~(m))))
#define LA_VSELI(m, a, b) ((((a) + (la_vi){}) & (m)) | (((b) + (la_vi){}) & ~(m)))
#define LA_VONE(m) (-(m))
#define LA_VAS_I(x) ((la_vi)(x))
#define LA_VAS_F(i) ((la_vf)(i))
#define LA_VF2I(x) __builtin_convertvector((x), la_vi)
#define LA_VI2F(i) __builtin_convertvector((i), la_vf)
#ifdef LA_V512
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
#define LA_FLOOR(x) ((la_vf)_mm512_roundscale_ps((__m512)(x), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC))
#define LA_EXPF la_expf_vx
#else /* AVX2: cpab_math.h's own expf (defined before its gates) */
#define LA_FLOOR(x) ((la_vf)_mm256_floor_ps((__m256)(x)))
#define LA_EXPF la_expf_v
#endif
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
#include "cpab_math.h"
#ifdef LA_V512
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
#else
/* AVX2 has no vcompressps/vexpandps: a permute by an index vector per 8-bit lane mask does
 * the same (la_perm: pack[m] lists the set lanes of m in order, expand[m] gives lane i the
 * count of set lanes below it; 8 byte indices per mask, widened by vpmovzxbd), filled when
 * the library loads */
typedef struct {
    uint64_t pack[256], expand[256];
} la_perm;
static la_perm la_perm_tab;
__attribute__((constructor)) static void la_perm_init(void) {
    la_perm *p = &la_perm_tab;
    for (int m = 0; m < 256; ++m) {
        uint64_t pk = 0, ex = 0;
        int c = 0;
        for (int i = 0; i < 8; ++i) {
            ex |= (uint64_t)c << (8 * i);
            if (m >> i & 1)
                pk |= (uint64_t)i << (8 * c++);
        }
        p->pack[m] = pk, p->expand[m] = ex;
    }
}
static LA_INLINE __m256i la_perm_idx(const uint64_t *t, int m) {
    return _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)t[m]));
}
/* the lanes m of v, packed, stored at dst (8 slots written) */
static LA_INLINE void la_vkeep8(float *dst, __m256i pk, __m256 v) {
    _mm256_storeu_ps(dst, _mm256_permutevar8x32_ps(v, pk));
}
/* the kept lanes of a and b as pairs (a_0, b_0, a_1, b_1, ...; 16 slots written) */
static LA_INLINE void la_vkeep_pairs8(float *dst, __m256i pk, __m256 a, __m256 b) {
    a = _mm256_permutevar8x32_ps(a, pk), b = _mm256_permutevar8x32_ps(b, pk);
    __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b); /* a0 b0 a1 b1 | a4.. */
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}
#endif
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
 * away first (a third of normal inputs fall outside DiTAC's window; on AVX2 the same by
 * permutes measured no faster, nor did lookup segments with vgatherdps: 1.46 -> 1.98
 * ns/element forward on a Zen 3 core, whose gathers GCC's own tuning avoids) */
static LA_INLINE void lut_hist_f32(double *restrict h, const int32_t *restrict ib,
                                   const float *restrict wb, int64_t len, int32_t limit,
                                   int64_t cs, int copies) {
#ifdef LA_V512
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

#ifdef LA_V512
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

/* the register-table exact kernel (la_flow_vec_f32, or 0 where no vector path is built) */
#include "cpab_vec.h"

/* whether the vector paths (the register-table exact kernel; on AVX-512 also the vector lookup
 * segments) are built (1) and used (la_flow_vec_set(0) turns them off: tests) */
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
