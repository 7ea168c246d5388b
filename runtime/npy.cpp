#include "runtime/npy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "kernels/error.h"

namespace aware {

std::string shape_string(std::span<const int64_t> shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  text += shape.size() == 1 ? ",)" : ")";
  return text;
}

namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLength = sizeof(kMagic) - 1;
constexpr std::string_view kFloat32Descr = "<f4";
// numpy pads the magic, version, length and header dict together to a multiple of 64 bytes.
constexpr size_t kHeaderAlignment = 64;
// A sane header is a few hundred bytes; the cap keeps a corrupt length field from allocating gigabytes.
constexpr uint32_t kMaxHeaderLength = 1 << 20;
// Deflate cannot expand data more than 1032:1 (zlib FAQ), which bounds what a .gz of a given size can hold.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr int64_t kMaxElements = std::numeric_limits<int64_t>::max() / int64_t{sizeof(float)};

Error npy_error(const fs::path& path, const std::string& what) { return Error(path.string() + ": " + what); }

std::string errno_text(int error) { return std::generic_category().message(error); }

bool is_gzip_path(const fs::path& path) { return path.extension() == ".gz"; }


// Product of the dimensions, or nullopt when it does not fit (so that byte counts cannot overflow either).
// The nonzero dimensions must fit too: an empty array of shape (0, 2^43, 2^30) has rows of 2^73 values,
// and its row size is a product taken later (found by fuzz/fuzz_npy).
std::optional<int64_t> element_count(std::span<const int64_t> shape) {
  int64_t count = 1, nonzero = 1;
  for (int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    if (dim == 0) {
      count = 0;
      continue;
    }
    if (nonzero > kMaxElements / dim) return std::nullopt;
    nonzero *= dim;
    count *= dim;  // count <= nonzero: no overflow
  }
  return count;
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  // Closing can report a delayed write error, so writers must look at the result.
  int close() { return ::close(release()); }

 private:
  int fd_;
};

struct RegularFile {
  FileDescriptor fd;
  uint64_t size;
};

RegularFile open_regular_file(const fs::path& path) {
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw npy_error(path, "cannot open: " + errno_text(errno));
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw npy_error(path, "cannot stat: " + errno_text(errno));
  if (!S_ISREG(info.st_mode)) throw npy_error(path, "not a regular file");
  return {std::move(fd), static_cast<uint64_t>(info.st_size)};
}

// What the header says about the array, and where its data starts.
struct Header {
  std::vector<int64_t> shape;
  int64_t count = 0;         // number of elements
  uint64_t data_offset = 0;  // bytes before the data
  std::string descr = "<f4";
  uint64_t item_size = sizeof(float);

  uint64_t data_bytes() const { return static_cast<uint64_t>(count) * item_size; }
  uint64_t file_bytes() const { return data_offset + data_bytes(); }
};

// Parses the header dict, e.g. "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }".
// It is a Python literal; this accepts the subset numpy (any version) writes: the three keys in any
// order, either quote style, free spacing, trailing commas, and Python 2's "3L" integers.
class HeaderDictParser {
 public:
  struct Fields {
    std::string descr;
    bool fortran_order = false;
    std::vector<int64_t> shape;
  };

  HeaderDictParser(const fs::path& path, std::string_view text) : path_(path), text_(text) {}

