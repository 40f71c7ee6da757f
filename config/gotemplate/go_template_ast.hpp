#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/gotemplate/go_template.hpp"

/// Internals of the Go template engine: lexer items, parse tree and the parsed template set.
/// Mirrors Go's text/template/parse so positions and messages come out the same.
namespace calima::go_template::detail {

// -- lexer ------------------------------------------------------------------------------------

enum class item_type {
  error,
  boolean,
  char_constant,
  chr, // printable ASCII character: grab bag for comma etc.
  complex,
  assign,  // =
  declare, // :=
  eof,
  field,
  identifier,
  left_delim,
  left_paren,
  number,
  pipe,
  raw_string,
  right_delim,
  right_paren,
  space,
  string,
  text,
  variable,
  keyword, // marker: everything below is a keyword
  block,
  break_,
  continue_,
  dot,
  define,
  else_,
  end,
  if_,
  nil,
  range,
  template_,
  with,
};

/// One lexed token. `line` is 1-based; `pos` a byte offset into the template text.
struct item {
  item_type type = item_type::eof;
  std::size_t pos = 0;
  std::string val;
  int line = 1;

  /// Go's item.String(): `EOF`, the error text, `<keyword>`, or the %q-quoted value.
  std::string str() const;
};

/// Lexes the whole text; the result ends with an `eof` or an `error` item.
std::vector<item> lex(std::string_view text);

// -- parse tree -------------------------------------------------------------------------------

enum class node_type {
  text,
  action,
  boolean,
  chain,
  command,
  dot,
  else_, // parse-time only
  end,   // parse-time only
  field,
  identifier,
  if_,
  list,
  nil,
  number,
  pipe,
  range,
  string,
  template_,
  variable,
  with,
  break_,
  continue_,
};

struct node {
  node(node_type t, std::size_t p) : type(t), pos(p) {}
  virtual ~node() = default;
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Go's Node.String(), used as the `<context>` of execution errors.
  virtual std::string str() const = 0;

  node_type type;
  std::size_t pos;
};

using node_ptr = std::unique_ptr<node>;

struct list_node : node {
  explicit list_node(std::size_t p) : node(node_type::list, p) {}
  std::string str() const override;
  std::vector<node_ptr> nodes;
};

struct text_node : node {
  text_node(std::size_t p, std::string t) : node(node_type::text, p), text(std::move(t)) {}
  std::string str() const override;
  std::string text;
};

struct variable_node : node {
  variable_node(std::size_t p, std::vector<std::string> i) : node(node_type::variable, p), ident(std::move(i)) {}
  std::string str() const override;
  std::vector<std::string> ident; // ident[0] is the variable name with its `$`
};

struct command_node : node {
  explicit command_node(std::size_t p) : node(node_type::command, p) {}
  std::string str() const override;
  std::vector<node_ptr> args; // args[0] is the function, field, literal, …
};

struct pipe_node : node {
  pipe_node(std::size_t p, int l) : node(node_type::pipe, p), line(l) {}
  std::string str() const override;
  int line;
  bool is_assign = false;
  std::vector<std::unique_ptr<variable_node>> decl;
  std::vector<std::unique_ptr<command_node>> cmds;
};

struct action_node : node {
  action_node(std::size_t p, std::unique_ptr<pipe_node> pp) : node(node_type::action, p), pipe(std::move(pp)) {}
  std::string str() const override;
  std::unique_ptr<pipe_node> pipe;
};

struct field_node : node {
  field_node(std::size_t p, std::vector<std::string> i) : node(node_type::field, p), ident(std::move(i)) {}
  std::string str() const override;
  std::vector<std::string> ident; // without dots
};

struct chain_node : node {
  chain_node(std::size_t p, node_ptr n) : node(node_type::chain, p), operand(std::move(n)) {}
  std::string str() const override;
  node_ptr operand;
  std::vector<std::string> field; // without dots
};

struct identifier_node : node {
  identifier_node(std::size_t p, std::string i) : node(node_type::identifier, p), ident(std::move(i)) {}
  std::string str() const override { return ident; }
  std::string ident;
};

struct simple_node : node { // dot, nil, break, continue, else, end
  simple_node(node_type t, std::size_t p) : node(t, p) {}
  std::string str() const override;
};

struct bool_node : node {
  bool_node(std::size_t p, bool v) : node(node_type::boolean, p), value(v) {}
  std::string str() const override { return value ? "true" : "false"; }
  bool value;
};

struct number_node : node {
  number_node(std::size_t p, std::string t) : node(node_type::number, p), text(std::move(t)) {}
  std::string str() const override { return text; }
  std::string text;
  bool is_int = false, is_uint = false, is_float = false;
  std::int64_t int64 = 0;
  std::uint64_t uint64 = 0;
  double float64 = 0;
};

struct string_node : node {
  string_node(std::size_t p, std::string q, std::string t)
      : node(node_type::string, p), quoted(std::move(q)), text(std::move(t)) {}
  std::string str() const override { return quoted; }
  std::string quoted;
  std::string text;
};

/// if, range and with.
struct branch_node : node {
  branch_node(node_type t, std::size_t p) : node(t, p) {}
  std::string str() const override;
  std::unique_ptr<pipe_node> pipe;
  std::unique_ptr<list_node> list;
  std::unique_ptr<list_node> else_list; // may be null
};

struct template_node : node {
  template_node(std::size_t p, std::string n, std::unique_ptr<pipe_node> pp)
      : node(node_type::template_, p), name(std::move(n)), pipe(std::move(pp)) {}
  std::string str() const override;
  std::string name;
  std::unique_ptr<pipe_node> pipe; // may be null
};

/// One named template of a set.
struct tree {
  std::string name;
  std::unique_ptr<list_node> root;
};

/// Everything `tmpl` holds: the text (node positions index into it), the options and the trees.
struct template_set {
  std::string text;
  options opts;
  std::map<std::string, std::shared_ptr<tree>> trees;
};

/// Whether `name` is a builtin or (with lima_functions) a Lima function.
bool has_function(const options& opts, const std::string& name);

/// Parses `set.text` into `set.trees` (the main tree is named `set.opts.name`); throws `error`.
void parse_into(template_set& set);

// -- Go literal syntax (strconv); each returns false on syntax or range errors ------------------

/// strconv.Unquote for "…" and `…` literals.
bool go_unquote(std::string_view quoted, std::string& out);

/// strconv.UnquoteChar: decodes the (possibly escaped) character at s[i], appends its bytes to
/// `out`, stores its value in `rune` and advances i.
bool go_unquote_char(std::string_view s, std::size_t& i, char quote, std::string& out, std::uint32_t& rune);

/// strconv.ParseUint(s, 0, 64): 0x/0o/0b prefixes, leading-0 octal, `_` separators.
bool go_parse_uint(std::string_view s, std::uint64_t& out);

/// strconv.ParseInt(s, 0, 64).
bool go_parse_int(std::string_view s, std::int64_t& out);

/// strconv.ParseFloat(s, 64) for decimal and hexadecimal (p-exponent) forms.
bool go_parse_float(std::string_view s, double& out);

} // namespace calima::go_template::detail
