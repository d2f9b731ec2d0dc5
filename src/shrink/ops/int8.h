// The int8 execution engine: LibTorch's quantized engine (oneDNN, else FBGEMM) behind
// the ai.shrink Int8* ops (ops/int8.cpp) that the lower_int8 pass introduces.
#pragma once

namespace shrink::ops {

// Whether LibTorch offers a quantized engine with int8 conv and linear kernels; selects
// it on first use.
bool int8_engine_available();

}  // namespace shrink::ops
