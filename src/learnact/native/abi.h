/* The one ABI number of learnact's native kernels (cpab.c and every family binding include
 * this file; learnact._build.abi reads it, and each loader compares it with the built
 * library's answer): bump it when a kernel's signature or table layout changes. */
#ifndef LA_ABI
#define LA_ABI 8
#endif
