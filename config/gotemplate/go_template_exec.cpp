// Executor for Go templates: a transliteration of text/template/exec.go (Go 1.22) over JSON data.
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template_ast.hpp"
#include "config/gotemplate/go_template_funcs.hpp"
#include "config/gotemplate/go_template_value.hpp"

#include <algorithm>

namespace calima::go_template {

namespace detail {

namespace {

/// Nested {{template}} calls allowed; Go allows 100000 but our frames are bigger than its.
constexpr int max_exec_depth = 1000;

/// How a walk ended: normally, or by {{break}} / {{continue}} inside a range.
enum class flow { normal, break_, continue_ };

bool is_hex_int(const std::string& s) {
  return s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && s.find_first_of("pP") == std::string::npos;
}

class executor {
public:
  executor(const template_set& set, const json& data) : set_(set), data_(data) {}

  std::string run() {
    auto it = set_.trees.find(set_.opts.name);
    if (it == set_.trees.end() || !it->second->root)
      errorf(go_quote(set_.opts.name) + " is an incomplete or empty template");
    tmpl_ = it->second.get();
    value root = data_.is_null() ? value{} : value::ref(data_, set_.opts.root_is_map, true);
    vars_.push_back({"$", root});
    walk(root, *tmpl_->root);
    return std::move(out_);
  }

private:
  struct variable {
    std::string name;
    value v;
  };

  using args_t = std::vector<node_ptr>;

  // -- errors --

  void at(const node* n) { at_ = n; }

  [[noreturn]] void errorf(const std::string& msg) const {
    const std::string& name = tmpl_ ? tmpl_->name : set_.opts.name;
    if (!at_)
      throw error("template: " + name + ": " + msg);
    // Go's Tree.ErrorContext: name:line:byte-in-line (0-based) and the node's text.
    std::size_t pos = std::min(at_->pos, set_.text.size());
    std::string_view before(set_.text.data(), pos);
    auto nl = before.rfind('\n');
    std::size_t col = nl == std::string_view::npos ? pos : pos - nl - 1;
    auto line = 1 + std::count(before.begin(), before.end(), '\n');
    throw error("template: " + set_.opts.name + ":" + std::to_string(line) + ":" + std::to_string(col) +
                ": executing " + go_quote(name) + " at <" + at_->str() + ">: " + msg);
  }

  // -- variables --

  void set_var(const std::string& name, const value& v) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->name == name) {
        it->v = v;
        return;
      }
    errorf("undefined variable: " + name);
  }

  value var_value(const std::string& name) {
    for (auto it = vars_.rbegin(); it != vars_.rend(); ++it)
      if (it->name == name)
        return it->v;
    errorf("undefined variable: " + name);
  }

  // -- walking --

  flow walk(const value& dot, const node& n) {
    at(&n);
    switch (n.type) {
      case node_type::action: {
        auto& a = static_cast<const action_node&>(n);
        value v = eval_pipeline(dot, a.pipe.get());
        if (a.pipe->decl.empty()) {
          at(&n);
          out_ += v.is_nil() ? "<no value>" : sprint_value(v.get());
        }
        return flow::normal;
      }
      case node_type::break_: return flow::break_;
      case node_type::continue_: return flow::continue_;
      case node_type::if_:
      case node_type::with: return walk_if_or_with(dot, static_cast<const branch_node&>(n));
      case node_type::list:
        for (auto& c : static_cast<const list_node&>(n).nodes) {
          flow f = walk(dot, *c);
          if (f != flow::normal)
            return f;
        }
        return flow::normal;
      case node_type::range: walk_range(dot, static_cast<const branch_node&>(n)); return flow::normal;
      case node_type::template_: walk_template(dot, static_cast<const template_node&>(n)); return flow::normal;
      case node_type::text: out_ += static_cast<const text_node&>(n).text; return flow::normal;
      default: errorf("unknown node: " + n.str());
    }
  }

  flow walk_if_or_with(const value& dot, const branch_node& b) {
    std::size_t mark = vars_.size();
    value v = eval_pipeline(dot, b.pipe.get());
    flow f = flow::normal;
    if (truth(v))
      f = walk(b.type == node_type::with ? v : dot, *b.list);
    else if (b.else_list)
      f = walk(dot, *b.else_list);
    vars_.resize(mark);
    return f;
  }

