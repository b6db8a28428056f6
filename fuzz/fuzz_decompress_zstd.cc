// ContentDecoder on zstd bodies alone: every input is a zstd stream (frames,
// skippable frames, windows up to the 8 MiB limit and past it), so no
// mutation is spent on spelling the coding (fuzz_decompress covers chains).
//
// Input (FuzzedDataProvider): what decompress_harness.h describes (limits,
// pauses, body chunks) and checks.
#include "decompress_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  h2pool_fuzz::decode_fuzzed_body(fdp, "zstd");
  return 0;
}
