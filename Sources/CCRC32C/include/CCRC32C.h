#ifndef EDGE_CDN_CCRC32C_H
#define EDGE_CDN_CCRC32C_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC-32C instruction this library uses (x86-64 SSE 4.2), else 0.
/// Checked once with cpuid; callers fall back to their own software CRC on 0.
int edge_crc32c_hardware_available(void);

/// CRC-32C of `count` bytes with the hardware instruction, continuing from `crc` (the
/// value returned for the bytes before; 0 to start). Only call it when
/// edge_crc32c_hardware_available() returned 1.
uint32_t edge_crc32c_hardware(uint32_t crc, const void *bytes, size_t count);

#endif
