#include "config/yq/yq.hpp"

#include "config/yq/yaml_json.hpp"

extern "C" {
#include <jq.h>
}

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <list>
#include <memory>
#include <mutex>
#include <utility>

namespace calima {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view env_disabled = "env operations have been disabled";
constexpr std::string_view file_disabled = "file operations have been disabled";

// -- program rewriting --------------------------------------------------------------------------

/// Definitions placed in front of every program (on the program's first line, so jq's line
/// numbers in error messages stay those of the user's text). User definitions shadow them.
const std::string& program_prefix(yq_access access) {
  auto make = [](bool env) {
    std::string env_err = "error(\"" + std::string(env_disabled) + "\")";
    std::string file_err = "error(\"" + std::string(file_disabled) + "\")";
    std::string p;
    if (!env) {
      p += "def env: " + env_err + "; ";
      p += "def env(f): " + env_err + "; ";
      p += "def strenv(f): " + env_err + "; ";
    }
    for (const char* name : {"load", "load_str", "load_xml", "load_props", "load_base64"})
      p += std::string("def ") + name + "(f): " + file_err + "; ";
    p += "def input: " + file_err + "; ";
    p += "def inputs: " + file_err + "; ";
    // yq keeps the first occurrence in input order; jq's builtins sort.
    p += "def unique_by(f): if type != \"array\" then error(\"\\(type) (\\(tojson | if length > 11 "
         "then .[0:10] + \"...\" else . end)) cannot be sorted, as it is not an array\") else "
         "reduce .[] as $x ([[], []]; ($x | [f]) as $k | if any(.[0][]; . == $k) then . else "
         "[.[0] + [$k], .[1] + [$x]] end) | .[1] end; ";
    p += "def unique: unique_by(.); ";
    return p;
  };
  static const std::string without_env = make(false);
  static const std::string with_env = make(true);
  return access.env ? with_env : without_env;
}

/// yq's `env(NAME)` (the value read as YAML) or `strenv(NAME)` (a string) as a jq literal.
std::string env_literal(std::string_view call, std::string_view argument) {
  std::string name(argument);
  auto first = name.find_first_not_of(" \t\r\n");
  auto last = name.find_last_not_of(" \t\r\n");
  name = first == std::string::npos ? "" : name.substr(first, last - first + 1);
  if (name.size() >= 2 && (name.front() == '"' || name.front() == '\'') && name.back() == name.front())
    name = name.substr(1, name.size() - 2);
  const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
  json literal;
  if (call == "strenv") {
    literal = value != nullptr ? value : "";
  } else if (value != nullptr) {
    try {
      literal = parse_yaml_to_json(value);
    } catch (const yaml_error&) {
      literal = value;
    }
  }
  return literal.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

/// jq 1.6 keywords after which `[]` is an empty array literal, not an iteration.
bool is_operator_keyword(std::string_view word) {
  static constexpr std::string_view words[] = {"as",     "import",  "include", "module", "def",
                                               "if",     "then",    "elif",    "else",   "and",
                                               "or",     "reduce",  "foreach", "try",    "catch",
                                               "label"};
  for (auto w : words)
    if (word == w)
      return true;
  return false;
}

/// A small jq 1.6 lexer: enough to tell code from string literals (with `\(...)` interpolation)
/// and comments, so that only real `$ENV` references, `env(...)`/`strenv(...)` calls, `[]`
/// iterations and `import`/`include` directives are touched.
class program_rewriter {
public:
  program_rewriter(std::string_view src, yq_access access) : src_(src), access_(access) {
    // nop
  }

  std::string run() {
    while (pos_ < src_.size()) {
      if (in_string_)
        string_char();
      else
        code_token();
    }
    return std::move(out_);
  }

private:
  char peek_at(size_t i) const {
    return i < src_.size() ? src_[i] : '\0';
  }

  /// Position after whitespace and comments starting at `from`.
  size_t skip_blank(size_t from) const {
    while (from < src_.size()) {
      char c = src_[from];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++from;
      } else if (c == '#') {
        while (from < src_.size() && src_[from] != '\n')
          ++from;
      } else {
        break;
      }
    }
    return from;
  }

  /// Length of the identifier (with `a::b` module prefixes) at `from`, 0 if none.
  size_t ident_length(size_t from) const {
    size_t i = from;
    if (i >= src_.size() || !is_ident_start(src_[i]))
      return 0;
    while (true) {
      while (i < src_.size() && is_ident_char(src_[i]))
        ++i;
      if (i + 2 < src_.size() && src_[i] == ':' && src_[i + 1] == ':'
          && is_ident_start(src_[i + 2])) {
        i += 2;
        continue;
      }
      return i - from;
    }
  }

  /// Position just after the ')' matching the '(' at `open` (end of text if unbalanced).
  size_t matching_paren_end(size_t open) const {
    program_rewriter inner(src_.substr(open + 1), access_);
    inner.interpolation_depths_.push_back(0); // the outer '(' acts like an interpolation
    while (inner.pos_ < inner.src_.size() && !inner.interpolation_depths_.empty()) {
      if (inner.in_string_)
        inner.string_char();
      else
        inner.code_token();
    }
    return open + 1 + inner.pos_;
  }

  /// Remembers the last significant token: whether it ends a term (so that a following `[]`
  /// iterates) and, for identifiers, the word.
  void note(bool term_end, std::string_view word = {}) {
    term_end_ = term_end;
    last_word_ = std::string(word);
  }

  void string_char() {
    char c = src_[pos_];
    if (c == '\\' && peek_at(pos_ + 1) == '(') {
      out_ += "\\(";
      pos_ += 2;
      interpolation_depths_.push_back(0);
      in_string_ = false;
      note(false);
      return;
    }
    if (c == '\\') {
      size_t n = pos_ + 1 < src_.size() ? 2 : 1;
      out_.append(src_.substr(pos_, n));
      pos_ += n;
      return;
    }
    if (c == '"') {
      in_string_ = false;
      note(true);
    }
    out_ += c;
    ++pos_;
  }

  void code_token() {
    char c = src_[pos_];
    size_t blank_end = skip_blank(pos_);
    if (blank_end != pos_) { // whitespace and comments are copied verbatim
      out_.append(src_.substr(pos_, blank_end - pos_));
      pos_ = blank_end;
      return;
    }
    if (c == '"') {
      in_string_ = true;
      out_ += c;
      ++pos_;
      return;
    }
    if (c == '$') {
      variable();
      return;
    }
    if (c == '.' && is_ident_start(peek_at(pos_ + 1))) { // field access: `.env`, `.import`
      size_t n = 1 + ident_length(pos_ + 1);
      out_.append(src_.substr(pos_, n));
      pos_ += n;
      note(true);
      return;
    }
    if (size_t n = ident_length(pos_); n > 0) {
      identifier(n);
      return;
    }
    if (c == '[' && peek_at(pos_ + 1) == ']' && term_end_) {
      // `x[]` iterates; yq yields nothing for null where jq fails, so use jq's `[]?`.
      out_ += "[]";
      pos_ += 2;
      if (peek_at(skip_blank(pos_)) != '?')
        out_ += '?';
      note(true);
      return;
    }
    if (c == '(' && !interpolation_depths_.empty()) {
      ++interpolation_depths_.back();
    } else if (c == ')' && !interpolation_depths_.empty()) {
      if (interpolation_depths_.back() == 0) {
        interpolation_depths_.pop_back();
        in_string_ = true;
        out_ += c;
        ++pos_;
        return;
      }
      --interpolation_depths_.back();
    }
    out_ += c;
    ++pos_;
    note(c == ')' || c == ']' || c == '}' || c == '.' || c == '?' || (c >= '0' && c <= '9'));
  }

  void variable() {
    size_t name_at = skip_blank(pos_ + 1);
    size_t n = ident_length(name_at);
    if (n > 0 && src_.substr(name_at, n) == "ENV" && !access_.env) {
      if (last_word_ == "as")
        throw yq_error(std::string(env_disabled));
      out_ += "(error(\"" + std::string(env_disabled) + "\"))";
      pos_ = name_at + n;
      note(true);
      return;
    }
    size_t end = n > 0 ? name_at + n : pos_ + 1;
    out_.append(src_.substr(pos_, end - pos_));
    pos_ = end;
    note(n > 0);
  }

  void identifier(size_t n) {
    std::string_view name = src_.substr(pos_, n);
    size_t after = skip_blank(pos_ + n);
    if (name == "import" || name == "include") {
      bool object_key = peek_at(after) == ':' && peek_at(after + 1) != ':';
      if (!object_key)
        throw yq_error(std::string(file_disabled));
    }
    if ((name == "env" || name == "strenv") && peek_at(after) == '(' && last_word_ != "def") {
      // yq's `env(NAME)` takes a bare name, which jq would reject as an undefined function
      // before the disabling definition could run: replace the whole call (by its value when
      // env operations are allowed).
      size_t end = matching_paren_end(after);
      if (end == 0 || src_[end - 1] != ')')
        throw yq_syntax_error(std::string(name) + "( has no closing parenthesis");
      if (access_.env) {
        size_t inner_length = end > after + 1 ? end - after - 2 : 0;
        out_ += "(" + env_literal(name, src_.substr(after + 1, inner_length)) + ")";
      } else {
        out_ += "(error(\"" + std::string(env_disabled) + "\"))";
      }
      pos_ = end;
      note(true);
      return;
    }
    out_.append(name);
    pos_ += n;
    note(!is_operator_keyword(name), name);
  }

  std::string_view src_;
  yq_access access_;
  size_t pos_ = 0;
  std::string out_;
  bool in_string_ = false;
  /// One entry per open `\(`: the number of unclosed '(' inside it.
  std::vector<int> interpolation_depths_;
  /// Whether the previous significant token ends a term (`.a`, `$x`, `)`, `]`, `f`...).
  bool term_end_ = false;
  /// The previous token if it was an identifier or keyword (to spot `as $ENV`, `def env`).
  std::string last_word_;
};

// -- libjq --------------------------------------------------------------------------------------

std::string jv_to_text(jv value) { // consumes value
  jv dumped = jv_dump_string(value, 0);
  std::string text = jv_string_value(dumped);
  jv_free(dumped);
  return text;
}

/// A message jv (consumed) as text: strings raw, other values as JSON.
std::string message_text(jv msg) {
  if (jv_get_kind(msg) == JV_KIND_STRING) {
    std::string text = jv_string_value(msg);
    jv_free(msg);
    return text;
  }
  return jv_to_text(msg);
}

void collect_compile_error(void* data, jv msg) {
  auto* errors = static_cast<std::vector<std::string>*>(data);
  std::string text = message_text(msg);
  if (text.rfind("jq: ", 0) == 0 && text.find(" compile error") != std::string::npos
      && text.find('\n') == std::string::npos) {
    return; // the "jq: 1 compile error" summary
  }
  text = text.substr(0, text.find('\n'));
  if (text.rfind("jq: error: ", 0) == 0)
    text.erase(0, std::strlen("jq: error: "));
  while (!text.empty() && (text.back() == ':' || text.back() == ' '))
    text.pop_back();
  errors->push_back(std::move(text));
}

/// One compiled program. Reusable: jq_start resets the state of a finished or failed run.
struct compiled_program {
  jq_state* jq = nullptr;
  std::vector<std::string> errors;

