// GGUF container tests: the writer's bytes against a hand-built file, metadata of every value type through a
// write/read round trip, streaming order, and the reader against deliberately broken files (each must give
// Error(BadInput) naming the file and the key or tensor at fault, never a crash or a huge allocation).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/io/gguf_format.h"
#include "test_support.h"

namespace slmopt {
namespace {

// Builds GGUF bytes by hand, independently of the writer under test.
class Bytes {
 public:
  template <typename T>
  Bytes& put(T value) {
    uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    data.insert(data.end(), raw, raw + sizeof(T));
    return *this;
  }
  Bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    data.insert(data.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    data.insert(data.end(), {'G', 'G', 'U', 'F'});
    return put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  Bytes& kv_u32(std::string_view key, uint32_t v) { return str(key).put<uint32_t>(4).put<uint32_t>(v); }
  // A tensor info with ggml dims (innermost first).
  Bytes& info(std::string_view name, std::vector<uint64_t> dims, uint32_t ggml_type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(dims.size()));
    for (auto d : dims) put<uint64_t>(d);
    return put<uint32_t>(ggml_type).put<uint64_t>(offset);
  }
  Bytes& pad_to(size_t alignment) {
    while (data.size() % alignment) data.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    data.insert(data.end(), n, 0);
    return *this;
  }
  std::vector<uint8_t> data;
};

GgufFile parse(const std::vector<uint8_t>& bytes, const std::string& name = "crafted.gguf") {
  return GgufFile::parse(name, bytes.data(), bytes.size(), nullptr);
}

// Expects Error(BadInput) whose message names the file and contains every one of `needles`.
void expect_bad_input(const std::vector<uint8_t>& bytes, std::vector<std::string> needles) {
  try {
    parse(bytes);
    FAIL() << "parsed a malformed file; expected a message with '" << needles.front() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    const std::string msg = e.what();
    EXPECT_NE(msg.find("crafted.gguf"), std::string::npos) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A valid two-tensor file: "a" f32 [2, 3] (ggml dims {3, 2}) and "b" f16 [4], alignment 32.
std::vector<uint8_t> small_valid_file() {
  Bytes b;
  b.header(2, 2).kv_u32("general.alignment", 32).str("general.name").put<uint32_t>(8).str("tiny");
  b.info("a", {3, 2}, 0, 0).info("b", {4}, 1, 32).pad_to(32);
  for (int i = 0; i < 6; ++i) b.put<float>(static_cast<float>(i) + 0.5f);
  b.pad_to(32);
  for (int i = 0; i < 4; ++i) b.put<uint16_t>(f32_to_f16(static_cast<float>(-i)));
  b.pad_to(32);
  return b.data;
}

TEST(GgufFormat, ReadsHandBuiltFile) {
  const auto bytes = small_valid_file();
  const GgufFile f = parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.require_string("general.name"), "tiny");
  ASSERT_EQ(f.tensors().size(), 2u);
  const Tensor a = f.view("a");
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a.dtype(), DType::F32);
  EXPECT_EQ(a.data(), bytes.data() + f.data_offset());  // a view, not a copy
  EXPECT_EQ(a.to_f32(), (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f}));
  const Tensor b = f.view("b");
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{4}));
  EXPECT_EQ(b.to_f32(), (std::vector<float>{0.0f, -1.0f, -2.0f, -3.0f}));
}

TEST(GgufFormat, WriterProducesTheSameBytesAsTheHandBuiltFile) {
  GgufMetadata md;
  md.set("general.alignment", GgufValue::u32(32));
  md.set("general.name", GgufValue::string("tiny"));
  std::vector<float> a_values = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f};
  std::vector<float> b_values = {0.0f, -1.0f, -2.0f, -3.0f};
  std::vector<GgufTensorPlan> plans = {{"a", {2, 3}, DType::F32}, {"b", {4}, DType::F16}};
  const std::string path = testing::scratch_dir("gguf_writer_bytes") + "/tiny.gguf";
  write_gguf_file(path, md, plans, [&](size_t i) {
    return i == 0 ? Tensor::from_f32("a", {2, 3}, a_values) : Tensor::from_f32_as("b", {4}, b_values, DType::F16);
  });
  EXPECT_EQ(read_bytes(path), small_valid_file());
}

