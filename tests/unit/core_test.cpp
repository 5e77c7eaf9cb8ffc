#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>
#include <vector>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/core/parallel.h"
#include "slmopt/core/sha256.h"
#include "test_support.h"

namespace slmopt {
namespace {

TEST(Half, RoundTripsEveryHalfValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(f32_to_f16(f), h) << h;
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 1.0f / 2048.0f)), 1.0f);                    // tie → even (down)
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f + 3.0f / 2048.0f)), 1.0f + 2.0f / 1024.0f);   // tie → even (up)
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                                            // overflow → inf
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));                               // smallest subnormal
}

TEST(BFloat16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
}

TEST(ParallelFor, VisitsEveryIndexOnceForAnyThreadCount) {
  for (int threads : {1, 2, 3, 8}) {
    set_thread_count(threads);
    std::vector<std::atomic<int>> hits(1001);
    parallel_for(hits.size(), [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
  set_thread_count(0);
}

TEST(ParallelFor, PropagatesExceptions) {
  set_thread_count(4);
  EXPECT_THROW(parallel_for(100, [](size_t b, size_t) {
                 if (b > 0) throw Error(ErrorKind::Internal, "boom");
               }),
               Error);
  set_thread_count(0);
}

TEST(AtomicFile, LeavesNothingWhenNotCommitted) {
  const auto dir = std::filesystem::temp_directory_path() / "slmopt_atomic_test";
  std::filesystem::create_directories(dir);
  const auto target = (dir / "out.bin").string();
  std::filesystem::remove(target);
  {
    AtomicFile f(target);
    f.write("abc", 3);
  }
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  {
    AtomicFile f(target);
    f.write("abc", 3);
    f.write_zeros(2);
    EXPECT_EQ(f.position(), 5u);
    f.commit();
  }
  EXPECT_EQ(std::filesystem::file_size(target), 5u);
  auto mapped = MappedFile::open(target);
  EXPECT_EQ(mapped->data()[0], 'a');
  EXPECT_EQ(mapped->data()[4], 0);
  std::filesystem::remove_all(dir);
}

// A symlink planted where the temporary used to be named (target.tmp.PID) must not be followed: the victim it
// points to keeps its bytes (issue 12: temp files opened without O_EXCL/O_NOFOLLOW).
TEST(AtomicFile, DoesNotFollowAPlantedSymlink) {
  const auto dir = std::filesystem::temp_directory_path() / "slmopt_atomic_symlink_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto target = (dir / "out.bin").string();
  const auto victim = (dir / "victim.txt").string();
  { std::ofstream(victim) << "precious"; }
  std::filesystem::create_symlink(victim, target + ".tmp." + std::to_string(::getpid()));
  {
    AtomicFile f(target);
    f.write("new", 3);
    f.commit();
  }
  std::ifstream in(victim);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "precious");
  EXPECT_EQ(std::filesystem::file_size(target), 3u);
  std::filesystem::remove_all(dir);
}

TEST(MappedFile, MissingFileIsAnIoErrorNamingThePath) {
  try {
    MappedFile::open("/nonexistent/slmopt.bin");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/slmopt.bin"), std::string::npos);
  }
}

// FIPS 180-2's examples, and a file of three million 'a's hashed in 1 MiB chunks (the digest from coreutils'
// sha256sum): the chunk boundaries and a last partial chunk must not change the digest.
TEST(Sha256, MatchesPublishedDigestsInMemoryAndFromFiles) {
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string dir = testing::scratch_dir("sha256_file");
  const auto file_with = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
    return dir + "/" + name;
  };
  EXPECT_EQ(sha256_of_file(file_with("empty", "")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of_file(file_with("million", std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(sha256_of_file(file_with("three_million", std::string(3000000, 'a'))),
            "2a152c894398719c0570f83fac34ac03a0f6e8e474b995c2403aa5434f7b9dd4");
  EXPECT_THROW(sha256_of_file(dir + "/missing"), Error);
}

}  // namespace
}  // namespace slmopt
