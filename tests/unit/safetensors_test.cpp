// safetensors reader and writers: the bundled checkpoints, write/read round trips, determinism, dtype
// conversion, sharding, and one crafted malformed file per validation rule (each must give an Error naming the
// file and the tensor, never a crash).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slmopt/core/error.h"
#include "slmopt/core/half.h"
#include "slmopt/core/mapped_file.h"
#include "slmopt/io/safetensors.h"
#include "test_support.h"

namespace slmopt {
namespace {

using slmopt::testing::model_path;
using slmopt::testing::scratch_dir;

std::string read_bytes(const std::string& path) { return read_text_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// A raw file: 8-byte length, header text, data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

bool inside(const uint8_t* p, size_t n, const MappedFile& m) {
  return p >= m.data() && p + n <= m.data() + m.size();
}

// Expects open() of `bytes` to throw `kind` with a message containing every needle.
void expect_rejected(const std::string& name, const std::string& bytes, ErrorKind kind,
                     std::vector<std::string> needles) {
  const std::string dir = scratch_dir("st_bad");
  const std::string path = dir + "/" + name + ".safetensors";
  write_bytes(path, bytes);
  needles.push_back(path);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << name << ": accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << name << ": " << e.what();
    for (const std::string& needle : needles)
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << name << ": message '" << e.what() << "' lacks '" << needle << "'";
  }
}

// 4 F32 values (16 bytes) named "w".
const std::string kData16(16, '\x01');

TEST(SafetensorsReader, BundledTinystoriesIsF32ViewsWithTheTiedAlias) {
  const SafetensorsFile file = SafetensorsFile::open(model_path("tinystories-656k/model.safetensors"));
  EXPECT_EQ(file.tensors().size(), 20u);
  EXPECT_EQ(file.data_offset(), 8u + 2160u);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("model.embed_tokens.weight"), "lm_head.weight");
  const Tensor* head = file.find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape(), (std::vector<int64_t>{2048, 128}));
  EXPECT_EQ(file.find("model.embed_tokens.weight"), nullptr);
  size_t total = 0;
  for (const Tensor& t : file.tensors()) {
    EXPECT_EQ(t.dtype(), DType::F32) << t.name();
    // Zero copy: every tensor's bytes are the mapping's bytes.
    EXPECT_TRUE(inside(t.data(), t.nbytes(), file.mapping())) << t.name();
    total += t.nbytes();
  }
  EXPECT_EQ(file.data_offset() + total, file.mapping().size());
  EXPECT_EQ(head->data(), file.mapping().data() + file.data_offset());  // lm_head is first in the data
}

TEST(SafetensorsReader, BundledKjvIsBf16) {
  const SafetensorsFile file = SafetensorsFile::open(model_path("llama-5m-kjv/model.safetensors"));
  EXPECT_EQ(file.tensors().size(), 39u);
  for (const Tensor& t : file.tensors()) EXPECT_EQ(t.dtype(), DType::BF16) << t.name();
  EXPECT_EQ(file.find("model.layers.0.self_attn.k_proj.weight")->shape(), (std::vector<int64_t>{128, 256}));
  // Tensors come back in data order.
  for (size_t i = 1; i < file.tensors().size(); ++i)
    EXPECT_LT(file.tensors()[i - 1].data(), file.tensors()[i].data());
}

std::vector<Tensor> sample_tensors() {
  std::vector<Tensor> ts;
  ts.push_back(Tensor::from_f32("b.f32", {2, 3}, std::vector<float>{1, -2, 3.5f, 0, 1e-3f, -7}));
  ts.push_back(Tensor::from_f32_as("a.f16", {3}, std::vector<float>{0.5f, -1, 65504}, DType::F16));
  ts.push_back(Tensor::from_f32_as("c.bf16", {1, 1}, std::vector<float>{3.140625f}, DType::BF16));
  ts.push_back(Tensor::owned("d.i8", {5}, DType::I8, {1, 2, 3, 0xff, 0x80}));
  std::vector<uint8_t> i32(8), i64(16);
  const int32_t i32v[2] = {-5, 123456};
  const int64_t i64v[2] = {-1, int64_t{1} << 40};
  std::memcpy(i32.data(), i32v, 8);
  std::memcpy(i64.data(), i64v, 16);
  ts.push_back(Tensor::owned("e.i32", {2}, DType::I32, i32));
  ts.push_back(Tensor::owned("f.i64", {2, 1}, DType::I64, i64));
  ts.push_back(Tensor::owned("g.empty", {0, 4}, DType::F32, {}));
  return ts;
}

