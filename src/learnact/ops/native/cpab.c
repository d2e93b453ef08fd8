/* DiTAC, fused CPU kernels: lookup-table mode (below, see ops/cpab.py cpab_lut_op for the
 * math) and exact mode (further down, the closed-form flow of ops/cpab.py _trajectory).
 *
 * Forward, per element: r = bin(x), x~ = x + D[r], out = x~ s(x).
 * Backward: w = g s(x), gx = w S[r] + g s'(x) x~, and hist[r] += w (the table's gradient).
 * hist is C nb + LA_SPARE (16) long: the outside bins' sums are not needed, and a third of normal inputs
 * fall there, so their adds go round-robin to the spare slots at the end instead (adds to one
 * slot in a row wait on each other: the GELU-gated backward measured 1.2x slower with them).
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
 */
#include <math.h>
#include <stdint.h>
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

enum { GATE_GELU = 0, GATE_LEAKY_RELU = 1, GATE_SILU = 2, GATE_IDENTITY = 3 };

/* exp(x) in float: 2^n p(r), r = x - n ln2 in two parts, p the degree-7 minimax polynomial of
 * the Cephes library; arguments clamped to [-87, 88] (NaN -> -87: callers never need NaN
 * from here, their products carry the input's NaN). */
static LA_INLINE float la_expf(float x) {
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float t = x * 1.44269504088896341f + 0.5f;
    int32_t n = (int32_t)t;
    float fn = (float)n;
    int32_t down = fn > t;
    n -= down;
    fn -= (float)down;
    float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    float z = r * r;
    float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                 + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z
              + r + 1.0f;
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* s(x) and s'(x) of the gate, float. GELU: s = erfc(-x/sqrt2)/2 with erfc(z) ~ q(t) e^{-z^2},
 * t = 1/(1 + p z), q of degree 5 (Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 in erf, the
 * formula PyTorch's own vectorised float32 erf uses); e^{-z^2} = e^{-x^2/2} is also s'(x)
 * sqrt(2 pi), so one exp serves both. */
static LA_INLINE void gate_f(float x, int32_t gate, float alpha, float *s, float *ds) {
    if (gate == GATE_GELU) {
        float z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
        float t = 1.0f / (1.0f + 0.3275911f * z);
        float q = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
                  + t * (-1.453152027f + t * 1.061405429f))));
        float E = la_expf(-0.5f * x * x);
        float e = 0.5f * q * E;
        *s = x < 0.0f ? e : 1.0f - e;
        *ds = E * 0.39894228040143268f;
    } else if (gate == GATE_SILU) {
        float sg = 1.0f / (1.0f + la_expf(-x));
        *s = sg;
        *ds = sg * (1.0f - sg);
    } else if (gate == GATE_LEAKY_RELU) {
        *s = x > 0.0f ? 1.0f : alpha;
        *ds = 0.0f;
    } else {
        *s = 1.0f;
        *ds = 0.0f;
    }
}

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

/* The kernels, once per float type. The gate is dispatched outside the loop (one loop per
 * gate after inlining), so each loop body is straight-line code. */
#define LA_BIN(T, xv, k, off, top)                                                           \
    ({                                                                                       \
        T v_ = (off) + (k) * (xv);                                                           \
        v_ = v_ > (T)0 ? v_ : (T)0;                                                          \
        v_ = v_ < (T)(top) + (T)0.5 ? v_ : (T)(top) + (T)0.5;                                \
        int32_t r_ = (int32_t)v_;                                                            \
        r_ < (top) ? r_ : (top);                                                             \
    })

