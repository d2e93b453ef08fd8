/* DiTAC lookup-table mode, fused CPU kernels (see ops/cpab.py cpab_lut_op for the math).
 *
 * Forward, per element: r = bin(x), x~ = x + D[r], out = x~ s(x).
 * Backward: w = g s(x), gx = w S[r] + g s'(x) x~, and hist[r] += w (the table's gradient).
 * hist is C nb + 16 long: the outside bins' sums are not needed, and a third of normal inputs
 * fall there, so their adds go round-robin to 16 spare slots at the end instead (adds to one
 * slot in a row wait on each other: the GELU-gated backward measured 1.2x slower with them).
 *
 * One pass over memory each way, where eager PyTorch needs ~10 (index, gather, gate, product)
 * and inductor's CPU code reads the table with a scalar loop. Plain C with no PyTorch headers:
 * it builds in well under a second with the system compiler (ops/_native.py), and is called
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
            ib[j] = (rb == 0) | (rb == top) ? spare + ((int32_t)j & 15) : r;                   \
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
            int32_t spare = (int32_t)((C - c) * nb); /* the 16 spare slots after all rows */  \
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

/* Whole-tensor entry points: parts of `step` elements, one per OpenMP thread when built with
 * -fopenmp against the libgomp PyTorch already loaded (same soname, so the same runtime and
 * thread pool: a second pool would fight torch's spinning workers for the cores). Part p adds
 * into hist row p (rows of C nb + 16). */
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
            la_lut_bwd_##SUF(x, g, gx, hist ? hist + p * (C * nb + 16) : hist, p * step, e,   \
                             D, S, nb, C, R, k, off, gate, alpha);                            \
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

/* ABI check for the loader: bump when a signature changes */
int la_lut_abi(void) { return 2; }
