// CRC-32C with the CPU's own instruction (SSE 4.2 `crc32` on x86-64).
//
// A C target because Swift cannot emit this instruction, and none of the allowed
// packages provides CRC-32C (swift-nio and swift-crypto have none; checked). The
// disk tier checksums every byte it writes and reads, and the instruction is 5 to
// 10 times faster than the table-driven software CRC in CRC32C.swift, which stays
// the fallback on CPUs without it (see edge_crc32c_hardware_available).
//
// The instruction takes 3 cycles but a new one can start every cycle, so one chain
// of crc32s runs at a third of what the CPU can do. Long inputs run three chains
// over three adjacent spans and join them: the CRC of a span followed by n more
// bytes is the CRC of the span "shifted" over n zero bytes, xor the CRC of the
// n bytes (linearity of CRCs), and the shift over a fixed n is a 32x32 bit matrix
// applied with four 256-entry tables. Mark Adler's method (crc32c.c, public domain,
// 2013); on the write path profiled in docs/performance.md the single chain was 20%
// of the store's CPU.

#include "CCRC32C.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

#define EDGE_CRC32C_POLY 0x82f63b78u
// Span lengths of the three chains: powers of two (the table builder needs them).
#define EDGE_CRC32C_LONG 4096
#define EDGE_CRC32C_SHORT 256

static uint32_t edge_crc32c_long[4][256];
static uint32_t edge_crc32c_short[4][256];

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec) {
  uint32_t sum = 0;
  while (vec) {
    if (vec & 1) sum ^= *mat;
    vec >>= 1;
    mat++;
  }
  return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat) {
  for (int n = 0; n < 32; n++) square[n] = gf2_matrix_times(mat, mat[n]);
}

// The operator that appends `len` zero bytes (len a power of two) to a CRC, in `even`.
static void edge_crc32c_zeros_op(uint32_t *even, size_t len) {
  uint32_t odd[32];
  odd[0] = EDGE_CRC32C_POLY;  // one zero bit
  uint32_t row = 1;
  for (int n = 1; n < 32; n++) {
    odd[n] = row;
    row <<= 1;
  }
  gf2_matrix_square(even, odd);  // two zero bits
  gf2_matrix_square(odd, even);  // four zero bits
  // The first square gives one zero byte in even, the next two in odd, and so on.
  do {
    gf2_matrix_square(even, odd);
    len >>= 1;
    if (len == 0) return;
    gf2_matrix_square(odd, even);
    len >>= 1;
  } while (len);
  for (int n = 0; n < 32; n++) even[n] = odd[n];
}

static void edge_crc32c_zeros(uint32_t zeros[][256], size_t len) {
  uint32_t op[32];
  edge_crc32c_zeros_op(op, len);
  for (uint32_t n = 0; n < 256; n++) {
    zeros[0][n] = gf2_matrix_times(op, n);
    zeros[1][n] = gf2_matrix_times(op, n << 8);
    zeros[2][n] = gf2_matrix_times(op, n << 16);
    zeros[3][n] = gf2_matrix_times(op, n << 24);
  }
}

static inline uint32_t edge_crc32c_shift(uint32_t zeros[][256], uint32_t crc) {
  return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^ zeros[3][crc >> 24];
}

int edge_crc32c_hardware_available(void) {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  if ((ecx & bit_SSE4_2) == 0) return 0;
  edge_crc32c_zeros(edge_crc32c_long, EDGE_CRC32C_LONG);
  edge_crc32c_zeros(edge_crc32c_short, EDGE_CRC32C_SHORT);
  return 1;
}

static inline uint64_t load64(const unsigned char *p) {
  uint64_t w;
  memcpy(&w, p, 8);
  return w;
}

__attribute__((target("sse4.2"))) uint32_t edge_crc32c_hardware(uint32_t crc, const void *bytes, size_t count) {
  const unsigned char *p = (const unsigned char *)bytes;
  uint64_t c0 = ~crc;
  while (count > 0 && ((uintptr_t)p & 7) != 0) {
    c0 = _mm_crc32_u8((uint32_t)c0, *p++);
    count--;
  }
  while (count >= 3 * EDGE_CRC32C_LONG) {
    uint64_t c1 = 0, c2 = 0;
    const unsigned char *end = p + EDGE_CRC32C_LONG;
    do {
      c0 = _mm_crc32_u64(c0, load64(p));
      c1 = _mm_crc32_u64(c1, load64(p + EDGE_CRC32C_LONG));
      c2 = _mm_crc32_u64(c2, load64(p + 2 * EDGE_CRC32C_LONG));
      p += 8;
    } while (p < end);
    c0 = edge_crc32c_shift(edge_crc32c_long, (uint32_t)c0) ^ c1;
    c0 = edge_crc32c_shift(edge_crc32c_long, (uint32_t)c0) ^ c2;
    p += 2 * EDGE_CRC32C_LONG;
    count -= 3 * EDGE_CRC32C_LONG;
  }
  while (count >= 3 * EDGE_CRC32C_SHORT) {
    uint64_t c1 = 0, c2 = 0;
    const unsigned char *end = p + EDGE_CRC32C_SHORT;
    do {
      c0 = _mm_crc32_u64(c0, load64(p));
      c1 = _mm_crc32_u64(c1, load64(p + EDGE_CRC32C_SHORT));
      c2 = _mm_crc32_u64(c2, load64(p + 2 * EDGE_CRC32C_SHORT));
      p += 8;
    } while (p < end);
    c0 = edge_crc32c_shift(edge_crc32c_short, (uint32_t)c0) ^ c1;
    c0 = edge_crc32c_shift(edge_crc32c_short, (uint32_t)c0) ^ c2;
    p += 2 * EDGE_CRC32C_SHORT;
    count -= 3 * EDGE_CRC32C_SHORT;
  }
  while (count >= 8) {
    c0 = _mm_crc32_u64(c0, load64(p));
    p += 8;
    count -= 8;
  }
  while (count > 0) {
    c0 = _mm_crc32_u8((uint32_t)c0, *p++);
    count--;
  }
  return ~(uint32_t)c0;
}

#else

int edge_crc32c_hardware_available(void) { return 0; }

uint32_t edge_crc32c_hardware(uint32_t crc, const void *bytes, size_t count) {
  (void)bytes;
  (void)count;
  return crc;
}

#endif