  bool child_is_map(const value& parent, const std::string& key) const {
    return parent.map_ctx() || set_.opts.map_keys.count(key) > 0;
  }

  void walk_range(const value& dot, const branch_node& r) {
    at(&r);
    std::size_t outer_mark = vars_.size();
    value val = eval_pipeline(dot, r.pipe.get());
    std::size_t mark = vars_.size(); // before any variables of the body
    const auto& decl = r.pipe->decl;
    // Runs the body once; true if it hit {{break}}.
    auto one_iteration = [&](const value& index, const value& elem) {
      if (!decl.empty()) {
        if (r.pipe->is_assign)
          set_var(decl[0]->ident[0], decl.size() > 1 ? index : elem);
        else
          vars_[vars_.size() - 1].v = elem;
      }
      if (decl.size() > 1) {
        if (r.pipe->is_assign)
          set_var(decl[1]->ident[0], elem);
        else
          vars_[vars_.size() - 2].v = index;
      }
      flow f = walk(elem, *r.list);
      vars_.resize(mark);
      return f == flow::break_;
    };
    bool ran = false;
    switch (val.kind_of()) {
      case kind::array: {
        const json& arr = val.get();
        for (std::size_t i = 0; i < arr.size(); ++i) {
          ran = true;
          if (one_iteration(value::make(static_cast<std::int64_t>(i)), val.child(arr[i], val.map_ctx())))
            break;
        }
        break;
      }
      case kind::map:
      case kind::object: { // Go ranges over maps in key order
        std::vector<std::string> keys;
        for (auto& [k, v] : val.get().items())
          keys.push_back(k);
        std::sort(keys.begin(), keys.end());
        for (auto& k : keys) {
          ran = true;
          if (one_iteration(value::make(k), val.child(val.get().at(k), child_is_map(val, k))))
            break;
        }
        break;
      }
      case kind::integer: {
        if (decl.size() > 1)
          errorf("can't use " + sprint_value(val.get()) + " to iterate over more than one variable");
        auto n = val.get().get<std::int64_t>();
        for (std::int64_t i = 0; i < n; ++i) {
          ran = true;
          if (one_iteration(value{}, value::make(i)))
            break;
        }
        break;
      }
      case kind::invalid:
      case kind::nil: break; // like an empty map
      default: errorf("range can't iterate over " + sprint_value(val.get()));
    }
    if (!ran && r.else_list)
      walk(dot, *r.else_list);
    vars_.resize(outer_mark);
  }

  void walk_template(const value& dot, const template_node& t) {
    at(&t);
    auto it = set_.trees.find(t.name);
    if (it == set_.trees.end() || !it->second->root)
      errorf("template " + go_quote(t.name) + " not defined");
    if (depth_ >= max_exec_depth)
      errorf("exceeded maximum template depth (" + std::to_string(max_exec_depth) + ")");
    value new_dot = eval_pipeline(dot, t.pipe.get()); // variables declared here persist
    std::vector<variable> saved_vars = std::move(vars_);
    const tree* saved_tmpl = tmpl_;
    vars_ = {{"$", new_dot}}; // no dynamic scoping
    tmpl_ = it->second.get();
    ++depth_;
    walk(new_dot, *tmpl_->root);
    --depth_;
    tmpl_ = saved_tmpl;
    vars_ = std::move(saved_vars);
  }

  // -- evaluation --

  value eval_pipeline(const value& dot, const pipe_node* pipe) {
    if (!pipe)
      return value{};
    at(pipe);
    value v;
    bool have = false;
    for (auto& cmd : pipe->cmds) {
      value prev = v;
      v = eval_command(dot, *cmd, have ? &prev : nullptr);
      have = true;
      // An interface{} holding nil (a null in the data) is no value at all.
      if (v.valid() && v.get().is_null())
        v = value{};
    }
    for (auto& d : pipe->decl) {
      if (pipe->is_assign)
        set_var(d->ident[0], v);
      else
        vars_.push_back({d->ident[0], v});
    }
    return v;
  }

