// ContentDecoder on arbitrary content-encoding values and bodies: the
// decoding a hostile server controls completely (fuzz_connection reaches it
// too, but through HTTP/2 framing and HPACK, which costs it most inputs).
//
// Input (FuzzedDataProvider): a content-encoding value, then what
// decompress_harness.h describes (limits, pauses, body chunks) and checks.
#include "decompress_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  std::string encoding = fdp.ConsumeRandomLengthString(64);
  h2pool_fuzz::decode_fuzzed_body(fdp, encoding);
  return 0;
}