#define LA_DEFINE(SUF, T, GATE)                                                               \
    static LA_INLINE void fwd_seg_##SUF(const T *restrict x, T *restrict out, int64_t len,        \
                                     const T *restrict Dc, int32_t step, int32_t top, T k,     \
                                     T off, int32_t gate, T alpha) {                           \
        for (int64_t j = 0; j < len; ++j) {                                                   \
            T xv = x[j], s, ds;                                                               \
            int32_t r = LA_BIN(T, xv, k, off, top) + (int32_t)j * step;                       \
            GATE(xv, gate, alpha, &s, &ds);                                                   \
            out[j] = (xv + Dc[r]) * s;                                                        \
        }                                                                                     \
    }                                                                                         \
    static LA_INLINE void bwd_seg_##SUF(const T *restrict x, const T *restrict g,                 \
                                     T *restrict gx, int32_t *restrict ib, T *restrict wb,     \
                                     int64_t len, const T *restrict Dc, const T *restrict Sc, \
                                     int32_t step, int32_t top, int32_t spare, T k, T off,     \
                                     int32_t gate, T alpha) {                                  \
        for (int64_t j = 0; j < len; ++j) {                                                   \
            T xv = x[j], s, ds;                                                               \
            int32_t r = LA_BIN(T, xv, k, off, top) + (int32_t)j * step;                       \
            GATE(xv, gate, alpha, &s, &ds);                                                   \
            T w = g[j] * s;                                                                   \
            gx[j] = w * Sc[r] + g[j] * ds * (xv + Dc[r]);                                     \
            int32_t rb = r - (int32_t)j * step; /* the bin within the row */                  \
            ib[j] = (rb == 0) | (rb == top) ? spare + ((int32_t)j & (LA_SPARE - 1)) : r;     \
            wb[j] = w;                                                                        \
        }                                                                                     \
    }                                                                                         \
    void la_lut_fwd_##SUF(const T *x, T *out, int64_t start, int64_t end,           \
                                    const T *D, int64_t nb, int64_t C, int64_t R, T k, T off,  \
                                    int32_t gate, T alpha) {                                   \
        int32_t top = (int32_t)(nb - 1);                                                      \
        for (int64_t i = start; i < end;) {                                                   \
            int64_t c;                                                                        \
            int32_t step;                                                                     \
            int64_t len = segment(i, end, C, R, nb, &c, &step);                               \
            const T *Dc = D + c * nb;                                                         \
            if (gate == GATE_GELU)                                                            \
                fwd_seg_##SUF(x + i, out + i, len, Dc, step, top, k, off, GATE_GELU, alpha);  \
            else if (gate == GATE_SILU)                                                       \
                fwd_seg_##SUF(x + i, out + i, len, Dc, step, top, k, off, GATE_SILU, alpha);  \
            else if (gate == GATE_LEAKY_RELU)                                                 \
                fwd_seg_##SUF(x + i, out + i, len, Dc, step, top, k, off, GATE_LEAKY_RELU,    \
                              alpha);                                                         \
            else                                                                              \
                fwd_seg_##SUF(x + i, out + i, len, Dc, step, top, k, off, GATE_IDENTITY,      \
                              alpha);                                                         \
            i += len;                                                                         \
        }                                                                                     \
    }                                                                                         \
    void la_lut_bwd_##SUF(const T *x, const T *g, T *gx, double *hist,              \
                                    int64_t start, int64_t end, const T *D, const T *S,        \
                                    int64_t nb, int64_t C, int64_t R, T k, T off,              \
                                    int32_t gate, T alpha) {                                   \
        int32_t top = (int32_t)(nb - 1);                                                      \
        int32_t ib[LA_BLOCK];                                                                 \
        T wb[LA_BLOCK];                                                                       \
        for (int64_t i = start; i < end;) {                                                   \
            int64_t c;                                                                        \
            int32_t step;                                                                     \
            int64_t len = segment(i, end, C, R, nb, &c, &step);                               \
            if (len > LA_BLOCK) len = LA_BLOCK;                                               \
            const T *Dc = D + c * nb, *Sc = S + c * nb;                                       \
            int32_t spare = (int32_t)((C - c) * nb); /* the spare slots after all rows */       \
            if (gate == GATE_GELU)                                                            \
                bwd_seg_##SUF(x + i, g + i, gx + i, ib, wb, len, Dc, Sc, step, top, spare, k, off,   \
                              GATE_GELU, alpha);                                              \
            else if (gate == GATE_SILU)                                                       \
                bwd_seg_##SUF(x + i, g + i, gx + i, ib, wb, len, Dc, Sc, step, top, spare, k, off,   \
                              GATE_SILU, alpha);                                              \
            else if (gate == GATE_LEAKY_RELU)                                                 \
                bwd_seg_##SUF(x + i, g + i, gx + i, ib, wb, len, Dc, Sc, step, top, spare, k, off,   \
                              GATE_LEAKY_RELU, alpha);                                        \
            else                                                                              \
                bwd_seg_##SUF(x + i, g + i, gx + i, ib, wb, len, Dc, Sc, step, top, spare, k, off,   \
                              GATE_IDENTITY, alpha);                                          \
            if (hist) {                                                                       \
                double *h = hist + c * nb;                                                    \
                for (int64_t j = 0; j < len; ++j) h[ib[j]] += (double)wb[j];                  \
            }                                                                                 \
            i += len;                                                                         \
        }                                                                                     \
    }

