/* DiTAC's lookup tables from the cells' a, b in one call each way (float64; included once by
 * cpab.c after the typed kernels, whose float64 exact flow it runs on the grid points).
 *
 * Forward: ta, tb (C rows of N cells: v(x) = ta_j x + tb_j on cell j) -> the per-cell tables
 * of the flow (ops/cpab/common.py _Tables: the field and its mirror, crossing times, their
 * cumulative sums, the stop cells), T and dT/du on the n grid points u_i = i/(n - 1) by the
 * exact kernel (two passes: a third output of the kernel for T cost its per-channel float32
 * forward 15%), and the lookup op's padded rows (ops/cpab/lut.py _lut_tables):
 *   D = [0, (hi - lo)(T(u_i) - u_i), 0],  S = [1, T'(u_i), 1]        (C rows of n + 2).
 * Backward: dL/dD (C rows of n + 2; the outside bins ignored) -> dL/d(ta, tb): the exact
 * kernel's table sums on the grid with g = (hi - lo) dL/dD, the crossing times' gradient as
 * the cumulative sum of their per-knot differences, through each crossing time to its cell's
 * a and b (core/cpab.py _frames' dta, dtb), and from the mirror back to the field.
 * PyTorch needed ~60 small autograd operations for the same (flow_tables, _Tables, the grid
 * op, _lut_tables and their backward): ~1.4 ms per training step whatever the input's size.
 * Work in parts of whole channels (LA_GRID_CHANNELS each, on OpenMP threads where built):
 * each part adds only into its own channels' bins, so the sums do not depend on the threads. */
#define LA_GRID_CHANNELS 8

/* n doubles (malloc; valid C and C++: xla_native/cpab.cc builds this file as C++) */
static double *la_doubles(int64_t n) { return (double *)malloc(sizeof(double) * (size_t)n); }

typedef struct {
    double *A, *B, *P, *dta, *dtb; /* C 2N, C 2N, C 2 (N + 1), C 2N, C 2N */
    int32_t *stop;                 /* C 2N */
} la_frames;

static void la_frames_free(la_frames *f) {
    free(f->A), free(f->B), free(f->P), free(f->dta), free(f->dtb), free(f->stop);
}

/* the per-cell tables of C fields (t = 1), as core/cpab.py _frames: frame 0 the field, frame 1
 * its mirror v'(y) = -v(1 - y) (a'_j = a_{N-1-j}, b'_j = -(a_{N-1-j} + b_{N-1-j})); a cell is
 * crossed (tau > 0) where v > 0 at both its knots, its time is <= t and it is not the last */
static int la_frames_make(la_frames *f, const double *ta, const double *tb, int64_t C,
                          int32_t N, double t) {
    f->A = la_doubles(C * 2 * N), f->B = la_doubles(C * 2 * N);
    f->dta = la_doubles(C * 2 * N), f->dtb = la_doubles(C * 2 * N);
    f->P = la_doubles(C * 2 * (N + 1));
    f->stop = (int32_t *)malloc(sizeof(int32_t) * C * 2 * N);
    if (!f->A || !f->B || !f->dta || !f->dtb || !f->P || !f->stop) {
        la_frames_free(f);
        return 0;
    }
    const double fn = (double)N;
    for (int64_t r = 0; r < 2 * C; ++r) {
        const int64_t c = r / 2, fr = r % 2;
        double *A = f->A + c * 2 * N + fr * N, *B = f->B + c * 2 * N + fr * N;
        double *dta = f->dta + c * 2 * N + fr * N, *dtb = f->dtb + c * 2 * N + fr * N;
        double *P = f->P + r * (N + 1);
        int32_t *stop = f->stop + r * N;
        P[0] = 0.0;
        for (int32_t j = 0; j < N; ++j) {
            const int32_t src = fr ? N - 1 - j : j;
            const double a = ta[c * N + src], b0 = tb[c * N + src];
            const double b = fr ? -(a + b0) : b0;
            const double v0 = a * (j / fn) + b, v1 = a * ((j + 1) / fn) + b;
            int32_t ok = v0 > 0 && v1 > 0;
            const double s0 = ok ? v0 : 1.0, s1 = ok ? v1 : 1.0;
            const double z = ok ? a / (fn * s0) : 0.0, Lz = L_d(z);
            const double tau = Lz / (fn * s0);
            ok = ok && tau <= t && j < N - 1;
            A[j] = a, B[j] = b;
            P[j + 1] = P[j] + (ok ? tau : 0.0);
            dtb[j] = ok ? -(1.0 / fn) / (s0 * s1) : 0.0;
            dta[j] = (ok ? dL_d(z, Lz) / ((fn * s0) * (fn * s0)) : 0.0) + (j / fn) * dtb[j];
            stop[j] = ok ? N : j; /* cells that cannot be crossed, then the suffix minimum */
        }
        for (int32_t j = N - 2; j >= 0; --j)
            stop[j] = stop[j] < stop[j + 1] ? stop[j] : stop[j + 1];
    }
    return 1;
}