  void not_a_function(const args_t* args, const value* final) {
    if ((args && args->size() > 1) || final)
      errorf("can't give argument to non-function " + (*args)[0]->str());
  }

  value eval_command(const value& dot, const command_node& cmd, const value* final) {
    const node& first = *cmd.args[0];
    switch (first.type) {
      case node_type::field: return eval_field_node(dot, static_cast<const field_node&>(first), &cmd.args, final);
      case node_type::chain: return eval_chain_node(dot, static_cast<const chain_node&>(first), &cmd.args, final);
      case node_type::identifier:
        return eval_function(dot, static_cast<const identifier_node&>(first), cmd, &cmd.args, final);
      case node_type::pipe:
        not_a_function(&cmd.args, final);
        return eval_pipeline(dot, static_cast<const pipe_node*>(&first));
      case node_type::variable:
        return eval_variable_node(dot, static_cast<const variable_node&>(first), &cmd.args, final);
      default: break;
    }
    at(&first);
    not_a_function(&cmd.args, final);
    switch (first.type) {
      case node_type::boolean: return value::make(static_cast<const bool_node&>(first).value);
      case node_type::dot: return dot;
      case node_type::nil: errorf("nil is not a command");
      case node_type::number: return ideal_constant(static_cast<const number_node&>(first));
      case node_type::string: return value::make(static_cast<const string_node&>(first).text);
      default: errorf("can't evaluate command " + go_quote(first.str()));
    }
  }

  /// A number literal where no type is known: float if it looks like one, else int.
  value ideal_constant(const number_node& n) {
    at(&n);
    if (n.is_float && !is_hex_int(n.text) && n.text[0] != '\'' &&
        n.text.find_first_of(".eEpP") != std::string::npos)
      return value::make(n.float64);
    if (n.is_int)
      return value::make(n.int64);
    if (n.is_uint)
      errorf(n.text + " overflows int");
    return value{};
  }

  value eval_field_node(const value& dot, const field_node& f, const args_t* args, const value* final) {
    at(&f);
    return eval_field_chain(dot, dot, f, f.ident, 0, args, final);
  }

  value eval_chain_node(const value& dot, const chain_node& c, const args_t* args, const value* final) {
    at(&c);
    if (c.operand->type == node_type::nil)
      errorf("indirection through explicit nil in " + c.str());
    value v = eval_arg(dot, param::any, *c.operand);
    return eval_field_chain(dot, v, c, c.field, 0, args, final);
  }

  value eval_variable_node(const value& dot, const variable_node& var, const args_t* args, const value* final) {
    at(&var);
    value v = var_value(var.ident[0]);
    if (var.ident.size() == 1) {
      not_a_function(args, final);
      return v;
    }
    return eval_field_chain(dot, v, var, var.ident, 1, args, final);
  }

  value eval_field_chain(const value& dot, value receiver, const node& n, const std::vector<std::string>& ident,
                         std::size_t from, const args_t* args, const value* final) {
    for (std::size_t i = from; i + 1 < ident.size(); ++i)
      receiver = eval_field(ident[i], nullptr, nullptr, receiver);
    return eval_field(ident.back(), args, final, receiver);
  }

  /// Field lookup on a struct (JSON object): exact key, Lima's self alias, Go field name, omitted field.
  const json* struct_field(const value& receiver, const std::string& name, std::string& key) const {
    const json& j = receiver.get();
    if (auto it = j.find(name); it != j.end()) {
      key = name;
      return &*it;
    }
    if (receiver.is_root() && !set_.opts.self_alias.empty() && name == set_.opts.self_alias)
      return &receiver.get();
    for (auto& [k, v] : j.items())
      if (go_field_name(k) == name) {
        key = k;
        return &v;
      }
    if (receiver.is_root())
      for (auto& [k, v] : set_.opts.omitted_fields)
        if (k == name || go_field_name(k) == name) {
          key = k;
          return &v;
        }
    // A map field left out of the data (omitempty) is a nil map.
    static const json nil_map = json::object();
    for (auto& k : set_.opts.map_keys)
      if (k == name || go_field_name(k) == name) {
        key = k;
        return &nil_map;
      }
    return nullptr;
  }

