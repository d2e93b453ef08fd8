/* DiTAC kernels: lookup-table mode, exact-mode flow, their threaded entry points.
 *
 * A template included by cpab.c once per float type (float32, float64): the includer
 * defines the parameters below, this file defines the functions (names get the suffix LA_SUF)
 * and #undefs the parameters. Real functions, not macro bodies: a debugger steps through
 * these lines.
 *
 * Parameters: LA_SUF (name suffix: _f32, _f64), LA_T (float type), LA_GATE (the
 *   gate and its slope), LA_EF/LA_DEF/LA_LF/LA_DLF (E, E', L, L'), LA_TINY (smallest normal),
 *   LA_ZMAX/LA_ZAMAX (clamps of z and t a), LA_FAST_FLOW/LA_FAST_LUT_FWD/LA_FAST_LUT_BWD
 *   (the AVX-512 paths: return 1 where they did the work, else 0).
 */
#define LA_CAT_(a, b) a##b
#define LA_CAT(a, b) LA_CAT_(a, b)
#define LA_FN(name) LA_CAT(name, LA_SUF)

/* the per-gate calls of LA_BY_GATE (literal gate: one straight-line loop per gate) */
#define LA_LUT_FWD_CALL(G, _) \
    LA_FN(fwd_seg)(x + i, out + i, len, Dc, step, top, k, off, G, alpha)
#define LA_LUT_BWD_CALL(G, _) \
    LA_FN(bwd_seg)(x + i, g + i, gx + i, ib, wb, len, Dc, Sc, step, top, spare, k, off, G, alpha)
#define LA_FLOW_CALL(G, BWD) \
    LA_FN(flow_block)(x + i, g ? g + i : g, out + i, hist, len, (int32_t)c, cstep, A, B, P, \
                      stop, n, nsteps, t, lo, hi, G, alpha, BWD, hrow)

/* ---- lookup-table mode ---- */

/* the table row's bin of x: v = off + k x, clamped to [0, top + 1/2], truncated, at most top
 * (NaN -> bin 0) */
static LA_INLINE int32_t LA_FN(lut_bin)(LA_T xv, LA_T k, LA_T off, int32_t top) {
    LA_T v = off + k * xv;
    v = v > (LA_T)0 ? v : (LA_T)0;
    v = v < (LA_T)(top) + (LA_T)0.5 ? v : (LA_T)(top) + (LA_T)0.5;
    int32_t r = (int32_t)v;
    return r < top ? r : top;
}

