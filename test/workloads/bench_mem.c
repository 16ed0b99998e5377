/* bench_mem: the workload of `make bench`.
 *
 *   bench_mem MIB
 *
 * Maps MIB MiB of private anonymous memory, fills it with pseudo-random
 * (incompressible) words from a fast generator, checksums it, then says
 * READY (on fd 3 if open, else stdout; test/workloads/ckpt_common.h) and
 * waits for SIGTERM. On SIGTERM it checksums the memory again and prints
 * PASS (exit 0) or FAIL with the first differing byte (exit 1).
 */
#include <inttypes.h>

#include "ckpt_common.h"

#define SEED 0x5eed5eed12345678ULL

/* xorshift64* state stepping: about 1 ns a word, so filling 1 GiB costs the
 * page faults more than the generator. */
static uint64_t next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dULL;
}

static void fill(uint64_t *w, size_t words) {
  uint64_t s = SEED;
  for (size_t i = 0; i < words; i++) w[i] = next(&s);
}

static long first_diff(const uint64_t *w, size_t words) {
  uint64_t s = SEED;
  for (size_t i = 0; i < words; i++)
    if (w[i] != next(&s)) return (long)(i * 8);
  return -1;
}

int main(int argc, char **argv) {
  ckpt_init(argc, argv);
  if (argc < 2) die("usage: bench_mem MIB");
  long mib = strtol(argv[1], NULL, 10);
  if (mib <= 0 || mib > (1L << 20)) die("bad size %s", argv[1]);
  size_t len = (size_t)mib << 20;
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap %ld MiB", mib);
  fill(mem, len / 8);
  const uint64_t sum = ckpt_hash(mem, len);

  ready("%ld MiB sum=%016" PRIx64, mib, sum);
  wait_for_term();

  if (ckpt_hash(mem, len) != sum) fail("checksum of %ld MiB changed (first difference at byte %ld)", mib, first_diff(mem, len / 8));
  verdict();
}
