// TokenIndex (ir/token_index.h): every token found at its id, absent texts not found, a repeated text keeps its
// first id and is reported, at sizes that make the table probe and wrap.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "slmopt/ir/token_index.h"

namespace slmopt {
namespace {

TEST(TokenIndex, FindsEveryTokenAndNothingElse) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back("t" + std::to_string(i * 7));
  tokens.push_back("");                        // the empty text is a token like any other
  tokens.push_back(std::string("a\0b", 3));    // so is one with a NUL inside
  const TokenIndex index(tokens);
  for (size_t id = 0; id < tokens.size(); ++id) {
    const auto found = index.find(tokens[id]);
    ASSERT_TRUE(found.has_value()) << tokens[id];
    EXPECT_EQ(*found, static_cast<int32_t>(id));
  }
  EXPECT_FALSE(index.find("t1").has_value());  // 1 is not a multiple of 7
  EXPECT_FALSE(index.find("a").has_value());
  EXPECT_FALSE(index.find(std::string("a\0c", 3)).has_value());
}

TEST(TokenIndex, KeepFirstIdReportsEachRepeat) {
  const std::vector<std::string> tokens = {"x", "y", "x", "z", "y", "x"};
  std::vector<std::pair<int32_t, int32_t>> repeats;
  const TokenIndex index(tokens, RepeatedText::KeepFirstId,
                         [&](int32_t earlier, int32_t repeat) { repeats.emplace_back(earlier, repeat); });
  EXPECT_EQ(index.find("x"), 0);
  EXPECT_EQ(index.find("y"), 1);
  EXPECT_EQ(index.find("z"), 3);
  EXPECT_EQ(repeats, (std::vector<std::pair<int32_t, int32_t>>{{0, 2}, {1, 4}, {0, 5}}));
}

// Hugging Face's vocab map keeps the last id of a repeated text: the encoder's index does too.
TEST(TokenIndex, KeepLastIdFollowsEachRepeat) {
  const std::vector<std::string> tokens = {"x", "y", "x", "z", "y", "x"};
  std::vector<std::pair<int32_t, int32_t>> repeats;
  const TokenIndex index(tokens, RepeatedText::KeepLastId,
                         [&](int32_t earlier, int32_t repeat) { repeats.emplace_back(earlier, repeat); });
  EXPECT_EQ(index.find("x"), 5);
  EXPECT_EQ(index.find("y"), 4);
  EXPECT_EQ(index.find("z"), 3);
  EXPECT_EQ(repeats, (std::vector<std::pair<int32_t, int32_t>>{{0, 2}, {1, 4}, {2, 5}}));
}

TEST(TokenIndex, EmptyVocabularyFindsNothing) {
  const std::vector<std::string> tokens;
  const TokenIndex index(tokens);
  EXPECT_FALSE(index.find("").has_value());
  EXPECT_FALSE(index.find("a").has_value());
}

}  // namespace
}  // namespace slmopt
