#include "runtime/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/error.h"

namespace aware {
namespace {

namespace fs = std::filesystem;

// The dict numpy writes for a (2, 3) float32 array; malformed cases are variations of it.
constexpr const char* kDict2x3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

std::vector<float> random_values(int64_t count, unsigned seed) {
  std::mt19937 generator(seed);
  std::uniform_real_distribution<float> distribution(-1000.0f, 1000.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = distribution(generator);
  return values;
}

std::string bytes_of(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// A .npy file built by hand: magic, version `major`.0, little-endian header length (2 bytes for
// version 1, else 4), the dict padded to 64 bytes when `pad` (as numpy does), then `data`.
std::string npy_bytes(std::string dict, const std::string& data, int major = 1, bool pad = true) {
  size_t preamble_size = 8 + (major == 1 ? 2 : 4);
  if (pad) {
    while ((preamble_size + dict.size() + 1) % 64 != 0) dict += ' ';
    dict += '\n';
  }
  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(major);
  bytes += '\0';
  for (size_t i = 0; i < preamble_size - 8; ++i) bytes += static_cast<char>(dict.size() >> (8 * i) & 0xff);
  return bytes + dict + data;
}

std::string values_2x3() { return bytes_of({1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f}); }

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// Runs `action`, which must throw aware::Error, and returns the message.
template <class Action>
std::string error_message(Action&& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no aware::Error was thrown";
  return "";
}

// Loading `path` must fail with a message that starts with the path and contains `expected`.
void expect_load_error(const fs::path& path, const std::string& expected) {
  std::string message = error_message([&] { NpyArray::load(path); });
  EXPECT_TRUE(message.starts_with(path.string() + ": ")) << message;
  EXPECT_NE(message.find(expected), std::string::npos) << "expected \"" << expected << "\" in: " << message;
}

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Unique per process and test, so parallel runs and reruns never see each other's files.
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    directory_ = fs::temp_directory_path() /
                 ("aware_test_npy_" + std::to_string(::getpid()) + "_" + test->test_suite_name() + "_" + test->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_);
  }

  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  fs::path file(const std::string& name) const { return directory_ / name; }

  std::vector<fs::path> directory_entries() const {
    std::vector<fs::path> entries;
    for (const auto& entry : fs::directory_iterator(directory_)) entries.push_back(entry.path().filename());
    return entries;
  }

  void expect_round_trip(const std::vector<int64_t>& shape, unsigned seed) {
    int64_t count = 1;
    for (int64_t dim : shape) count *= dim;
    std::vector<float> values = random_values(count, seed);
    fs::path path = file("array.npy");

    save_npy(path, values.data(), shape);
    NpyArray array = NpyArray::load(path);

    EXPECT_EQ(array.path(), path);
    EXPECT_EQ(array.shape(), shape);
    EXPECT_EQ(array.rows(), shape[0]);
    EXPECT_EQ(array.row_size(), count / shape[0]);
    ASSERT_EQ(array.size(), count);
    EXPECT_EQ(std::memcmp(array.data(), values.data(), values.size() * sizeof(float)), 0);
    EXPECT_EQ(npy_shape(path), shape);
  }

  fs::path directory_;
};

// --- Round trips and accepted variants ---

TEST_F(NpyTest, RoundTrip1D) { expect_round_trip({7}, 1); }

TEST_F(NpyTest, RoundTrip2D) { expect_round_trip({5, 4}, 2); }

TEST_F(NpyTest, RoundTrip3D) { expect_round_trip({3, 25, 25}, 3); }

TEST_F(NpyTest, RoundTripZeroRows) {
  fs::path path = file("empty.npy");
  std::vector<int64_t> shape = {0, 25, 25};
  save_npy(path, nullptr, shape);
  NpyArray array = NpyArray::load(path);
  EXPECT_EQ(array.shape(), shape);
  EXPECT_EQ(array.rows(), 0);
  EXPECT_EQ(array.row_size(), 625);
  EXPECT_EQ(array.size(), 0);
}

TEST_F(NpyTest, SaveWritesVersion1HeaderAlignedTo64Bytes) {
  fs::path path = file("aligned.npy");
  std::vector<float> values = random_values(12, 4);
  std::vector<int64_t> shape = {3, 4};
  save_npy(path, values.data(), shape);

  std::string bytes = read_file(path);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 6), std::string("\x93NUMPY", 6));
  EXPECT_EQ(bytes[6], 1);
  EXPECT_EQ(bytes[7], 0);
  size_t header_length = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  size_t data_offset = 10 + header_length;
  EXPECT_EQ(data_offset % 64, 0u);
  EXPECT_EQ(bytes[data_offset - 1], '\n');
  EXPECT_EQ(bytes.substr(10, header_length).find("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"), 0u);
  EXPECT_EQ(bytes.size(), data_offset + values.size() * sizeof(float));
  EXPECT_EQ(bytes.substr(data_offset), bytes_of(values));
}