TEST(GgufFormat, MetadataOfEveryTypeRoundTrips) {
  GgufMetadata md;
  md.set("u8", GgufValue::u8(250));
  md.set("i8", GgufValue::i8(-120));
  md.set("u16", GgufValue::u16(65000));
  md.set("i16", GgufValue::i16(-32000));
  md.set("u32", GgufValue::u32(4000000000u));
  md.set("i32", GgufValue::i32(-2000000000));
  md.set("f32", GgufValue::f32(3.25f));
  md.set("bool_true", GgufValue::boolean(true));
  md.set("bool_false", GgufValue::boolean(false));
  md.set("string", GgufValue::string(std::string("h\xC3\xA9llo\0world", 12)));
  md.set("empty_string", GgufValue::string(""));
  md.set("u64", GgufValue::u64(18000000000000000000ull));
  md.set("i64", GgufValue::i64(-9000000000000000000ll));
  md.set("f64", GgufValue::f64(-1.0e-300));
  md.set("strings", GgufValue::string_array({"a", "", "\xE2\x96\x81the", "<0x0A>"}));
  md.set("floats", GgufValue::f32_array(std::vector<float>{-1000.0f, 0.0f, 1e-6f}));
  md.set("ints", GgufValue::i32_array(std::vector<int32_t>{1, 2, 6, -3}));
  md.set("uints", GgufValue::u32_array(std::vector<uint32_t>{7, 8}));
  md.set("empty_array", GgufValue::array(GgufType::U64, {}));
  md.set("bools", GgufValue::array(GgufType::Bool, {GgufValue::boolean(true), GgufValue::boolean(false)}));
  md.set("nested", GgufValue::array(GgufType::Array, {GgufValue::u32_array(std::vector<uint32_t>{1}),
                                                      GgufValue::string_array({"x", "y"})}));
  md.set("general.alignment", GgufValue::u32(64));
  const std::string path = testing::scratch_dir("gguf_metadata") + "/md.gguf";
  write_gguf_file(path, md, {}, [](size_t) -> Tensor { throw std::logic_error("no tensors"); });

  const GgufFile f = GgufFile::open(path);
  ASSERT_EQ(f.metadata().size(), md.size());
  for (size_t i = 0; i < md.size(); ++i) {
    EXPECT_EQ(f.metadata().entries()[i].first, md.entries()[i].first);
    EXPECT_EQ(f.metadata().entries()[i].second, md.entries()[i].second) << md.entries()[i].first;
  }
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_int("i8"), -120);
  EXPECT_EQ(f.get_int("u32"), 4000000000ll);
  EXPECT_EQ(f.metadata().find("u64")->to_uint(), 18000000000000000000ull);
  EXPECT_DOUBLE_EQ(*f.get_float("f32"), 3.25);
  EXPECT_EQ(f.get_bool("bool_true"), true);
  EXPECT_EQ(f.get_string("string")->size(), 12u);
  EXPECT_EQ(f.get_array("strings", GgufType::String)->size(), 4u);
  EXPECT_EQ(f.get_int("missing"), std::nullopt);
  // Wrong types are errors naming the file and the key.
  try {
    f.get_string("u8");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("'u8'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  EXPECT_THROW(f.get_int("u64"), Error);  // above INT64_MAX
  EXPECT_THROW(f.get_array("ints", GgufType::F32), Error);
  EXPECT_THROW(f.require_int("missing"), Error);
}

TEST(GgufFormat, TensorsOfEveryLayoutRoundTripAlignedAndStreamedInOrder) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  struct Case {
    std::string name;
    std::vector<int64_t> shape;
    DType dtype;
  };
  const std::vector<Case> cases = {{"f32_1d", {5}, DType::F32},           {"f16_2d", {3, 7}, DType::F16},
                                   {"bf16_3d", {2, 3, 4}, DType::BF16},   {"q8_0", {3, 64}, DType::Q8_0},
                                   {"q4_k", {2, 256}, DType::Q4_K},       {"q6_k_4d", {1, 2, 1, 256}, DType::Q6_K},
                                   {"empty", {0, 32}, DType::Q4_0},       {"i32", {3}, DType::I32}};
  std::vector<GgufTensorPlan> plans;
  std::vector<std::vector<uint8_t>> payloads;
  for (const auto& c : cases) {
    plans.push_back({c.name, c.shape, c.dtype});
    std::vector<uint8_t> bytes(Tensor::bytes_for(c.shape, c.dtype));
    for (auto& x : bytes) x = static_cast<uint8_t>(byte(rng));
    if (c.dtype == DType::Q8_0 || c.dtype == DType::Q4_K || c.dtype == DType::Q6_K)
      for (auto& x : bytes) x &= 0x3b;  // keep f16 scales finite: no exponent of all ones
    payloads.push_back(std::move(bytes));
  }
  GgufMetadata md;
  md.set("general.alignment", GgufValue::u32(64));
  std::vector<size_t> asked;
  const std::string path = testing::scratch_dir("gguf_tensors") + "/t.gguf";
  write_gguf_file(path, md, plans, [&](size_t i) {
    asked.push_back(i);
    return Tensor::owned(cases[i].name, cases[i].shape, cases[i].dtype, payloads[i]);
  });
  EXPECT_EQ(asked, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7}));

  const GgufFile f = GgufFile::open(path);
  ASSERT_EQ(f.tensors().size(), cases.size());
  EXPECT_EQ(f.data_offset() % 64, 0u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& info = f.tensors()[i];
    EXPECT_EQ(info.name, cases[i].name);
    EXPECT_EQ(info.shape, cases[i].shape);
    EXPECT_EQ(info.dtype, cases[i].dtype);
    EXPECT_EQ(info.offset % 64, 0u);
    const Tensor t = f.view(info);
    ASSERT_EQ(t.nbytes(), payloads[i].size());
    EXPECT_TRUE(std::equal(payloads[i].begin(), payloads[i].end(), t.data())) << info.name;
  }
  EXPECT_EQ(std::filesystem::file_size(path) % 64, 0u);
}

