#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "shrink/cli/commands.h"
#include "shrink/cli/validators.h"
#include "shrink/core/allocator.h"
#include "shrink/core/error.h"
#include "shrink/core/limits.h"
#include "shrink/core/parse.h"
#include "shrink/core/threads.h"
#include "shrink/passes/inference_passes.h"
#include "shrink/report/latency.h"
#include "shrink/core/version.h"
#include "shrink/dist/dist.h"

namespace {
// Thrown once `--nproc` workers have finished: main returns their status.
struct Launched {
  int status;
};
}  // namespace

int main(int argc, char** argv) {
  shrink::tune_allocator();
  CLI::App app{"shrink: make trained neural networks smaller and faster"};
  app.require_subcommand(1);
  app.failure_message(shrink::cli::one_line_failure);  // before the subcommands: they copy it
  app.set_version_flag("--version", std::string("shrink ") + shrink::version() + " (commit " +
                                         shrink::git_commit() + ")");
  int threads = 0;
  app.add_option("--threads", threads,
                 "intra-op threads, 0 to " + std::to_string(shrink::kMaxThreads) +
                     " (default 0: OMP_NUM_THREADS or all cores)")
      ->check(shrink::cli::count(0, shrink::kMaxThreads));
  int64_t max_tensor_bytes = 0;
  app.add_option("--max-tensor-bytes", max_tensor_bytes,
                 "largest tensor an input file may declare (default 4 GiB, or SHRINK_MAX_TENSOR_BYTES)")
      ->check(shrink::cli::count(1, std::numeric_limits<int64_t>::max()));
  int nproc = 0;
  double dist_timeout = 60;
  auto* threads_option = app.get_option("--threads");
  app.add_option("--nproc", nproc,
                 "data-parallel training in N worker processes on this machine (c10d/Gloo over loopback; threads per "
                 "worker = cores / N unless --threads); torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT are read "
                 "without it")
      ->check(shrink::cli::count(1, 256));
  app.add_option("--dist-timeout", dist_timeout,
                 "seconds a rank waits for the others (rendezvous, each collective) before it stops with an error")
      ->check(shrink::cli::positive())
      ->capture_default_str();
  bool sync_bn = false;
  app.add_flag("--sync-bn", sync_bn,
               "data-parallel: BatchNormalization takes its statistics over the global batch (PyTorch's "
               "SyncBatchNorm) instead of each rank's share");
  std::vector<std::string> dims;
  app.add_option("--dim", dims,
                 "NAME=SIZE: size of a named symbolic input dimension other than the batch (e.g. sequence=128) "
                 "wherever latency is measured (ONNX Runtime's free dimension override); repeatable")
      ->take_all();
  std::string backend;
  app.add_option("--backend", backend,
                 "inference kernels: onednn (convolutions with their activations and residual Adds fused, channels-last "
                 "activations; the default) or aten (one node at a time); default SHRINK_BACKEND or onednn")
      ->check(CLI::IsMember({"onednn", "aten"}));
  app.fallthrough();  // --threads, --nproc, ... also after the subcommand's name
  app.parse_complete_callback([&] {
    shrink::set_threads(threads);
    if (!backend.empty()) shrink::passes::set_inference_backend(backend);
    shrink::report::set_dim_sizes(shrink::cli::parse_dim_sizes(dims, "--dim"));
    if (max_tensor_bytes > 0) shrink::set_max_tensor_bytes(max_tensor_bytes);
    if (nproc > 1 && !std::getenv("RANK") && !std::getenv("WORLD_SIZE")) {
      std::vector<std::string> args;
      for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--nproc") {
          ++i;
          continue;
        }
        if (a.rfind("--nproc=", 0) == 0) continue;
        args.push_back(a);
      }
      throw Launched{shrink::dist::launch(nproc, args, threads_option->count() > 0)};
    }
    shrink::dist::init(std::chrono::milliseconds(static_cast<int64_t>(dist_timeout * 1000)));
    shrink::dist::set_sync_batch_norm(sync_bn);
    // One rank speaks for the job (torchrun starts every rank with the same stdout).
    if (shrink::dist::world().rank > 0 && !std::freopen("/dev/null", "w", stdout))
      throw shrink::Error("cannot silence rank " + std::to_string(shrink::dist::world().rank) + "'s output");
  });
  shrink::cli::add_run_command(app);
  shrink::cli::add_info_command(app);
  shrink::cli::add_convert_command(app);
  shrink::cli::add_bench_command(app);
  shrink::cli::add_train_command(app);
  shrink::cli::add_eval_command(app);
  shrink::cli::add_zoo_command(app);
  shrink::cli::add_prune_command(app);
  shrink::cli::add_sensitivity_command(app);
  shrink::cli::add_factorize_command(app);
  shrink::cli::add_quantize_command(app);
  shrink::cli::add_compress_command(app);
  shrink::cli::add_distill_command(app);
  shrink::cli::add_data_command(app);
  shrink::cli::require_finite_floats(app);
  // An unknown subcommand is named (CLI11 would only say one is required).
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" || a == "--max-tensor-bytes" || a == "--nproc" || a == "--dist-timeout" || a == "--dim" ||
        a == "--backend") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    if (app.get_subcommands([&](CLI::App* s) { return s->check_name(a); }).empty()) {
      std::cerr << "shrink: error: " << shrink::quoted_excerpt(a) << " is not a subcommand (see shrink --help)\n";
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Launched& l) {
    return l.status;
  } catch (const std::exception& e) {
    std::string what = e.what();
    std::cerr << "shrink: error: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  }
  return 0;
}
