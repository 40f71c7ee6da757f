#pragma once

#include "config/template_store/template_store.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Template locators (spec §12.2, §12.3): reading a template from an image URL, `template:NAME`,
/// http(s), `file://`, stdin or a local path; custom URL schemes (`github:`, `limactl-url-*`
/// plugins); and instance-name inference.
///
///   locator ──transform_custom_url──▶ image URL? ──▶ synthetic template
///                                     template:   ──▶ template store
///                                     http(s)://  ──▶ libcurl GET (4 MiB)
///                                     file://     ──▶ absolute file
///                                     -           ──▶ stdin
///                                     otherwise   ──▶ local file, made absolute
namespace calima {

/// A template as read from its locator (Lima's limatmpl.Template without the decoded config).
struct template_source {
  std::string name;    ///< instance name: given, or inferred; "" when unknown (stdin)
  std::string locator; ///< after transformation: absolute path, URL, `template:NAME` or `-`
  std::string bytes;   ///< the file contents
};

// -- HTTP ---------------------------------------------------------------------

/// What an HTTP GET returned.
struct http_response {
  long status = 0;
  std::string body;
};

/// Performs a GET of `url` with extra `headers` ("Name: value"), reading at most `limit` bytes.
/// Throws template_error on transport errors and oversized bodies; HTTP error statuses are
/// returned, not thrown.
using http_get_fn = std::function<http_response(const std::string& url,
                                                const std::vector<std::string>& headers,
                                                size_t limit)>;

/// The libcurl implementation: follows up to 10 redirects. Errors read like Go's
/// `Get "https://x/y.yaml": <reason>`.
http_response curl_http_get(const std::string& url, const std::vector<std::string>& headers,
                            size_t limit);

// -- reading --------------------------------------------------------------------

/// Lima's limatmpl.Read: transforms custom schemes, then interprets the locator in the order of
/// §12.2. `name` (from --name) is kept when non-empty, else inferred from the locator. Throws
/// template_error with Lima's message.
template_source read_template(std::string_view name, std::string_view locator);

/// The same with an injected HTTP client (tests).
template_source read_template(std::string_view name, std::string_view locator,
                              const http_get_fn& get);

// -- custom URL schemes (§12.3) ---------------------------------------------------

/// Applies custom-scheme transformations until the locator is stable: `template://x` →
/// `template:x` (with Lima's warning), `github:` → raw.githubusercontent.com, `<scheme>:` →
/// the trimmed output of a `limactl-url-<scheme>` plugin. Throws
/// ``custom locator `x` has a redirect loop``.
std::string transform_custom_url(std::string_view locator);
std::string transform_custom_url(std::string_view locator, const http_get_fn& get);

/// One `github:` transformation of `spec` (the part after `github:`):
/// `ORG[/REPO][/PATH][@BRANCH]` → `https://raw.githubusercontent.com/ORG/REPO/BRANCH/PATH`.
/// Asks the GitHub API for the default branch when BRANCH is missing and follows `.lima.yaml`
/// "symlinks"; the result may be another `github:` locator (an ORG// redirect).
std::string transform_github_url(std::string_view spec, const http_get_fn& get);

/// `limactl-url-<scheme>` beside limactl or in PATH; nullopt when there is none.
std::optional<std::string> find_url_plugin(std::string_view scheme);

// -- classification -----------------------------------------------------------------

/// Ends in `.img|.qcow2|.raw|.iso|.ipsw`, optionally followed by `.gz|.xz|.bz2|.zstd`.
bool is_image_url(std::string_view locator);

/// `template:NAME` → NAME (the locator must already be transformed); nullopt otherwise.
std::optional<std::string> template_name_of(std::string_view locator);

bool seems_http_url(std::string_view locator);
bool seems_file_url(std::string_view locator);

// -- instance-name inference ------------------------------------------------------------

/// The synthetic template of an image URL (§12.2 step 1) with OS and arch guessed from the
/// file name; `host_arch` is used (with a warning) when no arch keyword is found.
struct image_guess {
  std::string os;
  std::string arch;
  bool arch_guessed = false; ///< no keyword matched: the host arch was assumed
};
image_guess guess_image(std::string_view locator, std::string_view host_arch);
std::string image_template_bytes(std::string_view locator, const image_guess& g);

/// Lima's InstNameFromImageURL. The arch word is removed when `image_arch == host_arch`.
std::string inst_name_from_image_url(std::string_view locator, std::string_view image_arch,
                                     std::string_view host_arch);

/// Lower-cased basename without `.yml`/`.yaml`; must be a valid identifier, else throws
/// ``filename `x` is invalid: <reason>``.
std::string inst_name_from_yaml_path(std::string_view path);

/// inst_name_from_yaml_path of the basename of the URL's path.
std::string inst_name_from_url(std::string_view url);

} // namespace calima
