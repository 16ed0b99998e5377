// The blobs embedded in every binary that uses them (generated headers from
// parasite/gen-blob, see the "blobs" block of the Makefile).
#include "common/blob/blob.h"

#include "parasite_blob.inc"
#include "restorer_blob.inc"

namespace cr {

const BlobDesc& parasite_blob() { return gen_blob::parasite::desc; }
const BlobDesc& restorer_blob() { return gen_blob::restorer::desc; }

}  // namespace cr