/* the exact flow (window [0, 1], identity gate) on C n grid points, in parts: T into out (g
 * NULL), or g dT/du into out and the table sums into hist (or NULL; C > 1: one histogram
 * of LA_COPIES copies, parts of whole channels, each adding only into its own channels' bins;
 * one shared table: parts of LA_GRID_POINTS points, each into its own copy of the small
 * histogram (hparts of hsize doubles), which the caller adds in part order). The parts depend
 * on the shape alone, so the sums do not depend on the threads. */
#define LA_GRID_POINTS 512
static int64_t la_grid_parts(int64_t C, int32_t n) {
    return C > 1 ? (C + LA_GRID_CHANNELS - 1) / LA_GRID_CHANNELS
                 : (n + LA_GRID_POINTS - 1) / LA_GRID_POINTS;
}
static void la_grid_flow(const double *u, const double *g, double *out, double *hist,
                         int64_t hsize, const la_frames *f, int64_t C, int32_t N, int32_t n) {
    const int64_t parts = la_grid_parts(C, n), per = C > 1 ? LA_GRID_CHANNELS * n
                                                             : LA_GRID_POINTS;
    #pragma omp parallel for schedule(static) if (parts > 1)
    for (int64_t p = 0; p < parts; ++p) {
        const int64_t e = (p + 1) * per < C * n ? (p + 1) * per : C * n;
        double *h = hist && C == 1 ? hist + p * hsize : hist;
        la_flow_f64(u, g, out, h, p * per, e, f->A, f->B, f->P, f->stop, C, n, N, 1.0, 0.0, 1.0,
                    GATE_IDENTITY, 0.0);
    }
}

static double *la_grid_points(int64_t C, int32_t n) {
    double *u = la_doubles(C * n);
    if (u)
        for (int64_t c = 0; c < C; ++c)
            for (int32_t i = 0; i < n; ++i) u[c * n + i] = (double)i / (double)(n - 1);
    return u;
}

/* D and S (C rows of n + 2) from ta, tb (C rows of N); 0 where memory ran out, else 1 */
int la_lut_grid(const double *ta, const double *tb, int64_t C, int32_t N, int32_t n, double lo,
                double hi, double *D, double *S) {
    la_frames f;
    if (!la_frames_make(&f, ta, tb, C, N, 1.0))
        return 0;
    double *u = la_grid_points(C, n), *T = la_doubles(C * n);
    double *one = la_doubles(C * n), *dT = la_doubles(C * n);
    int ok = u && T && one && dT;
    if (ok) {
        for (int64_t i = 0; i < C * n; ++i) one[i] = 1.0;
        la_grid_flow(u, NULL, T, NULL, 0, &f, C, N, n);  /* T */
        la_grid_flow(u, one, dT, NULL, 0, &f, C, N, n);  /* dT/du: the backward with g = 1 */
        for (int64_t c = 0; c < C; ++c) {
            double *Dr = D + c * (n + 2), *Sr = S + c * (n + 2);
            Dr[0] = Dr[n + 1] = 0.0, Sr[0] = Sr[n + 1] = 1.0;
            for (int32_t i = 0; i < n; ++i) {
                Dr[i + 1] = (hi - lo) * (T[c * n + i] - u[c * n + i]);
                Sr[i + 1] = dT[c * n + i];
            }
        }
    }
    free(u), free(T), free(one), free(dT);
    la_frames_free(&f);
    return ok;
}