TEST_F(NpyTest, SaveLeavesNoTemporaryFile) {
  fs::path path = file("out.npy");
  std::vector<int64_t> shape = {2, 3};
  std::vector<float> first = random_values(6, 5), second = random_values(6, 6);
  save_npy(path, first.data(), shape);
  save_npy(path, second.data(), shape);  // replaces the first

  EXPECT_EQ(directory_entries(), std::vector<fs::path>{"out.npy"});
  NpyArray array = NpyArray::load(path);
  EXPECT_EQ(std::memcmp(array.data(), second.data(), second.size() * sizeof(float)), 0);
}

TEST_F(NpyTest, SaveIntoMissingDirectoryThrowsNamingThePath) {
  fs::path path = file("missing/out.npy");
  std::vector<float> values = random_values(3, 7);
  std::vector<int64_t> shape = {3};
  std::string message = error_message([&] { save_npy(path, values.data(), shape); });
  EXPECT_TRUE(message.starts_with(path.string() + ": ")) << message;
  EXPECT_TRUE(directory_entries().empty());
}

TEST_F(NpyTest, SaveRejectsScalarShape) {
  fs::path path = file("scalar.npy");
  float value = 1.0f;
  std::string message = error_message([&] { save_npy(path, &value, std::span<const int64_t>()); });
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_TRUE(directory_entries().empty());
}