LA_DEFINE(f32, float, gate_f)
LA_DEFINE(f64, double, gate_d)

/* ---------------------------------------------------------------------------------------
 * Exact mode: the closed-form CPAB flow per element (ops/cpab.py _trajectory and
 * _table_terms, the same formulas and selects), fused with DiTAC's window and gate.
 * Tables (ops/cpab.py _Tables): A, B (C 2N: the field and its mirror per channel), P (C 2
 * (N + 1): cumulative knot-to-knot times per row), stop (C 2N, int32). Work goes in blocks of
 * LA_BLOCK elements through three vectorised phases (up to the search target; the binary
 * search, one vector loop per step; the last cell, T and the gate), so no loop body holds an
 * inner loop. Backward adds per element into hist = [(dL/dA, dL/dB) pairs (C 2N x 2) |
 * time differences D (C 2 (N + 1))], LA_COPIES copies per thread; the caller adds them and
 * turns D into the crossing times' gradient by a cumulative sum.
 * float32: E, L, E', L' by polynomials and Kahan's log1p(z)/z = log(u)/(u - 1), u = 1 + z;
 * float64: libm with the PyTorch path's series thresholds. */

/* log(x) in float for normal x > 0: Cephes logf (mantissa in [sqrt(1/2), sqrt(2)), degree-8
 * polynomial, exponent added in two parts) */
static LA_INLINE float la_logf(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 126;
    bits = (bits & (int32_t)0x807fffff) | 0x3f000000;
    float m;
    memcpy(&m, &bits, sizeof m);
    int32_t lt = m < 0.70710678118654752f;
    e -= lt;
    m = lt ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = ((((((((7.0376836292e-2f * m - 1.1514610310e-1f) * m + 1.1676998740e-1f) * m
               - 1.2420140846e-1f) * m + 1.4249322787e-1f) * m - 1.6668057665e-1f) * m
               + 2.0000714765e-1f) * m - 2.4999993993e-1f) * m + 3.3333331174e-1f) * m * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
}

/* E(z) = expm1(z)/z, E'(z) = (e^z (z - 1) + 1)/z^2, L(z) = log1p(z)/z, L'(z) */
static LA_INLINE float E_f(float z) {
    float p = 1.0f + z * (1.0f / 2 + z * (1.0f / 6 + z * (1.0f / 24 + z * (1.0f / 120
              + z * (1.0f / 720 + z * (1.0f / 5040 + z * (1.0f / 40320 + z / 362880.0f)))))));
    float az = z < 0 ? -z : z;
    float zs = az < 0.5f ? 1.0f : z;
    float f = (la_expf(zs) - 1.0f) / zs;
    return az < 0.5f ? p : f;
}
static LA_INLINE float dE_f(float z) {
    float p = 1.0f / 2 + z * (1.0f / 3 + z * (1.0f / 8 + z * (1.0f / 30 + z * (1.0f / 144
              + z * (1.0f / 840 + z * (1.0f / 5760 + z * (1.0f / 45360 + z / 403200.0f)))))));
    float az = z < 0 ? -z : z;
    float zs = az < 0.5f ? 1.0f : z;
    float f = (la_expf(zs) * (zs - 1.0f) + 1.0f) / (zs * zs);
    return az < 0.5f ? p : f;
}
static LA_INLINE float L_f(float z) {
    float u = 1.0f + z;
    float d = u - 1.0f;
    float ds = d == 0.0f ? 1.0f : d;
    return d == 0.0f ? 1.0f : la_logf(u) / ds;
}
static LA_INLINE float dL_f(float z) {
    float p = -1.0f / 2 + z * (2.0f / 3 + z * (-3.0f / 4 + z * (4.0f / 5 + z * (-5.0f / 6
              + z * (6.0f / 7)))));
    float az = z < 0 ? -z : z;
    float zs = az < 0.05f ? 1.0f : z;
    float f = (zs / (1.0f + zs) - zs * L_f(zs)) / (zs * zs);
    return az < 0.05f ? p : f;
}
static LA_INLINE double E_d(double z) {
    return fabs(z) < 1e-4 ? 1.0 + z * (0.5 + z / 6.0) : expm1(z) / z;
}
static LA_INLINE double dE_d(double z) {
    return fabs(z) < 0.05 ? 1.0 / 2 + z * (1.0 / 3 + z * (1.0 / 8 + z * (1.0 / 30 + z * (1.0 / 144
                            + z / 840.0))))
                          : (exp(z) * (z - 1.0) + 1.0) / (z * z);
}
static LA_INLINE double L_d(double z) {
    return fabs(z) < 1e-4 ? 1.0 + z * (-0.5 + z / 3.0) : log1p(z) / z;
}
static LA_INLINE double dL_d(double z) {
    return fabs(z) < 0.05 ? -1.0 / 2 + z * (2.0 / 3 + z * (-3.0 / 4 + z * (4.0 / 5 + z * (-5.0 / 6
                            + z * (6.0 / 7)))))
                          : (z / (1.0 + z) - log1p(z)) / (z * z);
}