  compiled_program() = default;
  compiled_program(const compiled_program&) = delete;
  compiled_program& operator=(const compiled_program&) = delete;

  ~compiled_program() {
    if (jq != nullptr)
      jq_teardown(&jq);
  }
};

std::unique_ptr<compiled_program> compile(const std::string& program) {
  auto p = std::make_unique<compiled_program>();
  p->jq = jq_init();
  if (p->jq == nullptr)
    throw yq_error("cannot initialise jq");
  jq_set_error_cb(p->jq, collect_compile_error, &p->errors);
  // Without this attribute libjq 1.6 aborts on `import`; empty means no module can be found.
  jq_set_attr(p->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());
  if (!jq_compile(p->jq, program.c_str())) {
    std::string message;
    for (const auto& e : p->errors)
      message += (message.empty() ? "" : "; ") + e;
    throw yq_syntax_error(message.empty() ? "cannot compile expression" : message);
  }
  p->errors.clear();
  return p;
}

/// Process-wide jq access: one mutex, plus a small most-recently-used cache of compiled programs
/// (compiling recompiles jq's builtins, a few milliseconds each time).
class jq_engine {
public:
  static jq_engine& instance() {
    // Destroyed at exit so that cached states (each holds its last run's stack) are freed.
    static jq_engine engine;
    return engine;
  }