  Fields parse() {
    Fields fields;
    bool seen_descr = false, seen_fortran_order = false, seen_shape = false;
    auto mark_seen = [&](bool& seen, std::string_view key) {
      if (seen) fail_at("duplicate key '" + std::string(key) + "'");
      seen = true;
    };

    expect('{');
    while (!consume('}')) {
      std::string_view key = parse_string();
      expect(':');
      if (key == "descr") {
        mark_seen(seen_descr, key);
        fields.descr = parse_string();
      } else if (key == "fortran_order") {
        mark_seen(seen_fortran_order, key);
        fields.fortran_order = parse_bool();
      } else if (key == "shape") {
        mark_seen(seen_shape, key);
        fields.shape = parse_shape();
      } else {
        fail_at("unknown key '" + std::string(key) + "'");
      }
      if (!consume(',')) {
        if (!consume('}')) fail_at("expected ',' or '}'");
        break;
      }
    }
    skip_space();
    if (pos_ != text_.size()) fail_at("unexpected text after '}'");

    if (!seen_descr) fail("no 'descr' key");
    if (!seen_fortran_order) fail("no 'fortran_order' key");
    if (!seen_shape) fail("no 'shape' key");
    return fields;
  }

 private:
  // For syntax errors, where in the header they are.
  [[noreturn]] void fail_at(const std::string& what) const { fail(what + " at offset " + std::to_string(pos_)); }

  [[noreturn]] void fail(const std::string& what) const {
    // Quote the header (without numpy's padding) so the message shows what was actually there.
    std::string_view shown = text_;
    while (!shown.empty() && kSpace.find(shown.back()) != std::string_view::npos) shown.remove_suffix(1);
    constexpr size_t kMaxShown = 200;
    std::string quoted(shown.substr(0, kMaxShown));
    if (shown.size() > kMaxShown) quoted += "...";
    throw npy_error(path_, "bad .npy header (" + what + "): " + quoted);
  }

  void skip_space() {
    while (pos_ < text_.size() && kSpace.find(text_[pos_]) != std::string_view::npos) ++pos_;
  }

  // Skips spaces, then consumes `c` if it is next.
  bool consume(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) fail_at(std::string("expected '") + c + "'");
  }

  std::string_view parse_string() {
    skip_space();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail_at("expected a quoted string");
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail_at("unterminated string");
    std::string_view value = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return value;
  }

  bool parse_bool() {
    skip_space();
    for (auto [word, value] : {std::pair{std::string_view("True"), true}, std::pair{std::string_view("False"), false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    fail_at("expected True or False");
  }

  std::vector<int64_t> parse_shape() {
    expect('(');
    std::vector<int64_t> shape;
    bool saw_comma = false;
    while (!consume(')')) {
      shape.push_back(parse_dimension());
      if (consume(',')) {
        saw_comma = true;
      } else {
        if (!consume(')')) fail_at("expected ',' or ')'");
        break;
      }
    }
    // In Python "(5)" is the integer 5, not a tuple; numpy always writes "(5,)".
    if (shape.size() == 1 && !saw_comma) fail("shape (" + std::to_string(shape[0]) + ") is not a tuple");
    return shape;
  }

  int64_t parse_dimension() {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '-') fail_at("negative dimension");
    size_t start = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) fail_at("dimension too large");
      value = value * 10 + digit;
    }
    if (pos_ == start) fail_at("expected a dimension");
    if (pos_ < text_.size() && text_[pos_] == 'L') ++pos_;  // Python 2 long
    return value;
  }

  static constexpr std::string_view kSpace = " \t\r\n\f\v";

