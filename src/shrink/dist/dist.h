// Data-parallel training on PyTorch's distributed package (c10d) with its Gloo backend,
// as Debian's LibTorch ships it: a TCPStore for the rendezvous and ProcessGroupGloo for
// the collectives. A process learns its place as PyTorch programs do, from torchrun's
// environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so torchrun and
// the schedulers that speak its protocol launch shrink unchanged; `launch` is shrink's
// own `--nproc N` launcher for one machine. c10d stays inside dist.cpp.
#pragma once
#include <ATen/core/Tensor.h>

#include <chrono>
#include <string>
#include <vector>

namespace shrink::dist {

struct World {
  int rank = 0, size = 1, local_rank = 0;
  bool active() const { return size > 1; }
};

// This process's place: from the environment once `init` has run, else rank 0 of 1.
const World& world();

// Reads torchrun's variables and, when WORLD_SIZE > 1, joins the group: rank 0 serves
// the TCPStore at MASTER_ADDR:MASTER_PORT, every rank waits for all the others there
// (at most `timeout`), then Gloo connects them (the interface in GLOO_SOCKET_IFNAME,
// else loopback for a local master, else the one this host's name resolves to). Every
// collective after that fails after `timeout` too (PyTorch's default is 30 minutes: a
// frozen peer would hold the others that long). A bad or partial environment is an
// error naming the variable.
void init(std::chrono::milliseconds timeout);

// Collectives over the group, in place; each is a no-op in a single process. A peer
// that died or stopped answering makes them throw a one-line Error naming this rank.
void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
// Each tensor becomes the mean of its values on all ranks (gradients: DDP's average),
// coalesced into one flat all-reduce per dtype.
void average(const std::vector<at::Tensor>& tensors);
void sum(const std::vector<at::Tensor>& tensors);
void barrier();

// The sum over the ranks of `t`, differentiable: its gradient is the sum over the ranks
// of the output's gradient (what synchronised BatchNorm's statistics need).
at::Tensor all_reduce_sum(const at::Tensor& t);

// `--sync-bn`: BatchNormalization in training takes its batch statistics over the
// global batch (PyTorch's SyncBatchNorm) instead of each rank's share (DDP's default).
void set_sync_batch_norm(bool on);
bool sync_batch_norm();

// `shrink --nproc N ...`: runs `argv` (the command line without --nproc) as N worker
// processes on this machine, rendezvous on a free loopback port, each with torchrun's
// variables and OMP_NUM_THREADS = cores / N unless `threads_given`. Returns 0 when all
// succeed; when one fails (an error, a signal such as SIGKILL) it names the rank on
// stderr, stops the others (SIGTERM; SIGKILL, naming it as hung, after `grace`) and
// returns 1; 130 when the ranks were interrupted (Ctrl-C) and stopped by themselves.
int launch(int nproc, const std::vector<std::string>& argv, bool threads_given,
           std::chrono::milliseconds grace = std::chrono::seconds(5));

}  // namespace shrink::dist
