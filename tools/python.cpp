// aware._aware: the Python package's extension (nanobind). Each function calls the library code that the
// command line calls, so Python and the CLI give the same numbers; tools/aware/__init__.py is the API
// (docstrings, conversions, progress bars) over it. numpy arrays come in without a copy (float32 or
// float64, C order, CPU: anything else is the wrapper's to convert or refuse), the GIL is released
// while C++ works, and aware::Error becomes aware.Error (a ValueError) with the CLI's message.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>
#include <omp.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kernels/error.h"
#include "kernels/scan.h"
#include "model/config.h"
#include "runtime/backend.h"
#include "tools/analysis.h"
#include "tools/jet_images.h"
#include "tools/lee.h"
#include "tools/pipeline.h"
#include "tools/score.h"

namespace nb = nanobind;
using namespace aware;

namespace {

template <class T, class... Extra>
using In = nb::ndarray<const T, nb::c_contig, nb::device::cpu, Extra...>;
using Floats = In<float, nb::ndim<1>>;

std::span<const float> span_of(const Floats& a) { return {a.data(), a.shape(0)}; }

// OpenMP's thread count when the module was imported (OMP_NUM_THREADS, else every core): threads=0's, as
// the command line's --threads 0 leaves OpenMP's default.
int default_threads = 1;

// A trained model ready to score (tools/score.h's load_scoring_model, as `aware score -m`).
class PyModel {
 public:
  PyModel(const std::string& path, int batch, const std::string& device, const std::string& conv,
          const std::string& precision, int threads)
      : threads_(threads > 0 ? threads : default_threads) {
    check(batch >= 0, "batch: 0 (the backend's choice) or a positive whole number of events, not " + std::to_string(batch));
    check(threads >= 0, "threads: 0 (all cores) or more, not " + std::to_string(threads));
    m_ = load_scoring_model(path, batch, device, {conv, precision});
  }
  std::vector<std::string> classes() const { return m_.checkpoint.classes; }
  std::vector<int64_t> event_shape() const { return m_.checkpoint.event_shape; }
  std::string backend() const { return m_.backend->name(); }
  int batch() const { return m_.model->max_batch(); }

  // Scores events (rows x event_shape, C order) into out (rows x classes): Model::predict, as
  // score_file calls it on each chunk. The caller passes the CLI's chunks for the same numbers.
  void score_into(const In<float>& events, nb::ndarray<float, nb::c_contig, nb::device::cpu> out) {
    const auto& shape = m_.checkpoint.event_shape;
    std::vector<int64_t> got(events.ndim());
    for (size_t d = 0; d < events.ndim(); ++d) got[d] = int64_t(events.shape(d));
    check(!got.empty() && std::vector<int64_t>(got.begin() + 1, got.end()) == shape,
          "score: events of shape " + shape_string(got) + ", the model takes events of shape (N, " +
              shape_string(shape).substr(1));
    const int64_t rows = got[0], classes = int64_t(m_.checkpoint.classes.size());
    check(out.ndim() == 2 && int64_t(out.shape(0)) == rows && int64_t(out.shape(1)) == classes,
          "score: the output must be (rows, classes)");
    if (rows == 0) return;
    const float* in = events.data();
    float* dst = out.data();
    nb::gil_scoped_release release;
    // predict() uses the model's own buffers: one call at a time (taken without the GIL, so a waiting
    // thread does not hold it). The threads are set here, on the thread that scores: OpenMP's setting
    // is per calling thread.
    std::lock_guard<std::mutex> one_at_a_time(mutex_);
    set_cpu_threads(threads_);
    const std::vector<float> p = m_.model->predict(in, rows);
    check(p.size() == size_t(rows) * size_t(classes), "score: predict returned " + std::to_string(p.size()) + " scores");
    std::memcpy(dst, p.data(), p.size() * sizeof(float));
  }