#define LA_FLOW_DEFINE(SUF, T, GATE, EF, DEF, LF, DLF, TINY, ZMAX, ZAMAX)                    \
    static LA_INLINE void flow_block_##SUF(                                                   \
        const T *restrict x, const T *restrict g, T *restrict out, double *restrict hist,     \
        int64_t len, int32_t c, int32_t cstep, const T *restrict A, const T *restrict B,      \
        const T *restrict P, const int32_t *restrict stop, int32_t n, int32_t nsteps, T t,    \
        T lo, T hi, int32_t gate, T alpha, int32_t bwd, int64_t hrow) {                        \
        T b_xf[LA_BLOCK], b_t1[LA_BLOCK], b_tg[LA_BLOCK], b_sv[LA_BLOCK], b_dl[LA_BLOCK];     \
        T b_ve[LA_BLOCK], b_z[LA_BLOCK], b_res[LA_BLOCK], b_pk[LA_BLOCK];                     \
        int32_t b_cl[LA_BLOCK], b_cell[LA_BLOCK], b_fl[LA_BLOCK], b_k1[LA_BLOCK];             \
        int32_t b_row[LA_BLOCK], b_lo[LA_BLOCK], b_hi[LA_BLOCK];                              \
        int32_t i_m[LA_BLOCK], i_0[LA_BLOCK], i_k[LA_BLOCK], i_g[LA_BLOCK];                    \
        T w_am[LA_BLOCK], w_bm[LA_BLOCK], w_a0[LA_BLOCK], w_b0[LA_BLOCK], w_h[LA_BLOCK];      \
        const T inv = (T)1 / (hi - lo), invn = (T)1 / (T)n, fn = (T)n;                        \
        const int32_t np1 = n + 1;                                                            \
        for (int64_t j = 0; j < len; ++j) { /* phase 1: first cell, exit time, target */    \
            T xv = x[j];                                                                      \
            int32_t ins = (xv >= lo) & (xv <= hi);                                            \
            T u = ins ? (xv - lo) * inv : (T)0;                                               \
            T fc = u * fn;                                                                    \
            fc = fc > (T)0 ? fc : (T)0;                                                       \
            int32_t c0 = (int32_t)fc;                                                         \
            c0 = c0 < n - 1 ? c0 : n - 1;                                                     \
            int32_t ch = c + (int32_t)j * cstep;                                              \
            int32_t base = ch * 2 * n;                                                        \
            T a0 = A[base + c0], b0 = B[base + c0];                                           \
            T v = a0 * u + b0;                                                                \
            int32_t left = v < (T)0;                                                          \
            T xf = left ? (T)1 - u : u;                                                       \
            int32_t cl = left ? n - 1 - c0 : c0;                                              \
            int32_t cell = base + cl + n * left;                                              \
            /* the mirror's cell n - 1 - c0: a' = a, b' = -(a + b) (functional/cpab.py) */    \
            T af = a0, bf = left ? -(a0 + b0) : b0;                                           \
            T vf = af * xf + bf;                                                              \
            T e = (T)(cl + 1) * invn;                                                         \
            T dl = e - xf;                                                                    \
            T ve = af * e + bf;                                                               \
            int32_t can = (vf > (T)TINY) & (cl < n - 1) & (ve > (T)0);                        \
            T sv = can ? vf : (T)1;                                                           \
            T z = can ? af * dl / sv : (T)0;                                                  \
            z = z < (T)ZMAX ? z : (T)ZMAX;                                                    \
            T t0 = can ? dl / sv * LF(z) : (T)INFINITY;                                       \
            int32_t cross = t0 < t;                                                           \
            int32_t row = ch * 2 + left;                                                      \
            int32_t k1 = cross ? cl + 1 : cl;                                                 \
            T t1 = cross ? t - t0 : t;                                                        \
            T pk = P[row * np1 + k1];                                                         \
            b_tg[j] = pk + t1;                                                                \
            b_pk[j] = pk;                                                                     \
            b_xf[j] = xf; b_t1[j] = t1; b_sv[j] = sv; b_dl[j] = dl; b_ve[j] = ve; b_z[j] = z;  \
            b_cl[j] = cl; b_cell[j] = cell; b_k1[j] = k1; b_row[j] = row;                      \
            b_fl[j] = left | (cross << 1) | (ins << 2);                                       \
            b_lo[j] = 0; b_hi[j] = n;                                                         \
        }                                                                                     \
        for (int32_t s = 0; s < nsteps; ++s) /* phase 2: last knot with P <= target */       \
            for (int64_t j = 0; j < len; ++j) {                                               \
                int32_t mid = (b_lo[j] + b_hi[j] + 1) >> 1;                                   \
                int32_t ok = P[b_row[j] * np1 + mid] <= b_tg[j];                              \
                b_lo[j] = ok ? mid : b_lo[j];                                                 \
                b_hi[j] = ok ? b_hi[j] : mid - 1;                                             \
            }                                                                                 \
        for (int64_t j = 0; j < len; ++j) { /* phase 3: last cell, T, gate */                \
            T xv = x[j];                                                                      \
            int32_t fl = b_fl[j];                                                             \
            int32_t left = fl & 1, cross = (fl >> 1) & 1, ins = fl >> 2;                      \
            int32_t row = b_row[j], k1 = b_k1[j];                                             \
            int32_t st = stop[row * n + k1];                                                  \
            int32_t cand = b_lo[j] < st ? b_lo[j] : st;                                       \
            int32_t m = cross ? cand : b_cl[j];                                               \
            int32_t gk = row * np1 + k1, gm = row * np1 + m;                                  \
            T tm = cross ? b_t1[j] - (P[gm] - b_pk[j]) : b_t1[j];                             \
            tm = tm > (T)0 ? tm : (T)0;                                                       \
            T xm = cross ? (T)m * invn : b_xf[j];                                             \
            int32_t cellm = (row >> 1) * 2 * n + m + n * left;                                \
            T am = A[cellm], bm = B[cellm];                                                   \
            T vm = am * xm + bm;                                                              \
            T za = tm * am;                                                                   \
            za = za < (T)ZAMAX ? za : (T)ZAMAX;                                               \
            T Em = EF(za);                                                                    \
            T w = tm * Em * vm;                                                               \
            T psi = xm + w;                                                                   \
            T Tv = left ? (T)1 - psi : psi;                                                   \
            T xt = ins ? lo + (hi - lo) * Tv : xv;                                            \
            T sg, dsg;                                                                        \
            GATE(xv, gate, alpha, &sg, &dsg);                                                 \
            if (!bwd) {                                                                       \
                b_res[j] = xt * sg;                                                           \
                continue;                                                                     \
            }                                                                                 \
            T psit = vm + am * w;                                                             \
            T dTdu = cross ? psit / b_sv[j] : (T)1 + za * Em;                                 \
            T gj = g[j], gxt = gj * sg;                                                       \
            b_res[j] = gxt * (ins ? dTdu : (T)1) + gj * xt * dsg;                             \
            T gT = ins ? gxt * (hi - lo) : (T)0;                                              \
            T gf = left ? -gT : gT;                                                           \
            T sv = b_sv[j], dl = b_dl[j];                                                     \
            T h = cross ? -gf * psit : (T)0;                                                  \
            T dtb = -dl / (sv * b_ve[j]);                                                     \
            T dta = (dl / sv) * (dl / sv) * DLF(b_z[j]) + b_xf[j] * dtb;                      \
            w_bm[j] = gf * tm * Em;                                                           \
            w_am[j] = gf * (tm * tm * DEF(za) * vm + xm * tm * Em);                           \
            w_a0[j] = cross ? h * dta : (T)0;                                                 \
            w_b0[j] = cross ? h * dtb : (T)0;                                                 \
            w_h[j] = h;                                                                       \
            i_m[j] = cellm; i_0[j] = b_cell[j]; i_k[j] = gk; i_g[j] = gm;                      \
        }                                                                                     \
        /* results go through a local buffer: stores through `out` inside the gather-heavy   \
           loop made GCC assume they may alias the tables ("bad data dependence", scalar) */  \
        for (int64_t j = 0; j < len; ++j) out[j] = b_res[j];                                  \
        if (bwd && hist) {                                                                    \
            /* LA_COPIES interleaved copies: with ~2N bins per channel, neighbours often hit  \
               the same bin, and adds to one address wait on each other */                    \
            int64_t hsize = 3 * hrow + hrow / n; /* 2 C 2N + C 2 (N + 1) */                   \
            for (int64_t j = 0; j < len; ++j) {                                               \
                double *hab = hist + (j & (LA_COPIES - 1)) * hsize, *hd = hab + 2 * hrow;     \
                double *pm = hab + 2 * i_m[j], *p0 = hab + 2 * i_0[j];                         \
                pm[0] += (double)w_am[j]; /* (dL/da, dL/db) pairs: one 16-byte add each */    \
                pm[1] += (double)w_bm[j];                                                     \
                p0[0] += (double)w_a0[j];                                                     \
                p0[1] += (double)w_b0[j];                                                     \
                hd[i_k[j]] += (double)w_h[j];                                                 \
                hd[i_g[j]] -= (double)w_h[j];                                                 \
            }                                                                                 \
        }                                                                                     \
    }                                                                                         \
    void la_flow_##SUF(const T *x, const T *g, T *out, double *hist, int64_t start,           \
                       int64_t end, const T *A, const T *B, const T *P, const int32_t *stop,   \
                       int64_t C, int64_t R, int32_t n, T t, T lo, T hi, int32_t gate,         \
                       T alpha) {                                                              \
        int32_t nsteps = 1;                                                                   \
        while ((1 << nsteps) < n + 1) ++nsteps;                                               \
        int64_t hrow = C * 2 * n; /* dL/dA and dL/dB rows; D is C 2 (n + 1) long */          \
        for (int64_t i = start; i < end;) {                                                   \
            int64_t c;                                                                        \
            int32_t cstep;                                                                    \
            int64_t len = segment(i, end, C, R, 1, &c, &cstep);                               \
            if (len > LA_BLOCK) len = LA_BLOCK;                                               \
            /* literal gate and direction: each call inlines to straight-line loop bodies */  \
            if (g) {                                                                          \
                if (gate == GATE_GELU) LA_FLOW_CALL_##SUF(GATE_GELU, 1);                      \
                else if (gate == GATE_SILU) LA_FLOW_CALL_##SUF(GATE_SILU, 1);                 \
                else if (gate == GATE_LEAKY_RELU) LA_FLOW_CALL_##SUF(GATE_LEAKY_RELU, 1);     \
                else LA_FLOW_CALL_##SUF(GATE_IDENTITY, 1);                                    \
            } else {                                                                          \
                if (gate == GATE_GELU) LA_FLOW_CALL_##SUF(GATE_GELU, 0);                      \
                else if (gate == GATE_SILU) LA_FLOW_CALL_##SUF(GATE_SILU, 0);                 \
                else if (gate == GATE_LEAKY_RELU) LA_FLOW_CALL_##SUF(GATE_LEAKY_RELU, 0);     \
                else LA_FLOW_CALL_##SUF(GATE_IDENTITY, 0);                                    \
            }                                                                                 \
            i += len;                                                                         \
        }                                                                                     \
    }                                                                                         \
    void la_flow_par_##SUF(const T *x, const T *g, T *out, double *hist, int64_t numel,       \
                           int64_t step, const T *A, const T *B, const T *P,                   \
                           const int32_t *stop, int64_t C, int64_t R, int32_t n, T t, T lo,    \
                           T hi, int32_t gate, T alpha) {                                      \
        int64_t parts = (numel + step - 1) / step;                                            \
        int64_t hsize = LA_COPIES * (C * 2 * n * 2 + C * 2 * (n + 1));                        \
        _Pragma("omp parallel for schedule(static) if (parts > 1)")                           \
        for (int64_t p = 0; p < parts; ++p) {                                                 \
            int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;                      \
            la_flow_##SUF(x, g, out, hist ? hist + p * hsize : hist, p * step, e, A, B, P,     \
                          stop, C, R, n, t, lo, hi, gate, alpha);                             \
        }                                                                                     \
    }