std::vector<const Tensor*> pointers(const std::vector<Tensor>& ts) {
  std::vector<const Tensor*> out;
  for (const Tensor& t : ts) out.push_back(&t);
  return out;
}

TEST(SafetensorsWriter, RoundTripsEveryDtypeBitForBit) {
  const std::string dir = scratch_dir("st_roundtrip");
  const std::vector<Tensor> ts = sample_tensors();
  write_safetensors(dir + "/x.safetensors", pointers(ts), {{"format", "pt"}, {"note", "ünïcode"}});
  const SafetensorsFile file = SafetensorsFile::open(dir + "/x.safetensors");
  EXPECT_EQ(file.metadata().size(), 2u);
  EXPECT_EQ(file.metadata().at("note"), "ünïcode");
  ASSERT_EQ(file.tensors().size(), ts.size());
  for (const Tensor& t : ts) {
    const Tensor* back = file.find(t.name());
    ASSERT_NE(back, nullptr) << t.name();
    EXPECT_EQ(back->dtype(), t.dtype());
    EXPECT_EQ(back->shape(), t.shape());
    ASSERT_EQ(back->nbytes(), t.nbytes());
    // g.empty owns no buffer (data() is null), and memcmp's pointers must be valid even for 0 bytes (UBSan).
    if (t.nbytes() != 0) {
      EXPECT_EQ(std::memcmp(back->data(), t.data(), t.nbytes()), 0) << t.name();
    }
    // Laid out widest element first, so every view is aligned and none had to be copied.
    EXPECT_EQ(reinterpret_cast<uintptr_t>(back->data()) % traits(t.dtype()).block_bytes, 0u) << t.name();
    if (t.nbytes() > 0) {
      EXPECT_TRUE(inside(back->data(), back->nbytes(), file.mapping())) << t.name();
    }
  }
}

