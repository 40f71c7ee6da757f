/// `limactl screenshot INSTANCE [-o FILE]` (spec §6.18): the guest's display as PNG or BMP.
/// Lima asks its host agent (`GET /v1/screenshot`); calima asks the supervisor, whose VM actor
/// runs QMP `screendump` (PNG directly; BMP converted here from QEMU's PPM).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_client.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/store/store.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <fmt/format.h>
#include <unistd.h>

namespace calima::cli {

namespace {

namespace proto = calima::protocol;

struct screenshot_options {
  std::string output;
  std::vector<std::string> args;
};

void put_le(std::string& out, uint32_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

/// A binary PPM (P6, maxval 255) as a 24-bit bottom-up BMP.
std::string ppm_to_bmp(const std::string& ppm) {
  size_t pos = 0;
  auto token = [&]() -> std::string {
    while (pos < ppm.size()) {
      if (ppm[pos] == '#') {
        while (pos < ppm.size() && ppm[pos] != '\n')
          ++pos;
      } else if (std::isspace(static_cast<unsigned char>(ppm[pos]))) {
        ++pos;
      } else {
        break;
      }
    }
    size_t start = pos;
    while (pos < ppm.size() && !std::isspace(static_cast<unsigned char>(ppm[pos])))
      ++pos;
    return ppm.substr(start, pos - start);
  };
  if (token() != "P6")
    throw cli_error("QEMU's screendump is not a binary PPM");
  auto width = std::stoul(token());
  auto height = std::stoul(token());
  if (token() != "255")
    throw cli_error("QEMU's screendump has an unexpected colour depth");
  ++pos; // the single whitespace after maxval
  if (ppm.size() < pos + width * height * 3)
    throw cli_error("QEMU's screendump is truncated");
  size_t row = (width * 3 + 3) / 4 * 4;
  std::string bmp = "BM";
  put_le(bmp, static_cast<uint32_t>(54 + row * height), 4);
  put_le(bmp, 0, 4);
  put_le(bmp, 54, 4);
  put_le(bmp, 40, 4); // BITMAPINFOHEADER
  put_le(bmp, static_cast<uint32_t>(width), 4);
  put_le(bmp, static_cast<uint32_t>(height), 4);
  put_le(bmp, 1, 2);
  put_le(bmp, 24, 2);
  put_le(bmp, 0, 4);
  put_le(bmp, static_cast<uint32_t>(row * height), 4);
  put_le(bmp, 2835, 4);
  put_le(bmp, 2835, 4);
  put_le(bmp, 0, 4);
  put_le(bmp, 0, 4);
  for (size_t y = height; y-- > 0;) {
    const char* line = ppm.data() + pos + y * width * 3;
    for (size_t x = 0; x < width; ++x) {
      bmp += line[x * 3 + 2]; // BGR
      bmp += line[x * 3 + 1];
      bmp += line[x * 3];
    }
    bmp.append(row - width * 3, '\0');
  }
  return bmp;
}

void run_screenshot(const screenshot_options& o) {
  check_args(o.args, 1, 1, "limactl screenshot", "limactl screenshot INSTANCE",
             "Take a screenshot of the instance's display");
  auto& name = o.args[0];
  auto output = o.output.empty() ? name + "-screenshot.png" : o.output;
  auto dot = output.rfind('.');
  auto ext = dot == std::string::npos ? "" : output.substr(dot);
  if (ext != ".png" && ext != ".bmp")
    throw cli_error(fmt::format("unsupported screenshot format {}: the file name must end in "
                                ".png or .bmp",
                                go_quote(ext.empty() ? output : ext)));
  store::instance inst;
  try {
    inst = inspect_live(name);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (inst.state != store::status::running)
    throw cli_error(fmt::format("instance {} is not running (status: {})", go_quote(name),
                                store::to_string(inst.state)));
  // QEMU (same user) writes the dump into the instance directory; it is read back and removed.
  auto dump = fmt::format("{}/.screenshot-{}.{}", inst.dir, ::getpid(), ext == ".png" ? "png" : "ppm");
  try {
    supervisor_request(proto::op::qmp, {{"instance", name},
                                        {"command", "screendump"},
                                        {"arguments", {{"filename", dump},
                                                       {"format", ext == ".png" ? "png" : "ppm"}}}});
  } catch (const cli_error& e) {
    ::unlink(dump.c_str());
    throw cli_error(fmt::format("failed to take a screenshot of instance {}: {}", go_quote(name),
                                e.what()));
  }
  auto data = fs::read_file(dump);
  ::unlink(dump.c_str());
  if (!data)
    throw cli_error(fmt::format("QEMU wrote no screenshot to {}", go_quote(dump)));
  auto bytes = ext == ".png" ? *data : ppm_to_bmp(*data);
  try {
    fs::write_file_atomic(output, bytes, 0644);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  log::info(fmt::format("Screenshot saved to {} ({} bytes)", go_quote(output), bytes.size()));
}

} // namespace

void register_screenshot(CLI::App& root) {
  auto o = std::make_shared<screenshot_options>();
  auto* cmd = root.add_subcommand("screenshot", "Take a screenshot of the instance's display");
  cmd->group("Advanced Commands");
  cmd->add_option("-o,--output", o->output,
                  "Output file (.png or .bmp; default INSTANCE-screenshot.png)");
  cmd->add_option("instance", o->args);
  set_action(cmd, [o] { run_screenshot(*o); });
}

} // namespace calima::cli
