#include "config/util/log.hpp"

#include "config/util/go_format.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

namespace calima::log {

namespace {

struct settings {
  level min = level::info;
  format fmt = format::text;
  bool colour = false;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

settings& current() {
  static settings s;
  return s;
}

std::mutex& write_mutex() {
  static std::mutex m;
  return m;
}

const char* level_name(level l) {
  switch (l) {
    case level::trace: return "trace";
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warning: return "warning";
    case level::error: return "error";
    case level::fatal: return "fatal";
  }
  return "info";
}

/// logrus' needsQuoting: anything outside [A-Za-z0-9-._/@^+] is quoted with %q.
std::string logrus_value(std::string_view v) {
  bool plain = std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '/' || c == '@' || c == '^' || c == '+';
  });
  return plain ? std::string(v) : go_quote(v);
}

/// RFC 3339 with the local zone offset, as Go's time.RFC3339 prints it ("Z" for UTC).
std::string rfc3339_now() {
  auto now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  if (off == 0)
    return std::string(buf) + "Z";
  char sign = off < 0 ? '-' : '+';
  off = off < 0 ? -off : off;
  return fmt::format("{}{}{:02}:{:02}", buf, sign, off / 3600, (off % 3600) / 60);
}

int colour_code(level l) {
  switch (l) {
    case level::trace:
    case level::debug: return 37;
    case level::info: return 36;
    case level::warning: return 33;
    default: return 31;
  }
}

} // namespace

void configure(level min_level, format fmt, bool colour) {
  auto& s = current();
  s.min = min_level;
  s.fmt = fmt;
  s.colour = colour;
}

bool parse_level(std::string_view name, level& out) {
  if (name == "trace") out = level::trace;
  else if (name == "debug") out = level::debug;
  else if (name == "info") out = level::info;
  else if (name == "warn" || name == "warning") out = level::warning;
  else if (name == "error") out = level::error;
  else if (name == "fatal" || name == "panic") out = level::fatal;
  else return false;
  return true;
}

level min_level() {
  return current().min;
}

std::string render(level lvl, std::string_view msg, const fields& extra, format fmt, bool colour) {
  auto sorted = extra;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const field& a, const field& b) { return a.first < b.first; });
  if (fmt == format::json) {
    // encoding/json sorts map keys: fields, level, msg and time all in one sorted object.
    std::map<std::string, std::string> obj;
    for (auto& [k, v] : sorted)
      obj[k] = v;
    obj["level"] = level_name(lvl);
    obj["msg"] = std::string(msg);
    obj["time"] = rfc3339_now();
    return nlohmann::json(obj).dump() + "\n";
  }
  std::string line;
  if (colour) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 current().start)
                  .count();
    std::string text = level_name(lvl);
    for (auto& c : text)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    text.resize(4);
    int code = colour_code(lvl);
    std::string m(msg);
    while (!m.empty() && m.back() == '\n')
      m.pop_back();
    line = fmt::format("\x1b[{}m{}\x1b[0m[{:04}] {}", code, text, secs,
                       sorted.empty() ? m : fmt::format("{:<44}", m));
    for (auto& [k, v] : sorted)
      line += fmt::format(" \x1b[{}m{}\x1b[0m={}", code, k, logrus_value(v));
  } else {
    line = fmt::format("time={} level={} msg={}", logrus_value(rfc3339_now()), level_name(lvl),
                       logrus_value(msg));
    for (auto& [k, v] : sorted)
      line += fmt::format(" {}={}", k, logrus_value(v));
  }
  return line + "\n";
}

void write(level lvl, std::string_view msg, const fields& extra) {
  auto& s = current();
  if (lvl < s.min)
    return;
  auto line = render(lvl, msg, extra, s.fmt, s.colour);
  std::lock_guard<std::mutex> guard(write_mutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

} // namespace calima::log
