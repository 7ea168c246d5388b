#include "model/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include "kernels/error.h"
#include "runtime/checkpoint.h"

namespace aware {
namespace {

// Reads the keys of one table, remembering which were read so that the rest can be reported.
class Section {
 public:
  Section(const toml::table* table, std::string name, std::string file)
      : table_(table), name_(std::move(name)), file_(std::move(file)) {}

  template <class T>
  void get(const char* key, T& out) {
    seen_.push_back(key);
    if (!table_) return;
    const toml::node* node = table_->get(key);
    if (!node) return;
    if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      const toml::array* a = node->as_array();
      check(a != nullptr, where(key) + " must be an array of strings");
      out.clear();
      for (auto&& v : *a) {
        check(v.is_string(), where(key) + " must be an array of strings");
        out.push_back(v.as_string()->get());
      }
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      const toml::array* a = node->as_array();
      check(a != nullptr, where(key) + " must be an array of numbers");
      out.clear();
      for (auto&& v : *a) {
        check(v.is_number() && std::isfinite(v.value_or(0.0)), where(key) + " must be an array of finite numbers");
        out.push_back(v.value_or(0.0));
      }
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
      check(node->is_string(), where(key) + " must be a string");
      out = node->as_string()->get();
    } else if constexpr (std::is_floating_point_v<T>) {
      check(node->is_number() && std::isfinite(node->value_or(0.0)), where(key) + " must be a finite number");
      out = T(node->value_or(0.0));
    } else {
      // TOML integers are 64-bit: each setting takes only what its type holds (no silent truncation).
      check(node->is_integer(), where(key) + " must be an integer");
      const int64_t v = node->as_integer()->get();
      check(std::in_range<T>(v), where(key) + " must be an integer from " +
                                     std::to_string(std::numeric_limits<T>::min()) + " to " +
                                     std::to_string(std::numeric_limits<T>::max()) + " (got " + std::to_string(v) + ")");
      out = T(v);
    }
  }

  void allow(const char* key) { seen_.push_back(key); }

  void finish() const {
    if (!table_) return;
    for (auto&& [key, value] : *table_)
      check(std::find(seen_.begin(), seen_.end(), key.str()) != seen_.end(),
            file_ + ": unknown key '" + std::string(key.str()) + "' in [" + name_ + "]");
  }
  std::string where(const char* key) const { return file_ + ": " + name_ + "." + key; }

 private:
  const toml::table* table_;
  std::string name_, file_;
  std::vector<std::string> seen_;
};

// Sets root[section][key] from "section.key=VALUE", VALUE parsed as TOML.
void apply_override(toml::table& root, const std::string& setting) {
  const size_t eq = setting.find('='), dot = setting.find('.');
  check(eq != std::string::npos && dot != std::string::npos && dot < eq,
        "--set " + setting + ": expected SECTION.KEY=VALUE, e.g. train.lambda=0.3");
  const std::string section = setting.substr(0, dot), key = setting.substr(dot + 1, eq - dot - 1);
  toml::table value;
  try {
    value = toml::parse("value = " + setting.substr(eq + 1));
  } catch (const toml::parse_error& e) {
    throw Error("--set " + setting + ": the value is not TOML (" + std::string(e.description()) +
                "); strings need quotes, e.g. data.unseen=[\"eft\"]");
  }
  if (!root.contains(section)) root.insert(section, toml::table{});
  toml::table* table = root[section].as_table();
  check(table != nullptr, "--set " + setting + ": [" + section + "] is not a table");
  table->insert_or_assign(key, *value.get("value"));
}

}  // namespace