static LA_INLINE void LA_FN(fwd_seg)(const LA_T *restrict x, LA_T *restrict out, int64_t len,
                                 const LA_T *restrict Dc, int32_t step, int32_t top, LA_T k,
                                 LA_T off, int32_t gate, LA_T alpha) {
    if (LA_FAST_LUT_FWD(x, out, len, Dc, step, top, k, off, gate, alpha))
        return;
    for (int64_t j = 0; j < len; ++j) {
        LA_T xv = x[j], s, ds;
        int32_t r = LA_FN(lut_bin)(xv, k, off, top) + (int32_t)j * step;
        LA_GATE(xv, gate, alpha, &s, &ds);
        out[j] = (xv + Dc[r]) * s;
    }
}
static LA_INLINE void LA_FN(bwd_seg)(const LA_T *restrict x, const LA_T *restrict g,
                                 LA_T *restrict gx, int32_t *restrict ib, LA_T *restrict wb,
                                 int64_t len, const LA_T *restrict Dc, const LA_T *restrict Sc,
                                 int32_t step, int32_t top, int32_t spare, LA_T k, LA_T off,
                                 int32_t gate, LA_T alpha) {
    if (LA_FAST_LUT_BWD(x, g, gx, ib, wb, len, Dc, Sc, step, top, spare, k, off,
                              gate, alpha))
        return;
    for (int64_t j = 0; j < len; ++j) {
        LA_T xv = x[j], s, ds;
        int32_t r = LA_FN(lut_bin)(xv, k, off, top) + (int32_t)j * step;
        LA_GATE(xv, gate, alpha, &s, &ds);
        LA_T w = g[j] * s;
        gx[j] = w * Sc[r] + g[j] * ds * (xv + Dc[r]);
        int32_t rb = r - (int32_t)j * step; /* the bin within the row */
        ib[j] = (rb == 0) | (rb == top) ? spare + ((int32_t)j & (LA_SPARE - 1)) : r;
        wb[j] = w;
    }
}
void LA_FN(la_lut_fwd)(const LA_T *x, LA_T *out, int64_t start, int64_t end,
                                const LA_T *D, int64_t nb, int64_t C, int64_t R, LA_T k, LA_T off,
                                int32_t gate, LA_T alpha) {
    int32_t top = (int32_t)(nb - 1);
    for (int64_t i = start; i < end;) {
        int64_t c;
        int32_t step;
        int64_t len = segment(i, end, C, R, nb, &c, &step);
        const LA_T *Dc = D + c * nb;
        LA_BY_GATE(LA_LUT_FWD_CALL, 0);
        i += len;
    }
}
void LA_FN(la_lut_bwd)(const LA_T *x, const LA_T *g, LA_T *gx, double *hist,
                                int64_t start, int64_t end, const LA_T *D, const LA_T *S,
                                int64_t nb, int64_t C, int64_t R, LA_T k, LA_T off,
                                int32_t gate, LA_T alpha) {
    int32_t top = (int32_t)(nb - 1);
    int32_t ib[LA_BLOCK];
    LA_T wb[LA_BLOCK];
    const int64_t cs = la_lut_copy_stride(C * nb);
    const int copies = la_lut_copies(C * nb);
    for (int64_t i = start; i < end;) {
        int64_t c;
        int32_t step;
        int64_t len = segment(i, end, C, R, nb, &c, &step);
        if (len > LA_BLOCK) len = LA_BLOCK;
        const LA_T *Dc = D + c * nb, *Sc = S + c * nb;
        int32_t spare = (int32_t)((C - c) * nb); /* the spare slots after all rows */
        LA_BY_GATE(LA_LUT_BWD_CALL, 0);
        if (hist)
            LA_FN(lut_hist)(hist + c * nb, ib, wb, len, spare, cs, copies);
        i += len;
    }
    if (hist) /* the copies into the first, in order */
        for (int q = 1; q < copies; ++q)
            for (int64_t b = 0; b < C * nb; ++b) hist[b] += hist[q * cs + b];
}

/* ---- exact mode ---- */

/* The exact-mode backward's histogram adds for one block: per element, (dL/da, dL/db) of the
 * last cell (i_m) and of the first (i_0), and the crossing-time difference +h at knot i_k, -h at
 * knot i_g. LA_COPIES interleaved copies: with ~2N bins per channel, neighbours often hit the
 * same bin, and adds to one address wait on each other. */
static LA_INLINE void LA_FN(flow_hist)(
    double *restrict hist, int64_t hrow, int32_t n, int64_t len,
    const int32_t *restrict i_m, const int32_t *restrict i_0, const int32_t *restrict i_k,
    const int32_t *restrict i_g, const LA_T *restrict w_am, const LA_T *restrict w_bm,
    const LA_T *restrict w_a0, const LA_T *restrict w_b0, const LA_T *restrict w_h) {
    int64_t hsize = 3 * hrow + hrow / n; /* 2 C 2N + C 2 (N + 1) */
    for (int64_t j = 0; j < len; ++j) {
        double *hab = hist + (j & (LA_COPIES - 1)) * hsize, *hd = hab + 2 * hrow;
        double *pm = hab + 2 * i_m[j], *p0 = hab + 2 * i_0[j];
        pm[0] += (double)w_am[j]; /* (dL/da, dL/db) pairs: one 16-byte add each */
        pm[1] += (double)w_bm[j];
        p0[0] += (double)w_a0[j];
        p0[1] += (double)w_b0[j];
        hd[i_k[j]] += (double)w_h[j];
        hd[i_g[j]] -= (double)w_h[j];
    }
}

