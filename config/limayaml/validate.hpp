#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// lima.yaml validation (spec §11) beyond the `validate` entry point declared in
/// lima_yaml_load.hpp: the QEMU driver's checks (§11.2), the edit-time check (§11.4), and the
/// small Go-library rules the messages depend on (ports, OCI digests, semver).
///
/// Every function returns Lima's message text exactly; an empty vector / nullopt means valid.
namespace calima::limayaml {

/// `validate` (lima_yaml_load.hpp) against an explicit running Lima version instead of
/// `lima_version::running()`, so tests can model other releases and development builds
/// (`<unknown>`, a commit hash: they satisfy every `minimumLimaVersion`).
std::vector<std::string> validate(const lima_yaml& filled, bool warnings_mode,
                                  std::string_view running_version);

/// Lima's validatePort: ``field `F` must be > 0`` / ``must be set`` / ``must not be 22`` /
/// ``must be < 65536``; nullopt for a usable port.
std::optional<std::string> validate_port(std::string_view field, int64_t port);

/// OCI go-digest `Digest.Validate` for `algo:hex` (sha256, sha384, sha512 available):
/// `invalid checksum digest format`, `invalid checksum digest length` or
/// `unsupported digest algorithm`; nullopt when valid.
std::optional<std::string> digest_error(std::string_view digest);

/// coreos/go-semver `NewVersion` error text (e.g. `invalid is not in dotted-tri format`,
/// `strconv.ParseInt: parsing "x": invalid syntax`); nullopt when `version` parses.
std::optional<std::string> semver_error(std::string_view version);

/// §11.2 for vmType qemu on this host: mountType must suit QEMU on the host OS
/// (Linux: reverse-sshfs, 9p, virtiofs), must not be listed in mountTypesUnsupported
/// (``mount type `9p` is explicitly unsupported``), and `vmOpts.qemu.minimumVersion` must be
/// semver. Like Lima's driver validation it stops at the first violation.
std::vector<std::string> validate_qemu_driver(const lima_yaml& cfg);

/// §11.4 ValidateAgainstLatestConfig: with `disk` set in both, the new size must not be
/// smaller (``field `disk`: shrinking the disk (100GiB --> 50GiB) is not supported``).
/// Unparsable sizes contribute go-units' error and count as -1 bytes, as in Lima.
/// Returns the messages joined with "\n", or nullopt.
std::optional<std::string> validate_against_latest(const lima_yaml& new_cfg,
                                                   const lima_yaml& old_cfg);

} // namespace calima::limayaml