TEST(GgufFormat, WriterRefusesAMismatchedTensorAndLeavesNoFile) {
  const std::string dir = testing::scratch_dir("gguf_writer_mismatch");
  const std::string path = dir + "/bad.gguf";
  std::vector<float> values(6, 1.0f);
  try {
    write_gguf_file(path, {}, {{"a", {2, 3}, DType::F16}},
                    [&](size_t) { return Tensor::from_f32("a", {2, 3}, values); });
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir));
  EXPECT_THROW(write_gguf_file(path, {}, {{std::string(64, 'x'), {2}, DType::F32}}, nullptr), Error);
  EXPECT_THROW(write_gguf_file(path, {}, {{"a", {2}, DType::F32}, {"a", {2}, DType::F32}}, nullptr), Error);
  EXPECT_THROW(write_gguf_file(path, {}, {{"a", {1, 1, 1, 1, 2}, DType::F32}}, nullptr), Error);
  GgufMetadata bad_alignment;
  bad_alignment.set("general.alignment", GgufValue::u32(24));
  EXPECT_THROW(write_gguf_file(path, bad_alignment, {}, nullptr), Error);
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(GgufFormat, RejectsBadMagicAndVersions) {
  auto bytes = small_valid_file();
  bytes[0] = 'X';
  expect_bad_input(bytes, {"magic"});
  expect_bad_input({'G', 'G'}, {"magic"});
  for (uint32_t version : {0u, 1u, 4u, 0xffffffffu}) {
    Bytes b;
    b.header(0, 0, version);
    expect_bad_input(b.data, {"version", std::to_string(version)});
  }
  Bytes v2;
  v2.header(0, 0, 2);
  EXPECT_EQ(parse(v2.data).version(), 2u);
}

TEST(GgufFormat, RejectsAbsurdCounts) {
  Bytes kvs;
  kvs.header(0, uint64_t{1} << 60);
  expect_bad_input(kvs.data, {"metadata entries"});
  Bytes tensors;
  tensors.header(uint64_t{1} << 62, 0);
  expect_bad_input(tensors.data, {"tensors"});
  Bytes array;
  array.header(0, 1).str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 58);
  expect_bad_input(array.data, {"'tokenizer.ggml.tokens'", "elements"});
  Bytes dims;
  dims.header(1, 0).info("huge", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0);
  expect_bad_input(dims.data, {"'huge'", "absurd"});
  Bytes negative;
  negative.header(1, 0).info("neg", {~uint64_t{0}}, 0, 0);
  expect_bad_input(negative.data, {"'neg'"});
}

TEST(GgufFormat, RejectsStringsAndArraysPastTheEnd) {
  Bytes key;
  key.header(0, 1).put<uint64_t>(1000).str("abc");
  expect_bad_input(key.data, {"metadata key #0", "past the end"});
  Bytes value;
  value.header(0, 1).str("general.name").put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 62);
  expect_bad_input(value.data, {"'general.name'", "past the end"});
  Bytes array;
  array.header(0, 1).str("scores").put<uint32_t>(9).put<uint32_t>(6).put<uint64_t>(4).put<float>(1.0f);
  expect_bad_input(array.data, {"'scores'"});
  Bytes name;
  name.header(1, 0).put<uint64_t>(uint64_t{1} << 50).zeros(64);
  expect_bad_input(name.data, {"tensor name #0", "past the end"});
}

