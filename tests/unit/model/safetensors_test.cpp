#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "kiln/core/file.h"
#include "kiln/model/checkpoint.h"

namespace kiln::model {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() / ("kiln_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A safetensors file built by hand: the 8-byte length, the header text, the data area.
std::string raw_file(const std::string& header, const std::string& data, uint64_t claimed_len = UINT64_MAX) {
  uint64_t len = claimed_len == UINT64_MAX ? header.size() : claimed_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string bytes_of(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

void expect_open_error(const fs::path& file, StatusCode code, std::initializer_list<std::string_view> parts) {
  auto r = Checkpoint::open_file(file);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(file.string()), std::string::npos) << r.status().message();
  for (auto p : parts) EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message() << " lacks " << p;
}

TEST(Safetensors, WriteThenReadBack) {
  TempDir dir;
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, -7.0f};
  std::string b = {'\x01', '\x3f', '\x02', '\x40', '\x03', '\xc0'};  // three bf16 values
  std::string h = {'\x00', '\x3c'};                                  // one f16 (1.0)
  std::string i = {'\x07', 0, 0, 0, '\x09', 0, 0, 0};
  std::vector<TensorToWrite> tensors = {
      {"layer.b", DType::kBF16, {3}, b},
      {"layer.a", DType::kF32, {2, 3}, bytes_of(a)},
      {"h", DType::kF16, {1}, h},
      {"ids", DType::kI32, {2}, i},
      {"empty", DType::kF32, {0, 4}, ""},
  };
  ASSERT_TRUE(write_safetensors(dir.path() / "model.safetensors", tensors, {{"format", "pt"}}).is_ok());
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->tensors().size(), 5u);
  EXPECT_EQ((*ck)->total_bytes(), 24u + 6 + 2 + 8);
  for (const auto& t : tensors) {
    ASSERT_TRUE((*ck)->has(t.name));
    const TensorInfo& info = (*ck)->tensors().at(t.name);
    EXPECT_EQ(info.dtype, t.dtype);
    EXPECT_EQ(info.shape, t.shape);
    EXPECT_EQ(info.nbytes, t.bytes.size());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(info.data), info.nbytes), t.bytes) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(info.data) % dtype_size(t.dtype), 0u) << t.name;
  }
  auto got = (*ck)->get("layer.a", {2, 3});
  ASSERT_TRUE(got.is_ok());
  EXPECT_EQ((*got)->numel(), 6);
  float v[6];
  std::memcpy(v, (*got)->data, sizeof v);
  EXPECT_EQ(v[2], 3.25f);
  EXPECT_TRUE((*ck)->get("h", {1}).is_ok());
  EXPECT_TRUE((*ck)->get("layer.b", {3}).is_ok());

  auto ints = (*ck)->get("ids", {2});
  EXPECT_EQ(ints.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(ints.status().message().find("I32"), std::string::npos);

  // The header the safetensors library would accept: padded to 8 bytes, offsets contiguous.
  auto raw = read_file(dir.path() / "model.safetensors");
  ASSERT_TRUE(raw.is_ok());
  uint64_t n = 0;
  std::memcpy(&n, raw->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw->size(), 8 + n + 40);
  EXPECT_NE(raw->find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos);
}

