#include "config/util/sizes.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <fmt/printf.h>

namespace calima {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// strconv.ParseFloat for the decimal forms go-units can hand it.
std::optional<double> parse_float(const std::string& num) {
  if (num.empty())
    return std::nullopt;
  size_t i = 0;
  if (num[i] == '+' || num[i] == '-')
    ++i;
  bool digits = false;
  bool dot = false;
  for (; i < num.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(num[i])))
      digits = true;
    else if (num[i] == '.' && !dot)
      dot = true;
    else
      return std::nullopt;
  }
  if (!digits)
    return std::nullopt;
  return std::strtod(num.c_str(), nullptr);
}

} // namespace

std::optional<int64_t> parse_size(std::string_view text, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<int64_t> {
    if (error)
      *error = std::move(msg);
    return std::nullopt;
  };
  auto sep = text.find_last_of("01234567890. ");
  if (sep == std::string_view::npos)
    return fail(fmt::format("invalid size: '{}'", text));
  std::string num;
  std::string sfx;
  if (text[sep] != ' ') {
    num = std::string(text.substr(0, sep + 1));
    sfx = std::string(text.substr(sep + 1));
  } else {
    num = std::string(text.substr(0, sep));
    sfx = std::string(text.substr(sep + 1));
  }
  auto size = parse_float(num);
  if (!size)
    return fail(fmt::format("strconv.ParseFloat: parsing \"{}\": invalid syntax", num));
  if (*size < 0)
    return fail(fmt::format("invalid size: '{}'", text));
  if (sfx.empty())
    return static_cast<int64_t>(*size);
  auto bad_suffix = [&] { return fail(fmt::format("invalid suffix: '{}'", lower(sfx))); };
  if (sfx.size() > 3)
    return fail(fmt::format("invalid suffix: '{}'", sfx));
  sfx = lower(sfx);
  if (sfx[0] == 'b') {
    if (sfx.size() > 1)
      return bad_suffix();
    return static_cast<int64_t>(*size);
  }
  double mul = 0;
  switch (sfx[0]) {
    case 'k': mul = 1024.0; break;
    case 'm': mul = 1024.0 * 1024; break;
    case 'g': mul = 1024.0 * 1024 * 1024; break;
    case 't': mul = 1024.0 * 1024 * 1024 * 1024; break;
    case 'p': mul = 1024.0 * 1024 * 1024 * 1024 * 1024; break;
    default: return bad_suffix();
  }
  if ((sfx.size() == 2 && sfx[1] != 'b') || (sfx.size() == 3 && sfx.substr(1) != "ib"))
    return bad_suffix();
  return static_cast<int64_t>(*size * mul);
}

std::string format_size(double bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  size_t i = 0;
  while (bytes >= 1024.0 && i < std::size(units) - 1) {
    bytes /= 1024.0;
    ++i;
  }
  // C's %.4g and Go's %.4g agree: 4 significant digits, trailing zeros dropped.
  return fmt::format("{}{}", fmt::sprintf("%.4g", bytes), units[i]);
}

} // namespace calima