TEST(SafetensorsWriter, HeaderIsSortedPaddedAndBytesAreDeterministic) {
  const std::string dir = scratch_dir("st_determinism");
  std::vector<Tensor> ts = sample_tensors();
  write_safetensors(dir + "/a.safetensors", pointers(ts), {{"format", "pt"}});
  write_safetensors(dir + "/b.safetensors", pointers(ts), {{"format", "pt"}});
  const std::string a = read_bytes(dir + "/a.safetensors");
  EXPECT_EQ(a, read_bytes(dir + "/b.safetensors"));

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(a[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = a.substr(8, n);
  EXPECT_EQ(header.back() == ' ' || header.back() == '}', true);
  // Keys appear in sorted order in the text.
  const nlohmann::json parsed = nlohmann::json::parse(header);
  size_t last = 0;
  for (const auto& [key, value] : parsed.items()) {
    const size_t at = header.find("\"" + key + "\"");
    ASSERT_NE(at, std::string::npos);
    EXPECT_GE(at, last) << key;
    last = at;
  }
  // The 8-byte-element tensor sits first in the data.
  EXPECT_EQ(parsed["f.i64"]["data_offsets"][0].get<uint64_t>(), 0u);
  // No whole-model temporary or stray file is left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 2);
}

TEST(SafetensorsWriter, ConvertsFloatTensorsAndKeepsIntegers) {
  const std::string dir = scratch_dir("st_convert");
  const std::vector<Tensor> ts = sample_tensors();
  write_safetensors(dir + "/bf16.safetensors", pointers(ts), {}, DType::BF16);
  const SafetensorsFile file = SafetensorsFile::open(dir + "/bf16.safetensors");
  EXPECT_TRUE(file.metadata().empty());
  const Tensor* b = file.find("b.f32");
  ASSERT_EQ(b->dtype(), DType::BF16);
  const std::vector<float> src = ts[0].to_f32(), back = b->to_f32();
  for (size_t i = 0; i < src.size(); ++i) EXPECT_EQ(back[i], bf16_to_f32(f32_to_bf16(src[i]))) << i;
  // F16 → BF16 goes through float: 65504 (max half) rounds to 65536 in bfloat16.
  EXPECT_EQ(file.find("a.f16")->to_f32()[2], 65536.0f);
  EXPECT_EQ(file.find("d.i8")->dtype(), DType::I8);
  EXPECT_EQ(file.find("f.i64")->dtype(), DType::I64);
  EXPECT_EQ(file.find("g.empty")->dtype(), DType::BF16);

  write_safetensors(dir + "/f16.safetensors", pointers(ts), {}, DType::F16);
  const SafetensorsFile f16 = SafetensorsFile::open(dir + "/f16.safetensors");
  EXPECT_EQ(f16.find("b.f32")->to_f32()[4], f16_to_f32(f32_to_f16(1e-3f)));
  EXPECT_EQ(f16.find("c.bf16")->to_f32()[0], 3.140625f);  // exact in both
}

// Entries made on demand: each produce() runs once, in file order (widest elements first), and the file equals
// the one written from the stored tensors, per-entry store_as included; a made tensor that differs from its plan
// is an Error(Internal) and leaves no file.
TEST(SafetensorsWriter, EntriesAreMadeOnceInFileOrderWithTheSameBytes) {
  const std::string dir = scratch_dir("st_entries");
  const std::vector<Tensor> ts = sample_tensors();
  std::filesystem::create_directories(dir + "/stored");
  std::filesystem::create_directories(dir + "/made");
  write_safetensors_sharded(dir + "/stored", pointers(ts), {{"k", "v"}}, 1u << 30, DType::BF16);
  std::vector<std::string> order;
  std::vector<SafetensorsEntry> entries;
  for (const Tensor& t : ts)
    entries.push_back({t.name(), t.shape(), t.dtype(), [&order, &t]() {
      order.push_back(t.name());
      return t;
    }, std::nullopt});
  write_safetensors_sharded(dir + "/made", entries, {{"k", "v"}}, 1u << 30, DType::BF16);
  EXPECT_EQ(read_bytes(dir + "/made/model.safetensors"), read_bytes(dir + "/stored/model.safetensors"));
  // Widest stored elements first: I64, I32, the floats (stored as BF16) as given, then I8.
  const std::vector<std::string> want = {"f.i64", "e.i32", "b.f32", "a.f16", "c.bf16", "g.empty", "d.i8"};
  EXPECT_EQ(order, want);

  // store_as converts one entry whatever the file's float type.
  const Tensor f = Tensor::from_f32("f", {2}, std::vector<float>{1.5f, -2.25f});
  std::vector<SafetensorsEntry> one = {{"f", {2}, DType::F32, [&f]() { return f; }, DType::F16}};
  write_safetensors_sharded(dir + "/made", one, {}, 1u << 30);
  EXPECT_EQ(SafetensorsFile::open(dir + "/made/model.safetensors").find("f")->dtype(), DType::F16);

  std::vector<SafetensorsEntry> wrong = {{"f", {3}, DType::F32, [&f]() { return f; }, std::nullopt}};
  std::filesystem::create_directories(dir + "/wrong");
  try {
    write_safetensors_sharded(dir + "/wrong", wrong, {}, 1u << 30);
    FAIL() << "accepted a made tensor of another shape";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Internal);
  }
  EXPECT_FALSE(file_exists(dir + "/wrong/model.safetensors"));
}

TEST(SafetensorsWriter, RefusesQuantizedTensorsWithoutAFloatTypeAndDuplicateNames) {
  const std::string dir = scratch_dir("st_refuse");
  const Tensor q = Tensor::owned("blk.q", {32}, DType::Q8_0, std::vector<uint8_t>(34, 0));
  try {
    write_safetensors(dir + "/q.safetensors", {&q});
    FAIL() << "accepted a Q8_0 tensor";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("blk.q"), std::string::npos);
  }
  EXPECT_FALSE(file_exists(dir + "/q.safetensors"));  // nothing partial left behind

  const Tensor a = Tensor::from_f32("same", {1}, std::vector<float>{1});
  EXPECT_THROW(write_safetensors(dir + "/dup.safetensors", {&a, &a}), Error);
}

TEST(SafetensorsReader, CopiesTensorsThatAreMisalignedInTheFile) {
  // Header padded so data starts 8-aligned; the F32 tensor then starts at data + 3.
  std::string header =
      R"({"a":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  const float one = 1.5f;
  std::string data = "xyz";
  data.append(reinterpret_cast<const char*>(&one), 4);
  const std::string dir = scratch_dir("st_misaligned");
  write_bytes(dir + "/m.safetensors", raw_file(header, data));
  const SafetensorsFile file = SafetensorsFile::open(dir + "/m.safetensors");
  const Tensor* b = file.find("b");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % 4, 0u);
  EXPECT_FALSE(inside(b->data(), 4, file.mapping()));
  EXPECT_EQ(b->to_f32(), std::vector<float>{1.5f});
  EXPECT_TRUE(inside(file.find("a")->data(), 3, file.mapping()));
}