  const fs::path& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

// Reads and validates the header through `read(buffer, n)`, which returns the number of bytes read
// (fewer than n only at the end of the input).
// The dtypes a reader takes, with their sizes: events are float32 alone; other inputs (constituents, offsets)
// take what numpy writes for them.
struct Dtypes {
  std::vector<std::pair<std::string_view, uint64_t>> accepted;
  std::string said;  // in the error: "little-endian float32 ('<f4')"
};
const Dtypes kFloat32Only{{{kFloat32Descr, 4}}, "little-endian float32 ('<f4')"};

template <class ReadFn>
Header read_header(const fs::path& path, ReadFn&& read, const Dtypes& dtypes = kFloat32Only) {
  // Magic (6 bytes), major and minor version, then the header length: 2 bytes in 1.0, 4 bytes in 2.0/3.0.
  unsigned char preamble[kMagicLength + 2 + 4];
  size_t got = read(preamble, kMagicLength + 2);
  if (std::memcmp(preamble, kMagic, std::min(got, kMagicLength)) != 0) {
    throw npy_error(path, "not a .npy file (bad magic, expected \"\\x93NUMPY\")");
  }
  auto truncated_after = [&](size_t bytes) {
    return npy_error(path, "truncated header (input ends after " + std::to_string(bytes) + " bytes)");
  };
  if (got < kMagicLength + 2) throw truncated_after(got);

  int major = preamble[kMagicLength], minor = preamble[kMagicLength + 1];
  if (minor != 0 || major < 1 || major > 3) {
    throw npy_error(path, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor) +
                              " (expected 1.0, 2.0 or 3.0)");
  }
  size_t length_size = major == 1 ? 2 : 4;
  unsigned char* length_bytes = preamble + kMagicLength + 2;
  size_t length_got = read(length_bytes, length_size);
  if (length_got < length_size) throw truncated_after(kMagicLength + 2 + length_got);
  uint32_t header_length = 0;
  for (size_t i = length_size; i-- > 0;) header_length = header_length << 8 | length_bytes[i];  // little-endian
  if (header_length > kMaxHeaderLength) {
    throw npy_error(path, "header length " + std::to_string(header_length) + " is implausibly large (corrupt file?)");
  }

  std::string text(header_length, '\0');
  size_t text_got = read(text.data(), text.size());
  size_t preamble_size = kMagicLength + 2 + length_size;
  if (text_got < text.size()) throw truncated_after(preamble_size + text_got);

  HeaderDictParser::Fields fields = HeaderDictParser(path, text).parse();
  const auto dtype = std::find_if(dtypes.accepted.begin(), dtypes.accepted.end(),
                                  [&](const auto& d) { return d.first == fields.descr; });
  if (dtype == dtypes.accepted.end()) throw npy_error(path, "dtype '" + fields.descr + "' is not " + dtypes.said);
  if (fields.fortran_order) throw npy_error(path, "fortran_order is True; only C-order arrays are supported");
  if (fields.shape.empty()) throw npy_error(path, "scalar shape () is not supported; expected at least 1 dimension");
  std::optional<int64_t> count = element_count(fields.shape);
  if (!count) throw npy_error(path, "shape " + shape_string(fields.shape) + " is too large");

  if (*count > std::numeric_limits<int64_t>::max() / int64_t(dtype->second))
    throw npy_error(path, "shape " + shape_string(fields.shape) + " is too large");
  return {std::move(fields.shape), *count, preamble_size + header_length, fields.descr, dtype->second};
}

