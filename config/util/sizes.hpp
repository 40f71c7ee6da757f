#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Byte sizes as Lima reads and prints them (go-units RAMInBytes / BytesSize, spec §9).
namespace calima {

/// Parses "4GiB", "100GiB", "1M", "1.5 g", "512": all multipliers binary (1G = 2^30).
/// On failure returns nullopt and sets `error` to go-units' text: `invalid size: '<s>'`,
/// `invalid suffix: '<sfx>'` or strconv's `strconv.ParseFloat: parsing "<n>": invalid syntax`.
std::optional<int64_t> parse_size(std::string_view text, std::string* error = nullptr);

/// Formats bytes with up to 4 significant digits and a binary suffix: `0B`, `1MiB`, `3.5GiB`.
std::string format_size(double bytes);

} // namespace calima