static LA_INLINE void LA_FN(flow_block)(
    const LA_T *restrict x, const LA_T *restrict g, LA_T *restrict out, double *restrict hist,
    int64_t len, int32_t c, int32_t cstep, const LA_T *restrict A, const LA_T *restrict B,
    const LA_T *restrict P, const int32_t *restrict stop, int32_t n, int32_t nsteps, LA_T t,
    LA_T lo, LA_T hi, int32_t gate, LA_T alpha, int32_t bwd, int64_t hrow) {
    LA_T b_xf[LA_BLOCK], b_t1[LA_BLOCK], b_tg[LA_BLOCK], b_sv[LA_BLOCK], b_q[LA_BLOCK];
    LA_T b_ve[LA_BLOCK], b_z[LA_BLOCK], b_L[LA_BLOCK], b_res[LA_BLOCK], b_pk[LA_BLOCK];
    int32_t b_cl[LA_BLOCK], b_cell[LA_BLOCK], b_fl[LA_BLOCK], b_k1[LA_BLOCK];
    int32_t b_row[LA_BLOCK], b_lo[LA_BLOCK], b_hi[LA_BLOCK];
    int32_t i_m[LA_BLOCK], i_0[LA_BLOCK], i_k[LA_BLOCK], i_g[LA_BLOCK];
    LA_T w_am[LA_BLOCK], w_bm[LA_BLOCK], w_a0[LA_BLOCK], w_b0[LA_BLOCK], w_h[LA_BLOCK];
    const LA_T inv = (LA_T)1 / (hi - lo), invn = (LA_T)1 / (LA_T)n, fn = (LA_T)n;
    const int32_t np1 = n + 1;
    for (int64_t j = 0; j < len; ++j) { /* phase 1: first cell, exit time, target */
        LA_T xv = x[j];
        int32_t ins = (xv >= lo) & (xv <= hi);
        LA_T u = ins ? (xv - lo) * inv : (LA_T)0;
        LA_T fc = u * fn;
        fc = fc > (LA_T)0 ? fc : (LA_T)0;
        int32_t c0 = (int32_t)fc;
        c0 = c0 < n - 1 ? c0 : n - 1;
        int32_t ch = c + (int32_t)j * cstep;
        int32_t base = ch * 2 * n;
        LA_T a0 = A[base + c0], b0 = B[base + c0];
        LA_T v = a0 * u + b0;
        int32_t left = v < (LA_T)0;
        LA_T xf = left ? (LA_T)1 - u : u;
        int32_t cl = left ? n - 1 - c0 : c0;
        int32_t cell = base + cl + n * left;
        /* the mirror's cell n - 1 - c0: a' = a, b' = -(a + b) (functional/cpab.py) */
        LA_T af = a0, bf = left ? -(a0 + b0) : b0;
        LA_T vf = af * xf + bf;
        LA_T e = (LA_T)(cl + 1) * invn;
        LA_T dl = e - xf;
        LA_T ve = af * e + bf;
        int32_t can = (vf > (LA_T)LA_TINY) & (cl < n - 1) & (ve > (LA_T)0);
        LA_T sv = can ? vf : (LA_T)1;
        LA_T q = dl / sv;
        LA_T z = can ? af * q : (LA_T)0;
        z = z < (LA_T)LA_ZMAX ? z : (LA_T)LA_ZMAX;
        LA_T Lz = LA_LF(z);
        LA_T t0 = can ? q * Lz : (LA_T)INFINITY;
        int32_t cross = t0 < t;
        int32_t row = ch * 2 + left;
        int32_t k1 = cross ? cl + 1 : cl;
        LA_T t1 = cross ? t - t0 : t;
        LA_T pk = P[row * np1 + k1];
        b_tg[j] = pk + t1;
        b_pk[j] = pk;
        b_xf[j] = xf; b_t1[j] = t1; b_sv[j] = sv; b_q[j] = q; b_ve[j] = ve; b_z[j] = z;
        b_L[j] = Lz;
        b_cl[j] = cl; b_cell[j] = cell; b_k1[j] = k1; b_row[j] = row;
        b_fl[j] = left | (cross << 1) | (ins << 2);
        b_lo[j] = 0; b_hi[j] = n;
    }
    for (int32_t s = 0; s < nsteps; ++s) /* phase 2: last knot with P <= target */
        for (int64_t j = 0; j < len; ++j) {
            int32_t mid = (b_lo[j] + b_hi[j] + 1) >> 1;
            int32_t ok = P[b_row[j] * np1 + mid] <= b_tg[j];
            b_lo[j] = ok ? mid : b_lo[j];
            b_hi[j] = ok ? b_hi[j] : mid - 1;
        }
    for (int64_t j = 0; j < len; ++j) { /* phase 3: last cell, LA_T, gate */
        LA_T xv = x[j];
        int32_t fl = b_fl[j];
        int32_t left = fl & 1, cross = (fl >> 1) & 1, ins = fl >> 2;
        int32_t row = b_row[j], k1 = b_k1[j];
        int32_t st = stop[row * n + k1];
        int32_t cand = b_lo[j] < st ? b_lo[j] : st;
        int32_t m = cross ? cand : b_cl[j];
        int32_t gk = row * np1 + k1, gm = row * np1 + m;
        LA_T tm = cross ? b_t1[j] - (P[gm] - b_pk[j]) : b_t1[j];
        tm = tm > (LA_T)0 ? tm : (LA_T)0;
        LA_T xm = cross ? (LA_T)m * invn : b_xf[j];
        int32_t cellm = (row >> 1) * 2 * n + m + n * left;
        LA_T am = A[cellm], bm = B[cellm];
        LA_T vm = am * xm + bm;
        LA_T za = tm * am;
        za = za < (LA_T)LA_ZAMAX ? za : (LA_T)LA_ZAMAX;
        LA_T Em = LA_EF(za);
        LA_T w = tm * Em * vm;
        LA_T psi = xm + w;
        LA_T Tv = left ? (LA_T)1 - psi : psi;
        LA_T xt = ins ? lo + (hi - lo) * Tv : xv;
        LA_T sg, dsg;
        LA_GATE(xv, gate, alpha, &sg, &dsg);
        if (!bwd) {
            b_res[j] = xt * sg;
            continue;
        }
        LA_T psit = vm + am * w;
        LA_T dTdu = cross ? psit / b_sv[j] : (LA_T)1 + za * Em;
        LA_T gj = g[j], gxt = gj * sg;
        b_res[j] = gxt * (ins ? dTdu : (LA_T)1) + gj * xt * dsg;
        LA_T gT = ins ? gxt * (hi - lo) : (LA_T)0;
        LA_T gf = left ? -gT : gT;
        LA_T q = b_q[j]; /* (e - x)/v(x) */
        LA_T h = cross ? -gf * psit : (LA_T)0;
        LA_T dtb = -q / b_ve[j];
        LA_T dta = q * q * LA_DLF(b_z[j], b_L[j]) + b_xf[j] * dtb;
        w_bm[j] = gf * tm * Em;
        w_am[j] = gf * (tm * tm * LA_DEF(za, Em) * vm + xm * tm * Em);
        w_a0[j] = cross ? h * dta : (LA_T)0;
        w_b0[j] = cross ? h * dtb : (LA_T)0;
        w_h[j] = h;
        i_m[j] = cellm; i_0[j] = b_cell[j]; i_k[j] = gk; i_g[j] = gm;
    }
    /* results go through a local buffer: stores through `out` inside the gather-heavy
       loop made GCC assume they may alias the tables ("bad data dependence", scalar) */
    for (int64_t j = 0; j < len; ++j) out[j] = b_res[j];
    if (bwd && hist)
        LA_FN(flow_hist)(hist, hrow, n, len, i_m, i_0, i_k, i_g, w_am, w_bm, w_a0, w_b0, w_h);
}
void LA_FN(la_flow)(const LA_T *x, const LA_T *g, LA_T *out, double *hist, int64_t start,
                   int64_t end, const LA_T *A, const LA_T *B, const LA_T *P, const int32_t *stop,
                   int64_t C, int64_t R, int32_t n, LA_T t, LA_T lo, LA_T hi, int32_t gate,
                   LA_T alpha) {
    if (LA_FAST_FLOW(x, g, out, hist, start, end, A, B, P, stop, C, n, t, lo, hi, gate, alpha))
        return;
    int32_t nsteps = 1;
    while ((1 << nsteps) < n + 1) ++nsteps;
    int64_t hrow = C * 2 * n; /* dL/dA and dL/dB rows; D is C 2 (n + 1) long */
    for (int64_t i = start; i < end;) {
        int64_t c;
        int32_t cstep;
        int64_t len = segment(i, end, C, R, 1, &c, &cstep);
        if (len > LA_BLOCK) len = LA_BLOCK;
        /* literal gate and direction: straight-line loop bodies */
        if (g)
            LA_BY_GATE(LA_FLOW_CALL, 1);
        else
            LA_BY_GATE(LA_FLOW_CALL, 0);
        i += len;
    }
}
void LA_FN(la_flow_par)(const LA_T *x, const LA_T *g, LA_T *out, double *hist, int64_t numel,
                       int64_t step, const LA_T *A, const LA_T *B, const LA_T *P,
                       const int32_t *stop, int64_t C, int64_t R, int32_t n, LA_T t, LA_T lo,
                       LA_T hi, int32_t gate, LA_T alpha) {
    int64_t parts = (numel + step - 1) / step;
    int64_t hsize = la_flow_stride(C, n);
    #pragma omp parallel for schedule(static) if (parts > 1)
    for (int64_t p = 0; p < parts; ++p) {
        int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;
        LA_FN(la_flow)(x, g, out, hist ? hist + p * hsize : hist, p * step, e, A, B, P,
                      stop, C, R, n, t, lo, hi, gate, alpha);
    }
}

