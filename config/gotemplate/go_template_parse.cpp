// Parser for Go templates: a transliteration of text/template/parse/parse.go (Go 1.22), keeping
// its three-token look-ahead so that error lines and messages match.
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template_ast.hpp"
#include "config/gotemplate/go_template_funcs.hpp"

#include <charconv>
#include <cmath>

namespace calima::go_template::detail {

// -- node strings (Go's Node.String) ----------------------------------------------------------

std::string list_node::str() const {
  std::string s;
  for (auto& n : nodes)
    s += n->str();
  return s;
}

std::string text_node::str() const {
  return text;
}

std::string variable_node::str() const {
  std::string s;
  for (std::size_t i = 0; i < ident.size(); ++i)
    s += (i ? "." : "") + ident[i];
  return s;
}

std::string command_node::str() const {
  std::string s;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i)
      s += ' ';
    if (args[i]->type == node_type::pipe)
      s += "(" + args[i]->str() + ")";
    else
      s += args[i]->str();
  }
  return s;
}

std::string pipe_node::str() const {
  std::string s;
  if (!decl.empty()) {
    for (std::size_t i = 0; i < decl.size(); ++i)
      s += (i ? ", " : "") + decl[i]->str();
    s += is_assign ? " = " : " := ";
  }
  for (std::size_t i = 0; i < cmds.size(); ++i)
    s += (i ? " | " : "") + cmds[i]->str();
  return s;
}

std::string action_node::str() const {
  return "{{" + pipe->str() + "}}";
}

std::string field_node::str() const {
  std::string s;
  for (auto& id : ident)
    s += "." + id;
  return s;
}

std::string chain_node::str() const {
  std::string s = operand->type == node_type::pipe ? "(" + operand->str() + ")" : operand->str();
  for (auto& f : field)
    s += "." + f;
  return s;
}

std::string simple_node::str() const {
  switch (type) {
    case node_type::dot: return ".";
    case node_type::nil: return "nil";
    case node_type::break_: return "{{break}}";
    case node_type::continue_: return "{{continue}}";
    case node_type::else_: return "{{else}}";
    case node_type::end: return "{{end}}";
    default: return "";
  }
}

std::string branch_node::str() const {
  const char* name = type == node_type::if_ ? "if" : type == node_type::range ? "range" : "with";
  std::string s = std::string("{{") + name + " " + pipe->str() + "}}" + list->str();
  if (else_list)
    s += "{{else}}" + else_list->str();
  return s + "{{end}}";
}

std::string template_node::str() const {
  if (!pipe)
    return "{{template " + go_quote(name) + "}}";
  return "{{template " + go_quote(name) + " " + pipe->str() + "}}";
}

bool has_function(const options& opts, const std::string& name) {
  return find_builtin(name, opts) != nullptr;
}

// -- parser -----------------------------------------------------------------------------------

namespace {

std::vector<std::string> split_dots(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto dot = s.find('.', start);
    out.emplace_back(s.substr(start, dot - start));
    if (dot == std::string_view::npos)
      return out;
    start = dot + 1;
  }
}

bool is_empty_tree(const node* n) {
  if (!n)
    return true;
  switch (n->type) {
    case node_type::list:
      for (auto& c : static_cast<const list_node*>(n)->nodes)
        if (!is_empty_tree(c.get()))
          return false;
      return true;
    case node_type::text:
      return static_cast<const text_node*>(n)->text.find_first_not_of(" \t\n\v\f\r") == std::string::npos;
    default: return false;
  }
}

class parser {
public:
  explicit parser(template_set& set) : set_(set), items_(lex(set.text)) {}

  void parse_main() {
    ts_ = tree_state{set_.opts.name};
    auto root = std::make_unique<list_node>(peek().pos);
    while (peek().type != item_type::eof) {
      if (peek().type == item_type::left_delim) {
        item delim = next();
        if (next_non_space().type == item_type::define) {
          tree_state saved = std::move(ts_);
          ts_ = tree_state{"definition"};
          parse_definition();
          ts_ = std::move(saved);
          continue;
        }
        backup2(delim);
      }
      node_ptr n = text_or_action();
      if (n->type == node_type::end || n->type == node_type::else_)
        errorf("unexpected " + n->str());
      root->nodes.push_back(std::move(n));
    }
    add(ts_.name, std::move(root));
  }

private:
  /// Parse state of the tree being built ({{define}} and {{block}} start a fresh one).
  struct tree_state {
    std::string name;
    std::vector<std::string> vars{"$"};
    int range_depth = 0;
    int action_line = 0;
  };