// Reads and validates the header of a plain .npy, and checks that the file holds exactly the data it announces.
Header read_plain_header(const fs::path& path, const RegularFile& file, const Dtypes& dtypes = kFloat32Only) {
  uint64_t offset = 0;
  auto read = [&](void* buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(file.fd.get(), static_cast<char*>(buffer) + done, n - done, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw npy_error(path, "cannot read: " + errno_text(errno));
      if (r == 0) break;
      done += static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return done;
  };
  Header header = read_header(path, read, dtypes);

  std::string needs = "shape " + shape_string(header.shape) + " needs " + std::to_string(header.file_bytes()) +
                      " bytes (" + std::to_string(header.data_offset) + " header + " +
                      std::to_string(header.data_bytes()) + " data)";
  if (file.size < header.file_bytes()) {
    throw npy_error(path, "truncated data: " + needs + ", file has " + std::to_string(file.size));
  }
  if (file.size > header.file_bytes()) {
    throw npy_error(path, std::to_string(file.size - header.file_bytes()) + " trailing bytes: " + needs +
                              ", file has " + std::to_string(file.size));
  }
  return header;
}

// A gzip file read through zlib, with its errors turned into aware::Error.
class GzipReader {
 public:
  explicit GzipReader(const fs::path& path) : path_(path) {
    // Opening the descriptor ourselves gives the same checks as for plain files, and the compressed size.
    RegularFile file = open_regular_file(path);
    compressed_size_ = file.size;
    file_ = ::gzdopen(file.fd.get(), "rb");
    if (file_ == nullptr) throw npy_error(path, "cannot open as gzip: out of memory");
    file.fd.release();  // now owned by zlib
    ::gzbuffer(file_, 256 * 1024);  // fewer read() calls than the 8 KiB default
  }
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;
  ~GzipReader() { ::gzclose(file_); }

  uint64_t compressed_size() const { return compressed_size_; }

  // Returns the number of bytes decompressed, fewer than n only at the clean end of the gzip stream.
  size_t read(void* buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
      // gzread takes an unsigned and returns an int, so large reads go in chunks.
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, INT_MAX / 2 + 1));
      int r = ::gzread(file_, static_cast<char*>(buffer) + done, chunk);
      if (r <= 0) break;
      done += static_cast<size_t>(r);
    }
    // A short read is either the end of the stream or an error; only gzerror tells which.
    if (done < n) {
      int error = Z_OK;
      const char* message = ::gzerror(file_, &error);
      if (error == Z_BUF_ERROR) throw npy_error(path_, "gzip stream is truncated (unexpected end of file)");
      if (error == Z_ERRNO) throw npy_error(path_, "cannot read: " + errno_text(errno));
      if (error != Z_OK) throw npy_error(path_, "corrupt gzip data: " + without_zlib_prefix(message));
    }
    return done;
  }

 private:
  // zlib prefixes its messages with the file's name, here "<fd:N>: ", which means nothing to a user.
  static std::string without_zlib_prefix(std::string message) {
    size_t separator = message.find(": ");
    if (separator != std::string::npos) message.erase(0, separator + 2);
    return message;
  }

  const fs::path& path_;
  gzFile file_ = nullptr;
  uint64_t compressed_size_ = 0;
};

Header read_gzip_header(const fs::path& path, GzipReader& reader, const Dtypes& dtypes = kFloat32Only) {
  Header header = read_header(path, [&](void* buffer, size_t n) { return reader.read(buffer, n); }, dtypes);
  // Catches a corrupt shape before it turns into a huge allocation.
  if (header.file_bytes() / kMaxDeflateRatio > reader.compressed_size()) {
    throw npy_error(path, "shape " + shape_string(header.shape) + " needs " + std::to_string(header.file_bytes()) +
                              " bytes, more than a " + std::to_string(reader.compressed_size()) +
                              "-byte gzip file can hold (corrupt header?)");
  }
  return header;
}

// Index of the first NaN or Inf, if any. Tests the exponent bits rather than std::isfinite, which
// -ffast-math is allowed to fold to true; checking a block at a time without branching lets it vectorize.
std::optional<int64_t> first_non_finite(const float* values, int64_t count) {
  auto non_finite = [](float value) {
    constexpr uint32_t kExponentMask = 0x7f800000u;
    return (std::bit_cast<uint32_t>(value) & kExponentMask) == kExponentMask;
  };
  constexpr int64_t kBlock = 4096;
  for (int64_t begin = 0; begin < count; begin += kBlock) {
    int64_t end = std::min(count, begin + kBlock);
    bool any = false;
    for (int64_t i = begin; i < end; ++i) any |= non_finite(values[i]);
    if (any) {
      for (int64_t i = begin; i < end; ++i) {
        if (non_finite(values[i])) return i;
      }
    }
  }
  return std::nullopt;
}