TEST(GgufFormat, RejectsUnknownTypes) {
  Bytes value;
  value.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
  expect_bad_input(value.data, {"'k'", "unknown value type 13"});
  Bytes element;
  element.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(1);
  expect_bad_input(element.data, {"'k'", "unknown value type 77"});
  Bytes ggml;
  ggml.header(1, 0).info("w", {32}, 200, 0).pad_to(32).zeros(128);
  expect_bad_input(ggml.data, {"'w'", "unknown ggml type 200"});
  Bytes removed;
  removed.header(1, 0).info("w", {32}, 4, 0).pad_to(32).zeros(128);  // Q4_2, removed from ggml
  expect_bad_input(removed.data, {"'w'", "unknown ggml type 4"});
  Bytes unsupported;
  unsupported.header(1, 0).info("w", {256}, 34, 0).pad_to(32).zeros(128);  // TQ1_0: valid but no codec here
  try {
    parse(unsupported.data);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("tq1_0"), std::string::npos);
  }
  Bytes nested;
  nested.header(0, 1).str("deep").put<uint32_t>(9);
  for (int i = 0; i < 10; ++i) nested.put<uint32_t>(9).put<uint64_t>(1);
  nested.put<uint32_t>(4).put<uint64_t>(0);
  expect_bad_input(nested.data, {"'deep'", "nests"});
}

TEST(GgufFormat, RejectsBadTensorInfos) {
  Bytes unaligned;
  unaligned.header(1, 0).info("w", {4}, 0, 8).pad_to(32).zeros(64);
  expect_bad_input(unaligned.data, {"'w'", "alignment"});
  Bytes out_of_range;
  out_of_range.header(1, 0).info("w", {4}, 0, 1024).pad_to(32).zeros(32);
  expect_bad_input(out_of_range.data, {"'w'", "past the end"});
  Bytes too_big;
  too_big.header(1, 0).info("w", {64}, 0, 0).pad_to(32).zeros(32);
  expect_bad_input(too_big.data, {"'w'", "past the end"});
  Bytes overlap;
  overlap.header(2, 0).info("x", {16}, 0, 0).info("y", {8}, 0, 32).pad_to(32).zeros(96);
  expect_bad_input(overlap.data, {"'x'", "'y'", "overlap"});
  Bytes duplicate;
  duplicate.header(2, 0).info("w", {8}, 0, 0).info("w", {8}, 0, 32).pad_to(32).zeros(64);
  expect_bad_input(duplicate.data, {"duplicate tensor 'w'"});
  Bytes duplicate_key;
  duplicate_key.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  expect_bad_input(duplicate_key.data, {"duplicate", "'k'"});
  Bytes no_dims;
  no_dims.header(1, 0).info("w", {}, 0, 0).pad_to(32);
  expect_bad_input(no_dims.data, {"'w'", "dimensions"});
  Bytes five_dims;
  five_dims.header(1, 0).info("w", {1, 1, 1, 1, 1}, 0, 0).pad_to(32).zeros(32);
  expect_bad_input(five_dims.data, {"'w'", "dimensions"});
  Bytes partial_block;
  partial_block.header(1, 0).info("q", {33}, 8, 0).pad_to(32).zeros(64);
  expect_bad_input(partial_block.data, {"'q'", "blocks"});
  Bytes long_name;
  long_name.header(1, 0).info(std::string(64, 'n'), {4}, 0, 0).pad_to(32).zeros(32);
  expect_bad_input(long_name.data, {"longer than 63"});
  for (uint32_t alignment : {0u, 24u}) {
    Bytes bad_alignment;
    bad_alignment.header(0, 1).kv_u32("general.alignment", alignment);
    expect_bad_input(bad_alignment.data, {"general.alignment"});
  }
  Bytes wrong_type_alignment;
  wrong_type_alignment.header(0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  expect_bad_input(wrong_type_alignment.data, {"general.alignment"});
  Bytes data_past_end;
  data_past_end.header(1, 0).info("w", {0}, 0, 0);  // no padding: the data section starts past the end
  expect_bad_input(data_past_end.data, {"data section"});
}

TEST(GgufFormat, EveryTruncationAndRandomCorruptionFailsCleanly) {
  const auto good = small_valid_file();
  const size_t data_end = good.size() - 24;  // "b" ends 24 bytes before the final padding ends
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> prefix(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < data_end) {
      EXPECT_THROW(parse(prefix), Error) << "prefix of " << n << " bytes";
    } else {
      EXPECT_NO_THROW(parse(prefix)) << "only padding is missing at " << n;
    }
  }
  std::mt19937 rng(123);
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = good;
    const int flips = 1 + trial % 4;
    for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    try {
      const GgufFile f = parse(bytes);
      for (const auto& info : f.tensors()) (void)f.view(info).to_f32();
    } catch (const Error& e) {
      EXPECT_TRUE(e.kind() == ErrorKind::BadInput || e.kind() == ErrorKind::Unsupported) << e.what();
    }
  }
}

TEST(GgufFormat, OpenNamesAMissingFile) {
  try {
    GgufFile::open("/nonexistent/dir/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.gguf"), std::string::npos);
  }
}

}  // namespace
}  // namespace slmopt