 private:
  ScoringModel m_;
  int threads_;       // OpenMP threads of this model's scoring
  std::mutex mutex_;  // one score_into at a time
};

template <class T>
nb::ndarray<nb::numpy, float> images(const In<T, nb::ndim<1>>& pt, const In<T, nb::ndim<1>>& eta,
                                     const In<T, nb::ndim<1>>& phi, const In<int64_t, nb::ndim<1>>& offsets,
                                     std::optional<In<T, nb::ndim<1>>> jet_eta,
                                     std::optional<In<T, nb::ndim<1>>> jet_phi, int pixels, double half_width,
                                     const std::string& centre, bool rotate, bool flip, bool normalise,
                                     std::optional<nb::ndarray<float, nb::c_contig, nb::device::cpu>> into) {
  JetImageOptions o;
  o.pixels = pixels, o.half_width = half_width, o.centre = centre_named(centre, "centre");
  o.rotate = rotate, o.flip = flip, o.normalise = normalise;
  check(jet_eta.has_value() == jet_phi.has_value(), "jet_images: give both jet_eta and jet_phi, or neither");
  const auto sp = [](const In<T, nb::ndim<1>>& a) { return std::span<const T>(a.data(), a.shape(0)); };
  Constituents<T> c{sp(pt), sp(eta), sp(phi), {offsets.data(), offsets.shape(0)}};
  if (jet_eta) c.jet_eta = sp(*jet_eta), c.jet_phi = sp(*jet_phi);
  // Before the output is allocated (jet_images checks it again, with everything else).
  check(pixels >= 1 && pixels <= 1024, "jet images: pixels must be 1 to 1024, not " + std::to_string(pixels));
  const size_t jets = size_t(c.jets());
  if (into) {  // the caller's array, reused chunk after chunk: no new memory to fault in
    check(into->ndim() == 3 && into->shape(0) == jets && into->shape(1) == size_t(pixels) && into->shape(2) == size_t(pixels),
          "jet_images: out must be a float32 C-contiguous array of shape (" + std::to_string(jets) + ", " +
              std::to_string(pixels) + ", " + std::to_string(pixels) + ")");
    float* data = into->data();
    {
      nb::gil_scoped_release release;
      jet_images(c, o, data);
    }
    return nb::ndarray<nb::numpy, float>(*into);  // the caller's own array object
  }
  // Not zeroed here: jet_images writes every pixel, and zeroing first would write the images twice.
  std::unique_ptr<float[]> out(new float[std::max<size_t>(1, jets * size_t(pixels) * size_t(pixels))]);
  {
    nb::gil_scoped_release release;
    jet_images(c, o, out.get());
  }
  float* data = out.release();
  nb::capsule free_it(data, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::ndarray<nb::numpy, float>(data, {jets, size_t(pixels), size_t(pixels)}, free_it);
}

// The scan's input and settings, as `aware scan` makes them from its files and options.
ScanInput scan_input(const Floats& anomaly, const std::vector<std::string>& names, const std::vector<Floats>& backgrounds,
                     const std::vector<double>& sigma_fb, const char* what) {
  check(names.size() == backgrounds.size() && names.size() == sigma_fb.size(),
        std::string(what) + ": one name and cross-section per background");
  ScanInput input{Sample{span_of(anomaly), {}}, {}};
  for (size_t i = 0; i < names.size(); ++i) input.background.push_back({names[i], Sample{span_of(backgrounds[i]), {}}, sigma_fb[i]});
  return input;
}

ScanSettings scan_settings(int bins, int64_t min_background, double min_width) {
  ScanSettings settings;
  settings.bins = bins, settings.min_background_events = min_background, settings.min_width = min_width;
  return settings;
}

// The window scan of `anomaly` against the backgrounds (aware scan): its report, as the JSON text the
// CLI writes to NAME_scan.json.
std::string scan(const Floats& anomaly, const std::vector<std::string>& names, const std::vector<Floats>& backgrounds,
                 const std::vector<double>& sigma_fb, int bins, int64_t min_background, double min_width,
                 const std::vector<double>& widths, const std::vector<double>& luminosities, const std::string& device) {
  const ScanInput input = scan_input(anomaly, names, backgrounds, sigma_fb, "scan");
  const ScanSettings settings = scan_settings(bins, min_background, min_width);
  nb::gil_scoped_release release;
  return scan_report(input, settings, widths, luminosities, device).dump();
}

// scan() plus the look-elsewhere effect's pseudo-experiments (aware scan --toys): NAME_lee.json's text.
std::string lee(const Floats& anomaly, const std::vector<std::string>& names, const std::vector<Floats>& backgrounds,
                const std::vector<double>& sigma_fb, int bins, int64_t min_background, double min_width, int64_t toys,
                int64_t injected_toys, double luminosity, uint64_t seed, const std::vector<double>& inject_fb,
                std::optional<std::vector<double>> window, const std::vector<int64_t>& observed, const std::string& device) {
  const ScanInput input = scan_input(anomaly, names, backgrounds, sigma_fb, "lee");
  const ScanSettings settings = scan_settings(bins, min_background, min_width);
  LeeSettings l;
  l.toys = toys, l.injected_toys = injected_toys, l.luminosity = luminosity, l.seed = seed, l.signals_fb = inject_fb;
  if (window) {
    check(window->size() == 2 && 0 <= (*window)[0] && (*window)[0] < (*window)[1] && (*window)[1] <= 1,
          "window: expected (lo, hi) with 0 <= lo < hi <= 1");
    l.window = std::array<double, 2>{(*window)[0], (*window)[1]};
  }
  l.observed = observed;
  l.device = device;
  nb::gil_scoped_release release;
  return lee_report(make_grid(input, settings.bins), settings, l).dump();
}

}  // namespace

NB_MODULE(_aware, m) {
  m.doc() = "aware's C++ library (the Python API is the package aware)";
  nb::exception<Error>(m, "Error", PyExc_ValueError);
  default_threads = omp_get_max_threads();

  nb::class_<PyModel>(m, "Model")
      .def(nb::init<const std::string&, int, const std::string&, const std::string&, const std::string&, int>(),
           nb::arg("path"), nb::arg("batch"), nb::arg("device"), nb::arg("conv"), nb::arg("precision"), nb::arg("threads"))
      .def_prop_ro("classes", &PyModel::classes)
      .def_prop_ro("event_shape", &PyModel::event_shape)
      .def_prop_ro("backend", &PyModel::backend)
      .def_prop_ro("batch", &PyModel::batch)
      .def("score_into", &PyModel::score_into, nb::arg("events").noconvert(), nb::arg("out").noconvert());

  m.def("jet_images", &images<double>, nb::arg("pt"), nb::arg("eta"), nb::arg("phi"), nb::arg("offsets"),
        nb::arg("jet_eta").none(), nb::arg("jet_phi").none(), nb::arg("pixels"), nb::arg("half_width"),
        nb::arg("centre"), nb::arg("rotate"), nb::arg("flip"), nb::arg("normalise"), nb::arg("out").none().noconvert());
  m.def("jet_images", &images<float>, nb::arg("pt"), nb::arg("eta"), nb::arg("phi"), nb::arg("offsets"),
        nb::arg("jet_eta").none(), nb::arg("jet_phi").none(), nb::arg("pixels"), nb::arg("half_width"),
        nb::arg("centre"), nb::arg("rotate"), nb::arg("flip"), nb::arg("normalise"), nb::arg("out").none().noconvert());

  m.def("scan", &scan);
  m.def("lee", &lee);
  m.def("roc", [](const Floats& pos, const Floats& neg, int max_points) {
    nb::gil_scoped_release release;
    return roc_report(span_of(pos), span_of(neg), max_points).dump();
  });

  // The pipeline and one stage, from a config's TOML text (a dict is written to TOML by the wrapper).
  m.def("run", [](const std::string& text, const std::string& name, const std::string& base,
                  const std::vector<std::string>& overrides, const std::string& out, bool resume, const std::string& prior,
                  bool progress) {
    const RunConfig cfg = config_to_run(text, name, base, overrides);
    set_cpu_threads(cfg.threads);
    RunOptions options;
    options.out = out, options.resume = resume, options.prior = prior, options.progress = progress;
    nb::gil_scoped_release release;
    return run_pipeline(cfg, options).dump();
  });
  m.def("train", [](const std::string& text, const std::string& name, const std::string& base,
                    const std::vector<std::string>& overrides, const std::string& stage, const std::string& out,
                    const std::string& init, bool resume, int epochs, bool progress) {
    const RunConfig cfg = config_to_run(text, name, base, overrides);
    set_cpu_threads(cfg.threads);
    nb::gil_scoped_release release;
    const auto logs = train_from_config(cfg, TrainOptions{stage, out, init, resume, epochs, progress});
    nlohmann::json j = nlohmann::json::array();
    for (const auto& l : logs)
      j.push_back({{"stage", l.stage}, {"epoch", l.epoch}, {"train_loss", l.train_loss},
                   {"train_accuracy", l.train_accuracy}, {"test_loss", l.test_loss}, {"test_accuracy", l.test_accuracy},
                   {"seconds", l.seconds}, {"images_per_s", l.images_per_s}});
    return j.dump();
  });
}
