// Reading safetensors: https://github.com/huggingface/safetensors describes the format (an 8-byte
// little-endian header length, a JSON header, then the data area that the header's offsets index).
#include "kiln/model/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "kiln/core/str.h"

namespace kiln::model {
namespace {

using nlohmann::json;

// The safetensors library refuses headers above 100 MB; so does kiln, before parsing one.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";

// Element sizes of every dtype the safetensors format defines.
bool safetensors_dtype_size(std::string_view name, size_t* size) {
  static const std::pair<std::string_view, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
  };
  for (const auto& [n, s] : kSizes) {
    if (n == name) {
      *size = s;
      return true;
    }
  }
  return false;
}

struct Range {
  uint64_t begin, end;
  std::string name;
};

}  // namespace

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += str_cat(i ? ", " : "", shape[i]);
  return s + "]";
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Builds a Checkpoint from validated files; the only code that touches its members.
class CheckpointBuilder {
 public:
  // Parses and validates one mapped file and adds its tensors to `ck`.
  static Status add_file(Checkpoint* ck, std::unique_ptr<MappedFile> file, std::set<std::string>* names_in_file) {
    const std::string fname = file->path().string();
    const uint64_t size = file->size();
    if (size < 8) {
      return data_loss(str_cat(fname, ": truncated: ", size, " bytes, too short for the 8-byte header length"));
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file->data()[i];
    if (header_len > size - 8) {
      return data_loss(str_cat(fname, ": header length ", header_len, " exceeds the ", size - 8,
                               " bytes after it (truncated or not a safetensors file)"));
    }
    if (header_len > kMaxHeaderBytes) {
      return data_loss(str_cat(fname, ": header length ", header_len, " exceeds the limit of ", kMaxHeaderBytes));
    }
    const char* header_begin = reinterpret_cast<const char*>(file->data() + 8);
    json header = json::parse(header_begin, header_begin + header_len, nullptr, /*allow_exceptions=*/false);
    if (header.is_discarded()) return data_loss(str_cat(fname, ": header is not valid JSON"));
    if (!header.is_object()) {
      return data_loss(str_cat(fname, ": header must be a JSON object, got ", header.type_name()));
    }
    const uint8_t* data_area = file->data() + 8 + header_len;
    const uint64_t data_size = size - 8 - header_len;

    std::map<std::string, TensorInfo> found;
    std::map<std::string, std::string> unsupported;
    std::vector<Range> ranges;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) return data_loss(str_cat(fname, ": __metadata__ must be an object"));
        for (const auto& [k, v] : entry.items()) {
          if (!v.is_string()) return data_loss(str_cat(fname, ": __metadata__ value '", k, "' must be a string"));
        }
        continue;
      }
      const std::string where = str_cat(fname, ": tensor '", name, "'");
      if (!entry.is_object()) return data_loss(str_cat(where, ": entry must be an object"));
      auto dtype_it = entry.find("dtype");
      auto shape_it = entry.find("shape");
      auto offsets_it = entry.find("data_offsets");
      if (dtype_it == entry.end() || !dtype_it->is_string()) return data_loss(str_cat(where, ": 'dtype' must be a string"));
      if (shape_it == entry.end() || !shape_it->is_array()) return data_loss(str_cat(where, ": 'shape' must be an array"));
      if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
        return data_loss(str_cat(where, ": 'data_offsets' must be an array of two offsets"));
      }
      const std::string dtype_name_str = dtype_it->get<std::string>();
      size_t elem = 0;
      if (!safetensors_dtype_size(dtype_name_str, &elem)) {
        return data_loss(str_cat(where, ": unknown dtype '", dtype_name_str, "'"));
      }
      std::vector<int64_t> shape;
      uint64_t numel = 1;
      for (const json& d : *shape_it) {
        if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
          return data_loss(str_cat(where, ": shape ", shape_it->dump(), " must hold non-negative integers"));
        }
        const uint64_t dim = d.get<uint64_t>();
        if (dim > (uint64_t{1} << 62) || __builtin_mul_overflow(numel, dim, &numel)) {
          return data_loss(str_cat(where, ": shape ", shape_it->dump(), " is too large"));
        }
        shape.push_back(static_cast<int64_t>(dim));
      }
      uint64_t expect_bytes = 0;
      if (__builtin_mul_overflow(numel, elem, &expect_bytes)) {
        return data_loss(str_cat(where, ": shape ", shape_it->dump(), " is too large"));
      }
      const json& b = (*offsets_it)[0];
      const json& e = (*offsets_it)[1];
      if (!b.is_number_unsigned() || !e.is_number_unsigned()) {
        return data_loss(str_cat(where, ": data_offsets ", offsets_it->dump(), " must be non-negative integers"));
      }
      const uint64_t begin = b.get<uint64_t>(), end = e.get<uint64_t>();
      if (end < begin) return data_loss(str_cat(where, ": data_offsets ", offsets_it->dump(), " end before they begin"));
      if (end > data_size) {
        return data_loss(str_cat(where, ": data_offsets ", offsets_it->dump(), " point outside the file (its data area holds ",
                                 data_size, " bytes)"));
      }
      if (end - begin != expect_bytes) {
        return data_loss(str_cat(where, ": dtype ", dtype_name_str, " and shape ", shape_to_string(shape), " need ",
                                 expect_bytes, " bytes but data_offsets ", offsets_it->dump(), " hold ", end - begin));
      }
      DType dtype;
      if (!parse_dtype(dtype_name_str, &dtype)) {
        unsupported[name] = dtype_name_str;
      } else {
        TensorInfo& t = found[name];
        t.name = name;
        t.dtype = dtype;
        t.shape = std::move(shape);
        t.data = data_area + begin;
        t.nbytes = static_cast<size_t>(expect_bytes);
        t.file = file->path();
      }
      if (begin != end) ranges.push_back({begin, end, name});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& x, const Range& y) { return x.begin < y.begin; });
    for (size_t i = 1; i < ranges.size(); ++i) {
      if (ranges[i].begin < ranges[i - 1].end) {
        return data_loss(str_cat(fname, ": tensors '", ranges[i - 1].name, "' [", ranges[i - 1].begin, ", ",
                                 ranges[i - 1].end, ") and '", ranges[i].name, "' [", ranges[i].begin, ", ",
                                 ranges[i].end, ") overlap"));
      }
    }

    for (auto& [name, t] : found) {
      if (ck->tensors_.count(name) || ck->unsupported_.count(name)) {
        return data_loss(str_cat(fname, ": tensor '", name, "' also appears in another shard"));
      }
      if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
        // A header not padded to 8 bytes leaves the data misaligned; kernels need aligned rows.
        auto copy = std::make_unique<uint64_t[]>((t.nbytes + 7) / 8);
        std::memcpy(copy.get(), t.data, t.nbytes);
        t.data = reinterpret_cast<const uint8_t*>(copy.get());
        ck->realigned_.push_back(std::move(copy));
      }
      if (names_in_file) names_in_file->insert(name);
      ck->tensors_.emplace(name, std::move(t));
    }
    for (auto& [name, dt] : unsupported) {
      if (ck->tensors_.count(name) || ck->unsupported_.count(name)) {
        return data_loss(str_cat(fname, ": tensor '", name, "' also appears in another shard"));
      }
      if (names_in_file) names_in_file->insert(name);
      ck->unsupported_.emplace(name, dt);
    }
    ck->files_.push_back(std::move(file));
    return Status::ok();
  }

  static Result<std::unique_ptr<Checkpoint>> open_sharded(const std::filesystem::path& dir) {
    const auto index_path = dir / kIndexFile;
    const std::string iname = index_path.string();
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(index_path));
    json index = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded()) return data_loss(str_cat(iname, ": not valid JSON"));
    if (!index.is_object()) return data_loss(str_cat(iname, ": must be a JSON object"));
    auto wm = index.find("weight_map");
    if (wm == index.end() || !wm->is_object()) return data_loss(str_cat(iname, ": 'weight_map' must be an object"));
    std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensor names
    for (const auto& [name, shard] : wm->items()) {
      if (!shard.is_string()) return data_loss(str_cat(iname, ": weight_map['", name, "'] must be a file name"));
      const std::string s = shard.get<std::string>();
      // Shards live beside the index; a path could reach files outside the model directory.
      if (s.empty() || s.find('/') != std::string::npos || s.find('\\') != std::string::npos || s == "." || s == "..") {
        return data_loss(str_cat(iname, ": weight_map['", name, "'] = '", s, "' is not a file name in ", dir.string()));
      }
      by_shard[s].push_back(name);
    }
    if (by_shard.empty()) return data_loss(str_cat(iname, ": 'weight_map' names no tensors"));
    std::unique_ptr<Checkpoint> ck(new Checkpoint());
    ck->dir_ = dir;
    for (const auto& [shard, names] : by_shard) {
      KILN_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(dir / shard));
      std::set<std::string> in_file;
      KILN_RETURN_IF_ERROR(add_file(ck.get(), std::move(mapped), &in_file));
      for (const auto& n : names) {
        if (!in_file.count(n)) {
          return data_loss(str_cat((dir / shard).string(), ": tensor '", n, "' named by ", kIndexFile,
                                   " is missing from this shard"));
        }
      }
    }
    return ck;
  }

  static Result<std::unique_ptr<Checkpoint>> open_single(const std::filesystem::path& file,
                                                         const std::filesystem::path& dir) {
    KILN_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(file));
    std::unique_ptr<Checkpoint> ck(new Checkpoint());
    ck->dir_ = dir;
    KILN_RETURN_IF_ERROR(add_file(ck.get(), std::move(mapped), nullptr));
    return ck;
  }
};

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir / kIndexFile, ec)) return CheckpointBuilder::open_sharded(dir);
  if (std::filesystem::exists(dir / kSingleFile, ec)) return CheckpointBuilder::open_single(dir / kSingleFile, dir);
  return not_found(str_cat(dir.string(), ": no ", kSingleFile, " or ", kIndexFile));
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::open_file(const std::filesystem::path& file) {
  return CheckpointBuilder::open_single(file, file.parent_path());
}

Result<const TensorInfo*> Checkpoint::get(const std::string& name, const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    auto u = unsupported_.find(name);
    if (u != unsupported_.end()) {
      return unimplemented(str_cat(dir_.string(), ": tensor '", name, "' has dtype ", u->second,
                                   "; kiln reads F32, F16 and BF16 weights"));
    }
    return not_found(str_cat(dir_.string(), ": tensor '", name, "' is missing from the checkpoint"));
  }
  const TensorInfo& t = it->second;
  if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16) {
    return unimplemented(str_cat(t.file.string(), ": tensor '", name, "' has dtype ", dtype_name(t.dtype),
                                 "; kiln reads F32, F16 and BF16 weights"));
  }
  if (t.shape != shape) {
    return invalid_argument(str_cat(t.file.string(), ": tensor '", name, "' has shape ", shape_to_string(t.shape),
                                    ", expected ", shape_to_string(shape), " from config.json"));
  }
  return &t;
}

size_t Checkpoint::total_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.nbytes;
  return n;
}

void Checkpoint::populate() const {
  for (const auto& f : files_) f->populate();
}

}  // namespace kiln::model