// A class's events are DIR/CLASS.npy or DIR/CLASS.npy.gz: when neither is there (and DIR is), the error
// names the class and lists those DIR holds -- a misspelt class is then said to be one.
static void check_class_file(const std::filesystem::path& dir, const std::string& cls, const std::string& where) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  if (std::filesystem::exists(dir / (cls + ".npy"), ec) || std::filesystem::exists(dir / (cls + ".npy.gz"), ec)) return;
  std::set<std::string> held;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string f = e.path().filename().string();
    for (const char* ext : {".npy.gz", ".npy"})
      if (f.size() > std::strlen(ext) && f.ends_with(ext)) {
        held.insert(f.substr(0, f.size() - std::strlen(ext)));
        break;
      }
  }
  std::string list;
  for (const auto& h : held) list += (list.empty() ? "" : ", ") + h;
  throw Error(where + ": no class '" + cls + "' in " + dir.string() + " (no " + cls + ".npy or " + cls +
              ".npy.gz; it holds " + (list.empty() ? "no classes" : list) + ")");
}

RunConfig parse_config(const std::string& text, const std::string& name,
                       const std::filesystem::path& base, const std::vector<std::string>& overrides) {
  toml::table root;
  try {
    root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    throw Error(msg.str());
  }
  RunConfig cfg;
  cfg.text = text;
  if (!overrides.empty()) {
    std::ostringstream merged;
    merged << "# " << name << " with";
    for (const auto& o : overrides) {
      apply_override(root, o);
      merged << " --set " << o;
    }
    merged << "\n" << root << "\n";
    cfg.text = merged.str();
  }
  for (auto&& [key, value] : root) {
    const std::string k(key.str());
    check(k == "run" || k == "data" || k == "network" || k == "train" || k == "scan",
          name + ": unknown section [" + k + "] (run, data, network, train, scan)");
    check(value.is_table(), name + ": [" + k + "] must be a table");
  }
  Section run(root["run"].as_table(), "run", name);
  run.get("seed", cfg.seed);
  run.get("device", cfg.device);
  run.get("conv", cfg.conv);
  run.get("precision", cfg.precision);
  run.get("threads", cfg.threads);
  run.finish();
  check(cfg.device == "cpu" || cfg.device == "cuda" || cfg.device == "auto",
        run.where("device") + " must be cpu, cuda or auto (got '" + cfg.device + "')");
  check(cfg.conv == "fused" || cfg.conv == "direct" || cfg.conv == "cudnn",
        run.where("conv") + " must be fused, direct or cudnn (got '" + cfg.conv + "')");
  check(cfg.precision == "fp32" || cfg.precision == "tf32" || cfg.precision == "bf16",
        run.where("precision") + " must be fp32, tf32 or bf16 (got '" + cfg.precision + "')");
  check(cfg.threads >= 0 && cfg.threads <= kMaxThreads,
        run.where("threads") + " must be 0 (all cores) to " + std::to_string(kMaxThreads));

  Section data(root["data"].as_table(), "data", name);
  DataConfig& d = cfg.data;
  data.get("dir", d.dir);
  data.get("normal", d.normal);
  data.get("aware", d.aware);
  data.get("unseen", d.unseen);
  data.get("n_test", d.n_test);
  data.get("n_train", d.n_train);
  data.get("n_aware", d.n_aware);
  data.get("normalisation", d.normalisation);
  data.get("scale", d.scale);
  data.finish();
  check(!d.dir.empty(), data.where("dir") + " is required: the directory of the class files");
  if (d.dir.is_relative()) d.dir = base / d.dir;
  check(d.normal.size() >= 2 && d.normal.size() <= 3,
        data.where("normal") + " takes two or three classes (got " + std::to_string(d.normal.size()) + ")");
  {  // a class is normal, aware or unseen: one of them, once
    std::vector<std::string> all(d.normal);
    all.insert(all.end(), d.aware.begin(), d.aware.end());
    all.insert(all.end(), d.unseen.begin(), d.unseen.end());
    for (size_t i = 0; i < all.size(); ++i)
      check(std::find(all.begin(), all.begin() + i, all[i]) == all.begin() + i,
            name + ": class '" + all[i] + "' stands twice in data.normal, data.aware and data.unseen");
  }
  check(d.n_test > 0 && d.n_train > 0, name + ": [data] n_test and n_train must be positive");
  check(d.n_aware >= 0, data.where("n_aware") + " must be >= 0 (0: balanced with the normal classes)");
  check(d.scale > 0, data.where("scale") + " must be positive");
  check(std::find(kNormalisations.begin(), kNormalisations.end(), d.normalisation) != kNormalisations.end(),
        data.where("normalisation") + ": '" + d.normalisation +
            "' is not one of sum-std, sum, none, scale, standardise");

  if (const toml::table* net = root["network"].as_table()) {
    for (auto&& [key, value] : *net) {
      const std::string k(key.str());
      check(k == "layers" || k == "preset", name + ": unknown key '" + k + "' in [network]");
    }
    check(!(*net)["preset"] || (*net)["preset"].is_string(), name + ": network.preset must be a string");
    check(!((*net)["preset"] && (*net)["layers"]), name + ": [network] takes preset or layers, not both");
    if (auto preset = (*net)["preset"].value<std::string>()) {
      check(*preset == "paper-cnn" || *preset == "paper-mlp",
            name + ": network.preset must be paper-cnn or paper-mlp");
      cfg.network = *preset == "paper-cnn" ? paper_cnn() : paper_mlp();
    }
    if (const toml::array* layers = (*net)["layers"].as_array())
      cfg.network = parse_network(*layers, name);
  }

  Section train(root["train"].as_table(), "train", name);
  TrainConfig& t = cfg.train;
  train.get("epochs", t.epochs);
  train.get("aa_epochs", t.aa_epochs);
  train.get("batch", t.batch);
  train.get("lr", t.lr);
  train.get("momentum", t.momentum);
  train.get("weight_decay", t.weight_decay);
  train.get("lambda", t.lambda);
  train.get("ratio", t.ratio);
  train.finish();
  check(t.epochs >= 0 && t.aa_epochs >= 0, name + ": [train] epochs must be >= 0");
  check(t.batch > 0, train.where("batch") + " must be positive");
  check(t.lr > 0, train.where("lr") + " must be positive");
  check(t.ratio > 0 && t.lambda >= 0, name + ": [train] ratio must be > 0 and lambda >= 0");
  check(t.momentum >= 0 && t.momentum < 1, train.where("momentum") + " must be in [0, 1)");
  check(t.weight_decay >= 0, train.where("weight_decay") + " must be >= 0");

  const toml::table* scan_table = root["scan"].as_table();
  Section scan(scan_table, "scan", name);
  ScanConfig& s = cfg.scan;
  scan.get("bins", s.settings.bins);
  scan.get("bins_2d", s.settings.bins_2d);
  scan.get("min_background_events", s.settings.min_background_events);
  scan.get("min_width", s.settings.min_width);
  scan.get("widths", s.widths);
  scan.get("luminosities", s.luminosities);
  scan.get("toys", s.toys);
  scan.get("injected_toys", s.injected_toys);
  scan.get("toys_luminosity", s.toys_luminosity);
  scan.get("inject_fb", s.inject_fb);
  scan.get("fixed_window", s.fixed_window);
  scan.allow("sigma_fb");  // a table, read below
  scan.finish();
  if (const toml::table* sigma = scan_table ? (*scan_table)["sigma_fb"].as_table() : nullptr)
    for (auto&& [key, value] : *sigma) {
      check(value.is_number() && value.value_or(0.0) > 0.0,
            name + ": scan.sigma_fb." + std::string(key.str()) + " must be a positive number");
      s.sigma_fb[std::string(key.str())] = value.value_or(0.0);
    }
  check(s.settings.bins >= 2 && s.settings.bins_2d >= 2, scan.where("bins") + " must be at least 2");
  check(s.settings.min_width >= 0.0 && s.settings.min_width <= 1.0, scan.where("min_width") + " must be in [0, 1]");
  check(s.settings.min_background_events >= 0, scan.where("min_background_events") + " must be >= 0");
  for (double w : s.widths) check(w > 0.0 && w <= 1.0, scan.where("widths") + " must be in (0, 1]");
  for (double l : s.luminosities) check(l > 0.0, scan.where("luminosities") + " must be positive (fb^-1)");
  check(s.toys >= 0 && s.toys <= (int64_t(1) << 32), scan.where("toys") + " must be 0 (none) to 2^32");
  check(s.injected_toys >= 1 && s.injected_toys <= (int64_t(1) << 32), scan.where("injected_toys") + " must be 1 to 2^32");
  check(s.toys_luminosity > 0.0, scan.where("toys_luminosity") + " must be positive (fb^-1)");
  for (double x : s.inject_fb) check(x > 0.0, scan.where("inject_fb") + " must be positive cross-sections (fb)");
  check(s.fixed_window.empty() || (s.fixed_window.size() == 2 && 0.0 <= s.fixed_window[0] &&
                                   s.fixed_window[0] < s.fixed_window[1] && s.fixed_window[1] <= 1.0),
        scan.where("fixed_window") + " must be [lo, hi] with 0 <= lo < hi <= 1");
  for (const auto& c : d.normal) {
    if (!s.sigma_fb.count(c)) check_class_file(d.dir, c, name + ": data.normal");  // a misspelt class: say so
    check(s.sigma_fb.count(c), name + ": scan.sigma_fb has no cross-section for the normal class '" + c +
                                   "' (the backgrounds of the window scan need one: add scan.sigma_fb." + c +
                                   " = SIGMA_FB; top, qcd and w have defaults)");
  }
  return cfg;
}

