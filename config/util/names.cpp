#include "config/util/names.hpp"

#include "config/util/go_format.hpp"

#include <cctype>
#include <fmt/format.h>

namespace calima {

namespace {

constexpr auto identifier_regex = "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$";

bool alnum(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

bool matches_identifier(std::string_view s) {
  // Alphanumeric runs separated by single '.', '_' or '-'.
  bool need_alnum = true;
  for (char c : s) {
    if (alnum(c)) {
      need_alnum = false;
    } else if ((c == '.' || c == '_' || c == '-') && !need_alnum) {
      need_alnum = true;
    } else {
      return false;
    }
  }
  return !need_alnum;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size())
    return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return true;
}

} // namespace

std::optional<std::string> identifier_error(std::string_view name) {
  if (name.empty())
    return std::string("identifier must not be empty");
  if (name.size() > 76)
    return fmt::format("identifier {} greater than maximum length (76 characters)",
                       go_backquote(name));
  if (!matches_identifier(name))
    return fmt::format("identifier {} must match {}", go_backquote(name), identifier_regex);
  return std::nullopt;
}

std::optional<std::string> instance_name_error(std::string_view name) {
  if (auto err = identifier_error(name))
    return fmt::format("instance name {} is not a valid identifier: {}", go_backquote(name), *err);
  if (iends_with(name, ".yml") || iends_with(name, ".yaml"))
    return fmt::format("instance name {} must not end with .yml or .yaml suffix",
                       go_backquote(name));
  return std::nullopt;
}

std::string hostname_of(std::string_view instance) {
  std::string out = "lima-";
  for (char c : instance)
    out += (c == '.' || c == '_') ? '-' : c;
  return out;
}

std::optional<std::string> socket_path_error(std::string_view name, std::string_view dir) {
  auto path = fmt::format("{}/ssh.sock.1234567890123456", dir);
  if (path.size() >= unix_path_max())
    return fmt::format("instance name {} too long: {} must be less than UNIX_PATH_MAX={} "
                       "characters, but is {}",
                       go_backquote(name), go_backquote(path), unix_path_max(), path.size());
  return std::nullopt;
}

} // namespace calima
