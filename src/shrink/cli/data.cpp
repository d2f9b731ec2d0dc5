// shrink data [--data PATH] [preprocessing] [--model M] [--batch B] [--workers W]
//   [--epochs E]: what shrink reads from the data (kind, samples, classes, shape after
//   preprocessing) and how fast its loader delivers normalised batches.
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "shrink/cli/commands.h"
#include "shrink/cli/data_options.h"
#include "shrink/cli/validators.h"
#include "shrink/data/loader.h"
#include "shrink/io/npy.h"
#include "shrink/onnx/import.h"
#include "shrink/train/trainer.h"

namespace shrink::cli {

void add_data_command(CLI::App& app) {
  struct Options {
    std::string model, save_batch;
    int64_t batch = 64;
    int workers = 0, epochs = 1;
    bool train = false, augment = false, json = false;
    DataOptions data;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "data", "What shrink reads from --data (kind, samples, classes, shape) and its loader's throughput");
  opt->data.add_to(cmd);
  cmd->add_option("--model", opt->model, "ONNX model whose input size and preprocessing (metadata) the data is read for");
  cmd->add_flag("--train", opt->train, "the training split (default: the evaluation split)");
  cmd->add_flag("--augment", opt->augment, "random crop and horizontal flip, as training with --augment");
  cmd->add_option("--batch", opt->batch, "batch size")->check(positive())->capture_default_str();
  cmd->add_option("--workers", opt->workers, "loader threads (0: one per core for image files, one for in-memory data)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--epochs", opt->epochs, "passes over the data, timed")->check(positive())->capture_default_str();
  cmd->add_option("--save-batch", opt->save_batch,
                  "write the first batch, as the model receives it (normalised float), to this .npy file");
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->callback([opt] {
    Options& o = *opt;
    ir::Graph g;
    if (!o.model.empty()) g = onnx_io::import_model(o.model);
    o.data.apply_to(g);
    data::Dataset d = o.data.load(o.train, o.model.empty() ? nullptr : &g);
    data::LoaderOptions lo = train::loader_options_for(g, d);
    lo.batch_size = o.batch;
    lo.workers = o.workers;
    lo.shuffle = o.train;
    if (o.augment) lo.crop_padding = 4, lo.horizontal_flip = true;
    data::DataLoader loader(d, lo);
    int64_t images = 0;
    std::vector<int64_t> batch_shape;
    auto start = std::chrono::steady_clock::now();
    for (int e = 0; e < o.epochs; ++e) {
      loader.start_epoch(e);
      data::Batch b;
      while (loader.next(b)) {
        images += b.images.size(0);
        if (batch_shape.empty()) {
          batch_shape = b.images.sizes().vec();
          if (!o.save_batch.empty()) io::write_npy(o.save_batch, b.images);
        }
      }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string kind = o.data.dataset == "auto" ? data::detect_kind(o.data.dir.empty() ? data::default_data_dir() : o.data.dir)
                                                : o.data.dataset;
    nlohmann::json j = {{"dataset", d.name}, {"kind", kind}, {"samples", d.size()}, {"labeled", d.labeled()},
                        {"classes", d.classes}, {"class_names", d.class_names}, {"sample_shape", d.sample_shape()},
                        {"batch_shape", batch_shape}, {"raw_inputs", d.raw()}, {"workers", loader.workers()},
                        {"images", images}, {"seconds", seconds}, {"images_per_second", images / std::max(1e-9, seconds)},
                        {"mean", lo.normalization.mean}, {"std", lo.normalization.std}};
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s (%s): %lld samples, %s, each %s%s\n", d.name.c_str(), kind.c_str(), static_cast<long long>(d.size()),
                d.labeled() ? (std::to_string(d.classes) + " classes").c_str() : "no labels",
                c10::str(c10::IntArrayRef(d.sample_shape())).c_str(), d.raw() ? " (float inputs, used as they are)" : "");
    std::printf("loader: %lld images in %.2f s, %.0f images/s (%d threads, batches of %s)\n",
                static_cast<long long>(images), seconds, images / std::max(1e-9, seconds), loader.workers(),
                c10::str(c10::IntArrayRef(batch_shape)).c_str());
  });
}

}  // namespace shrink::cli
