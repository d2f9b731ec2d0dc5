#include "shrink/dist/dist.h"

#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "shrink/core/error.h"
#include "shrink/core/parse.h"

namespace shrink::dist {
namespace {

World g_world;
c10::intrusive_ptr<c10d::ProcessGroupGloo> g_group;
bool g_sync_bn = false;

// An environment variable as an integer in [lo, hi]; `fallback` when unset.
int env_int(const char* name, int lo, int hi, int fallback) {
  const char* v = std::getenv(name);
  return v ? static_cast<int>(parse_int(v, std::string("environment variable ") + name, lo, hi)) : fallback;
}

// A failed collective: c10d's message (Gloo's "Connection reset by peer", a timeout)
// on one line, naming this rank.
template <typename F>
void collective(const char* what, F&& f) {
  if (!g_group) return;
  try {
    f();
  } catch (const std::exception& e) {
    std::string m = e.what();
    m = m.substr(0, m.find('\n'));
    fail("distributed ", what, " failed on rank ", g_world.rank, " of ", g_world.size,
         " (a peer died, hung past --dist-timeout, or cannot be reached): ", m);
  }
}

void all_reduce_flat(const std::vector<at::Tensor>& tensors, bool mean) {
  if (!g_group || tensors.empty()) return;
  std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
  for (const at::Tensor& t : tensors)
    if (t.defined()) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<at::Tensor> flat_parts;
    for (const at::Tensor& t : group) flat_parts.push_back(t.reshape({-1}));
    std::vector<at::Tensor> flat = {at::cat(flat_parts)};
    collective("all-reduce", [&] { g_group->allreduce(flat)->wait(); });
    if (mean) flat[0].div_(g_world.size);
    int64_t offset = 0;
    for (const at::Tensor& t : group) {
      const int64_t n = t.numel();
      t.copy_(flat[0].narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }
}

}  // namespace

const World& world() { return g_world; }

void init(std::chrono::milliseconds timeout) {
  if (!std::getenv("WORLD_SIZE") && !std::getenv("RANK")) return;
  World w;
  w.size = env_int("WORLD_SIZE", 1, 1 << 20, 1);
  SHRINK_CHECK(w.size == 1 || std::getenv("RANK"), "environment variable RANK is not set (WORLD_SIZE is ", w.size,
               "): each process needs its rank");
  w.rank = env_int("RANK", 0, w.size - 1, 0);
  w.local_rank = env_int("LOCAL_RANK", 0, w.size - 1, w.rank);
  g_world = w;
  if (!w.active()) return;
  const char* addr = std::getenv("MASTER_ADDR");
  SHRINK_CHECK(addr && *addr, "environment variable MASTER_ADDR is not set (WORLD_SIZE is ", w.size,
               "): the address of rank 0's store");
  const int port = env_int("MASTER_PORT", 1, 65535, -1);
  SHRINK_CHECK(port > 0, "environment variable MASTER_PORT is not set (WORLD_SIZE is ", w.size, ")");
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    // Under torchrun the agent already serves the store at MASTER_ADDR:MASTER_PORT and
    // says so (as PyTorch's env:// rendezvous reads it); otherwise rank 0 serves it.
    const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    so.isServer = w.rank == 0 && !(agent_store && std::string(agent_store) == "True");
    so.numWorkers = w.size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const std::string host = addr;
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (host == "127.0.0.1" || host == "localhost" || host == "::1")
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface("lo"));
    else
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = 1;
    g_group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, w.rank, w.size, options);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string m = e.what();
    fail("distributed rendezvous at ", addr, ":", port, " failed on rank ", w.rank, " of ", w.size, ": ",
         m.substr(0, m.find('\n')));
  }
}

void broadcast(const std::vector<at::Tensor>& tensors, int root) {
  if (!g_group) return;
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) continue;
    std::vector<at::Tensor> one = {t.is_contiguous() ? t : t.contiguous()};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    collective("broadcast", [&] { g_group->broadcast(one, o)->wait(); });
    if (!t.is_contiguous()) t.copy_(one[0]);
  }
}