TEST(SafetensorsReader, AcceptsAnEmptyFileWithOnlyMetadataAndZeroSizedTensors) {
  const std::string dir = scratch_dir("st_empty");
  write_bytes(dir + "/e.safetensors",
              raw_file(R"({"__metadata__":{"k":"v"},"z":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}})", ""));
  const SafetensorsFile file = SafetensorsFile::open(dir + "/e.safetensors");
  EXPECT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.find("z")->numel(), 0);
  EXPECT_EQ(file.metadata().at("k"), "v");
}

TEST(SafetensorsReader, RejectsTruncatedFilesAndBadHeaderLengths) {
  expect_rejected("short", "abc", ErrorKind::BadInput, {"shorter than the 8-byte"});
  expect_rejected("empty", "", ErrorKind::BadInput, {"shorter than the 8-byte"});
  expect_rejected("long_header", le64(100) + "{}", ErrorKind::BadInput, {"header length 100 is longer than the file"});
  expect_rejected("huge_header", le64(~uint64_t{0}) + "{}", ErrorKind::BadInput, {"longer than the file"});
  expect_rejected("zero_header", le64(0), ErrorKind::BadInput, {"invalid JSON"});
}

TEST(SafetensorsReader, RejectsInvalidJsonAndNonObjects) {
  expect_rejected("invalid_json", raw_file(R"({"w":{"dtype":"F32",)", ""), ErrorKind::BadInput, {"invalid JSON"});
  expect_rejected("trailing", raw_file(R"({} x)", ""), ErrorKind::BadInput, {"invalid JSON"});
  expect_rejected("bad_utf8", raw_file("{\"\xff\xfe\":1}", ""), ErrorKind::BadInput, {"invalid JSON"});
  expect_rejected("array", raw_file("[1,2]", ""), ErrorKind::BadInput, {"not a JSON object"});
  expect_rejected("entry_not_object", raw_file(R"({"w":[1]})", kData16), ErrorKind::BadInput,
                  {"tensor 'w'", "not an object"});
  expect_rejected("metadata_not_string", raw_file(R"({"__metadata__":{"format":1}})", ""), ErrorKind::BadInput,
                  {"__metadata__", "'format'"});
}