TEST_F(NpyTest, LoadsVersion2Header) {
  fs::path path = file("v2.npy");
  write_file(path, npy_bytes(kDict2x3, values_2x3(), 2));
  NpyArray array = NpyArray::load(path);
  EXPECT_EQ(array.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(bytes_of(std::vector<float>(array.data(), array.data() + array.size())), values_2x3());
}

TEST_F(NpyTest, LoadsVersion3Header) {
  fs::path path = file("v3.npy");
  write_file(path, npy_bytes(kDict2x3, values_2x3(), 3));
  EXPECT_EQ(NpyArray::load(path).shape(), (std::vector<int64_t>{2, 3}));
}

TEST_F(NpyTest, ParsesKeysInAnyOrderWithFreeSpacingAndTrailingCommas) {
  fs::path path = file("reordered.npy");
  write_file(path, npy_bytes("{ \"shape\" : ( 2 , 3 , ) ,\"fortran_order\":False,'descr':'<f4' , }", values_2x3()));
  EXPECT_EQ(NpyArray::load(path).shape(), (std::vector<int64_t>{2, 3}));
}

TEST_F(NpyTest, AcceptsPython2LongDimensions) {
  fs::path path = file("long.npy");
  write_file(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", values_2x3()));
  EXPECT_EQ(NpyArray::load(path).shape(), (std::vector<int64_t>{2, 3}));
}

TEST_F(NpyTest, LoadsDataAtUnalignedOffset) {
  // An unpadded hand-made header can leave the data at an odd offset; it must still read correctly.
  std::string dict = kDict2x3;
  while ((10 + dict.size()) % 4 != 1) dict += ' ';
  fs::path path = file("unaligned.npy");
  write_file(path, npy_bytes(dict, values_2x3(), 1, /*pad=*/false));
  NpyArray array = NpyArray::load(path);
  ASSERT_EQ(array.size(), 6);
  EXPECT_EQ(bytes_of(std::vector<float>(array.data(), array.data() + array.size())), values_2x3());
}

TEST_F(NpyTest, GzipRoundTrip) {
  fs::path plain = file("plain.npy"), compressed = file("compressed.npy.gz");
  std::vector<int64_t> shape = {4, 25, 25};
  std::vector<float> values = random_values(4 * 25 * 25, 8);
  save_npy(plain, values.data(), shape);
  write_gzip(compressed, read_file(plain));

  NpyArray array = NpyArray::load(compressed);
  EXPECT_EQ(array.path(), compressed);
  EXPECT_EQ(array.shape(), shape);
  ASSERT_EQ(array.size(), static_cast<int64_t>(values.size()));
  EXPECT_EQ(std::memcmp(array.data(), values.data(), values.size() * sizeof(float)), 0);
  EXPECT_EQ(npy_shape(compressed), shape);
}

TEST_F(NpyTest, NpyShapeReadsOnlyTheHeader) {
  // The data holds a NaN, which load() would reject: npy_shape must not look at it.
  fs::path path = file("nan.npy");
  write_file(path, npy_bytes(kDict2x3, bytes_of({1, 2, 3, NAN, 5, 6})));
  EXPECT_EQ(npy_shape(path), (std::vector<int64_t>{2, 3}));
}

TEST_F(NpyTest, NpyShapeValidatesHeaderAndSize) {
  fs::path float64 = file("f8.npy"), truncated = file("truncated.npy");
  write_file(float64, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", values_2x3()));
  write_file(truncated, npy_bytes(kDict2x3, values_2x3().substr(4)));
  EXPECT_NE(error_message([&] { npy_shape(float64); }).find("dtype '<f8'"), std::string::npos);
  EXPECT_NE(error_message([&] { npy_shape(truncated); }).find("truncated data"), std::string::npos);
}

TEST_F(NpyTest, MoveTransfersOwnership) {
  fs::path first_path = file("first.npy"), second_path = file("second.npy");
  std::vector<float> first = random_values(10, 9), second = random_values(4, 10);
  save_npy(first_path, first.data(), std::vector<int64_t>{10});
  save_npy(second_path, second.data(), std::vector<int64_t>{2, 2});

  NpyArray a = NpyArray::load(first_path);
  const float* data = a.data();
  NpyArray b = std::move(a);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.size(), 10);
  EXPECT_EQ(b.path(), first_path);

  NpyArray c = NpyArray::load(second_path);
  c = std::move(b);
  EXPECT_EQ(c.data(), data);
  EXPECT_EQ(std::memcmp(c.data(), first.data(), first.size() * sizeof(float)), 0);
}

// --- Malformed files: each must throw aware::Error naming the file ---

TEST_F(NpyTest, RejectsBadMagic) {
  fs::path path = file("magic.npy");
  std::string bytes = npy_bytes(kDict2x3, values_2x3());
  bytes[5] = 'Z';
  write_file(path, bytes);
  expect_load_error(path, "bad magic");
}

TEST_F(NpyTest, RejectsFloat64Dtype) {
  fs::path path = file("f8.npy");
  write_file(path, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", values_2x3()));
  expect_load_error(path, "dtype '<f8' is not little-endian float32 ('<f4')");
}

TEST_F(NpyTest, RejectsBigEndianDtype) {
  fs::path path = file("big.npy");
  write_file(path, npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", values_2x3()));
  expect_load_error(path, "dtype '>f4'");
}

TEST_F(NpyTest, RejectsIntegerDtype) {
  fs::path path = file("int.npy");
  write_file(path, npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", values_2x3()));
  expect_load_error(path, "dtype '<i4'");
}

TEST_F(NpyTest, RejectsFortranOrder) {
  fs::path path = file("fortran.npy");
  write_file(path, npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", values_2x3()));
  expect_load_error(path, "fortran_order is True");
}

TEST_F(NpyTest, RejectsTruncatedData) {
  fs::path path = file("truncated.npy");
  write_file(path, npy_bytes(kDict2x3, values_2x3().substr(0, 20)));
  expect_load_error(path, "truncated data");
  expect_load_error(path, "needs 152 bytes (128 header + 24 data), file has 148");
}

TEST_F(NpyTest, RejectsTrailingBytes) {
  fs::path path = file("trailing.npy");
  write_file(path, npy_bytes(kDict2x3, values_2x3() + "junk"));
  expect_load_error(path, "4 trailing bytes");
}

TEST_F(NpyTest, RejectsTruncatedHeader) {
  std::string bytes = npy_bytes(kDict2x3, values_2x3());
  for (size_t length : {0, 7, 9, 30}) {
    SCOPED_TRACE("cut after " + std::to_string(length) + " bytes");
    fs::path path = file("header_" + std::to_string(length) + ".npy");
    write_file(path, bytes.substr(0, length));
    expect_load_error(path, "truncated header");
  }
}

TEST_F(NpyTest, RejectsUnsupportedVersion) {
  fs::path path = file("v4.npy");
  write_file(path, npy_bytes(kDict2x3, values_2x3(), 4));
  expect_load_error(path, "unsupported .npy version 4.0");
}

TEST_F(NpyTest, RejectsNaNGivingItsIndex) {
  fs::path path = file("nan.npy");
  write_file(path, npy_bytes(kDict2x3, bytes_of({1, 2, 3, 4, std::numeric_limits<float>::quiet_NaN(), 6})));
  expect_load_error(path, "element 4 (index [1, 1]) is NaN");
}

TEST_F(NpyTest, RejectsInfGivingItsIndex) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  fs::path positive = file("inf.npy"), negative = file("minus_inf.npy");
  write_file(positive, npy_bytes(kDict2x3, bytes_of({1, kInf, 3, 4, 5, 6})));
  write_file(negative, npy_bytes(kDict2x3, bytes_of({1, 2, 3, 4, 5, -kInf})));
  expect_load_error(positive, "element 1 (index [0, 1]) is +Inf");
  expect_load_error(negative, "element 5 (index [1, 2]) is -Inf");
}

TEST_F(NpyTest, RejectsNaNBeyondTheFirstBlock) {
  std::vector<float> values = random_values(3 * 5000, 11);
  values[2 * 5000 + 17] = std::numeric_limits<float>::quiet_NaN();
  fs::path path = file("late_nan.npy");
  save_npy(path, values.data(), std::vector<int64_t>{3, 5000});
  expect_load_error(path, "element 10017 (index [2, 17]) is NaN");
}

TEST_F(NpyTest, RejectsBadHeaderDict) {
  struct Case {
    const char* dict;
    const char* expected;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False}", "no 'shape' key"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", "unknown key 'extra'"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", "duplicate key 'descr'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': ()}", "scalar shape ()"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", "not a tuple"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}", "expected True or False"},
      {"{'descr': '<f4 'fortran_order': False, 'shape': (6,)}", "bad .npy header"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", "expected a quoted string"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} trailing", "unexpected text after '}'"},
      {"not a dict at all", "expected '{'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999)}", "too large"},
      // No values, but rows of 2^73 (found by fuzz/fuzz_npy: the row size overflowed).
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9496729672960, 949672965)}", "too large"},
  };
  int index = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict);
    fs::path path = file("dict_" + std::to_string(index++) + ".npy");
    write_file(path, npy_bytes(c.dict, values_2x3()));
    expect_load_error(path, c.expected);
  }
}

