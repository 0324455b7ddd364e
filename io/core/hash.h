/* FNV-1a 64: the one hash of the project (configs, vocabularies, parameter
 * replicas). Not cryptographic: it tells apart inputs that differ by
 * accident, which is all these checks need. */
#ifndef RD_IO_CORE_HASH_H
#define RD_IO_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RD_HASH_INIT 0xcbf29ce484222325ULL

/* h continued over the n bytes at p; start with RD_HASH_INIT. */
static inline uint64_t rd_hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

#endif
