// What gets downloaded before a start (cli spec §13.4, runtime spec §2.3): the image, kernel and
// initrd of the first usable `images[]` entry, and UEFI code from `firmware.images[]`.

#include "config/download/download_cache.hpp"

#include "config/util/go_format.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/util/log.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::download {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string base_name(const std::string& location) {
  auto slash = location.find_last_of('/');
  return slash == std::string::npos ? location : location.substr(slash + 1);
}

file_ref ref_of(const limayaml::opt_string& location, const limayaml::opt_string& arch,
                const limayaml::opt_string& digest, const std::string& fallback_arch) {
  file_ref f;
  f.location = location.value_or("");
  f.arch = arch && !arch->empty() ? *arch : fallback_arch;
  f.digest = digest.value_or("");
  return f;
}

void write_cmdline(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f)
    throw error(path_error("open", path, errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok)
    throw error(path_error("write", path, errno));
}

/// Downloads one `images[]` entry: image, then kernel (+ cmdline), then initrd.
void download_candidate(const limayaml::image& img, const std::string& inst,
                        const std::string& arch, const std::string& cache_dir) {
  auto image_arch = img.arch.value_or(arch);
  download_file(inst + "/image", ref_of(img.location, img.arch, img.digest, arch), true,
                "the image", arch, cache_dir);
  if (img.kernel) {
    download_file(inst + "/kernel",
                  ref_of(img.kernel->location, img.kernel->arch, img.kernel->digest, image_arch),
                  true, "the kernel", arch, cache_dir);
    if (img.kernel->cmdline && !img.kernel->cmdline->empty())
      write_cmdline(inst + "/kernel.cmdline", *img.kernel->cmdline);
  }
  if (img.initrd)
    download_file(inst + "/initrd",
                  ref_of(img.initrd->location, img.initrd->arch, img.initrd->digest, image_arch),
                  false, "the initrd", arch, cache_dir);
}

} // namespace

result download_file(const std::string& dest, const file_ref& f, bool decompress,
                     const std::string& description, const std::string& expected_arch,
                     const std::string& cache_dir) {
  if (f.arch != expected_arch)
    throw skipped_error(fmt::format("skipped to download: {}: unsupported arch: {}",
                                    go_quote(f.location), go_quote(f.arch)));
  log::info("Attempting to download " + description,
            {{"location", f.location}, {"arch", f.arch}, {"digest", f.digest}});
  options o;
  o.cache_dir = cache_dir;
  o.decompress = decompress;
  o.expected_digest = f.digest;
  o.description = fmt::format("{} ({})", description, base_name(f.location));
  result r;
  try {
    r = download(dest, f.location, o);
  } catch (const error& e) {
    throw error(fmt::format("failed to download {}: {}", go_quote(f.location), e.what()));
  }
  switch (r.status) {
  case status::downloaded:
    log::info(fmt::format("Downloaded {} from {}", description, go_quote(f.location)));
    break;
  case status::used_cache:
    log::info(fmt::format("Using cache {}", go_quote(r.cache_path)));
    break;
  case status::skipped:
    log::debug(fmt::format("{} already exists, not downloading {}", go_quote(dest), description));
    break;
  }
  return r;
}

void prepare_images(const limayaml::lima_yaml& cfg, const std::string& inst) {
  prepare_images(cfg, inst, default_cache_dir());
}

void prepare_images(const limayaml::lima_yaml& cfg, const std::string& inst,
                    const std::string& cache_dir) {
  if (exists(inst + "/image") || exists(inst + "/disk"))
    return; // restarts never download
  auto arch = cfg.arch.value_or(host_arch_name());
  const limayaml::image* first = nullptr;
  for (const auto& img : cfg.images)
    if (img.arch.value_or(arch) == arch) {
      first = &img;
      break;
    }
  if (!first)
    throw error("no images are configured (did you set --image-variant or --arch-variant to a "
                "value not present in the template?)");

  std::string errors;
  for (const auto& img : cfg.images) {
    if (img.arch.value_or(arch) != arch) {
      log::debug(fmt::format("skipped to download: {}: unsupported arch: {}",
                             go_quote(img.location.value_or("")), go_quote(img.arch.value_or(""))));
      continue;
    }
    if (img.variant != first->variant || img.arch_variant != first->arch_variant)
      continue;
    try {
      download_candidate(img, inst, arch, cache_dir);
      return;
    } catch (const error& e) {
      errors += (errors.empty() ? "" : "\n") + std::string(e.what());
      // A half-downloaded candidate must not be mistaken for a complete one on the next try.
      for (const char* name : {"image", "kernel", "kernel.cmdline", "initrd"})
        ::unlink((inst + "/" + name).c_str());
    }
  }
  throw error(errors);
}

std::string prepare_nerdctl_archive(const limayaml::lima_yaml& cfg, const std::string& cache_dir) {
  auto& cd = cfg.containerd;
  if (!cd || !(cd->system.value_or(false) || cd->user.value_or(false)))
    return {};
  auto arch = cfg.arch.value_or(host_arch_name());
  std::string errors;
  for (const auto& f : cd->archives) {
    auto location = f.location.value_or("");
    try {
      auto r = download_file("", ref_of(f.location, f.arch, f.digest, arch), false,
                             "the nerdctl archive", arch, cache_dir);
      if (!r.cache_path.empty())
        return r.cache_path;
      if (is_local(location))
        return location.rfind("file://", 0) == 0 ? location.substr(7) : location;
      throw error(fmt::format("cache did not contain {}", go_quote(location)));
    } catch (const skipped_error&) {
      continue; // another arch
    } catch (const error& e) {
      errors += (errors.empty() ? "" : "\n") + std::string(e.what());
    }
  }
  if (errors.empty())
    errors = fmt::format("containerd.archives has no archive for {}", go_quote(arch));
  throw error(fmt::format(
    "containerd is enabled, but the nerdctl archive cannot be had: {}\n"
    "To run without containerd, create the instance with --containerd none, or turn it off in "
    "an existing one: limactl edit --set '.containerd.system=false | .containerd.user=false' "
    "INSTANCE",
    errors));
}

void prepare_firmware(const limayaml::lima_yaml& cfg, const std::string& inst,
                      const std::string& cache_dir) {
  if (!cfg.firmware || cfg.firmware->legacy_bios.value_or(false))
    return;
  auto dest = inst + "/qemu-efi-code.fd";
  if (exists(dest))
    return;
  auto arch = cfg.arch.value_or(host_arch_name());
  for (const auto& f : cfg.firmware->images) {
    auto vm_type = f.vm_type.value_or("");
    if ((vm_type != "" && vm_type != "qemu") || f.arch.value_or(arch) != arch)
      continue;
    auto location = f.location.value_or("");
    try {
      download_file(dest, ref_of(f.location, f.arch, f.digest, arch), true, "UEFI code " + location,
                    arch, cache_dir);
      log::info(fmt::format("Using firmware {} (downloaded from {})", go_quote(dest),
                            go_quote(location)));
      return;
    } catch (const error& e) {
      log::warn(fmt::format("failed to download {}", go_quote(location)), {{"error", e.what()}});
    }
  }
}

} // namespace calima::download
