/* DiTAC kernels: the register-table exact kernel (float32, one shared table of at most
 * LA_VEC_CELLS cells) on AVX-512 (16 lanes) or AVX2 (8 lanes); elsewhere la_flow_vec_f32 is 0
 * and the generic loops of cpab_kernels.h run.
 *
 * Part of cpab.c (included once, after its vector math, helpers and histogram layout: la_vf,
 * la_vi, the LA_VSEL* selects, gate_f_v, E_f_v, L_f_v and their derivatives, la_vkeep_* on
 * AVX-512 or la_perm on AVX2, LA_BLOCK, LA_COPIES, la_vec_on); not a header of its own.
 */
/* ---------------------------------------------------------------------------------------
 * Exact mode, float32 with one shared table of at most LA_VEC_CELLS cells: the same formulas
 * per LA_VL lanes in GCC vector types, every table held in registers (a row of A, B, P or stop
 * is 16 numbers: one 16-lane vector, where a lookup of the right or the left row is one
 * two-table permute, vpermt2ps; two 8-lane vectors on AVX2, where it is four vpermps and three
 * blends; the loops above pay a memory gather each), the search for the last knot as a
 * branch-free count, and all three phases in one pass without the block buffers. Built where
 * GCC targets AVX-512 or AVX2 (elsewhere the generic loops run). */
#define LA_VEC_CELLS 15
#ifdef LA_VEC
#ifdef LA_V512
typedef la_vf la_vrow;  /* a row of 16 floats */
typedef la_vi la_vrowi; /* ... of 16 int32 */
/* lane i reads R[idx_i] (the right-moving row) or L[idx_i] (the left row, where left_i) */
#define LA_LUT2(R, L, idx, left) __builtin_shuffle((R), (L), (idx) | ((left) & 16))
#define LA_LUT2I LA_LUT2
#define LA_TAB(R, idx) __builtin_shuffle((R), (idx)) /* R[idx_i], the right-moving row */
#define LA_ROWK(R, k) ((R)[k])                      /* element k of a row */
#else
typedef struct {
    la_vf h[2];
} la_vrow; /* a row of 16 floats: elements 0-7, 8-15 */
typedef struct {
    la_vi h[2];
} la_vrowi;
/* R[idx_i], idx_i in 0..15: each half permuted by the index's low 3 bits, bit 3 chooses */
static LA_INLINE la_vf la_tab(const la_vrow *r, la_vi idx) {
    __m256 a = _mm256_permutevar8x32_ps((__m256)r->h[0], (__m256i)idx);
    __m256 b = _mm256_permutevar8x32_ps((__m256)r->h[1], (__m256i)idx);
    return (la_vf)_mm256_blendv_ps(a, b, (__m256)(idx << 28));
}
static LA_INLINE la_vi la_tabi(const la_vrowi *r, la_vi idx) {
    __m256i a = _mm256_permutevar8x32_epi32((__m256i)r->h[0], (__m256i)idx);
    __m256i b = _mm256_permutevar8x32_epi32((__m256i)r->h[1], (__m256i)idx);
    return (la_vi)_mm256_blendv_ps((__m256)a, (__m256)b, (__m256)(idx << 28));
}
static LA_INLINE la_vf la_lut2(const la_vrow *r, const la_vrow *l, la_vi idx, la_vi left) {
    return LA_VSELF(left, la_tab(l, idx), la_tab(r, idx));
}
static LA_INLINE la_vi la_lut2i(const la_vrowi *r, const la_vrowi *l, la_vi idx, la_vi left) {
    return LA_VSELI(left, la_tabi(l, idx), la_tabi(r, idx));
}
#define LA_LUT2(R, L, idx, left) la_lut2(&(R), &(L), (idx), (left))
#define LA_LUT2I(R, L, idx, left) la_lut2i(&(R), &(L), (idx), (left))
#define LA_TAB(R, idx) la_tab(&(R), (idx))
#define LA_ROWK(R, k) ((R).h[(k) >> 3][(k) & 7])
#endif

typedef struct {
    la_vrow Ar, Al, Br, Bl, Pr, Pl; /* rows of the field (a, b) and of the knot times P */
    la_vrowi Sr, Sl;                /* stop */
} la_vtab;

/* The flow of LA_VL lanes inside the window (flow_block_f32's formulas and selects): returns x~
 * and, with bwd, dx~/dx in *dxt and the histogram terms of the upstream gradients gs (=
 * dL/dx~): w[5] (dL/da_m, dL/db_m, dL/da_0, dL/db_0, h) at bins id[0..3], id[4] the crossing
 * lanes (the others' dL/da_0, dL/db_0 and h are exactly 0). */