#define LA_FLOW_CALL_f32(G, BWD)                                                              \
    flow_block_f32(x + i, g ? g + i : g, out + i, hist, len, (int32_t)c, cstep, A, B, P, stop,  \
                   n, nsteps, t, lo, hi, G, alpha, BWD, hrow)
#define LA_FLOW_CALL_f64(G, BWD)                                                              \
    flow_block_f64(x + i, g ? g + i : g, out + i, hist, len, (int32_t)c, cstep, A, B, P, stop,  \
                   n, nsteps, t, lo, hi, G, alpha, BWD, hrow)

LA_FLOW_DEFINE(f32, float, gate_f, E_f, dE_f, L_f, dL_f, 1.17549435e-38f, 1e30f, 80.7f)
LA_FLOW_DEFINE(f64, double, gate_d, E_d, dE_d, L_d, dL_d, 2.2250738585072014e-308, 1e300,
               701.7)

/* Whole-tensor entry points: parts of `step` elements, one per OpenMP thread when built with
 * -fopenmp against the libgomp PyTorch already loaded (same soname, so the same runtime and
 * thread pool: a second pool would fight torch's spinning workers for the cores). Part p adds
 * into hist row p (rows of C nb + LA_SPARE). */
#define LA_DEFINE_PAR(SUF, T)                                                                 \
    void la_lut_fwd_par_##SUF(const T *x, T *out, int64_t numel, int64_t step, const T *D,    \
                              int64_t nb, int64_t C, int64_t R, T k, T off, int32_t gate,     \
                              T alpha) {                                                      \
        int64_t parts = (numel + step - 1) / step;                                            \
        _Pragma("omp parallel for schedule(static) if (parts > 1)")                           \
        for (int64_t p = 0; p < parts; ++p) {                                                 \
            int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;                      \
            la_lut_fwd_##SUF(x, out, p * step, e, D, nb, C, R, k, off, gate, alpha);          \
        }                                                                                     \
    }                                                                                         \
    void la_lut_bwd_par_##SUF(const T *x, const T *g, T *gx, double *hist, int64_t numel,     \
                              int64_t step, const T *D, const T *S, int64_t nb, int64_t C,    \
                              int64_t R, T k, T off, int32_t gate, T alpha) {                 \
        int64_t parts = (numel + step - 1) / step;                                            \
        _Pragma("omp parallel for schedule(static) if (parts > 1)")                           \
        for (int64_t p = 0; p < parts; ++p) {                                                 \
            int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;                      \
            la_lut_bwd_##SUF(x, g, gx, hist ? hist + p * (C * nb + LA_SPARE) : hist,          \
                             p * step, e, D, S, nb, C, R, k, off, gate, alpha);               \
        }                                                                                     \
    }

LA_DEFINE_PAR(f32, float)
LA_DEFINE_PAR(f64, double)

/* 1 if the entry points above run on OpenMP threads */
int la_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* the accumulator layout constants, for the caller's allocations */
int la_lut_spare(void) { return LA_SPARE; }
int la_flow_copies(void) { return LA_COPIES; }

/* ABI check for the loader: bump when a signature changes */
int la_lut_abi(void) { return 4; }