TEST(Safetensors, StreamingWriterFillsInOrderAndInElementUnits) {
  TempDir dir;
  std::vector<TensorSpec> specs = {{"x", DType::kBF16, {37}}, {"y", DType::kF32, {5, 7}}, {"z", DType::kBF16, {64}}};
  std::vector<std::string> expected(specs.size());
  std::mt19937 rng(7);
  for (size_t i = 0; i < specs.size(); ++i) {
    expected[i].resize(specs[i].nbytes());
    for (auto& c : expected[i]) c = static_cast<char>(rng());
  }
  std::vector<uint64_t> next(specs.size(), 0);
  bool in_units = true, in_order = true;
  auto fill = [&](size_t index, uint64_t offset, uint8_t* dst, size_t size) {
    const size_t elem = dtype_size(specs[index].dtype);
    in_units &= offset % elem == 0 && size % elem == 0;
    in_order &= offset == next[index];
    next[index] = offset + size;
    std::memcpy(dst, expected[index].data() + offset, size);
    return Status::ok();
  };
  ASSERT_TRUE(write_safetensors(dir.path() / "s.safetensors", specs, fill, {}, /*chunk_bytes=*/24).is_ok());
  EXPECT_TRUE(in_units);
  EXPECT_TRUE(in_order);
  auto ck = Checkpoint::open_file(dir.path() / "s.safetensors");
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  for (size_t i = 0; i < specs.size(); ++i) {
    auto t = (*ck)->get(specs[i].name, specs[i].shape);
    ASSERT_TRUE(t.is_ok());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>((*t)->data), (*t)->nbytes), expected[i]);
  }
  // A failing fill leaves no file behind and says which tensor failed.
  auto failing = [&](size_t index, uint64_t, uint8_t*, size_t) {
    return index == 2 ? data_loss("out of entropy") : Status::ok();
  };
  Status s = write_safetensors(dir.path() / "f.safetensors", specs, failing, {}, 24);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("'z'"), std::string::npos) << s.message();
  EXPECT_FALSE(fs::exists(dir.path() / "f.safetensors"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(Safetensors, TruncatedFile) {
  TempDir dir;
  auto f = dir.path() / "t.safetensors";
  ASSERT_TRUE(write_file_atomic(f, std::string("\x10\x00\x00", 3)).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"truncated"});
  // A good file cut short inside its data area.
  ASSERT_TRUE(write_safetensors(f, {{"w", DType::kF32, {4}, bytes_of({1, 2, 3, 4})}}).is_ok());
  auto whole = read_file(f);
  ASSERT_TRUE(whole.is_ok());
  ASSERT_TRUE(write_file_atomic(f, whole->substr(0, whole->size() - 3)).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "outside the file"});
}

TEST(Safetensors, HeaderLengthThatLies) {
  TempDir dir;
  auto f = dir.path() / "lie.safetensors";
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  ASSERT_TRUE(write_file_atomic(f, raw_file(header, "abcd", 1000)).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"header length 1000", "exceeds"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(header, "abcd", ~uint64_t{0} - 1)).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"header length"});
}

TEST(Safetensors, HeaderThatIsNotJson) {
  TempDir dir;
  auto f = dir.path() / "nj.safetensors";
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32",)", "abcd")).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"not valid JSON"});
  ASSERT_TRUE(write_file_atomic(f, raw_file("[1,2,3]  ", "")).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"JSON object"});
}

TEST(Safetensors, TensorPointingOutsideTheFile) {
  TempDir dir;
  auto f = dir.path() / "out.safetensors";
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", "abcdefgh"))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "[4,12]", "outside the file"});
}

TEST(Safetensors, OverlappingRanges) {
  TempDir dir;
  auto f = dir.path() / "ov.safetensors";
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  ASSERT_TRUE(write_file_atomic(f, raw_file(header, std::string(12, 'x'))).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'a'", "'b'", "overlap"});
}

TEST(Safetensors, DtypeAndShapeAgainstByteRange) {
  TempDir dir;
  auto f = dir.path() / "mm.safetensors";
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})",
                                            std::string(16, 'x')))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "BF16", "[2, 3]", "need 12 bytes", "hold 8"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})",
                                            std::string(8, 'x')))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "unknown dtype 'F33'"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                                            std::string(8, 'x')))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "shape"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32","shape":[2]}})", std::string(8, 'x'))).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "data_offsets"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
                                            std::string(8, 'x')))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "end before"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                                            std::string(8, 'x')))
                  .is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"'w'", "too large"});
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"__metadata__":{"format":3}})", "")).is_ok());
  expect_open_error(f, StatusCode::kDataLoss, {"__metadata__"});
}

TEST(Safetensors, OtherDtypesOpenButAreRefusedWhenUsed) {
  TempDir dir;
  auto f = dir.path() / "f64.safetensors";
  ASSERT_TRUE(write_file_atomic(f, raw_file(R"({"__metadata__":{"format":"pt"},)"
                                            R"("w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                                            std::string(8, 'x')))
                  .is_ok());
  auto ck = Checkpoint::open_file(f);
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  EXPECT_TRUE((*ck)->has("w"));
  EXPECT_EQ((*ck)->unsupported_tensors().at("w"), "F64");
  auto w = (*ck)->get("w", {1});
  EXPECT_EQ(w.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(w.status().message().find("'w'"), std::string::npos);
  EXPECT_NE(w.status().message().find("F64"), std::string::npos);
}

TEST(Safetensors, MisalignedDataIsRealigned) {
  TempDir dir;
  auto f = dir.path() / "mis.safetensors";
  std::string header = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";  // 55 bytes: odd
  ASSERT_EQ(header.size() % 4, 3u);
  std::string data = bytes_of({1.0f, 2.0f, -3.5f});
  ASSERT_TRUE(write_file_atomic(f, raw_file(header, data)).is_ok());
  auto ck = Checkpoint::open_file(f);
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  auto w = (*ck)->get("w", {3});
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*w)->data) % 4, 0u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>((*w)->data), 12), data);
}