  // -- token stream: Go's next/backup/peek over a three-token buffer --

  item lex_next() {
    if (next_index_ < items_.size())
      return items_[next_index_++];
    return items_.back();
  }

  item next() {
    if (peek_count_ > 0)
      --peek_count_;
    else
      token_[0] = lex_next();
    return token_[peek_count_];
  }

  void backup() { ++peek_count_; }

  void backup2(item t1) {
    token_[1] = std::move(t1);
    peek_count_ = 2;
  }

  void backup3(item t2, item t1) {
    token_[1] = std::move(t1);
    token_[2] = std::move(t2);
    peek_count_ = 3;
  }

  item peek() {
    if (peek_count_ > 0)
      return token_[peek_count_ - 1];
    peek_count_ = 1;
    token_[0] = lex_next();
    return token_[0];
  }

  item next_non_space() {
    item t;
    do
      t = next();
    while (t.type == item_type::space);
    return t;
  }

  item peek_non_space() {
    item t = next_non_space();
    backup();
    return t;
  }

  // -- errors --

  [[noreturn]] void errorf(const std::string& msg) {
    throw error("template: " + set_.opts.name + ":" + std::to_string(token_[0].line) + ": " + msg);
  }

  [[noreturn]] void unexpected(const item& token, const std::string& context) {
    if (token.type == item_type::error) {
      std::string extra;
      if (ts_.action_line != 0 && ts_.action_line != token.line) {
        extra = " in action started at " + set_.opts.name + ":" + std::to_string(ts_.action_line);
        if (token.val.size() >= 7 && token.val.compare(token.val.size() - 7, 7, " action") == 0)
          extra = extra.substr(10); // avoid "action in action"
      }
      errorf(token.str() + extra);
    }
    errorf("unexpected " + token.str() + " in " + context);
  }

  item expect(item_type t, const std::string& context) {
    item token = next_non_space();
    if (token.type != t)
      unexpected(token, context);
    return token;
  }

  // -- trees --

  void add(const std::string& name, std::unique_ptr<list_node> root) {
    auto& slot = set_.trees[name];
    if (!slot || is_empty_tree(slot->root.get())) {
      slot = std::make_shared<tree>(tree{name, std::move(root)});
      return;
    }
    if (!is_empty_tree(root.get()))
      errorf("template: multiple definition of template " + go_quote(name));
  }

  void parse_definition() {
    item name = next_non_space();
    if (name.type != item_type::string && name.type != item_type::raw_string)
      unexpected(name, "define clause");
    std::string n;
    if (!go_unquote(name.val, n))
      errorf("invalid syntax");
    ts_.name = n;
    expect(item_type::right_delim, "define clause");
    auto [list, end] = item_list();
    if (end->type != node_type::end)
      errorf("unexpected " + end->str() + " in define clause");
    add(n, std::move(list));
  }

  std::pair<std::unique_ptr<list_node>, node_ptr> item_list() {
    auto list = std::make_unique<list_node>(peek_non_space().pos);
    while (peek_non_space().type != item_type::eof) {
      node_ptr n = text_or_action();
      if (n->type == node_type::end || n->type == node_type::else_)
        return {std::move(list), std::move(n)};
      list->nodes.push_back(std::move(n));
    }
    errorf("unexpected EOF");
  }

  node_ptr text_or_action() {
    item token = next_non_space();
    switch (token.type) {
      case item_type::text: return std::make_unique<text_node>(token.pos, token.val);
      case item_type::left_delim: {
        ts_.action_line = token.line;
        node_ptr n = action();
        ts_.action_line = 0;
        return n;
      }
      default: unexpected(token, "input");
    }
  }