/* Whole-tensor entry points: parts of `step` elements, one per OpenMP thread when built with
 * -fopenmp against the libgomp PyTorch already loaded (same soname, so the same runtime and
 * thread pool: a second pool would fight torch's spinning workers for the cores). Part p adds
 * into hist row p (rows la_lut_stride(C nb) apart). */
void LA_FN(la_lut_fwd_par)(const LA_T *x, LA_T *out, int64_t numel, int64_t step, const LA_T *D,
                          int64_t nb, int64_t C, int64_t R, LA_T k, LA_T off, int32_t gate,
                          LA_T alpha) {
    int64_t parts = (numel + step - 1) / step;
    #pragma omp parallel for schedule(static) if (parts > 1)
    for (int64_t p = 0; p < parts; ++p) {
        int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;
        LA_FN(la_lut_fwd)(x, out, p * step, e, D, nb, C, R, k, off, gate, alpha);
    }
}
void LA_FN(la_lut_bwd_par)(const LA_T *x, const LA_T *g, LA_T *gx, double *hist, int64_t numel,
                          int64_t step, const LA_T *D, const LA_T *S, int64_t nb, int64_t C,
                          int64_t R, LA_T k, LA_T off, int32_t gate, LA_T alpha) {
    int64_t parts = (numel + step - 1) / step;
    #pragma omp parallel for schedule(static) if (parts > 1)
    for (int64_t p = 0; p < parts; ++p) {
        int64_t e = (p + 1) * step < numel ? (p + 1) * step : numel;
        LA_FN(la_lut_bwd)(x, g, gx, hist ? hist + p * la_lut_stride(C * nb) : hist,
                         p * step, e, D, S, nb, C, R, k, off, gate, alpha);
    }
}

#undef LA_FN
#undef LA_CAT
#undef LA_CAT_
#undef LA_LUT_FWD_CALL
#undef LA_LUT_BWD_CALL
#undef LA_FLOW_CALL
#undef LA_SUF
#undef LA_T
#undef LA_GATE
#undef LA_EF
#undef LA_DEF
#undef LA_LF
#undef LA_DLF
#undef LA_TINY
#undef LA_ZMAX
#undef LA_ZAMAX
#undef LA_FAST_FLOW
#undef LA_FAST_LUT_FWD
#undef LA_FAST_LUT_BWD