  value eval_field(const std::string& name, const args_t* args, const value* final, const value& receiver) {
    if (!receiver.valid())
      return value{}; // Go: an invalid receiver yields no value
    if (receiver.get().is_null())
      errorf("nil pointer evaluating interface {}." + name);
    bool has_args = (args && args->size() > 1) || final;
    switch (receiver.kind_of()) {
      case kind::map: {
        if (has_args)
          errorf(name + " is not a method but has arguments");
        auto it = receiver.get().find(name);
        if (it == receiver.get().end())
          return value{};
        return receiver.child(*it, true);
      }
      case kind::object: {
        std::string key;
        if (const json* f = struct_field(receiver, name, key)) {
          if (has_args)
            errorf(name + " has arguments but cannot be invoked as function");
          if (f == &receiver.get())
            return receiver; // the self alias
          return receiver.child(*f, set_.opts.map_keys.count(key) > 0);
        }
        break;
      }
      default: break;
    }
    std::string type = receiver.is_root() ? set_.opts.root_type
                       : receiver.kind_of() == kind::object ? "interface {}"
                                                           : type_name(receiver.get());
    errorf("can't evaluate field " + name + " in type " + type);
  }

  value eval_function(const value& dot, const identifier_node& id, const node& cmd, const args_t* args,
                      const value* final) {
    at(&id);
    const builtin* fn = find_builtin(id.ident, set_.opts);
    if (!fn)
      errorf(go_quote(id.ident) + " is not a defined function");
    return eval_call(dot, *fn, cmd, id.ident, args, final);
  }

  value eval_call(const value& dot, const builtin& fn, const node& n, const std::string& name, const args_t* args,
                  const value* final) {
    std::size_t nargs = args ? args->size() - 1 : 0; // args[0] is the function itself
    auto arg = [&](std::size_t i) -> const node& { return *(*args)[i + 1]; };
    std::size_t num_in = nargs + (final ? 1 : 0);
    std::size_t num_fixed = nargs;
    if (fn.variadic) {
      num_fixed = fn.fixed.size();
      if (num_in < num_fixed)
        errorf("wrong number of args for " + name + ": want at least " + std::to_string(fn.fixed.size()) + " got " +
               std::to_string(nargs));
    } else if (num_in != fn.fixed.size()) {
      errorf("wrong number of args for " + name + ": want " + std::to_string(fn.fixed.size()) + " got " +
             std::to_string(num_in));
    }

    if (name == "and" || name == "or") { // short-circuit: the deciding value, not a bool
      value v;
      for (std::size_t i = 0; i < nargs; ++i) {
        v = eval_arg(dot, param::value, arg(i));
        if (truth(v) == (name == "or"))
          return v;
      }
      if (final)
        v = *final;
      return v;
    }

    std::vector<value> argv;
    std::size_t i = 0;
    for (; i < num_fixed && i < nargs; ++i)
      argv.push_back(eval_arg(dot, fn.fixed[i], arg(i)));
    for (; fn.variadic && i < nargs; ++i)
      argv.push_back(eval_arg(dot, fn.rest, arg(i)));
    if (final) {
      param t = !fn.variadic ? fn.fixed.back() : num_in - 1 < num_fixed ? fn.fixed[num_in - 1] : fn.rest;
      argv.push_back(validate_type(*final, t));
    }

    if (name == "call") {
      std::string callee = nargs ? arg(0).str() : (final && !final->is_nil() ? sprint_value(final->get()) : "");
      at(&n);
      if (argv[0].is_nil())
        errorf("error calling call: call of nil");
      errorf("error calling call: non-function " + callee + " of type " + type_name(argv[0].get()));
    }

    try {
      return fn.call(argv, set_.opts);
    } catch (const func_error& e) {
      at(&n);
      errorf("error calling " + name + ": " + e.what());
    }
  }

  value validate_type(const value& v, param t) {
    if (t != param::string)
      return v;
    if (!v.valid())
      errorf("invalid value; expected string");
    if (!v.get().is_string())
      errorf("wrong type for value; expected string; got " +
             (v.get().is_null() ? std::string("interface {}") : type_name(v.get())));
    return v;
  }