  node_ptr action() {
    item token = next_non_space();
    switch (token.type) {
      case item_type::block: return block_control();
      case item_type::break_: return loop_control(node_type::break_, token.pos, "{{break}}");
      case item_type::continue_: return loop_control(node_type::continue_, token.pos, "{{continue}}");
      case item_type::else_: return else_control();
      case item_type::end:
        return std::make_unique<simple_node>(node_type::end, expect(item_type::right_delim, "end").pos);
      case item_type::if_: return branch_control(node_type::if_, "if");
      case item_type::range: return branch_control(node_type::range, "range");
      case item_type::template_: return template_control();
      case item_type::with: return branch_control(node_type::with, "with");
      default: break;
    }
    backup();
    std::size_t pos = peek().pos;
    return std::make_unique<action_node>(pos, pipeline("command", item_type::right_delim));
  }

  node_ptr loop_control(node_type t, std::size_t pos, const std::string& context) {
    item token = next_non_space();
    if (token.type != item_type::right_delim)
      unexpected(token, context);
    if (ts_.range_depth == 0)
      errorf(context + " outside {{range}}");
    return std::make_unique<simple_node>(t, pos);
  }

  node_ptr else_control() {
    item p = peek_non_space();
    // "{{else if …" and "{{else with …" are treated as "{{else}}{{if …": leave the keyword pending.
    if (p.type == item_type::if_ || p.type == item_type::with)
      return std::make_unique<simple_node>(node_type::else_, p.pos);
    item token = expect(item_type::right_delim, "else");
    return std::make_unique<simple_node>(node_type::else_, token.pos);
  }

  node_ptr branch_control(node_type t, const std::string& context) {
    std::size_t vars_mark = ts_.vars.size();
    auto n = std::make_unique<branch_node>(t, 0);
    n->pipe = pipeline(context, item_type::right_delim);
    n->pos = n->pipe->pos;
    if (t == node_type::range)
      ++ts_.range_depth;
    auto [list, next_node] = item_list();
    if (t == node_type::range)
      --ts_.range_depth;
    n->list = std::move(list);
    if (next_node->type == node_type::else_) {
      // Treat {{if a}}_{{else if b}}_{{end}} as {{if a}}_{{else}}{{if b}}_{{end}}{{end}}.
      if (t == node_type::if_ && peek().type == item_type::if_) {
        next();
        n->else_list = std::make_unique<list_node>(next_node->pos);
        n->else_list->nodes.push_back(branch_control(node_type::if_, "if"));
      } else if (t == node_type::with && peek().type == item_type::with) {
        next();
        n->else_list = std::make_unique<list_node>(next_node->pos);
        n->else_list->nodes.push_back(branch_control(node_type::with, "with"));
      } else {
        auto [else_list, end] = item_list();
        if (end->type != node_type::end)
          errorf("expected end; found " + end->str());
        n->else_list = std::move(else_list);
      }
    }
    ts_.vars.resize(vars_mark);
    return n;
  }

  std::string parse_template_name(const item& token, const std::string& context) {
    if (token.type != item_type::string && token.type != item_type::raw_string)
      unexpected(token, context);
    std::string name;
    if (!go_unquote(token.val, name))
      errorf("invalid syntax");
    return name;
  }

  node_ptr block_control() {
    const std::string context = "block clause";
    item token = next_non_space();
    std::string name = parse_template_name(token, context);
    auto pipe = pipeline(context, item_type::right_delim);
    tree_state saved = std::move(ts_);
    ts_ = tree_state{name};
    auto [list, end] = item_list();
    if (end->type != node_type::end)
      errorf("unexpected " + end->str() + " in " + context);
    add(name, std::move(list));
    ts_ = std::move(saved);
    return std::make_unique<template_node>(token.pos, name, std::move(pipe));
  }

  node_ptr template_control() {
    const std::string context = "template clause";
    item token = next_non_space();
    std::string name = parse_template_name(token, context);
    std::unique_ptr<pipe_node> pipe;
    if (next_non_space().type != item_type::right_delim) {
      backup();
      pipe = pipeline(context, item_type::right_delim);
    }
    return std::make_unique<template_node>(token.pos, name, std::move(pipe));
  }