// values[0, count) are the array's elements from `offset` on.
void check_finite(const fs::path& path, const float* values, int64_t count, std::span<const int64_t> shape,
                  int64_t offset = 0) {
  std::optional<int64_t> found = first_non_finite(values, count);
  if (!found) return;
  const float value = values[*found];
  const std::optional<int64_t> bad = *found + offset;

  // The multi-dimensional index is what a user looks up in numpy: a[1, 2, 3].
  std::vector<int64_t> index(shape.size());
  int64_t rest = *bad;
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = rest % shape[d];
    rest /= shape[d];
  }
  std::string index_text;
  for (size_t d = 0; d < index.size(); ++d) index_text += (d > 0 ? ", " : "") + std::to_string(index[d]);

  uint32_t bits = std::bit_cast<uint32_t>(value);
  const char* kind = (bits & 0x007fffffu) != 0 ? "NaN" : (bits >> 31) != 0 ? "-Inf" : "+Inf";
  throw npy_error(path, "element " + std::to_string(*bad) + " (index [" + index_text + "]) is " + kind +
                            "; values must be finite");
}

void write_all(const fs::path& path, int fd, const void* buffer, size_t n) {
  const char* bytes = static_cast<const char*>(buffer);
  while (n > 0) {
    ssize_t w = ::write(fd, bytes, std::min<size_t>(n, size_t{1} << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw npy_error(path, "cannot write: " + errno_text(errno));
    bytes += w;
    n -= static_cast<size_t>(w);
  }
}

// The bytes before the data: magic, version, header length and the header dict padded with spaces
// and a newline so that the data starts on a 64-byte boundary.
std::string make_header(std::span<const int64_t> shape) {
  std::string dict = "{'descr': '" + std::string(kFloat32Descr) + "', 'fortran_order': False, 'shape': " +
                     shape_string(shape) + ", }";
  // Version 1.0 has a 2-byte length; absurdly long shapes need 2.0's 4 bytes.
  for (int major : {1, 2}) {
    size_t preamble_size = kMagicLength + 2 + (major == 1 ? 2 : 4);
    size_t unpadded = preamble_size + dict.size() + 1;  // + '\n'
    size_t total = (unpadded + kHeaderAlignment - 1) / kHeaderAlignment * kHeaderAlignment;
    size_t header_length = total - preamble_size;
    if (major == 1 && header_length > 0xffff) continue;

    std::string bytes(kMagic, kMagicLength);
    bytes += static_cast<char>(major);
    bytes += '\0';
    for (size_t i = 0; i < preamble_size - kMagicLength - 2; ++i) {  // little-endian length
      bytes += static_cast<char>(header_length >> (8 * i) & 0xff);
    }
    bytes += dict;
    bytes.append(total - 1 - bytes.size(), ' ');
    bytes += '\n';
    return bytes;
  }
  throw Error("unreachable: a 4-byte header length is always enough");
}

}  // namespace

NpyArray NpyArray::load(const std::filesystem::path& path, Finite finite) {
  NpyArray array;
  array.path_ = path;

  if (is_gzip_path(path)) {
    GzipReader reader(path);
    Header header = read_gzip_header(path, reader);
    array.owned_.resize(static_cast<size_t>(header.count));
    size_t got = reader.read(array.owned_.data(), header.data_bytes());
    if (got < header.data_bytes()) {
      throw npy_error(path, "truncated data: shape " + shape_string(header.shape) + " needs " +
                                std::to_string(header.data_bytes()) + " data bytes, decompressed file has " +
                                std::to_string(got));
    }
    // Reading one byte past the data also makes zlib verify the gzip trailer (CRC and length).
    char extra;
    if (reader.read(&extra, 1) != 0) {
      throw npy_error(path, "trailing bytes after the " + std::to_string(header.data_bytes()) + " data bytes that shape " +
                                shape_string(header.shape) + " needs");
    }
    array.shape_ = std::move(header.shape);
    array.size_ = header.count;
    array.data_ = array.owned_.data();
  } else {
    RegularFile file = open_regular_file(path);
    Header header = read_plain_header(path, file);
    array.shape_ = std::move(header.shape);
    array.size_ = header.count;
    if (header.count > 0) {  // mmap refuses empty files, and there is nothing to map anyway
      void* mapping = ::mmap(nullptr, file.size, PROT_READ, MAP_PRIVATE, file.fd.get(), 0);
      if (mapping == MAP_FAILED) throw npy_error(path, "cannot mmap: " + errno_text(errno));
      array.mapping_ = mapping;
      array.mapping_length_ = file.size;
      const char* bytes = static_cast<const char*>(mapping) + header.data_offset;
      if (header.data_offset % alignof(float) == 0) {
        array.data_ = reinterpret_cast<const float*>(bytes);
      } else {
        // numpy aligns the data to 64 bytes; only hand-made headers get here. Copy rather than misread.
        array.owned_.resize(static_cast<size_t>(header.count));
        std::memcpy(array.owned_.data(), bytes, header.data_bytes());
        ::munmap(std::exchange(array.mapping_, nullptr), std::exchange(array.mapping_length_, 0));
        array.data_ = array.owned_.data();
      }
    }
  }

  if (finite == Finite::check_all) check_finite(path, array.data_, array.size_, array.shape_);
  return array;
}

void NpyArray::check_finite_rows(int64_t first, int64_t count) const {
  const int64_t row = row_size();
  check_finite(path_, data_ + first * row, count * row, shape_, first * row);
}

int64_t NpyArray::row_size() const {
  int64_t product = 1;
  for (size_t d = 1; d < shape_.size(); ++d) product *= shape_[d];
  return product;
}

NpyArray::NpyArray(NpyArray&& other) noexcept { swap(other); }

NpyArray& NpyArray::operator=(NpyArray&& other) noexcept {
  NpyArray moved(std::move(other));  // our old contents are released when `moved` goes out of scope
  swap(moved);
  return *this;
}

NpyArray::~NpyArray() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_length_);
}

