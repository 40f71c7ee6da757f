#pragma once

#include "config/limayaml/host_info.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/log.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

/// Helpers shared by the lima.yaml tests: a fake host, scratch directories, captured log lines.
namespace calima::test {

/// A deterministic host: 8 CPUs, 16 GiB, user alice (uid 501), zone Europe/Berlin.
inline host_info fake_host() {
  host_info h;
  h.goos = "linux";
  h.arch = "x86_64";
  h.cpus = 8;
  h.memory_bytes = 16ULL << 30;
  h.user_name = "alice";
  h.uid = "501";
  h.full_name = "Alice Liddell";
  h.home = "/home/alice";
  h.temp_dir = "/var/tmp/alice";
  h.timezone = "Europe/Berlin";
  h.machine_id = "machine-1234";
  h.registered_drivers = {"qemu"};
  return h;
}

/// A directory under $TMPDIR removed at destruction.
class scratch_dir {
public:
  scratch_dir() {
    std::string tmpl = (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    tmpl += "/calima-limayaml-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    path_ = mkdtemp(buf.data());
  }
  ~scratch_dir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  }
  const std::string& path() const {
    return path_;
  }

private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::string& content) {
  auto dir = path.substr(0, path.rfind('/'));
  std::string cmd = "mkdir -p '" + dir + "'";
  [[maybe_unused]] int rc = std::system(cmd.c_str());
  std::ofstream(path) << content;
}

/// Captures log lines (JSON format) written while it is alive.
class log_capture {
public:
  log_capture() {
    log::configure(log::level::info, log::format::json, false);
    testing::internal::CaptureStderr();
  }
  ~log_capture() {
    if (!done_)
      testing::internal::GetCapturedStderr();
    log::configure(log::level::info, log::format::text, false);
  }
  /// Stops capturing and returns the parsed lines.
  std::vector<nlohmann::json> lines() {
    done_ = true;
    std::istringstream in(testing::internal::GetCapturedStderr());
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);)
      if (!line.empty())
        out.push_back(nlohmann::json::parse(line));
    return out;
  }

private:
  bool done_ = false;
};

} // namespace calima::test