  std::unique_ptr<pipe_node> pipeline(const std::string& context, item_type end) {
    item first = peek_non_space();
    auto pipe = std::make_unique<pipe_node>(first.pos, first.line);
    // Declarations or assignments? Space is a token, so "$x foo" needs three-token look-ahead.
    for (;;) {
      item v = peek_non_space();
      if (v.type != item_type::variable)
        break;
      next();
      item after = peek();
      item nx = peek_non_space();
      if (nx.type == item_type::assign || nx.type == item_type::declare) {
        pipe->is_assign = nx.type == item_type::assign;
        next_non_space();
        pipe->decl.push_back(std::make_unique<variable_node>(v.pos, split_dots(v.val)));
        ts_.vars.push_back(v.val);
      } else if (nx.type == item_type::chr && nx.val == ",") {
        next_non_space();
        pipe->decl.push_back(std::make_unique<variable_node>(v.pos, split_dots(v.val)));
        ts_.vars.push_back(v.val);
        if (context == "range" && pipe->decl.size() < 2) {
          auto t = peek_non_space().type;
          if (t == item_type::variable || t == item_type::right_delim || t == item_type::right_paren)
            continue; // second initialized variable in a range pipeline
          errorf("range can only initialize variables");
        }
        errorf("too many declarations in " + context);
      } else if (after.type == item_type::space) {
        backup3(v, after);
      } else {
        backup2(v);
      }
      break;
    }
    for (;;) {
      item token = next_non_space();
      if (token.type == end) {
        check_pipeline(*pipe, context);
        return pipe;
      }
      switch (token.type) {
        case item_type::boolean:
        case item_type::char_constant:
        case item_type::complex:
        case item_type::dot:
        case item_type::field:
        case item_type::identifier:
        case item_type::number:
        case item_type::nil:
        case item_type::raw_string:
        case item_type::string:
        case item_type::variable:
        case item_type::left_paren:
          backup();
          pipe->cmds.push_back(command());
          break;
        default: unexpected(token, context);
      }
    }
  }

  void check_pipeline(const pipe_node& pipe, const std::string& context) {
    if (pipe.cmds.empty())
      errorf("missing value for " + context);
    for (std::size_t i = 1; i < pipe.cmds.size(); ++i) {
      switch (pipe.cmds[i]->args[0]->type) {
        case node_type::boolean:
        case node_type::dot:
        case node_type::nil:
        case node_type::number:
        case node_type::string:
          errorf("non executable command in pipeline stage " + std::to_string(i + 1));
        default: break;
      }
    }
  }

  std::unique_ptr<command_node> command() {
    auto cmd = std::make_unique<command_node>(peek_non_space().pos);
    for (;;) {
      peek_non_space(); // skip leading spaces
      if (node_ptr op = operand())
        cmd->args.push_back(std::move(op));
      item token = next();
      if (token.type == item_type::space)
        continue;
      if (token.type == item_type::right_delim || token.type == item_type::right_paren)
        backup();
      else if (token.type != item_type::pipe)
        unexpected(token, "operand");
      break;
    }
    if (cmd->args.empty())
      errorf("empty command");
    return cmd;
  }

  node_ptr operand() {
    node_ptr n = term();
    if (!n || peek().type != item_type::field)
      return n;
    auto chain = std::make_unique<chain_node>(peek().pos, std::move(n));
    while (peek().type == item_type::field)
      chain->field.push_back(next().val.substr(1));
    // Fields and variables absorb the chain, as Go does for compatibility.
    switch (chain->operand->type) {
      case node_type::field: {
        auto ident = static_cast<field_node&>(*chain->operand).ident;
        ident.insert(ident.end(), chain->field.begin(), chain->field.end());
        return std::make_unique<field_node>(chain->pos, std::move(ident));
      }
      case node_type::variable: {
        auto ident = static_cast<variable_node&>(*chain->operand).ident;
        ident.insert(ident.end(), chain->field.begin(), chain->field.end());
        return std::make_unique<variable_node>(chain->pos, std::move(ident));
      }
      case node_type::boolean:
      case node_type::string:
      case node_type::number:
      case node_type::nil:
      case node_type::dot:
        errorf("unexpected . after term " + go_quote(chain->operand->str()));
      default: return chain;
    }
  }