std::vector<std::string> result_settings_differ(const RunConfig& was, const RunConfig& now, const std::string& stage) {
  const bool aa = stage == "aa";
  std::vector<std::string> out;
  const auto text = [](const auto& v) {
    std::ostringstream o;
    if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::vector<std::string>>) {
      o << "[";
      for (size_t i = 0; i < v.size(); ++i) o << (i ? ", " : "") << v[i];
      o << "]";
    } else {
      o << v;
    }
    return o.str();
  };
  const auto compare = [&](const char* key, const auto& a, const auto& b) {
    if (!(a == b)) out.push_back(std::string(key) + ": " + text(a) + " vs " + text(b));
  };
  compare("data.normal", was.data.normal, now.data.normal);
  if (aa) compare("data.aware", was.data.aware, now.data.aware);
  compare("data.n_test", was.data.n_test, now.data.n_test);
  compare("data.n_train", was.data.n_train, now.data.n_train);
  if (aa) compare("data.n_aware", was.data.n_aware, now.data.n_aware);
  compare("data.normalisation", was.data.normalisation, now.data.normalisation);
  compare("data.scale", was.data.scale, now.data.scale);
  const auto layers = [](const NetworkSpec& n) {
    std::ostringstream o;
    for (const LayerSpec& l : n.layers) o << l.type << "(" << l.filters << "," << l.padding << "," << l.units << "," << l.rate << ") ";
    return o.str();
  };
  compare("network.layers", layers(was.network), layers(now.network));
  compare("train.batch", was.train.batch, now.train.batch);
  compare("train.lr", was.train.lr, now.train.lr);
  compare("train.momentum", was.train.momentum, now.train.momentum);
  compare("train.weight_decay", was.train.weight_decay, now.train.weight_decay);
  if (aa) compare("train.lambda", was.train.lambda, now.train.lambda);
  if (aa) compare("train.ratio", was.train.ratio, now.train.ratio);
  return out;
}

RunConfig load_config(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  check(bool(in), path.string() + ": cannot open the config file");
  std::stringstream text;
  text << in.rdbuf();
  return config_to_run(text.str(), path.string(), path.parent_path(), overrides);
}

RunConfig config_to_run(const std::string& text, const std::string& name, const std::filesystem::path& base,
                        const std::vector<std::string>& overrides) {
  RunConfig cfg = parse_config(text, name, base, overrides);
  // A run reads every class: each must be there before anything is trained (a checkpoint's stored
  // config, read by parse_config alone, is not held to data it no longer needs).
  check(std::filesystem::is_directory(cfg.data.dir), name + ": data.dir " + cfg.data.dir.string() + " is not a directory");
  for (const auto& [key, classes] : {std::pair{"data.normal", &cfg.data.normal}, {"data.aware", &cfg.data.aware},
                                     {"data.unseen", &cfg.data.unseen}})
    for (const auto& c : *classes) check_class_file(cfg.data.dir, c, name + ": " + key);
  return cfg;
}

}  // namespace aware
