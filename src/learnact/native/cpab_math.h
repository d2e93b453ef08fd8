/* DiTAC kernels: the float32 math (exp, log, gates, E, L and derivatives).
 *
 * A template included by cpab.c twice (scalar float; 16-lane GCC vectors on AVX-512): the
 * includer defines the parameters below, this file defines the functions (names get the
 * suffix LA_SUF) and #undefs the parameters. Real functions, not macro bodies: a debugger
 * steps through these lines.
 *
 * Parameters: LA_SUF (name suffix), LA_F (float type), LA_I (matching int32 type),
 *   LA_SELF(m, a, b) (select), LA_ABS(x) (|x|, the sign bit cleared: one AND for vectors,
 *   where a select took three instructions), LA_ONE_OF(m) (a comparison as 0/1),
 *   LA_AS_I/LA_AS_F (bit casts), LA_F2I/LA_I2F (conversions), LA_FLOOR (floor), LA_EXPF
 *   (exp used by the gates).
 */
#define LA_CAT_(a, b) a##b
#define LA_CAT(a, b) LA_CAT_(a, b)
#define LA_FN(name) LA_CAT(name, LA_SUF)

/* e^x = 2^n (1 + em): n = floor(x / ln2 + 1/2), em = e^r - 1 (returned, *np = n) */
static LA_INLINE LA_F LA_FN(la_exp_parts)(LA_F x, LA_I *np) {
    x = LA_SELF(x > -87.0f, x, -87.0f);
    x = LA_SELF(x < 88.0f, x, 88.0f);
    /* n = floor(x / ln2 + 1/2) by a floor instruction: written as a truncation and a
     * correction, GCC 12 left every loop calling this scalar ("control flow in loop") unless
     * built with -fno-tree-pre -fno-tree-sink (learnact._build.GCC_FLAGS) */
    LA_F fn = LA_FLOOR(x * 1.44269504088896341f + 0.5f);
    *np = LA_F2I(fn);
    LA_F r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    return (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
              + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f)
           * (r * r) + r;
}
static LA_INLINE LA_F LA_FN(la_expf)(LA_F x) {
    LA_I n;
    LA_F em = LA_FN(la_exp_parts)(x, &n);
    return (em + 1.0f) * LA_AS_F((n + 127) << 23);
}
static LA_INLINE LA_F LA_FN(la_logf)(LA_F x) {
    LA_I bits = LA_AS_I(x);
    LA_I e = ((bits >> 23) & 0xff) - 126;
    LA_F m = LA_AS_F((bits & (int32_t)0x807fffff) | 0x3f000000);
    LA_I lt = m < 0.70710678118654752f;
    e -= LA_ONE_OF(lt);
    m = LA_SELF(lt, m + m - 1.0f, m - 1.0f);
    LA_F z = m * m;
    LA_F y = ((((((((7.0376836292e-2f * m - 1.1514610310e-1f) * m + 1.1676998740e-1f) * m
               - 1.2420140846e-1f) * m + 1.4249322787e-1f) * m - 1.6668057665e-1f) * m
               + 2.0000714765e-1f) * m - 2.4999993993e-1f) * m + 3.3333331174e-1f) * m * z;
    LA_F fe = LA_I2F(e);
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
}
static LA_INLINE void LA_FN(gate_f)(LA_F x, int32_t gate, float alpha, LA_F *s, LA_F *ds) {
    if (gate == GATE_GELU) {
        LA_F z = LA_ABS(x) * 0.70710678118654752f;
        LA_F t = 1.0f / (1.0f + 0.3275911f * z);
        LA_F q = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f
              + t * (-1.453152027f + t * 1.061405429f))));
        LA_F E = LA_EXPF(-0.5f * x * x);
        LA_F e = 0.5f * q * E;
        *s = LA_SELF(x < 0.0f, e, 1.0f - e);
        *ds = E * 0.39894228040143268f;
    } else if (gate == GATE_SILU) {
        LA_F sg = 1.0f / (1.0f + LA_EXPF(-x));
        *s = sg;
        *ds = sg * (1.0f - sg);
    } else if (gate == GATE_LEAKY_RELU) {
        *s = LA_SELF(x > 0.0f, 1.0f, alpha);
        *ds = LA_SELF(x > 0.0f, 0.0f, 0.0f);
    } else {
        *s = LA_SELF(x > 0.0f, 1.0f, 1.0f);
        *ds = LA_SELF(x > 0.0f, 0.0f, 0.0f);
    }
}
static LA_INLINE LA_F LA_FN(E_f)(LA_F z) {
    LA_I n;
    LA_F em = LA_FN(la_exp_parts)(z, &n);
    LA_F sc = LA_AS_F((n + 127) << 23);
    LA_F m1 = sc * em + (sc - 1.0f);
    LA_I zero = z == 0.0f;
    LA_F f = m1 / LA_SELF(zero, 1.0f, z);
    return LA_SELF(zero, 1.0f, f);
}
static LA_INLINE LA_F LA_FN(dE_f)(LA_F z, LA_F E) { /* E = E(z): e^z = 1 + z E, no second exp */
    LA_F p = 1.0f / 2 + z * (1.0f / 3 + z * (1.0f / 8 + z * (1.0f / 30 + z * (1.0f / 144
          + z * (1.0f / 840 + z * (1.0f / 5760 + z * (1.0f / 45360 + z / 403200.0f)))))));
    LA_I small = LA_SELF(z < 0.0f, -z, z) < 0.5f;
    LA_F zs = LA_SELF(small, 1.0f, z);
    LA_F f = (E * (zs - 1.0f) + 1.0f) / zs;
    return LA_SELF(small, p, f);
}
static LA_INLINE LA_F LA_FN(L_f)(LA_F z) {
    LA_F u = 1.0f + z;
    LA_F d = u - 1.0f;
    LA_I zero = d == 0.0f;
    LA_F ds = LA_SELF(zero, 1.0f, d);
    LA_F f = LA_FN(la_logf)(u) / ds;
    return LA_SELF(zero, 1.0f, f);
}
static LA_INLINE LA_F LA_FN(dL_f)(LA_F z, LA_F L) { /* L = L(z): log1p(z) = z L, no second log */
    LA_F p = -1.0f / 2 + z * (2.0f / 3 + z * (-3.0f / 4 + z * (4.0f / 5 + z * (-5.0f / 6
          + z * (6.0f / 7)))));
    LA_I small = LA_SELF(z < 0.0f, -z, z) < 0.05f;
    LA_F zs = LA_SELF(small, 1.0f, z);
    LA_F u = 1.0f + zs;
    LA_F f = (1.0f - L * u) / (u * zs);
    return LA_SELF(small, p, f);
}

#undef LA_FN
#undef LA_CAT
#undef LA_CAT_
#undef LA_SUF
#undef LA_F
#undef LA_I
#undef LA_SELF
#undef LA_ABS
#undef LA_ONE_OF
#undef LA_AS_I
#undef LA_AS_F
#undef LA_F2I
#undef LA_I2F
#undef LA_FLOOR
#undef LA_EXPF