void NpyArray::swap(NpyArray& other) noexcept {
  // Swapping the vectors keeps their buffers, so data_ stays valid on whichever side it moves to.
  path_.swap(other.path_);
  shape_.swap(other.shape_);
  std::swap(size_, other.size_);
  std::swap(data_, other.data_);
  std::swap(mapping_, other.mapping_);
  std::swap(mapping_length_, other.mapping_length_);
  owned_.swap(other.owned_);
}

void save_npy(const std::filesystem::path& path, const float* data, std::span<const int64_t> shape) {
  check(!shape.empty(), path.string() + ": cannot save a scalar shape (); expected at least 1 dimension");
  std::optional<int64_t> count = element_count(shape);
  check(count.has_value(), path.string() + ": cannot save shape " + shape_string(shape) +
                               " (negative or too large dimension)");
  check(data != nullptr || *count == 0, path.string() + ": cannot save shape " + shape_string(shape) + " from null data");
  // Readers see either the old file or the complete new one, never a partial write (NpyWriter).
  NpyWriter writer(path, shape);
  writer.write(data, *count);
  writer.commit();
}

std::string npy_header(std::span<const int64_t> shape) { return make_header(shape); }

namespace {

// The whole array of one of `dtypes`, as raw bytes, with its header.
std::pair<Header, std::vector<char>> load_raw(const fs::path& path, const Dtypes& dtypes) {
  std::vector<char> bytes;
  Header header;
  if (is_gzip_path(path)) {
    GzipReader reader(path);
    header = read_gzip_header(path, reader, dtypes);
    bytes.resize(header.data_bytes());
    const size_t got = reader.read(bytes.data(), bytes.size());
    char extra;
    if (got < bytes.size() || reader.read(&extra, 1) != 0)
      throw npy_error(path, "the decompressed data is not the " + std::to_string(header.data_bytes()) +
                                " bytes that shape " + shape_string(header.shape) + " needs");
  } else {
    RegularFile file = open_regular_file(path);
    header = read_plain_header(path, file, dtypes);
    bytes.resize(header.data_bytes());
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t r = ::pread(file.fd.get(), bytes.data() + done, bytes.size() - done, off_t(header.data_offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) throw npy_error(path, "cannot read: " + (r < 0 ? errno_text(errno) : std::string("the file shrank")));
      done += size_t(r);
    }
  }
  return {std::move(header), std::move(bytes)};
}

template <class To, class From>
std::vector<To> widened(const std::vector<char>& bytes) {
  std::vector<To> out(bytes.size() / sizeof(From));
  for (size_t i = 0; i < out.size(); ++i) {
    From v;
    std::memcpy(&v, bytes.data() + i * sizeof(From), sizeof(From));
    out[i] = To(v);
  }
  return out;
}

}  // namespace

