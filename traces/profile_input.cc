// The chunked, bounded byte stream of a profile file (profile_input.h).
#include "traces/profile_input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "core/limits.h"

namespace cf {
namespace {

constexpr unsigned kChunkBytes = 256 * 1024;

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "neither a file nor a directory";
}

Status check_file(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidInput(
        fmt::format("{}: not a regular file ({})", path, file_kind(st.st_mode)));
  }
  if (st.st_size == 0) {
    return Status::InvalidInput(fmt::format(
        "{}: empty file (a profile is a JSON object with traceEvents, or a list of events)", path));
  }
  if (st.st_size > limits::kMaxProfileFileBytes) {
    return Status::InvalidInput(fmt::format("{}: {} bytes, more than the {} allowed ({})", path,
                                            st.st_size, limits::kMaxProfileFileBytes,
                                            limits::kMaxProfileFileBytesWhy));
  }
  return Status::Ok();
}

Status cannot_open(const std::string& path, int error) {
  return Status::InvalidInput(fmt::format("{}: cannot open file: {}", path, std::strerror(error)));
}

// How the bound scan treats each byte outside strings.
enum ByteClass : uint8_t { kPlain, kQuote, kNumberStart, kNumberTail, kOpen, kClose };
constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> table{};  // kPlain: whitespace, ',', ':', letters of literals
  table['"'] = kQuote;
  for (char c = '0'; c <= '9'; ++c) table[static_cast<unsigned char>(c)] = kNumberStart;
  table['-'] = kNumberStart;
  for (char c : {'.', 'e', 'E', '+'}) table[static_cast<unsigned char>(c)] = kNumberTail;
  table['['] = table['{'] = kOpen;
  table[']'] = table['}'] = kClose;
  return table;
}();

}  // namespace

StatusOr<std::unique_ptr<ProfileInput>> ProfileInput::open(const std::string& path,
                                                           ProfileProgress progress) {
  // As read_text_file (core/resources.h): stat first, so that opening touches no device, then
  // the same checks on the descriptor. O_NONBLOCK: a named pipe with no writer would wait.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return cannot_open(path, errno);
  CF_RETURN_IF_ERROR(check_file(path, st));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return cannot_open(path, errno);
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return cannot_open(path, error);
  }
  if (Status checked = check_file(path, st); !checked.ok()) {
    ::close(fd);
    return checked;
  }
  gzFile gz = ::gzdopen(fd, "rb");  // owns fd from here
  if (gz == nullptr) {
    ::close(fd);
    return Status::InvalidInput(fmt::format("{}: cannot read file: out of memory", path));
  }
  ::gzbuffer(gz, kChunkBytes);
  return std::unique_ptr<ProfileInput>(
      new ProfileInput(path, gz, static_cast<int64_t>(st.st_size), std::move(progress)));
}

ProfileInput::ProfileInput(std::string path, void* gz, int64_t file_bytes, ProfileProgress progress)
    : path_(std::move(path)),
      gz_(gz),
      file_bytes_(file_bytes),
      progress_(std::move(progress)),
      buffer_(new char[kChunkBytes]) {
  pos_ = end_ = buffer_.get();
}

ProfileInput::~ProfileInput() { ::gzclose(static_cast<gzFile>(gz_)); }

void ProfileInput::stop(const std::string& message) {
  if (!stopped_) stopped_ = Status::InvalidInput(fmt::format("{}: {}", path_, message));
}

