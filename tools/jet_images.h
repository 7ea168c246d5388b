// Jet images from constituents: each jet's constituent pT summed into a pixels x pixels grid of
// (d_eta, d_phi) around its centre, as ../shared/data/make_jets.py makes the data set's images, with the
// usual preprocessing of the jet-image literature as options. Used by `aware images` and aware.jet_images.
//
// The default (centre on the given jet axis, nothing else) is make_jets.py's arithmetic exactly: d_eta =
// eta - jet_eta, d_phi = numpy's (phi - jet_phi + pi) % 2pi - pi, the pixel by numpy.histogram2d's rule
// (edges numpy.linspace(-half_width, half_width, pixels + 1), each bin [lo, hi) except the last, [lo, hi]),
// the pT summed in float64 in constituent order, then rounded to float32: the same images bit for bit.
// Image rows are d_eta, columns d_phi. float32 inputs are widened to double first.
#pragma once
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace aware {

struct JetImageOptions {
  int pixels = 25;          // per side (make_jets.py: 25)
  double half_width = 1.0;  // the grid spans |d_eta|, |d_phi| <= half_width (make_jets.py: 1.0)
  // axis: the given jet axis (jet_eta, jet_phi), as make_jets.py; centroid: the pT-weighted mean of the
  // constituents' (eta, phi), phi taken relative to the axis, or to the hardest constituent without one.
  enum class Centre { axis, centroid } centre = Centre::axis;
  // Turn each jet so that the major principal axis of its pT-weighted (d_eta, d_phi) spread lies along
  // d_eta (the rows), after centring.
  bool rotate = false;
  // Mirror d_phi, then d_eta, where needed so that each half-plane d > 0 holds at least the pT of d < 0.
  bool flip = false;
  // Divide each image by the sum of its pixels (images without pT inside the grid stay zero).
  bool normalise = false;
};

// "axis" / "centroid" -> the centre; anything else is an aware::Error naming `what` and the choices.
JetImageOptions::Centre centre_named(const std::string& name, const std::string& what);

// Constituents of many jets, flat in one array per quantity, as an awkward array's content and offsets:
// jet j is entries [offsets[j], offsets[j + 1]). jet_eta, jet_phi: one per jet, or empty (then the
// centre must be the centroid).
template <class T>
struct Constituents {
  std::span<const T> pt, eta, phi;
  std::span<const int64_t> offsets;  // jets + 1 entries, non-decreasing, within the flat arrays
  std::span<const T> jet_eta = {}, jet_phi = {};
  int64_t jets() const { return offsets.empty() ? 0 : int64_t(offsets.size()) - 1; }
};

// Writes jets() images of pixels x pixels float32 into out (zeroed first), in parallel over jets (OpenMP).
// Inconsistent sizes, offsets out of order or range, a non-finite or negative pT, a non-finite angle, or
// bad options are an aware::Error saying which (and which jet and constituent).
void jet_images(const Constituents<double>& jets, const JetImageOptions& options, float* out);
void jet_images(const Constituents<float>& jets, const JetImageOptions& options, float* out);

// aware images: the constituents in `dir` (pt, eta, phi and offsets, and jet_eta, jet_phi where there:
// one NAME.npy or NAME.npy.gz each, flat, as an awkward array's content and offsets; floats as float64 or
// float32, offsets as int64 or int32) to `out`, a float32 .npy of shape (jets, pixels, pixels), written
// in chunks of jets as they are made and renamed into place when complete. Returns the number of jets.
int64_t images_of_directory(const std::filesystem::path& dir, const std::filesystem::path& out,
                            const JetImageOptions& options, bool progress);

}  // namespace aware
