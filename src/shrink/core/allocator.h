// glibc's malloc hands large blocks (activations, gradients) back to the kernel when
// they are freed and maps fresh pages for the next run, so every forward pays page faults
// on every tensor: measured 5x on ResNet-20 at batch 64 (77 ms -> 15.5 ms). ONNX Runtime
// avoids this with its own arena. shrink keeps freed blocks in the heap instead: no block
// is mmapped (glibc's largest mmap threshold, 32 MiB, is below one MobileNetV2 activation
// at batch 256, which ran 10x slower: 3.9 s -> 0.34 s), and the heap is not trimmed below 2 GiB.
#pragma once

namespace shrink {

// Idempotent; a no-op outside glibc. The CLI calls it at start-up, every exec::Session
// on creation.
void tune_allocator();

}  // namespace shrink