TEST(SafetensorsReader, RejectsEntriesMissingFields) {
  expect_rejected("no_dtype", raw_file(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", kData16), ErrorKind::BadInput,
                  {"tensor 'w'", "'dtype'"});
  expect_rejected("no_shape", raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", kData16),
                  ErrorKind::BadInput, {"tensor 'w'", "'shape'"});
  expect_rejected("no_offsets", raw_file(R"({"w":{"dtype":"F32","shape":[4]}})", kData16), ErrorKind::BadInput,
                  {"tensor 'w'", "'data_offsets'"});
}

TEST(SafetensorsReader, RejectsUnknownAndRefusesUnsupportedDtypes) {
  expect_rejected("unknown_dtype", raw_file(R"({"w":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}})", kData16),
                  ErrorKind::BadInput, {"tensor 'w'", "unknown dtype 'F33'"});
  expect_rejected("dtype_number", raw_file(R"({"w":{"dtype":7,"shape":[4],"data_offsets":[0,16]}})", kData16),
                  ErrorKind::BadInput, {"tensor 'w'", "'dtype' is not a string"});
  for (const char* dtype : {"F64", "U8", "F8_E4M3", "BOOL"}) {
    expect_rejected(std::string("unsupported_") + dtype,
                    raw_file(fmt::format(R"({{"w":{{"dtype":"{}","shape":[2],"data_offsets":[0,16]}}}})", dtype),
                             kData16),
                    ErrorKind::Unsupported, {"tensor 'w'", dtype});
  }
}

TEST(SafetensorsReader, RejectsBadOffsets) {
  auto file = [](const std::string& offsets) {
    return raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":)" + offsets + "}}", kData16);
  };
  expect_rejected("offsets_one", file("[0]"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("offsets_three", file("[0,8,16]"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("offsets_string", file(R"(["0","16"])"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("offsets_negative", file("[-4,12]"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("offsets_float", file("[0,16.0]"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("offsets_object", file(R"({"a":0})"), ErrorKind::BadInput, {"tensor 'w'", "not [begin, end]"});
  expect_rejected("begin_after_end", file("[16,0]"), ErrorKind::BadInput, {"tensor 'w'", "begin after end"});
  expect_rejected("end_past_data", file("[0,32]"), ErrorKind::BadInput, {"tensor 'w'", "past the end"});
  expect_rejected("end_huge", file("[0,18446744073709551615]"), ErrorKind::BadInput, {"tensor 'w'"});
}

TEST(SafetensorsReader, RejectsShapesThatDoNotMatchTheByteRange) {
  auto file = [](const std::string& shape) {
    return raw_file(R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,16]}})", kData16);
  };
  expect_rejected("size_mismatch", file("[3]"), ErrorKind::BadInput, {"tensor 'w'", "needs 12 bytes", "hold 16"});
  expect_rejected("shape_negative", file("[-4]"), ErrorKind::BadInput, {"tensor 'w'", "non-negative integer"});
  expect_rejected("shape_float", file("[4.5]"), ErrorKind::BadInput, {"tensor 'w'", "non-negative integer"});
  expect_rejected("shape_not_array", file("4"), ErrorKind::BadInput, {"tensor 'w'", "'shape' is not an array"});
  // Products that overflow 64 bits must be caught, not wrapped into a plausible size.
  expect_rejected("shape_overflow", file("[4294967296,4294967296,4]"), ErrorKind::BadInput,
                  {"tensor 'w'", "too large"});
  expect_rejected("shape_wraps_to_16", file("[4611686018427387905,4]"), ErrorKind::BadInput, {"tensor 'w'"});
  expect_rejected("zero_dim_hides_huge", file("[0,9223372036854775807,2]"), ErrorKind::BadInput,
                  {"tensor 'w'", "too large"});
}

TEST(SafetensorsReader, RejectsOverlapsHolesAndDuplicates) {
  const std::string data(24, '\0');
  expect_rejected("overlap",
                  raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                           data),
                  ErrorKind::BadInput, {"tensor 'b'", "overlaps tensor 'a'"});
  expect_rejected("same_range",
                  raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("c":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                           data),
                  ErrorKind::BadInput, {"overlaps"});
  expect_rejected("hole",
                  raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                           data),
                  ErrorKind::BadInput, {"tensor 'b'", "bytes 8..16", "belong to no tensor"});
  expect_rejected("trailing_bytes", raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data),
                  ErrorKind::BadInput, {"bytes 16..24 at the end"});
  expect_rejected("duplicate",
                  raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("a":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})",
                           data),
                  ErrorKind::BadInput, {"duplicate tensor 'a'"});
  expect_rejected("duplicate_field", raw_file(R"({"a":{"dtype":"F32","dtype":"F16","shape":[4],"data_offsets":[0,16]}})",
                                              kData16),
                  ErrorKind::BadInput, {"duplicate key 'dtype'"});
}

// Random corruption of a valid file: every variant must load or throw slmopt::Error (run under ASan/UBSan to
// catch out-of-bounds reads as well).
TEST(SafetensorsReader, SurvivesRandomCorruption) {
  const std::string dir = scratch_dir("st_fuzz");
  const std::vector<Tensor> ts = sample_tensors();
  write_safetensors(dir + "/good.safetensors", pointers(ts), {{"format", "pt"}});
  const std::string good = read_bytes(dir + "/good.safetensors");
  std::mt19937 rng(1234);
  const std::string path = dir + "/bad.safetensors";
  int accepted = 0, rejected = 0;
  for (int round = 0; round < 450; ++round) {
    std::string bytes = good;
    const int kind = round % 3;
    if (kind == 0) {
      bytes.resize(rng() % bytes.size());  // truncation
    } else {
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        const size_t at = kind == 1 ? rng() % std::min<size_t>(bytes.size(), 8 + 400) : rng() % bytes.size();
        bytes[at] = static_cast<char>(rng() % 256);
      }
    }
    write_bytes(path, bytes);
    try {
      const SafetensorsFile file = SafetensorsFile::open(path);
      for (const Tensor& t : file.tensors()) (void)t.to_f32();
      ++accepted;
    } catch (const Error&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 150);  // truncations alone reject 150
  EXPECT_EQ(accepted + rejected, 450);
}

TEST(SafetensorsCheckpoint, ShardsRoundTripAndIndexIsChecked) {
  const std::string dir = scratch_dir("st_shards");
  const SafetensorsFile kjv = SafetensorsFile::open(model_path("llama-5m-kjv/model.safetensors"));
  std::vector<const Tensor*> all;
  for (const Tensor& t : kjv.tensors()) all.push_back(&t);
  const std::vector<std::string> files = write_safetensors_sharded(dir, all, {{"format", "pt"}}, 3u << 20);
  ASSERT_EQ(files.size(), 5u);  // 10.5 MB in 3 MB shards → 4 shards + index
  EXPECT_EQ(files[0], "model-00001-of-00004.safetensors");
  EXPECT_EQ(files[4], kSafetensorsIndexFile);
  const nlohmann::json index = nlohmann::json::parse(read_bytes(dir + "/" + kSafetensorsIndexFile));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), kjv.mapping().size() - kjv.data_offset());
  EXPECT_EQ(index["weight_map"].size(), 39u);
  for (const std::string& f : files) EXPECT_LE(std::filesystem::file_size(dir + "/" + f), (3u << 20) + 8192) << f;

  const SafetensorsCheckpoint back = read_safetensors_checkpoint(dir);
  EXPECT_EQ(back.files.size(), 4u);
  EXPECT_EQ(back.metadata.at("format"), "pt");
  ASSERT_EQ(back.tensors.size(), 39u);
  for (const Tensor& t : back.tensors) {
    const Tensor* orig = kjv.find(t.name());
    ASSERT_NE(orig, nullptr);
    ASSERT_EQ(t.nbytes(), orig->nbytes());
    EXPECT_EQ(std::memcmp(t.data(), orig->data(), t.nbytes()), 0) << t.name();
  }

  auto expect_checkpoint_error = [&](const std::string& needle) {
    try {
      read_safetensors_checkpoint(dir);
      ADD_FAILURE() << "accepted (" << needle << ")";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string index_path = dir + "/" + kSafetensorsIndexFile;
  const nlohmann::json original = index;
  // A tensor mapped to the wrong shard.
  nlohmann::json moved = original;
  moved["weight_map"]["model.norm.weight"] = "model-00001-of-00004.safetensors";
  write_bytes(index_path, moved.dump());
  expect_checkpoint_error("model.norm.weight");
  // A tensor present in a shard but missing from the map.
  nlohmann::json unlisted = original;
  unlisted["weight_map"].erase("model.norm.weight");
  write_bytes(index_path, unlisted.dump());
  expect_checkpoint_error("model.norm.weight");
  // A map entry escaping the folder.
  nlohmann::json escaping = original;
  escaping["weight_map"]["model.norm.weight"] = "../model-00004-of-00004.safetensors";
  write_bytes(index_path, escaping.dump());
  expect_checkpoint_error("not a file in the folder");
  // A missing shard.
  write_bytes(index_path, original.dump());
  std::filesystem::remove(dir + "/model-00002-of-00004.safetensors");
  expect_checkpoint_error("shard 'model-00002-of-00004.safetensors' is listed but does not exist");
  // No weights at all.
  EXPECT_THROW(read_safetensors_checkpoint(scratch_dir("st_no_weights")), Error);
}

TEST(SafetensorsCheckpoint, SmallModelsStayOneFileAndReplaceAStaleIndex) {
  const std::string dir = scratch_dir("st_single");
  const std::vector<Tensor> ts = sample_tensors();
  write_safetensors_sharded(dir, pointers(ts), {}, 1u << 20);  // fits: one file
  EXPECT_TRUE(file_exists(dir + "/model.safetensors"));
  EXPECT_FALSE(file_exists(dir + "/" + kSafetensorsIndexFile));
  write_safetensors_sharded(dir, pointers(ts), {}, 40);  // forces shards; the single file must go
  EXPECT_FALSE(file_exists(dir + "/model.safetensors"));
  EXPECT_EQ(read_safetensors_checkpoint(dir).tensors.size(), ts.size());
  write_safetensors_sharded(dir, pointers(ts), {}, 1u << 20);
  EXPECT_FALSE(file_exists(dir + "/" + kSafetensorsIndexFile));
  EXPECT_EQ(read_safetensors_checkpoint(dir).files.size(), 1u);
}

}  // namespace
}  // namespace slmopt