TEST(Safetensors, MissingTensorAndWrongShapeOnGet) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.path() / "model.safetensors", {{"w", DType::kBF16, {2, 2}, std::string(8, '\0')}}).is_ok());
  auto ck = Checkpoint::open(dir.path());
  ASSERT_TRUE(ck.is_ok());
  auto missing = (*ck)->get("model.norm.weight", {2});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'model.norm.weight'"), std::string::npos);
  EXPECT_NE(missing.status().message().find(dir.path().string()), std::string::npos);
  auto shape = (*ck)->get("w", {4, 1});
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(shape.status().message().find("'w'"), std::string::npos);
  EXPECT_NE(shape.status().message().find("[2, 2]"), std::string::npos);
  EXPECT_NE(shape.status().message().find("[4, 1]"), std::string::npos);
  EXPECT_NE(shape.status().message().find("model.safetensors"), std::string::npos);

  TempDir empty;
  auto none = Checkpoint::open(empty.path());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("model.safetensors"), std::string::npos);
}

TEST(Safetensors, ShardIndex) {
  TempDir dir;
  const auto& d = dir.path();
  ASSERT_TRUE(write_safetensors(d / "model-00001-of-00002.safetensors", {{"a", DType::kF32, {1}, bytes_of({1})}}).is_ok());
  ASSERT_TRUE(write_safetensors(d / "model-00002-of-00002.safetensors", {{"b", DType::kF32, {1}, bytes_of({2})}}).is_ok());
  ASSERT_TRUE(write_safetensors_index(d / "model.safetensors.index.json",
                                      {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00002-of-00002.safetensors"}},
                                      8)
                  .is_ok());
  auto ck = Checkpoint::open(d);
  ASSERT_TRUE(ck.is_ok()) << ck.status().to_string();
  EXPECT_EQ((*ck)->tensors().size(), 2u);
  EXPECT_EQ((*ck)->tensors().at("b").file, d / "model-00002-of-00002.safetensors");

  // The index names a tensor its shard does not hold.
  ASSERT_TRUE(write_safetensors_index(d / "model.safetensors.index.json",
                                      {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00001-of-00002.safetensors"}},
                                      8)
                  .is_ok());
  auto missing = Checkpoint::open(d);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(missing.status().message().find("'b'"), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find("model-00001-of-00002.safetensors"), std::string::npos);
  EXPECT_NE(missing.status().message().find("model.safetensors.index.json"), std::string::npos);

  // A shard the index names but that is not there.
  ASSERT_TRUE(write_safetensors_index(d / "model.safetensors.index.json", {{"a", "model-00003-of-00003.safetensors"}}, 4)
                  .is_ok());
  auto gone = Checkpoint::open(d);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("model-00003-of-00003.safetensors"), std::string::npos);

  // A shard name that would leave the model directory.
  ASSERT_TRUE(write_safetensors_index(d / "model.safetensors.index.json", {{"a", "../model-00001-of-00002.safetensors"}}, 4)
                  .is_ok());
  auto escape = Checkpoint::open(d);
  EXPECT_EQ(escape.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(escape.status().message().find("not a file name"), std::string::npos);

  // The same tensor in two shards.
  ASSERT_TRUE(write_safetensors(d / "model-00002-of-00002.safetensors", {{"a", DType::kF32, {1}, bytes_of({2})}}).is_ok());
  ASSERT_TRUE(write_safetensors_index(d / "model.safetensors.index.json",
                                      {{"a", "model-00001-of-00002.safetensors"}, {"x", "model-00002-of-00002.safetensors"}},
                                      8)
                  .is_ok());
  auto dup = Checkpoint::open(d);
  EXPECT_EQ(dup.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dup.status().message().find("another shard"), std::string::npos) << dup.status().message();

  ASSERT_TRUE(write_file_atomic(d / "model.safetensors.index.json", R"({"metadata": {}})").is_ok());
  auto no_map = Checkpoint::open(d);
  EXPECT_EQ(no_map.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(no_map.status().message().find("weight_map"), std::string::npos);
}

}  // namespace
}  // namespace kiln::model