static LA_INLINE la_vf flow_vec(la_vf xv, la_vf gs, const la_vtab *tb, int32_t n, float t,
                                float lo, float hi, int32_t bwd, la_vf *dxt, la_vf *w,
                                la_vi *id) {
    const float inv = 1.0f / (hi - lo), invn = 1.0f / (float)n, fn = (float)n;
    la_vf u = (xv - lo) * inv;
    la_vf fc = u * fn;
    fc = LA_VSELF(fc > 0.0f, fc, 0.0f);
    la_vi c0 = LA_VF2I(fc);
    c0 = LA_VSELI(c0 < n - 1, c0, n - 1);
    la_vf a0 = LA_TAB(tb->Ar, c0), b0 = LA_TAB(tb->Br, c0);
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
        pos -= LA_VSELF(left, LA_ROWK(tb->Pl, k), LA_ROWK(tb->Pr, k)) <= tg;
    la_vi st = LA_LUT2I(tb->Sr, tb->Sl, k1, left);
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

#ifdef LA_V512
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
#else
/* the first cnt lanes' terms, the crossing ones' second part too */
static LA_INLINE void flow_vec_keep(la_vhist *hb, const la_perm *pp, int32_t cnt,
                                    const la_vf *w, const la_vi *id) {
    const __m256i all = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    la_vkeep_pairs8(hb->pm + 2 * hb->nm, all, (__m256)w[0], (__m256)w[1]);
    memcpy(hb->i_m + hb->nm, &id[0], sizeof id[0]);
    hb->nm += cnt;
    const int kc = _mm256_movemask_ps((__m256)id[4]) & ((1 << cnt) - 1);
    const __m256i pk = la_perm_idx(pp->pack, kc);
    la_vkeep_pairs8(hb->p0 + 2 * hb->nc, pk, (__m256)w[2], (__m256)w[3]);
    la_vkeep8(hb->h + hb->nc, pk, (__m256)w[4]);
    la_vkeep8((float *)(hb->i_0 + hb->nc), pk, (__m256)id[1]);
    la_vkeep8((float *)(hb->i_k + hb->nc), pk, (__m256)id[2]);
    la_vkeep8((float *)(hb->i_g + hb->nc), pk, (__m256)id[3]);
    hb->nc += __builtin_popcount(kc);
}
#endif

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

#ifdef LA_V512
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
        la_vf t0 = flow_vec(x0, g0, tb, n, t, lo, hi, bwd, &e0, w0, d0);
        la_vf t1 = flow_vec(x1, g1, tb, n, t, lo, hi, bwd, &e1, w1, d1);
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
#else
/* One block in the same three passes on AVX2 (8 lanes): compress and expand by la_perm's
 * permutes, and a tail shorter than a vector on a zero-padded copy (no masked loads). */
static LA_INLINE void flow_vec_block(const float *restrict x, const float *restrict g,
                                     float *restrict out, double *restrict hist, int64_t len,
                                     const la_vtab *tb, const la_perm *pp, int32_t n, float t,
                                     float lo, float hi, int32_t gate, float alpha, int32_t bwd) {
    float s_[LA_BLOCK], ds_[LA_BLOCK], xb[LA_BLOCK], gb[LA_BLOCK], ob[LA_BLOCK];
    float xin[LA_BLOCK + 32], gin[LA_BLOCK + 32], tin[LA_BLOCK + 32], din[LA_BLOCK + 32];
    int kin[LA_BLOCK / 8];
    const int64_t lv = (len + LA_VL - 1) / LA_VL * LA_VL;
    const float *xp = x, *gp = g;
    float *op = out;
    if (lv != len) {
        memcpy(xb, x, len * sizeof *x);
        memset(xb + len, 0, (lv - len) * sizeof *x);
        xp = xb, op = ob;
        if (bwd) {
            memcpy(gb, g, len * sizeof *g);
            memset(gb + len, 0, (lv - len) * sizeof *g);
            gp = gb;
        }
    }
    int64_t nin = 0;
    for (int64_t j = 0; j < lv; j += LA_VL) { /* pass 1 */
        la_vf xv, gv = {0}, sg, dsg;
        memcpy(&xv, xp + j, sizeof xv);
        gate_f_v(xv, gate, alpha, &sg, &dsg);
        memcpy(s_ + j, &sg, sizeof sg);
        if (bwd) {
            memcpy(&gv, gp + j, sizeof gv);
            memcpy(ds_ + j, &dsg, sizeof dsg);
        }
        const __m256 inside = _mm256_and_ps(_mm256_cmp_ps((__m256)xv, _mm256_set1_ps(lo), _CMP_GE_OQ),
                                            _mm256_cmp_ps((__m256)xv, _mm256_set1_ps(hi), _CMP_LE_OQ));
        const int k = _mm256_movemask_ps(inside) & (len - j < 8 ? (1 << (len - j)) - 1 : 255);
        const __m256i pk = la_perm_idx(pp->pack, k);
        kin[j / 8] = k;
        la_vkeep8(xin + nin, pk, (__m256)xv);
        if (bwd)
            la_vkeep8(gin + nin, pk, (__m256)(gv * sg));
        nin += __builtin_popcount(k);
    }
    for (int64_t j = nin; j < nin + 2 * LA_VL; ++j) /* padding: a valid point, no gradient */
        xin[j] = lo, gin[j] = 0.0f;
    la_vhist hb;
    hb.nm = hb.nc = 0;
    int32_t keep = bwd && hist;
    for (int64_t j = 0; j < nin; j += 2 * LA_VL) { /* pass 2 */
        la_vf x0, x1, g0, g1, e0 = {0}, e1 = {0}, w0[5], w1[5];
        la_vi d0[5], d1[5];
        memcpy(&x0, xin + j, sizeof x0), memcpy(&x1, xin + j + LA_VL, sizeof x1);
        memcpy(&g0, gin + j, sizeof g0), memcpy(&g1, gin + j + LA_VL, sizeof g1);
        la_vf t0 = flow_vec(x0, g0, tb, n, t, lo, hi, bwd, &e0, w0, d0);
        la_vf t1 = flow_vec(x1, g1, tb, n, t, lo, hi, bwd, &e1, w1, d1);
        memcpy(tin + j, &t0, sizeof t0), memcpy(tin + j + LA_VL, &t1, sizeof t1);
        if (bwd)
            memcpy(din + j, &e0, sizeof e0), memcpy(din + j + LA_VL, &e1, sizeof e1);
        if (keep) {
            flow_vec_keep(&hb, pp, (int32_t)(nin - j < LA_VL ? nin - j : LA_VL), w0, d0);
            if (nin - j > LA_VL)
                flow_vec_keep(&hb, pp,
                              (int32_t)(nin - j - LA_VL < LA_VL ? nin - j - LA_VL : LA_VL), w1,
                              d1);
        }
    }
    for (int64_t j = nin; j < nin + LA_VL; ++j) /* pass 3 reads whole vectors from c <= nin */
        tin[j] = 0.0f, din[j] = 1.0f;
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    int64_t c = 0;
    for (int64_t j = 0; j < lv; j += LA_VL) { /* pass 3 */
        const int k = kin[j / 8];
        const __m256i ek = la_perm_idx(pp->expand, k);
        const __m256 in = (__m256)_mm256_cmpeq_epi32(_mm256_and_si256(bit, _mm256_set1_epi32(k)), bit);
        la_vf xv, sg, res;
        memcpy(&xv, xp + j, sizeof xv);
        memcpy(&sg, s_ + j, sizeof sg);
        la_vf xt = (la_vf)_mm256_blendv_ps((__m256)xv, _mm256_permutevar8x32_ps(_mm256_loadu_ps(tin + c), ek), in);
        if (bwd) {
            la_vf gv, dsg;
            memcpy(&gv, gp + j, sizeof gv);
            memcpy(&dsg, ds_ + j, sizeof dsg);
            la_vf dx = (la_vf)_mm256_blendv_ps(_mm256_set1_ps(1.0f),
                                               _mm256_permutevar8x32_ps(_mm256_loadu_ps(din + c), ek), in);
            res = gv * sg * dx + gv * xt * dsg;
        } else {
            res = xt * sg;
        }
        memcpy(op + j, &res, sizeof res);
        c += __builtin_popcount(k);
    }
    if (op != out)
        memcpy(out, ob, len * sizeof *out);
    if (keep)
        flow_vec_hist(hist, n, &hb);
}
#endif

#ifdef LA_V512
#define LA_VEC_CALL(G, BWD)                                                                   \
    flow_vec_block(x + i, g ? g + i : g, out + i, hist, len, &tb, n, t, lo, hi, G, alpha, BWD)
#else
#define LA_VEC_CALL(G, BWD)                                                                   \
    flow_vec_block(x + i, g ? g + i : g, out + i, hist, len, &tb, &la_perm_tab, n, t, lo, hi,  \
                   G, alpha, BWD)
#endif

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
