#pragma once

#include "config/util/go_format.hpp"

#include <string>
#include <string_view>

/// Small path, URL and file helpers shared by the template store, the locators and the base
/// embedding. Internal to calima_templates; the semantics follow Go's `path`, `path/filepath`
/// and `net/url` because Lima's messages and results depend on them.
namespace calima::template_detail {



/// Go's path.Dir (cleaned; "." for no directory).
std::string dir_name(std::string_view p);

/// Go's path.Base ("." for empty, "/" for all-slashes).
std::string base_name(std::string_view p);

/// Go's path.Join (empty elements skipped, result cleaned; "" when all are empty).
std::string join_path(std::string_view a, std::string_view b);

/// The scheme of a URL as Go's url.Parse finds it: `[A-Za-z][A-Za-z0-9+.-]*` before the first
/// `:`; "" when there is none (or the text before `:` is not a scheme).
std::string url_scheme(std::string_view s);

using calima::path_error;

/// Reads a file of at most `limit` bytes. Throws template_error with the Go-style message
/// (`open /x: no such file or directory`, `exceeded the limit (4194304 bytes)`).
std::string read_file_limited(const std::string& path, size_t limit);

/// The message of Go's ioutilx.ReadAtMaximum when a reader reaches its limit.
std::string limit_message(size_t limit);

/// `~` or `~/x` expanded with $HOME; anything else unchanged.
std::string expand_tilde(std::string_view p);

/// The lower-cased host architecture in Lima's words (`x86_64`, `aarch64`, ...).
std::string host_arch();

} // namespace calima::template_detail
