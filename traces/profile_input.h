// A profile file as a stream of bytes for nlohmann's SAX parser: read in 256 KiB chunks through
// zlib (gzip by its magic bytes, plain text as it is), each chunk scanned for the bounds the
// parser cannot keep by itself — nesting depth, and the text its lexer buffers (a string, a
// number, or whitespace and brackets between them) — so that no input makes it hold more than
// limits::kMaxProfileTokenBytes. Not the meaning of the events (traces/profile_reader.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"
#include "traces/profile.h"

namespace cf {

class ProfileInput {
 public:
  // Checked before a byte is read: a regular file (not a directory, device, pipe or socket),
  // not empty, at most limits::kMaxProfileFileBytes. InvalidInput "PATH: ..." otherwise.
  static StatusOr<std::unique_ptr<ProfileInput>> open(const std::string& path,
                                                      ProfileProgress progress);
  ~ProfileInput();
  ProfileInput(const ProfileInput&) = delete;
  ProfileInput& operator=(const ProfileInput&) = delete;

  // Bytes of the (decompressed) text handed to the parser so far.
  int64_t position() const { return base_ + (pos_ - buffer_.get()); }
  // Why the input ended before the end of the file: a bound, a read or a gzip error (the
  // message names the path and the byte). Empty when the file was read to its end.
  const std::optional<Status>& stopped() const { return stopped_; }
  bool gzip() const { return gzip_; }

  // An input iterator over the bytes, refilling as it goes: what json::sax_parse reads.
  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char*;
    using reference = const char&;
    Iterator() = default;
    explicit Iterator(ProfileInput* input) : input_(input) {}
    char operator*() const { return *input_->pos_; }
    Iterator& operator++() {
      ++input_->pos_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++input_->pos_;
      return before;
    }
    bool operator==(const Iterator& other) const { return at_end() == other.at_end(); }

   private:
    bool at_end() const { return input_ == nullptr || !input_->has_byte(); }
    ProfileInput* input_ = nullptr;
  };
  Iterator begin() { return Iterator(this); }
  Iterator end() { return Iterator(); }

 private:
  ProfileInput(std::string path, void* gz, int64_t file_bytes, ProfileProgress progress);
  bool has_byte() { return pos_ < end_ || refill(); }
  bool refill();
  // Scans `n` new bytes at `text` for the bounds; returns how many may be parsed (n, or the
  // offset of the byte that broke a bound, with stopped_ set).
  std::size_t scan(const char* text, std::size_t n);
  void stop(const std::string& message);

  std::string path_;
  void* gz_;  // gzFile
  int64_t file_bytes_;
  ProfileProgress progress_;
  std::unique_ptr<char[]> buffer_;
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  int64_t base_ = 0;  // bytes before buffer_
  bool eof_ = false;
  bool gzip_ = false;
  std::optional<Status> stopped_;
  std::string pending_error_;  // a gzip error met with the bytes before it still to parse

  // The scan's state across chunks.
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false, in_number_ = false;
  int64_t run_bytes_ = 0;  // bytes since the last string or number began
};

}  // namespace cf