  value eval_arg(const value& dot, param t, const node& n) {
    at(&n);
    switch (n.type) {
      case node_type::dot: return validate_type(dot, t);
      case node_type::nil:
        if (t == param::string)
          errorf("cannot assign nil to string");
        return value{};
      case node_type::field:
        return validate_type(eval_field_node(dot, static_cast<const field_node&>(n), nullptr, nullptr), t);
      case node_type::variable:
        return validate_type(eval_variable_node(dot, static_cast<const variable_node&>(n), nullptr, nullptr), t);
      case node_type::pipe: return validate_type(eval_pipeline(dot, static_cast<const pipe_node*>(&n)), t);
      case node_type::identifier: {
        auto& id = static_cast<const identifier_node&>(n);
        return validate_type(eval_function(dot, id, id, nullptr, nullptr), t);
      }
      case node_type::chain:
        return validate_type(eval_chain_node(dot, static_cast<const chain_node&>(n), nullptr, nullptr), t);
      default: break;
    }
    if (t == param::string) {
      if (n.type == node_type::string)
        return value::make(static_cast<const string_node&>(n).text);
      errorf("expected string; found " + n.str());
    }
    switch (n.type) { // evalEmptyInterface
      case node_type::boolean: return value::make(static_cast<const bool_node&>(n).value);
      case node_type::number: return ideal_constant(static_cast<const number_node&>(n));
      case node_type::string: return value::make(static_cast<const string_node&>(n).text);
      default: errorf("can't handle assignment of " + n.str() + " to empty interface argument");
    }
  }

  const template_set& set_;
  const json& data_;
  const tree* tmpl_ = nullptr;
  const node* at_ = nullptr;
  std::vector<variable> vars_;
  std::string out_;
  int depth_ = 0;
};

} // namespace

} // namespace detail

// -- public interface -------------------------------------------------------------------------

tmpl::tmpl(std::shared_ptr<const detail::template_set> set) : set_(std::move(set)) {}

tmpl tmpl::parse(std::string_view text, options opts) {
  auto set = std::make_shared<detail::template_set>();
  set->text = std::string(text);
  set->opts = std::move(opts);
  detail::parse_into(*set);
  return tmpl(std::move(set));
}

std::string tmpl::execute(const nlohmann::ordered_json& data) const {
  return detail::executor(*set_, data).run();
}

const std::string& tmpl::name() const {
  return set_->opts.name;
}

std::string render(std::string_view text, const nlohmann::ordered_json& data, options opts) {
  return tmpl::parse(text, std::move(opts)).execute(data);
}

std::string go_field_name(std::string_view json_key) {
  // Lima's Go struct fields whose JSON key is not simply the field name with a lower-case initial.
  static const std::pair<std::string_view, std::string_view> exceptions[] = {
      {"cpus", "CPUs"},
      {"vmType", "VMType"},
      {"vmOpts", "VMOpts"},
      {"os", "OS"},
      {"cpuType", "CPUType"},
      {"ssh", "SSH"},
      {"dns", "DNS"},
      {"caCerts", "CACertificates"},
      {"timezone", "TimeZone"},
      {"tpm", "TPM"},
      {"osOpts", "OSOpts"},
      {"uid", "UID"},
      {"sshfs", "SSHFS"},
      {"9p", "NineP"},
      {"vnc", "VNC"},
      {"ipv6", "IPv6"},
      {"macAddress", "MACAddress"},
      {"vzNAT", "VZNAT"},
      {"binfmt", "BinFmt"},
      {"sshLocalPort", "SSHLocalPort"},
      {"sshConfigFile", "SSHConfigFile"},
      {"sshAddress", "SSHAddress"},
      {"network", "Networks"},
      {"loadDotSSHPubKeys", "LoadDotSSHPubKeys"},
      {"legacyBIOS", "LegacyBIOS"},
  };
  for (auto& [key, name] : exceptions)
    if (key == json_key)
      return std::string(name);
  std::string out(json_key);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z')
    out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

} // namespace calima::go_template
