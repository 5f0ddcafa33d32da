// The chunked, bounded byte stream of a profile file (profile_input.h).
#include "traces/profile_input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/limits.h"
#include "core/resources.h"

namespace cf {
namespace {

constexpr unsigned kChunkBytes = 256 * 1024;

// A regular file within limits::kMaxProfileFileBytes (core/resources.h), and not empty.
Status check_file(const std::string& path, const struct stat& st) {
  CF_RETURN_IF_ERROR(
      check_regular_file(path, st, limits::kMaxProfileFileBytes, limits::kMaxProfileFileBytesWhy));
  if (st.st_size == 0) {
    return Status::InvalidInput(fmt::format(
        "{}: empty file (a profile is a JSON object with traceEvents, or a list of events)", path));
  }
  return Status::Ok();
}

Status cannot_open(const std::string& path, int error) {
  return Status::InvalidInput(fmt::format("{}: cannot open file: {}", path, std::strerror(error)));
}

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
  setg(buffer_.get(), buffer_.get(), buffer_.get());
}

ProfileInput::~ProfileInput() { ::gzclose(static_cast<gzFile>(gz_)); }

void ProfileInput::stop(const std::string& message) {
  if (!stopped_) stopped_ = Status::InvalidInput(fmt::format("{}: {}", path_, message));
}

ProfileInput::int_type ProfileInput::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  base_ += egptr() - eback();
  setg(buffer_.get(), buffer_.get(), buffer_.get());
  const int_type kEnd = traits_type::eof();
  if (eof_ || stopped_) return kEnd;
  if (!pending_error_.empty()) {
    stop(pending_error_);
    return kEnd;
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
      return kEnd;
    }
    pending_error_ = message;
  }
  if (base_ == 0) gzip_ = ::gzdirect(gz) == 0;
  if (progress_) progress_(::gzoffset(gz), file_bytes_);
  if (got == 0) {
    eof_ = true;
    return kEnd;
  }
  if (base_ - token_end_ > limits::kMaxProfileTokenBytes) {
    // Checked once a chunk: the lexer then holds at most the bound and one chunk.
    stop(
        fmt::format("more than {} bytes at byte {} since the last string or number ended: a "
                    "string or number that long, or as much whitespace, brackets and literals "
                    "(limits::kMaxProfileTokenBytes, core/limits.h)",
                    limits::kMaxProfileTokenBytes, base_));
    return kEnd;
  }
  if (base_ + got > limits::kMaxProfileFileBytes) {
    stop(fmt::format("more than {} bytes of text after decompression ({})",
                     limits::kMaxProfileFileBytes, limits::kMaxProfileFileBytesWhy));
    return kEnd;
  }
  setg(buffer_.get(), buffer_.get(), buffer_.get() + got);
  return traits_type::to_int_type(*gptr());
}

}  // namespace cf