  std::vector<json> run(const std::string& program, const json& input) {
    std::string input_text = input.dump(-1, ' ', false, json::error_handler_t::replace);
    std::lock_guard<std::mutex> guard(mutex_);
    jq_state* jq = lookup(program).jq;
    jv in = jv_parse_sized(input_text.data(), static_cast<int>(input_text.size()));
    if (!jv_is_valid(in))
      throw yq_error("cannot pass input to jq: " + message_text(jv_invalid_get_msg(in)));
    jq_start(jq, in, 0);
    std::vector<json> results;
    // A run that stops early (error, halt) keeps its stack until the next jq_start; such states
    // are torn down instead of cached, so nothing is held (or reported lost by leak checkers).
    bool stopped_early = false;
    try {
      while (true) {
        jv r = jq_next(jq);
        if (jv_is_valid(r)) {
          results.push_back(json::parse(jv_to_text(r)));
          continue;
        }
        if (jq_halted(jq)) {
          jv_free(r);
          stopped_early = true;
          check_halt(jq);
          break;
        }
        if (jv_invalid_has_msg(jv_copy(r)))
          throw yq_error(runtime_message(jv_invalid_get_msg(r)));
        jv_free(r);
        break;
      }
    } catch (...) {
      cache_.pop_front(); // lookup() put the program in front
      throw;
    }
    if (stopped_early)
      cache_.pop_front();
    return results;
  }

private:
  static constexpr size_t cache_size = 16;