/* dL/d(ta, tb) (C rows of N each) from dL/dD (C rows of n + 2); 0 where memory ran out */
int la_lut_grid_backward(const double *ta, const double *tb, const double *gD, int64_t C,
                         int32_t N, int32_t n, double lo, double hi, double *ga, double *gb) {
    la_frames f;
    if (!la_frames_make(&f, ta, tb, C, N, 1.0))
        return 0;
    const int64_t hab = C * 2 * N * 2, hd = C * 2 * (N + 1), hsize = hab + hd;
    const int64_t hparts = C > 1 ? 1 : la_grid_parts(C, n); /* histograms, LA_COPIES each */
    double *u = la_grid_points(C, n), *gT = la_doubles(C * n);
    double *scratch = la_doubles(C * n);
    double *hist = (double *)calloc((size_t)(hparts * LA_COPIES * hsize), sizeof(double));
    double *Ga = la_doubles(C * 2 * N), *Gb = la_doubles(C * 2 * N);
    double *K = la_doubles(hd);
    int ok = u && gT && scratch && hist && Ga && Gb && K;
    if (ok) {
        for (int64_t c = 0; c < C; ++c)
            for (int32_t i = 0; i < n; ++i) gT[c * n + i] = (hi - lo) * gD[c * (n + 2) + 1 + i];
        la_grid_flow(u, gT, scratch, hist, LA_COPIES * hsize, &f, C, N, n);
        /* the parts' copies, in order: (dL/da, dL/db) pairs per cell, per-knot differences */
        for (int64_t k = 0; k < C * 2 * N; ++k) {
            double sa = 0.0, sb = 0.0;
            for (int64_t q = 0; q < hparts * LA_COPIES; ++q)
                sa += hist[q * hsize + 2 * k], sb += hist[q * hsize + 2 * k + 1];
            Ga[k] = sa, Gb[k] = sb;
        }
        for (int64_t k = 0; k < hd; ++k) {
            double s = 0.0;
            for (int64_t q = 0; q < hparts * LA_COPIES; ++q) s += hist[q * hsize + hab + k];
            K[k] = s;
        }
        for (int64_t r = 0; r < 2 * C; ++r) {
            /* each cell's crossing time: the sum of the knot differences up to its own knot */
            const int64_t cell = (r / 2) * 2 * N + (r % 2) * N;
            double run = 0.0;
            for (int32_t j = 0; j < N; ++j) {
                run += K[r * (N + 1) + j];
                Ga[cell + j] += run * f.dta[cell + j];
                Gb[cell + j] += run * f.dtb[cell + j];
            }
        }
        for (int64_t c = 0; c < C; ++c) /* the mirror back to the field */
            for (int32_t j = 0; j < N; ++j) {
                const double gaL = Ga[c * 2 * N + N + (N - 1 - j)];
                const double gbL = Gb[c * 2 * N + N + (N - 1 - j)];
                ga[c * N + j] = Ga[c * 2 * N + j] + gaL - gbL;
                gb[c * N + j] = Gb[c * 2 * N + j] - gbL;
            }
    }
    free(u), free(gT), free(scratch), free(hist), free(Ga), free(Gb), free(K);
    la_frames_free(&f);
    return ok;
}
