// Lexer for Go templates: a transliteration of text/template/parse/lex.go (Go 1.22), run to
// completion up front instead of in a goroutine.
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template_ast.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace calima::go_template::detail {

namespace {

constexpr int eof_rune = -1;
constexpr std::string_view left_delim = "{{";
constexpr std::string_view right_delim = "}}";
constexpr std::string_view left_comment = "/*";
constexpr std::string_view right_comment = "*/";
constexpr std::string_view space_chars = " \t\r\n";

bool is_space(int r) {
  return r == ' ' || r == '\t' || r == '\r' || r == '\n';
}

// Bytes of multi-byte UTF-8 sequences count as letters (Go: unicode.IsLetter on the rune).
bool is_alpha_numeric(int r) {
  return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r >= 0x80;
}

bool has_left_trim_marker(std::string_view s) {
  return s.size() >= 2 && s[0] == '-' && is_space(static_cast<unsigned char>(s[1]));
}

bool has_right_trim_marker(std::string_view s) {
  return s.size() >= 2 && is_space(static_cast<unsigned char>(s[0])) && s[1] == '-';
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// Go's %#U of the rune starting at s[0]: `U+007D '}'`.
std::string describe_rune(std::string_view s) {
  if (s.empty())
    return "U+FFFFFFFFFFFFFFFF"; // Go prints eof (-1) as a huge number; never hit in practice
  auto c = static_cast<unsigned char>(s[0]);
  std::uint32_t r = c;
  std::size_t len = 1;
  if (c >= 0x80) {
    len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (len == 1 || len > s.size()) {
      r = 0xfffd;
      len = 1;
    } else {
      r = c & (0x7f >> len);
      for (std::size_t k = 1; k < len; ++k)
        r = (r << 6) | (static_cast<unsigned char>(s[k]) & 0x3f);
    }
  }
  bool printable = r >= 0x20 && r != 0x7f && !(r >= 0x80 && r < 0xa0);
  if (!printable)
    return fmt::format("U+{:04X}", r);
  if (r == 0xfffd)
    return "U+FFFD '\xef\xbf\xbd'";
  return fmt::format("U+{:04X} '{}'", r, s.substr(0, len));
}

class lexer {
public:
  explicit lexer(std::string_view in) : in_(in) {
    for (std::size_t i = 0; i < in.size(); ++i)
      if (in[i] == '\n')
        newlines_.push_back(i);
  }

  std::vector<item> run() {
    state s = state::text;
    while (s != state::done)
      s = step(s);
    return std::move(items_);
  }

private:
  enum class state {
    text,
    left_delim,
    comment,
    right_delim,
    inside_action,
    space,
    quote,
    raw_quote,
    variable,
    field,
    identifier,
    number,
    chr,
    done
  };

  state step(state s) {
    switch (s) {
      case state::text: return lex_text();
      case state::left_delim: return lex_left_delim();
      case state::comment: return lex_comment();
      case state::right_delim: return lex_right_delim();
      case state::inside_action: return lex_inside_action();
      case state::space: return lex_space();
      case state::quote: return lex_quoted('"', item_type::string, "unterminated quoted string");
      case state::raw_quote: return lex_raw_quote();
      case state::variable: return lex_variable();
      case state::field: return lex_field_or_variable(item_type::field);
      case state::identifier: return lex_identifier();
      case state::number: return lex_number();
      case state::chr: return lex_quoted('\'', item_type::char_constant, "unterminated character constant");
      case state::done: break;
    }
    return state::done;
  }

  // -- primitives --

  std::string_view rest() const { return in_.substr(pos_); }

  int line_at(std::size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) - newlines_.begin());
  }

  int next() {
    if (pos_ >= in_.size()) {
      width_ = 0;
      return eof_rune;
    }
    width_ = 1;
    return static_cast<unsigned char>(in_[pos_++]);
  }

  int peek() const { return pos_ < in_.size() ? static_cast<unsigned char>(in_[pos_]) : eof_rune; }

  void backup() { pos_ -= width_; }

  bool accept(std::string_view valid) {
    int r = next();
    if (r != eof_rune && valid.find(static_cast<char>(r)) != std::string_view::npos)
      return true;
    backup();
    return false;
  }

  void accept_run(std::string_view valid) {
    while (accept(valid)) {
    }
  }

  void emit(item_type t) {
    items_.push_back(item{t, start_, std::string(in_.substr(start_, pos_ - start_)), line_at(start_)});
    start_ = pos_;
  }

  void ignore() { start_ = pos_; }

  state errorf(std::string msg) {
    items_.push_back(item{item_type::error, start_, std::move(msg), line_at(start_)});
    return state::done;
  }

  std::pair<bool, bool> at_right_delim() const {
    if (has_right_trim_marker(rest()) && starts_with(rest().substr(2), right_delim))
      return {true, true};
    if (starts_with(rest(), right_delim))
      return {true, false};
    return {false, false};
  }

  bool at_terminator() const {
    int r = peek();
    if (is_space(r))
      return true;
    switch (r) {
      case eof_rune:
      case '.':
      case ',':
      case '|':
      case ':':
      case ')':
      case '(': return true;
      default: break;
    }
    return starts_with(rest(), right_delim);
  }

  // -- states --

  state lex_text() {
    auto x = in_.find(left_delim, pos_);
    if (x != std::string_view::npos) {
      pos_ = x;
      std::size_t trim = 0;
      if (has_left_trim_marker(in_.substr(x + left_delim.size()))) {
        auto text = in_.substr(start_, pos_ - start_);
        auto kept = text.find_last_not_of(space_chars);
        trim = kept == std::string_view::npos ? text.size() : text.size() - kept - 1;
      }
      pos_ -= trim;
      if (pos_ > start_)
        emit(item_type::text);
      pos_ += trim;
      ignore();
      return state::left_delim;
    }
    pos_ = in_.size();
    if (pos_ > start_)
      emit(item_type::text);
    emit(item_type::eof);
    return state::done;
  }

  state lex_left_delim() {
    pos_ += left_delim.size();
    bool trim = has_left_trim_marker(rest());
    std::size_t after_marker = trim ? 2 : 0;
    if (starts_with(in_.substr(pos_ + after_marker), left_comment)) {
      pos_ += after_marker;
      ignore();
      return state::comment;
    }
    emit(item_type::left_delim);
    pos_ += after_marker;
    ignore();
    paren_depth_ = 0;
    return state::inside_action;
  }

  state lex_comment() {
    pos_ += left_comment.size();
    auto x = in_.find(right_comment, pos_);
    if (x == std::string_view::npos)
      return errorf("unclosed comment");
    pos_ = x + right_comment.size();
    auto [delim, trim] = at_right_delim();
    if (!delim)
      return errorf("comment ends before closing delimiter");
    if (trim)
      pos_ += 2;
    pos_ += right_delim.size();
    if (trim)
      skip_leading_space();
    ignore();
    return state::text;
  }

  void skip_leading_space() {
    auto kept = in_.find_first_not_of(space_chars, pos_);
    pos_ = kept == std::string_view::npos ? in_.size() : kept;
  }

  state lex_right_delim() {
    auto [delim, trim] = at_right_delim();
    if (trim) {
      pos_ += 2;
      ignore();
    }
    pos_ += right_delim.size();
    emit(item_type::right_delim);
    if (trim) {
      skip_leading_space();
      ignore();
    }
    return state::text;
  }

  state lex_inside_action() {
    auto [delim, trim] = at_right_delim();
    if (delim) {
      if (paren_depth_ == 0)
        return state::right_delim;
      return errorf("unclosed left paren");
    }
    int r = next();
    if (r == eof_rune)
      return errorf("unclosed action");
    if (is_space(r)) {
      backup(); // Put space back in case we have " -}}".
      return state::space;
    }
    switch (r) {
      case '=': emit(item_type::assign); return state::inside_action;
      case ':':
        if (next() != '=')
          return errorf("expected :=");
        emit(item_type::declare);
        return state::inside_action;
      case '|': emit(item_type::pipe); return state::inside_action;
      case '"': return state::quote;
      case '`': return state::raw_quote;
      case '$': return state::variable;
      case '\'': return state::chr;
      case '(':
        ++paren_depth_;
        emit(item_type::left_paren);
        return state::inside_action;
      case ')':
        if (--paren_depth_ < 0)
          return errorf("unexpected right paren");
        emit(item_type::right_paren);
        return state::inside_action;
      default: break;
    }
    if (r == '.' && pos_ < in_.size() && (in_[pos_] < '0' || in_[pos_] > '9'))
      return state::field;
    if (r == '.' || r == '+' || r == '-' || (r >= '0' && r <= '9')) {
      backup();
      return state::number;
    }
    if (is_alpha_numeric(r)) {
      backup();
      return state::identifier;
    }
    if (r < 0x7f && r >= 0x20) {
      emit(item_type::chr);
      return state::inside_action;
    }
    return errorf("unrecognized character in action: " + describe_rune(in_.substr(pos_ - 1)));
  }

  state lex_space() {
    int num_spaces = 0;
    while (is_space(peek())) {
      next();
      ++num_spaces;
    }
    // A trim-marked closing delimiter has a minus after a space: leave that space for it.
    if (has_right_trim_marker(in_.substr(pos_ - 1)) && starts_with(in_.substr(pos_ + 1), right_delim)) {
      backup();
      if (num_spaces == 1)
        return state::inside_action;
    }
    emit(item_type::space);
    return state::inside_action;
  }

  state lex_identifier() {
    for (;;) {
      int r = next();
      if (is_alpha_numeric(r))
        continue;
      backup();
      std::string word(in_.substr(start_, pos_ - start_));
      if (!at_terminator())
        return errorf("bad character " + describe_rune(rest()));
      static const std::pair<std::string_view, item_type> keywords[] = {
          {"block", item_type::block},   {"break", item_type::break_}, {"continue", item_type::continue_},
          {"define", item_type::define}, {"else", item_type::else_},   {"end", item_type::end},
          {"if", item_type::if_},        {"range", item_type::range},  {"nil", item_type::nil},
          {"template", item_type::template_}, {"with", item_type::with},
      };
      for (auto& [k, t] : keywords)
        if (word == k) {
          emit(t);
          return state::inside_action;
        }
      emit(word == "true" || word == "false" ? item_type::boolean : item_type::identifier);
      return state::inside_action;
    }
  }

  state lex_variable() {
    if (at_terminator()) { // Nothing interesting follows -> "$".
      emit(item_type::variable);
      return state::inside_action;
    }
    return lex_field_or_variable(item_type::variable);
  }

  state lex_field_or_variable(item_type t) {
    if (at_terminator()) { // Nothing interesting follows -> "." or "$".
      emit(t == item_type::variable ? item_type::variable : item_type::dot);
      return state::inside_action;
    }
    while (is_alpha_numeric(next())) {
    }
    backup();
    if (!at_terminator())
      return errorf("bad character " + describe_rune(rest()));
    emit(t);
    return state::inside_action;
  }

  bool scan_number() {
    accept("+-");
    std::string_view digits = "0123456789_";
    if (accept("0")) {
      if (accept("xX"))
        digits = "0123456789abcdefABCDEF_";
      else if (accept("oO"))
        digits = "01234567_";
      else if (accept("bB"))
        digits = "01_";
    }
    accept_run(digits);
    if (accept("."))
      accept_run(digits);
    if (digits.size() == 10 + 1 && accept("eE")) {
      accept("+-");
      accept_run("0123456789_");
    }
    if (digits.size() == 16 + 6 + 1 && accept("pP")) {
      accept("+-");
      accept_run("0123456789_");
    }
    accept("i"); // imaginary
    if (is_alpha_numeric(peek())) {
      next();
      return false;
    }
    return true;
  }

  state lex_number() {
    if (!scan_number())
      return errorf("bad number syntax: " + go_quote(in_.substr(start_, pos_ - start_)));
    int sign = peek();
    if (sign == '+' || sign == '-') { // Complex: 1+2i. No spaces, must end in 'i'.
      if (!scan_number() || in_[pos_ - 1] != 'i')
        return errorf("bad number syntax: " + go_quote(in_.substr(start_, pos_ - start_)));
      emit(item_type::complex);
      return state::inside_action;
    }
    emit(item_type::number);
    return state::inside_action;
  }

  state lex_quoted(char quote, item_type t, const char* unterminated) {
    for (;;) {
      int r = next();
      if (r == '\\') {
        r = next();
        if (r != eof_rune && r != '\n')
          continue;
        return errorf(unterminated);
      }
      if (r == eof_rune || r == '\n')
        return errorf(unterminated);
      if (r == quote)
        break;
    }
    emit(t);
    return state::inside_action;
  }

  state lex_raw_quote() {
    for (;;) {
      int r = next();
      if (r == eof_rune)
        return errorf("unterminated raw quoted string");
      if (r == '`')
        break;
    }
    emit(item_type::raw_string);
    return state::inside_action;
  }

  std::string_view in_;
  std::vector<std::size_t> newlines_;
  std::size_t pos_ = 0;
  std::size_t start_ = 0;
  std::size_t width_ = 0;
  int paren_depth_ = 0;
  std::vector<item> items_;
};

} // namespace

std::string item::str() const {
  if (type == item_type::eof)
    return "EOF";
  if (type == item_type::error)
    return val;
  if (type > item_type::keyword)
    return "<" + val + ">";
  if (val.size() > 10) {
    // %.10q: at most ten runes, then quoted.
    std::size_t i = 0;
    for (int runes = 0; i < val.size() && runes < 10; ++runes) {
      ++i;
      while (i < val.size() && (static_cast<unsigned char>(val[i]) & 0xc0) == 0x80)
        ++i;
    }
    return go_quote(std::string_view(val).substr(0, i)) + "...";
  }
  return go_quote(val);
}

std::vector<item> lex(std::string_view text) {
  return lexer(text).run();
}

} // namespace calima::go_template::detail