void average(const std::vector<at::Tensor>& tensors) { all_reduce_flat(tensors, true); }
void sum(const std::vector<at::Tensor>& tensors) { all_reduce_flat(tensors, false); }

void barrier() {
  collective("barrier", [&] { g_group->barrier()->wait(); });
}

namespace {

struct AllReduceSum : torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x) {
    at::Tensor y = x.detach().clone();
    sum({y});
    return y;
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext*, torch::autograd::tensor_list g) {
    at::Tensor d = g[0].detach().clone();
    sum({d});
    return {d};
  }
};

}  // namespace

at::Tensor all_reduce_sum(const at::Tensor& t) {
  if (!g_group) return t;
  return AllReduceSum::apply(t);
}

void set_sync_batch_norm(bool on) { g_sync_bn = on; }
bool sync_batch_norm() { return g_sync_bn && g_group; }

namespace {

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  SHRINK_CHECK(fd >= 0, "--nproc: cannot open a socket: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  SHRINK_CHECK(ok, "--nproc: cannot find a free loopback port: ", std::strerror(errno));
  return ntohs(a.sin_port);
}

}  // namespace

int launch(int nproc, const std::vector<std::string>& argv, bool threads_given, std::chrono::milliseconds grace) {
  SHRINK_CHECK(nproc >= 1, "--nproc must be at least 1");
  const int port = free_loopback_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, static_cast<int>(cores) / nproc);
  std::vector<pid_t> pids(nproc, -1);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto stop_all = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) ::kill(p, sig);
  };
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) {
      stop_all(SIGKILL);
      fail("--nproc: cannot start worker ", r, ": ", std::strerror(errno));
    }
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (!threads_given) ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      ::execv("/proc/self/exe", args.data());
      std::cerr << "shrink: error: --nproc: cannot run worker " << r << ": " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    pids[r] = pid;
  }
  // Ctrl-C goes to the whole foreground process group: the workers stop after the same
  // step and rank 0 checkpoints; the launcher waits for them instead of dying first.
  ::signal(SIGINT, SIG_IGN);
  int status_out = 0, alive = nproc;
  std::vector<bool> killed(nproc, false);
  std::chrono::steady_clock::time_point kill_at{};
  while (alive > 0) {
    int status = 0;
    // Blocking until a rank fails; then polling, so a hung rank is killed after `grace`.
    pid_t pid = ::waitpid(-1, &status, status_out ? WNOHANG : 0);
    if (pid == 0) {
      if (std::chrono::steady_clock::now() >= kill_at) {
        for (int i = 0; i < nproc; ++i)
          if (pids[i] > 0 && !killed[i]) {
            std::cerr << "shrink: error: rank " << i << " of " << nproc << " did not stop within "
                      << std::chrono::duration<double>(grace).count() << " s of SIGTERM (hung?): killing it\n";
            ::kill(pids[i], SIGKILL);
            killed[i] = true;
          }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int r = -1;
    for (int i = 0; i < nproc; ++i)
      if (pids[i] == pid) r = i;
    if (r < 0) continue;
    pids[r] = -1;
    --alive;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok || status_out != 0) continue;
    status_out = 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 130) {  // Ctrl-C: every rank stops after the same step
      status_out = 130;
      kill_at = std::chrono::steady_clock::now() + grace;
      continue;
    }
    if (WIFSIGNALED(status))
      std::cerr << "shrink: error: rank " << r << " of " << nproc << " was killed by signal " << WTERMSIG(status) << " ("
                << strsignal(WTERMSIG(status)) << "); stopping the other ranks\n";
    else
      std::cerr << "shrink: error: rank " << r << " of " << nproc << " exited with status " << WEXITSTATUS(status)
                << "; stopping the other ranks\n";
    // The others would stop by themselves once their next collective fails; a hung one
    // would not: SIGTERM now, SIGKILL after the grace period.
    stop_all(SIGTERM);
    kill_at = std::chrono::steady_clock::now() + grace;
  }
  return status_out;
}

}  // namespace shrink::dist
