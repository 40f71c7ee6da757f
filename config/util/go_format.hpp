#pragma once

#include <string>
#include <string_view>
#include <vector>

/// Go's fmt quoting verbs, used by every Lima message (spec §1.1).
namespace calima {

/// Decodes one UTF-8 code point at s[i] strictly (no overlong forms, surrogates or values past
/// U+10FFFF); returns its length, or 0 for an invalid sequence.
size_t decode_utf8(std::string_view s, size_t i, char32_t& cp);

/// Appends the UTF-8 encoding of `r`.
void append_utf8(std::string& out, char32_t r);

/// Go's `%q`: a double-quoted string with Go escapes (`\"`, `\\`, `\n`, `\t`, `\x00`, `\u00e9` for
/// non-printable runes; printable UTF-8 stays as it is).
std::string go_quote(std::string_view s);

/// Go's `%#q`: back-quoted when the string contains no back-tick and no control characters,
/// otherwise the same as go_quote.
std::string go_backquote(std::string_view s);

/// A word for POSIX sh: unchanged when it holds only safe characters (letters, digits,
/// `@%+=:,./-_`), else single-quoted (`'` becomes `'"'"'`). The empty string is `''`.
std::string shell_quote(const std::string& s);

/// A syscall.Errno as Go prints it: glibc's strerror with a lower-case first letter
/// ("no such file or directory").
std::string go_errno_text(int err);

/// An *os.PathError as Go prints it: "<op> <path>: <errno text>".
std::string path_error(std::string_view op, std::string_view path, int err);

/// Go's `%v` of a []string: `[a b c]`.
std::string go_list(const std::vector<std::string>& items);

} // namespace calima
