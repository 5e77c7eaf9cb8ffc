#include "slmopt/text/dataset.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "slmopt/core/atomic_file.h"
#include "slmopt/core/error.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/hf_tokenizer.h"
#include "expect_helpers.h"
#include "test_support.h"

namespace slmopt {
namespace {

using Ids = std::vector<int32_t>;
using testing::expect_error;

std::string write_scratch(const std::string& name, const std::string& bytes) {
  const std::string path = testing::scratch_dir("dataset") + "/" + name;
  write_file_atomic(path, bytes);
  return path;
}

std::string le32(std::initializer_list<uint32_t> values) {
  std::string bytes;
  for (const uint32_t v : values) {
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  return bytes;
}

TEST(Dataset, ReadsBinaryTokenFiles) {
  const std::string path = write_scratch("ids.bin", le32({0, 1, 4095, 258}));
  EXPECT_EQ(read_token_file(path, 4096), (Ids{0, 1, 4095, 258}));
  const std::string upper = write_scratch("IDS.BIN", le32({7}));
  EXPECT_EQ(read_token_file(upper, 8), (Ids{7}));
  const std::string bad = write_scratch("bad.bin", le32({5, 4096, 1}));
  expect_error([&] { read_token_file(bad, 4096); }, ErrorKind::BadInput, {bad, "token 1", "byte offset 4", "4096"});
  const std::string huge = write_scratch("huge.bin", le32({0xFFFFFFFFu}));
  expect_error([&] { read_token_file(huge, 4096); }, ErrorKind::BadInput, {huge, "4294967295"});
  const std::string ragged = write_scratch("ragged.bin", le32({1}) + "xy");
  expect_error([&] { read_token_file(ragged, 4096); }, ErrorKind::BadInput, {ragged, "multiple of 4"});
  EXPECT_EQ(read_token_file(write_scratch("empty.bin", ""), 10), Ids{});
}

TEST(Dataset, ReadsTextTokenFiles) {
  const std::string path = write_scratch("ids.txt", "1 2\n  3\t4\r\n\n5\n");
  EXPECT_EQ(read_token_file(path, 6), (Ids{1, 2, 3, 4, 5}));
  const std::string garbage = write_scratch("garbage.txt", "1 2\n3 x4 5\n");
  expect_error([&] { read_token_file(garbage, 10); }, ErrorKind::BadInput, {garbage, "line 2, column 3", "'x4'"});
  const std::string suffix = write_scratch("suffix.txt", "12a");
  expect_error([&] { read_token_file(suffix, 100); }, ErrorKind::BadInput, {"line 1, column 1", "'12a'"});
  const std::string negative = write_scratch("negative.txt", "0 -1");
  expect_error([&] { read_token_file(negative, 10); }, ErrorKind::BadInput, {"column 3", "'-1'"});
  const std::string large = write_scratch("large.txt", "3\n 10");
  expect_error([&] { read_token_file(large, 10); }, ErrorKind::BadInput, {large, "line 2, column 2", "10"});
  const std::string overflow = write_scratch("overflow.txt", "99999999999999999999999999");
  expect_error([&] { read_token_file(overflow, 10); }, ErrorKind::BadInput, {"outside the vocabulary"});
  expect_error([&] { read_token_file(testing::scratch_dir("dataset_missing") + "/none.txt", 10); }, ErrorKind::Io,
               {"none.txt"});
}

TEST(Dataset, TokenizesWholeFilesWithoutSpecialTokens) {
  const Tokenizer t(load_hf_vocab(testing::model_path("tinystories-656k/tokenizer.json"),
                                  testing::model_path("tinystories-656k/tokenizer_config.json")));
  const std::string path = testing::data_path("tinystories-eval.txt");
  const Ids ids = tokenize_file(t, path);
  EXPECT_EQ(ids, t.encode(read_text_file(path), false));
  EXPECT_EQ(ids.size(), 97014u);  // @huggingface/tokenizers gives the same 97014 ids for the whole file
  EXPECT_NE(ids.front(), 1);      // no BOS
  const std::string bad = write_scratch("latin1.txt", "caf\xE9");
  expect_error([&] { tokenize_file(t, bad); }, ErrorKind::BadInput, {bad, "UTF-8"});
}

Ids iota(int n) {
  Ids v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(Dataset, EvalWindowsWithBos) {
  // ctx 4 → [BOS] + 3 corpus tokens; 10 tokens: 0-2, 3-5, 6-8, and {9} (one scored token) is dropped.
  auto w = make_eval_windows(iota(10), 4, 100);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].tokens, (Ids{100, 0, 1, 2}));
  EXPECT_EQ(w[1].tokens, (Ids{100, 3, 4, 5}));
  EXPECT_EQ(w[2].tokens, (Ids{100, 6, 7, 8}));
  for (const auto& window : w) EXPECT_EQ(window.first_scored, 1);
  // 11 tokens: the last piece {9, 10} has two scored tokens and is kept.
  w = make_eval_windows(iota(11), 4, 100);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w[3].tokens, (Ids{100, 9, 10}));
  EXPECT_EQ(w[3].first_scored, 1);
  // Every corpus token is scored exactly once.
  size_t scored = 0;
  for (const auto& window : w) scored += window.tokens.size() - static_cast<size_t>(window.first_scored);
  EXPECT_EQ(scored, 11u);
  EXPECT_EQ(make_eval_windows(iota(11), 4, 100, 2).size(), 2u);
  EXPECT_EQ(make_eval_windows(iota(1), 4, 100).size(), 0u);
  ASSERT_EQ(make_eval_windows(iota(2), 4, 100).size(), 1u);
  // ctx 2 with BOS: one corpus token per window.
  w = make_eval_windows(iota(3), 2, 7);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[2].tokens, (Ids{7, 2}));
}