  node_ptr term() {
    item token = next_non_space();
    switch (token.type) {
      case item_type::identifier:
        if (!has_function(set_.opts, token.val))
          errorf("function " + go_quote(token.val) + " not defined");
        return std::make_unique<identifier_node>(token.pos, token.val);
      case item_type::dot: return std::make_unique<simple_node>(node_type::dot, token.pos);
      case item_type::nil: return std::make_unique<simple_node>(node_type::nil, token.pos);
      case item_type::variable: {
        auto ident = split_dots(token.val);
        for (auto& v : ts_.vars)
          if (v == ident[0])
            return std::make_unique<variable_node>(token.pos, std::move(ident));
        errorf("undefined variable " + go_quote(ident[0]));
      }
      case item_type::field:
        return std::make_unique<field_node>(token.pos, std::vector<std::string>{token.val.substr(1)});
      case item_type::boolean: return std::make_unique<bool_node>(token.pos, token.val == "true");
      case item_type::char_constant:
      case item_type::complex:
      case item_type::number: return new_number(token);
      case item_type::left_paren: return pipeline("parenthesized pipeline", item_type::right_paren);
      case item_type::string:
      case item_type::raw_string: {
        std::string s;
        if (!go_unquote(token.val, s))
          errorf("invalid syntax");
        return std::make_unique<string_node>(token.pos, token.val, std::move(s));
      }
      default: break;
    }
    backup();
    return nullptr;
  }

  node_ptr new_number(const item& token) {
    auto n = std::make_unique<number_node>(token.pos, token.val);
    const std::string& text = token.val;
    if (token.type == item_type::char_constant) {
      std::string body = text.substr(1), sink;
      std::size_t i = 0;
      std::uint32_t r = 0;
      if (body.empty() || !go_unquote_char(body, i, '\'', sink, r))
        errorf("invalid syntax");
      if (body.substr(i) != "'")
        errorf("malformed character constant: " + text);
      n->is_int = n->is_uint = n->is_float = true;
      n->int64 = r;
      n->uint64 = r;
      n->float64 = r;
      return n;
    }
    if (token.type == item_type::complex || text.back() == 'i')
      errorf("complex numbers are not supported: " + text);
    std::uint64_t u = 0;
    if (go_parse_uint(text, u)) {
      n->is_uint = true;
      n->uint64 = u;
    }
    std::int64_t i = 0;
    if (go_parse_int(text, i)) {
      n->is_int = true;
      n->int64 = i;
      if (i == 0) { // in case of -0
        n->is_uint = true;
        n->uint64 = 0;
      }
    }
    if (n->is_int) {
      n->is_float = true;
      n->float64 = static_cast<double>(n->int64);
    } else if (n->is_uint) {
      n->is_float = true;
      n->float64 = static_cast<double>(n->uint64);
    } else {
      double f = 0;
      if (go_parse_float(text, f)) {
        // Parsed as a float but looks like an integer: a huge number too large for an int.
        if (text.find_first_of(".eEpP") == std::string::npos)
          errorf("integer overflow: " + go_quote(text));
        n->is_float = true;
        n->float64 = f;
        if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 && std::trunc(f) == f) {
          n->is_int = true;
          n->int64 = static_cast<std::int64_t>(f);
        }
        if (f >= 0 && f < 18446744073709551616.0 && std::trunc(f) == f) {
          n->is_uint = true;
          n->uint64 = static_cast<std::uint64_t>(f);
        }
      }
    }
    if (!n->is_int && !n->is_uint && !n->is_float)
      errorf("illegal number syntax: " + go_quote(text));
    return n;
  }

  template_set& set_;
  std::vector<item> items_;
  std::size_t next_index_ = 0;
  item token_[3];
  int peek_count_ = 0;
  tree_state ts_;
};

} // namespace

void parse_into(template_set& set) {
  parser(set).parse_main();
}

} // namespace calima::go_template::detail
