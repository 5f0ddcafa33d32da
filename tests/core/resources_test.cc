// Reading input files (core/resources.h): only regular files within the bounds of
// core/limits.h are read; a directory, a device or a named pipe, a missing file and a file
// over its bound are each refused before a byte is read, with a message naming the path.
#include "core/resources.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cf {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test's temp dir, removed at the end.
class ResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("cf_resources_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  fs::path dir_;
};

void expect_refused(const StatusOr<std::string>& read, const std::string& message) {
  ASSERT_FALSE(read.ok()) << "expected: " << message;
  EXPECT_EQ(read.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(read.status().message(), message);
}

TEST_F(ResourcesTest, ReadsARegularFileWhole) {
  const std::string text = std::string(100000, 'x') + std::string("\n\0tail", 6);
  StatusOr<std::string> read = read_text_file(write("a.txt", text));
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(*read, text);
  StatusOr<std::string> empty = read_text_file(write("empty.txt", ""));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST_F(ResourcesTest, RefusesWhatIsNoRegularFile) {
  expect_refused(read_text_file(dir_.string()),
                 dir_.string() + ": not a regular file (a directory)");
  // /dev/zero would stream forever; /dev/null is empty but no file either.
  expect_refused(read_text_file("/dev/zero"), "/dev/zero: not a regular file (a character device)");
  expect_refused(read_text_file("/dev/null"), "/dev/null: not a regular file (a character device)");
  // A named pipe with no writer: refused at once, not waited on.
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(read_text_file(fifo), fifo + ": not a regular file (a named pipe)");
  const std::string missing = (dir_ / "missing.yaml").string();
  expect_refused(read_text_file(missing),
                 missing + ": cannot open file: No such file or directory");
}

// The size is judged from stat: a sparse file of 64 MiB + 1 byte costs no disk and no read.
TEST_F(ResourcesTest, RefusesAFileOverItsBound) {
  const std::string big = write("big.yaml", "");
  fs::resize_file(big, limits::kMaxTextFileBytes + 1);
  expect_refused(read_text_file(big), big +
                                          ": 67108865 bytes, more than the 67108864 allowed (64 "
                                          "MiB for a YAML or JSON input, core/limits.h)");
  const std::string small = write("small.txt", "12345");
  expect_refused(read_text_file(small, 4, "four bytes"),
                 small + ": 5 bytes, more than the 4 allowed (four bytes)");
  EXPECT_TRUE(read_text_file(small, 5, "five bytes").ok());
}

// A named resource that is a directory on disk and no embedded name gets the same refusal;
// an embedded name wins over a directory of that name.
TEST_F(ResourcesTest, NamedResourceThatIsADirectory) {
  StatusOr<Resource> directory = load_named_resource(dir_.string(), "models", "model");
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.status().message(), dir_.string() + ": not a regular file (a directory)");
  fs::create_directories(dir_ / "tiny");
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  StatusOr<Resource> tiny = load_named_resource("tiny", "models", "model");
  fs::current_path(cwd);
  ASSERT_TRUE(tiny.ok()) << tiny.status().message();
  EXPECT_EQ(tiny->origin, "<embedded:models/tiny.yaml>");
}

}  // namespace
}  // namespace cf