std::vector<double> load_npy_doubles(const std::filesystem::path& path, std::vector<int64_t>* shape) {
  static const Dtypes floats{{{"<f8", 8}, {"<f4", 4}}, "little-endian float64 or float32 ('<f8', '<f4')"};
  auto [header, bytes] = load_raw(path, floats);
  if (shape) *shape = header.shape;
  return header.descr == "<f8" ? widened<double, double>(bytes) : widened<double, float>(bytes);
}

std::vector<int64_t> load_npy_int64(const std::filesystem::path& path, std::vector<int64_t>* shape) {
  static const Dtypes ints{{{"<i8", 8}, {"<i4", 4}}, "little-endian int64 or int32 ('<i8', '<i4')"};
  auto [header, bytes] = load_raw(path, ints);
  if (shape) *shape = header.shape;
  return header.descr == "<i8" ? widened<int64_t, int64_t>(bytes) : widened<int64_t, int32_t>(bytes);
}

NpyWriter::NpyWriter(std::filesystem::path path, std::span<const int64_t> shape)
    : path_(std::move(path)), temporary_(path_.string() + ".tmp." + std::to_string(::getpid())) {
  const std::optional<int64_t> count = element_count(shape);
  check(!shape.empty() && count.has_value(), path_.string() + ": cannot save shape " + shape_string(shape));
  remaining_ = *count;
  fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw npy_error(path_, "cannot create " + temporary_.string() + ": " + errno_text(errno));
  try {
    const std::string header = make_header(shape);
    write_all(path_, fd_, header.data(), header.size());
  } catch (...) {  // no destructor runs for a constructor that throws
    ::close(fd_);
    ::unlink(temporary_.c_str());
    throw;
  }
}

void NpyWriter::write(const float* values, int64_t count) {
  check(count >= 0 && count <= remaining_, path_.string() + ": more values written than its shape holds");
  write_all(path_, fd_, values, size_t(count) * sizeof(float));
  remaining_ -= count;
}

void NpyWriter::commit() {
  check(remaining_ == 0, path_.string() + ": " + std::to_string(remaining_) + " values short of its shape");
  if (::fsync(fd_) != 0) throw npy_error(path_, "cannot fsync " + temporary_.string() + ": " + errno_text(errno));
  if (::close(std::exchange(fd_, -1)) != 0) throw npy_error(path_, "cannot close " + temporary_.string() + ": " + errno_text(errno));
  if (::rename(temporary_.c_str(), path_.c_str()) != 0)
    throw npy_error(path_, "cannot rename " + temporary_.string() + " over it: " + errno_text(errno));
  committed_ = true;
  // The rename itself made durable. Best effort: the file is complete either way.
  const fs::path directory = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  FileDescriptor directory_fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (directory_fd.get() >= 0) ::fsync(directory_fd.get());
}

NpyWriter::~NpyWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

std::vector<int64_t> npy_shape(const std::filesystem::path& path) {
  if (is_gzip_path(path)) {
    GzipReader reader(path);
    return read_gzip_header(path, reader).shape;
  }
  RegularFile file = open_regular_file(path);
  return read_plain_header(path, file).shape;
}

}  // namespace aware
