#include "kiln/http/multipart.h"

#include <fstream>
#include <vector>

#include "kiln/core/str.h"
#include "kiln/http/http_types.h"

namespace kiln::http {

namespace {

constexpr size_t kChunk = 64 << 10;
constexpr size_t kMaxHeaderBytes = 16 << 10;

// The value of `key` in a header's parameters: name="file"; filename="a.jsonl".
std::optional<std::string> param_value(std::string_view header, std::string_view key) {
  for (const std::string& piece : split(std::string(header), ';')) {
    std::string p(trim(piece));
    const size_t eq = p.find('=');
    if (eq == std::string::npos || ascii_lower(trim(p.substr(0, eq))) != key) continue;
    std::string v(trim(std::string_view(p).substr(eq + 1)));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      std::string out;
      for (size_t i = 1; i + 1 < v.size(); ++i) {
        if (v[i] == '\\' && i + 2 < v.size()) ++i;
        out += v[i];
      }
      return out;
    }
    return v;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  const auto parts = split(std::string(content_type), ';');
  if (parts.empty() || ascii_lower(trim(parts[0])) != "multipart/form-data") return std::nullopt;
  auto b = param_value(content_type, "boundary");
  if (!b || b->empty() || b->size() > 70) return std::nullopt;
  return b;
}

Status read_multipart(const std::filesystem::path& body, const std::string& boundary, const MultipartSink& sink) {
  std::ifstream in(body, std::ios::binary);
  if (!in) return internal_error("cannot read the upload");
  std::string buf;
  bool eof = false;
  // Ensures at least `n` bytes are buffered unless the body ends first.
  auto fill = [&](size_t n) {
    std::vector<char> tmp(kChunk);
    while (!eof && buf.size() < n) {
      in.read(tmp.data(), static_cast<std::streamsize>(tmp.size()));
      const auto got = in.gcount();
      if (got <= 0) eof = true;
      else buf.append(tmp.data(), static_cast<size_t>(got));
    }
  };
  auto bad = [](const std::string& m) { return invalid_argument(str_cat("Malformed multipart/form-data body: ", m, ".")); };
  const std::string first = "--" + boundary;
  const std::string delim = "\r\n--" + boundary;
  // The preamble ends at the first boundary (at the very start, or after a CRLF).
  fill(kChunk);
  size_t at = buf.rfind(first, 0) == 0 ? 0 : buf.find(delim);
  if (at == std::string::npos) return bad("the boundary was not found");
  buf.erase(0, at + (at == 0 ? first.size() : delim.size()));
  while (true) {
    fill(4);
    if (buf.rfind("--", 0) == 0) return Status();  // the closing boundary
    if (buf.rfind("\r\n", 0) != 0) return bad("a boundary is not followed by a line break");
    buf.erase(0, 2);
    fill(kMaxHeaderBytes + 4);
    const size_t hend = buf.find("\r\n\r\n");
    if (hend == std::string::npos || hend > kMaxHeaderBytes) return bad("a part's headers are missing or too large");
    MultipartPart part;
    bool disposition = false;
    for (const std::string& line : split(buf.substr(0, hend), '\n')) {
      std::string l(trim(line));
      const size_t colon = l.find(':');
      if (colon == std::string::npos || ascii_lower(trim(l.substr(0, colon))) != "content-disposition") continue;
      disposition = true;
      const std::string value = l.substr(colon + 1);
      part.name = param_value(value, "name").value_or("");
      if (auto f = param_value(value, "filename")) {
        part.filename = *f;
        part.has_filename = true;
      }
    }
    if (!disposition || part.name.empty()) return bad("a part has no Content-Disposition name");
    buf.erase(0, hend + 4);
    KILN_RETURN_IF_ERROR(sink.begin(part));
    while (true) {
      fill(kChunk + delim.size());
      const size_t d = buf.find(delim);
      if (d != std::string::npos) {
        if (d > 0) KILN_RETURN_IF_ERROR(sink.data(std::string_view(buf).substr(0, d)));
        buf.erase(0, d + delim.size());
        break;
      }
      if (eof) return bad("the body ends inside a part (no closing boundary)");
      // Keep what could be the start of a delimiter split across reads.
      const size_t keep = delim.size() - 1;
      const size_t emit = buf.size() - keep;
      KILN_RETURN_IF_ERROR(sink.data(std::string_view(buf).substr(0, emit)));
      buf.erase(0, emit);
    }
    KILN_RETURN_IF_ERROR(sink.end());
  }
}

}  // namespace kiln::http
