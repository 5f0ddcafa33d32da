// A profile file as a stream of bytes for nlohmann's SAX parser: read in 256 KiB chunks through
// zlib (gzip by its magic bytes, plain text as it is), with the one bound the parser cannot
// keep by itself. nlohmann's lexer holds the text since the last string or number began (the
// token, and its raw bytes for messages); the reader marks where each string and number ends
// (mark_token_end), and the input stops once more than limits::kMaxProfileTokenBytes follow a
// mark, so no file makes the lexer hold more than that bound and one chunk. Nesting depth is
// the handler's to bound (profile_reader.cc). Not the meaning of the events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <streambuf>
#include <string>

#include "core/status.h"
#include "traces/profile.h"

namespace cf {

class ProfileInput final : public std::streambuf {
 public:
  // Checked before a byte is read: a regular file (not a directory, device, pipe or socket),
  // not empty, at most limits::kMaxProfileFileBytes. InvalidInput "PATH: ..." otherwise.
  static StatusOr<std::unique_ptr<ProfileInput>> open(const std::string& path,
                                                      ProfileProgress progress);
  ~ProfileInput() override;
  ProfileInput(const ProfileInput&) = delete;
  ProfileInput& operator=(const ProfileInput&) = delete;

  // Bytes of the (decompressed) text handed to the parser so far.
  int64_t position() const { return base_ + (gptr() - eback()); }
  // Why the input ended before the end of the file: a bound, a read or a gzip error (the
  // message names the path and the byte). Empty when the file was read to its end.
  const std::optional<Status>& stopped() const { return stopped_; }
  bool gzip() const { return gzip_; }
  // A string, key or number ended here: the lexer's buffers start again.
  void mark_token_end() { token_end_ = position(); }

 protected:
  // The next chunk, when the parser (through std::istream, as json::sax_parse(std::istream&)
  // reads: sbumpc, one compare per byte) has used this one up.
  int_type underflow() override;

 private:
  ProfileInput(std::string path, void* gz, int64_t file_bytes, ProfileProgress progress);
  void stop(const std::string& message);

  std::string path_;
  void* gz_;  // gzFile
  int64_t file_bytes_;
  ProfileProgress progress_;
  std::unique_ptr<char[]> buffer_;
  int64_t base_ = 0;  // bytes before the chunk in buffer_
  bool eof_ = false;
  bool gzip_ = false;
  std::optional<Status> stopped_;
  std::string pending_error_;  // a gzip error met with the bytes before it still to parse
  int64_t token_end_ = 0;      // position() where the last string, key or number ended
};

}  // namespace cf
