// libFuzzer target over the whole image reader (make fuzz): the input is an
// image set as `crtools dump -D -` streams it (a tar archive), read as
// `crtools restore -D -` reads it: the tar members, every image header, every
// record kind decoded against its schema and validated (pstree, core, mm,
// pagemap and its frames, files with each record kind, fdinfo), and every
// page frame read and decompressed. Whatever the bytes, the reader must
// return a result or an Error, never crash, hang, leak or read out of
// bounds (the fuzz build runs with ASan and UBSan). The build takes any
// checksum as good (common/crc32c.h checksum_matches) so that mutations
// reach the decoders.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "common/fd.h"
#include "common/image/image_set.h"
#include "common/image/task_images.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cr::UniqueFd in(memfd_create("image-fuzz", MFD_CLOEXEC));
  if (!in.valid()) return 0;
  if (!cr::write_full(in.get(), data, size) || lseek(in.get(), 0, SEEK_SET) != 0) return 0;
  auto set = cr::ImageSet::open_read("-", in.get());
  if (!set) return 0;
  auto imgs = cr::load_set_images(**set, true);
  (void)imgs;
  return 0;
}