  compiled_program& lookup(const std::string& program) {
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first == program) {
        cache_.splice(cache_.begin(), cache_, it);
        return *cache_.front().second;
      }
    }
    auto compiled = compile(program);
    cache_.emplace_front(program, std::move(compiled));
    if (cache_.size() > cache_size)
      cache_.pop_back();
    return *cache_.front().second;
  }

  static std::string runtime_message(jv msg) {
    if (jv_get_kind(msg) == JV_KIND_STRING)
      return message_text(msg);
    return "error (not a string): " + jv_to_text(msg);
  }

  /// `halt` ends the outputs; `halt_error` (a message or a non-zero exit code) is an error.
  static void check_halt(jq_state* jq) {
    jv message = jq_get_error_message(jq);
    jv code = jq_get_exit_code(jq);
    int exit_code = jv_get_kind(code) == JV_KIND_NUMBER ? static_cast<int>(jv_number_value(code)) : 0;
    jv_free(code);
    if (jv_is_valid(message)) {
      std::string text = message_text(message);
      while (!text.empty() && text.back() == '\n')
        text.pop_back();
      throw yq_error(text.empty() ? "halted with exit code " + std::to_string(exit_code) : text);
    }
    jv_free(message);
    if (exit_code != 0)
      throw yq_error("halted with exit code " + std::to_string(exit_code));
  }

  std::mutex mutex_;
  std::list<std::pair<std::string, std::unique_ptr<compiled_program>>> cache_;
};

// -- results ------------------------------------------------------------------------------------

} // namespace

void yq_keep_input_numbers(json& out, const json& in) {
  if (out.is_number() && in.is_number()) {
    double a = out.get<double>(), b = in.get<double>();
    bool same_float = in.is_number_float() && !out.is_number_float() && a == b;
    bool rounded_int = !in.is_number_float() && a == b && out != in;
    bool clamped_inf = std::isinf(b) && std::fabs(a) == std::numeric_limits<double>::max()
                       && std::signbit(a) == std::signbit(b);
    if (same_float || rounded_int || clamped_inf)
      out = in;
    return;
  }
  if (out.is_object() && in.is_object()) {
    for (auto& [key, value] : out.items()) {
      auto it = in.find(key);
      if (it != in.end())
        yq_keep_input_numbers(value, *it);
    }
  } else if (out.is_array() && in.is_array()) {
    for (size_t i = 0; i < out.size() && i < in.size(); ++i)
      yq_keep_input_numbers(out[i], in[i]);
  }
}

namespace {

bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

} // namespace

std::string yq_rewrite_program(std::string_view expr, yq_access access) {
  return program_prefix(access) + program_rewriter(expr, access).run();
}

std::vector<json> yq_eval(std::string_view expr, const json& input, yq_access access) {
  std::string program = yq_rewrite_program(is_blank(expr) ? std::string_view(".") : expr, access);
  try {
    return jq_engine::instance().run(program, input);
  } catch (const json::exception& e) {
    throw yq_error(std::string("cannot read jq output: ") + e.what());
  }
}

std::string yq_edit_yaml(std::string_view yaml_text, std::string_view expr) {
  if (is_blank(expr))
    return std::string(yaml_text);
  json document;
  try {
    document = parse_yaml_to_json(yaml_text);
  } catch (const yaml_error& e) {
    throw yq_error(e.what());
  }
  auto results = yq_eval(expr, document);
  if (results.empty())
    throw yq_error("expression produced no document");
  if (results.size() > 1)
    throw yq_error("expression produced " + std::to_string(results.size())
                   + " documents, expected one");
  yq_keep_input_numbers(results.front(), document);
  return json_to_yaml(results.front());
}

std::string yq_print_scalar_or_json(const json& v) {
  if (v.is_string())
    return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace calima