bool ProfileInput::refill() {
  if (eof_ || stopped_) return false;
  base_ += end_ - buffer_.get();
  pos_ = end_ = buffer_.get();
  if (!pending_error_.empty()) {
    stop(pending_error_);
    return false;
  }
  gzFile gz = static_cast<gzFile>(gz_);
  const int got = ::gzread(gz, buffer_.get(), kChunkBytes);
  int error = Z_OK;
  const char* reason = ::gzerror(gz, &error);
  if (got < 0 || (error != Z_OK && error != Z_STREAM_END)) {
    // Z_BUF_ERROR: the compressed stream ended early (a truncated .gz); the bytes before the
    // cut are parsed first, so a message about them would come from the parser.
    const std::string message =
        fmt::format("{} after {} bytes of text: {}",
                    error == Z_BUF_ERROR ? "truncated gzip data" : "cannot read the file",
                    base_ + std::max(got, 0), error == Z_ERRNO ? std::strerror(errno) : reason);
    if (got <= 0) {
      stop(message);
      return false;
    }
    pending_error_ = message;
  }
  if (base_ == 0) gzip_ = ::gzdirect(gz) == 0;
  if (progress_) progress_(::gzoffset(gz), file_bytes_);
  if (got == 0) {
    eof_ = true;
    return false;
  }
  if (base_ + got > limits::kMaxProfileFileBytes) {
    stop(fmt::format("more than {} bytes of text after decompression ({})",
                     limits::kMaxProfileFileBytes, limits::kMaxProfileFileBytesWhy));
    return false;
  }
  end_ = buffer_.get() + scan(buffer_.get(), static_cast<std::size_t>(got));
  return pos_ < end_;
}

std::size_t ProfileInput::scan(const char* text, std::size_t n) {
  const int64_t kMaxRun = limits::kMaxProfileTokenBytes;
  // The run bound broke `over` bytes before text + i (over >= 1): stop at that byte.
  auto run_too_long = [&](std::size_t i, int64_t over) {
    const int64_t at = static_cast<int64_t>(i) - over + 1;  // index of the first byte past
    const char* what = in_string_   ? "a string longer than"
                       : in_number_ ? "a number longer than"
                                    : "no string or number in";
    stop(fmt::format("{} {} bytes at byte {} (limits::kMaxProfileTokenBytes, core/limits.h)", what,
                     kMaxRun, base_ + at + 1));
    return static_cast<std::size_t>(at);
  };
  std::size_t i = 0;
  while (i < n) {
    if (in_string_) {
      // Most of a trace is string bytes: skip to the next quote or backslash.
      std::size_t j = i;
      if (escaped_) {
        escaped_ = false;
        ++j;
      }
      while (j < n && text[j] != '"' && text[j] != '\\') ++j;
      const std::size_t taken = std::min(n, j + 1);  // the quote or backslash included
      run_bytes_ += static_cast<int64_t>(taken - i);
      if (run_bytes_ > kMaxRun) return run_too_long(taken - 1, run_bytes_ - kMaxRun);
      if (j < n) {
        if (text[j] == '\\') {
          escaped_ = true;
        } else {
          in_string_ = false;
        }
      }
      i = taken;
      continue;
    }
    // Outside strings: whitespace and separators in a tight loop, then one structural byte.
    const std::size_t start = i;
    while (i < n && kByteClass[static_cast<unsigned char>(text[i])] == kPlain) ++i;
    if (i > start) {
      in_number_ = false;
      run_bytes_ += static_cast<int64_t>(i - start);
      if (run_bytes_ > kMaxRun) return run_too_long(i - 1, run_bytes_ - kMaxRun);
      if (i == n) break;
    }
    ++run_bytes_;
    switch (kByteClass[static_cast<unsigned char>(text[i])]) {
      case kQuote:
        in_string_ = true;
        in_number_ = false;
        run_bytes_ = 1;
        break;
      case kNumberStart:  // a digit or '-': starts a number, or goes on with one
        if (!in_number_) {
          in_number_ = true;
          run_bytes_ = 1;
        }
        break;
      case kNumberTail:  // '.', 'e', 'E', '+': inside a number, or a literal's letter
        break;
      case kOpen:
        in_number_ = false;
        if (++depth_ > limits::kMaxJsonDepth) {
          stop(fmt::format("JSON nested deeper than {} at byte {}", limits::kMaxJsonDepth,
                           base_ + static_cast<int64_t>(i) + 1));
          return i;
        }
        break;
      case kClose:
        in_number_ = false;
        --depth_;  // below zero only in text the parser refuses at that byte
        break;
      default:
        break;
    }
    if (run_bytes_ > kMaxRun) return run_too_long(i, run_bytes_ - kMaxRun);
    ++i;
  }
  return n;
}

}  // namespace cf