TEST_F(NpyTest, RejectsMissingFile) {
  fs::path path = file("does_not_exist.npy");
  expect_load_error(path, "cannot open: No such file or directory");
  EXPECT_FALSE(error_message([&] { npy_shape(path); }).empty());
}

TEST_F(NpyTest, RejectsDirectory) {
  fs::path path = file("directory.npy");
  fs::create_directory(path);
  expect_load_error(path, "not a regular file");
}

TEST_F(NpyTest, RejectsCorruptGzip) {
  fs::path path = file("corrupt.npy.gz");
  std::vector<float> values = random_values(300, 12);
  write_gzip(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (300,), }", bytes_of(values)));
  std::string bytes = read_file(path);
  bytes[bytes.size() - 8] ^= 0x55;  // the CRC-32 in the gzip trailer
  write_file(path, bytes);
  expect_load_error(path, "corrupt gzip data");
}

TEST_F(NpyTest, RejectsTruncatedGzipStream) {
  fs::path path = file("cut.npy.gz");
  std::vector<float> values = random_values(3000, 13);
  write_gzip(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3000,), }", bytes_of(values)));
  std::string bytes = read_file(path);
  write_file(path, bytes.substr(0, bytes.size() / 2));
  expect_load_error(path, "gzip stream is truncated");
}

TEST_F(NpyTest, RejectsTruncatedGzipContent) {
  fs::path path = file("short.npy.gz");
  write_gzip(path, npy_bytes(kDict2x3, values_2x3().substr(0, 20)));
  expect_load_error(path, "truncated data");
}

TEST_F(NpyTest, RejectsTrailingBytesInGzipContent) {
  fs::path path = file("long.npy.gz");
  write_gzip(path, npy_bytes(kDict2x3, values_2x3() + "junk"));
  expect_load_error(path, "trailing bytes");
}

TEST_F(NpyTest, RejectsGzipHeaderClaimingMoreThanTheFileCanHold) {
  fs::path path = file("huge.npy.gz");
  write_gzip(path, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000), }", ""));
  expect_load_error(path, "corrupt header?");
}

// --- Interoperability ---

TEST_F(NpyTest, LoadsFileWrittenByNumpy) {
  // Debian's python3-numpy (scripts/setup.sh) lives beside /usr/bin/python3, which need not be the
  // python3 first on PATH.
  std::string python;
  for (const char* candidate : {"/usr/bin/python3", "python3"})
    if (std::system((std::string(candidate) + " -c 'import numpy' >/dev/null 2>&1").c_str()) == 0) {
      python = candidate;
      break;
    }
  if (python.empty()) GTEST_SKIP() << "python3 with numpy not available";
  fs::path path = file("from_numpy.npy");
  std::string command = python + " -c \"import numpy as np; np.save('" + path.string() +
                        "', np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)\"";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  NpyArray array = NpyArray::load(path);
  EXPECT_EQ(array.shape(), (std::vector<int64_t>{2, 3, 4}));
  ASSERT_EQ(array.size(), 24);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(array.data()[i], static_cast<float>(i) / 8) << i;
}

}  // namespace
}  // namespace aware