TEST(Dataset, EvalWindowsWithoutBos) {
  // ctx 4 → 4 corpus tokens, the first unscored; 10 tokens: 0-3, 4-7, and {8, 9} (one scored token) is dropped.
  auto w = make_eval_windows(iota(10), 4, std::nullopt);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].tokens, (Ids{0, 1, 2, 3}));
  EXPECT_EQ(w[1].tokens, (Ids{4, 5, 6, 7}));
  EXPECT_EQ(w[1].first_scored, 1);
  w = make_eval_windows(iota(11), 4, std::nullopt);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[2].tokens, (Ids{8, 9, 10}));
  EXPECT_EQ(make_eval_windows(iota(12), 4, std::nullopt, 1).size(), 1u);
  EXPECT_EQ(make_eval_windows({}, 4, std::nullopt).size(), 0u);
  expect_error([] { make_eval_windows(iota(10), 1, std::nullopt); }, ErrorKind::Usage, {"1"});
  expect_error([] { make_eval_windows(iota(10), 4, std::nullopt, -1); }, ErrorKind::Usage, {"-1"});
}

TEST(Dataset, CalibrationWindowsAreDeterministicSlices) {
  const Ids corpus = iota(1000);
  const auto a = sample_calibration_windows(corpus, 16, 32, 1234, std::nullopt);
  const auto b = sample_calibration_windows(corpus, 16, 32, 1234, std::nullopt);
  const auto c = sample_calibration_windows(corpus, 16, 32, 1235, std::nullopt);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 16u);
  std::set<int32_t> starts;
  for (const Ids& window : a) {
    ASSERT_EQ(window.size(), 32u);
    for (size_t i = 1; i < window.size(); ++i) EXPECT_EQ(window[i], window[i - 1] + 1);  // contiguous slice
    EXPECT_LE(window.back(), 999);
    starts.insert(window.front());
  }
  EXPECT_GT(starts.size(), 12u);  // 16 draws from 969 offsets: repeats are rare
  // splitmix64 is fixed: these offsets are the same on every platform and standard library.
  EXPECT_EQ(a[0].front(), sample_calibration_windows(corpus, 1, 32, 1234, std::nullopt)[0].front());
  const auto pinned = sample_calibration_windows(corpus, 4, 32, 42, std::nullopt);
  EXPECT_EQ((Ids{pinned[0][0], pinned[1][0], pinned[2][0], pinned[3][0]}), (Ids{370, 775, 669, 906}));

  const auto with_bos = sample_calibration_windows(corpus, 3, 32, 1234, 5000);
  for (const Ids& window : with_bos) {
    ASSERT_EQ(window.size(), 32u);
    EXPECT_EQ(window[0], 5000);
    for (size_t i = 2; i < window.size(); ++i) EXPECT_EQ(window[i], window[i - 1] + 1);
  }
  // A corpus exactly one window long has a single start.
  for (const Ids& window : sample_calibration_windows(iota(32), 5, 32, 9, std::nullopt)) EXPECT_EQ(window, iota(32));
  // With BOS a 32-token window takes 31 corpus tokens: from offset 0 or 1 of a 32-token corpus.
  for (const Ids& window : sample_calibration_windows(iota(32), 8, 32, 9, 77)) {
    ASSERT_EQ(window.size(), 32u);
    EXPECT_EQ(window[0], 77);
    EXPECT_TRUE(window[1] == 0 || window[1] == 1) << window[1];
    EXPECT_EQ(window.back(), window[1] + 30);
  }
}

TEST(Dataset, CalibrationRefusesShortCorporaAndBadSizes) {
  expect_error([] { sample_calibration_windows(iota(100), 4, 128, 0, std::nullopt); }, ErrorKind::BadInput,
               {"100", "128"});
  expect_error([] { sample_calibration_windows(iota(100), 0, 16, 0, std::nullopt); }, ErrorKind::Usage, {"0"});
  expect_error([] { sample_calibration_windows(iota(100), 4, 1, 0, std::nullopt); }, ErrorKind::Usage, {"1"});
}

}  // namespace
}  // namespace slmopt
