// Builtin template functions (text/template/funcs.go) and Lima's extras (pkg/textutil).
#include "config/gotemplate/go_template_funcs.hpp"

#include <algorithm>
#include <map>

namespace calima::go_template::detail {

namespace {

// -- helpers ----------------------------------------------------------------------------------

const json* arg_ptr(const value& v) {
  return v.is_nil() ? nullptr : &v.get();
}

std::vector<const json*> arg_ptrs(const std::vector<value>& args) {
  std::vector<const json*> out;
  for (auto& a : args)
    out.push_back(arg_ptr(a));
  return out;
}

json normalize(const json& j, bool map_ctx, const options& opts) {
  if (j.is_object()) {
    json out = json::object();
    if (map_ctx) {
      std::vector<std::string> keys;
      for (auto& [k, v] : j.items())
        keys.push_back(k);
      std::sort(keys.begin(), keys.end());
      for (auto& k : keys)
        out[k] = normalize(j.at(k), true, opts);
    } else {
      for (auto& [k, v] : j.items())
        out[k] = normalize(v, opts.map_keys.count(k) > 0, opts);
    }
    return out;
  }
  if (j.is_array()) {
    json out = json::array();
    for (auto& e : j)
      out.push_back(normalize(e, map_ctx, opts));
    return out;
  }
  return j;
}

/// Go's indexArg: an int index in [0, cap].
std::int64_t index_arg(const value& index, std::size_t cap) {
  std::int64_t x = 0;
  switch (index.kind_of()) {
    case kind::integer: x = index.get().get<std::int64_t>(); break;
    case kind::uinteger: x = static_cast<std::int64_t>(index.get().get<std::uint64_t>()); break;
    case kind::invalid:
    case kind::nil: throw func_error("cannot index slice/array with nil");
    default: throw func_error("cannot index slice/array with type " + type_name(index.get()));
  }
  if (x < 0 || static_cast<std::uint64_t>(x) > cap)
    throw func_error("index out of range: " + std::to_string(x));
  return x;
}

// -- Go builtins ------------------------------------------------------------------------------

value fn_len(const std::vector<value>& a, const options&) {
  const value& v = a[0];
  switch (v.kind_of()) {
    case kind::invalid: throw func_error("reflect: call of reflect.Value.Type on zero Value");
    case kind::nil: throw func_error("len of nil pointer");
    case kind::string: return value::make(static_cast<std::int64_t>(v.get().get_ref<const std::string&>().size()));
    case kind::array:
    case kind::map:
    case kind::object: return value::make(static_cast<std::int64_t>(v.get().size()));
    default: throw func_error("len of type " + type_name(v.get()));
  }
}

value fn_index(const std::vector<value>& a, const options& opts) {
  value item = a[0];
  if (item.is_nil())
    throw func_error("index of untyped nil");
  for (std::size_t i = 1; i < a.size(); ++i) {
    const value& index = a[i];
    if (item.is_nil())
      throw func_error("index of nil pointer");
    switch (item.kind_of()) {
      case kind::array: {
        auto x = static_cast<std::size_t>(index_arg(index, item.get().size()));
        if (x == item.get().size())
          throw func_error("reflect: slice index out of range");
        item = item.child(item.get()[x], item.map_ctx());
        break;
      }
      case kind::string: {
        const auto& s = item.get().get_ref<const std::string&>();
        auto x = static_cast<std::size_t>(index_arg(index, s.size()));
        if (x == s.size())
          throw func_error("reflect: string index out of range");
        item = value::make(static_cast<std::int64_t>(static_cast<unsigned char>(s[x])));
        break;
      }
      case kind::map:
      case kind::object: {
        if (!index.valid() || index.is_nil())
          throw func_error("value is nil; should be of type string");
        if (!index.get().is_string())
          throw func_error("value has type " + type_name(index.get()) + "; should be string");
        const auto& key = index.get().get_ref<const std::string&>();
        auto it = item.get().find(key);
        if (it == item.get().end())
          item = value::make(nullptr); // the zero value of interface{}
        else
          item = item.child(*it, item.map_ctx() || opts.map_keys.count(key) > 0);
        break;
      }
      default: throw func_error("can't index item of type " + type_name(item.get()));
    }
  }
  return item;
}

value fn_slice(const std::vector<value>& a, const options&) {
  const value& item = a[0];
  if (item.is_nil())
    throw func_error("slice of untyped nil");
  std::size_t nidx = a.size() - 1;
  if (nidx > 3)
    throw func_error("too many slice indexes: " + std::to_string(nidx));
  std::size_t len = 0;
  switch (item.kind_of()) {
    case kind::string:
      if (nidx == 3)
        throw func_error("cannot 3-index slice a string");
      len = item.get().get_ref<const std::string&>().size();
      break;
    case kind::array: len = item.get().size(); break;
    default: throw func_error("can't slice item of type " + type_name(item.get()));
  }
  std::int64_t idx[3] = {0, static_cast<std::int64_t>(len), static_cast<std::int64_t>(len)};
  for (std::size_t i = 0; i < nidx; ++i)
    idx[i] = index_arg(a[i + 1], len);
  if (idx[0] > idx[1])
    throw func_error("invalid slice index: " + std::to_string(idx[0]) + " > " + std::to_string(idx[1]));
  if (nidx == 3 && idx[1] > idx[2])
    throw func_error("invalid slice index: " + std::to_string(idx[1]) + " > " + std::to_string(idx[2]));
  auto from = static_cast<std::size_t>(idx[0]), to = static_cast<std::size_t>(idx[1]);
  if (item.kind_of() == kind::string)
    return value::make(item.get().get_ref<const std::string&>().substr(from, to - from));
  json out = json::array();
  for (std::size_t i = from; i < to; ++i)
    out.push_back(item.get()[i]);
  return value::make(std::move(out), item.map_ctx());
}

value fn_not(const std::vector<value>& a, const options&) {
  return value::make(!truth(a[0]));
}

// Comparison: Go's basic kinds; everything else is "invalid" for comparison purposes.
enum class basic { invalid, boolean, integer, uinteger, floating, string };

basic basic_kind(const value& v) {
  switch (v.kind_of()) {
    case kind::boolean: return basic::boolean;
    case kind::integer: return basic::integer;
    case kind::uinteger: return basic::uinteger;
    case kind::floating: return basic::floating;
    case kind::string: return basic::string;
    default: return basic::invalid;
  }
}

std::string cmp_type(const value& v) {
  return v.is_nil() ? "<nil>" : type_name(v.get());
}

std::int64_t as_int(const value& v) {
  return v.get().get<std::int64_t>();
}

std::uint64_t as_uint(const value& v) {
  return v.get().get<std::uint64_t>();
}

bool equal(const value& a, const value& b) {
  basic k1 = basic_kind(a), k2 = basic_kind(b);
  if (k1 != k2) {
    if (k1 == basic::integer && k2 == basic::uinteger)
      return as_int(a) >= 0 && static_cast<std::uint64_t>(as_int(a)) == as_uint(b);
    if (k1 == basic::uinteger && k2 == basic::integer)
      return as_int(b) >= 0 && as_uint(a) == static_cast<std::uint64_t>(as_int(b));
    if (!a.is_nil() && !b.is_nil())
      throw func_error("incompatible types for comparison: " + cmp_type(a) + " and " + cmp_type(b));
    return false;
  }
  switch (k1) {
    case basic::boolean: return a.get().get<bool>() == b.get().get<bool>();
    case basic::integer: return as_int(a) == as_int(b);
    case basic::uinteger: return as_uint(a) == as_uint(b);
    case basic::floating: return a.get().get<double>() == b.get().get<double>();
    case basic::string: return a.get().get_ref<const std::string&>() == b.get().get_ref<const std::string&>();
    case basic::invalid: break;
  }
  // Arrays, maps and nil: only nil compares.
  if (a.is_nil() || b.is_nil())
    return a.is_nil() == b.is_nil();
  if (a.get().type() != b.get().type())
    throw func_error("non-comparable types " + sprint_value(a.get()) + ": " + cmp_type(a) + ", " + cmp_type(b) +
                     ": " + sprint_value(b.get()));
  throw func_error("non-comparable type " + sprint_value(b.get()) + ": " + cmp_type(b));
}

bool less(const value& a, const value& b) {
  basic k1 = basic_kind(a), k2 = basic_kind(b);
  if (k1 == basic::invalid || k2 == basic::invalid)
    throw func_error("invalid type for comparison");
  if (k1 != k2) {
    if (k1 == basic::integer && k2 == basic::uinteger)
      return as_int(a) < 0 || static_cast<std::uint64_t>(as_int(a)) < as_uint(b);
    if (k1 == basic::uinteger && k2 == basic::integer)
      return as_int(b) >= 0 && as_uint(a) < static_cast<std::uint64_t>(as_int(b));
    throw func_error("incompatible types for comparison: " + cmp_type(a) + " and " + cmp_type(b));
  }
  switch (k1) {
    case basic::integer: return as_int(a) < as_int(b);
    case basic::uinteger: return as_uint(a) < as_uint(b);
    case basic::floating: return a.get().get<double>() < b.get().get<double>();
    case basic::string: return a.get().get_ref<const std::string&>() < b.get().get_ref<const std::string&>();
    default: throw func_error("invalid type for comparison");
  }
}

value fn_eq(const std::vector<value>& a, const options&) {
  if (a.size() < 2)
    throw func_error("missing argument for comparison");
  for (std::size_t i = 1; i < a.size(); ++i)
    if (equal(a[0], a[i]))
      return value::make(true);
  return value::make(false);
}

value fn_ne(const std::vector<value>& a, const options&) {
  return value::make(!equal(a[0], a[1]));
}

value fn_lt(const std::vector<value>& a, const options&) {
  return value::make(less(a[0], a[1]));
}

value fn_le(const std::vector<value>& a, const options&) {
  return value::make(less(a[0], a[1]) || equal(a[0], a[1]));
}

value fn_gt(const std::vector<value>& a, const options&) {
  return value::make(!(less(a[0], a[1]) || equal(a[0], a[1])));
}

value fn_ge(const std::vector<value>& a, const options&) {
  return value::make(!less(a[0], a[1]));
}

value fn_print(const std::vector<value>& a, const options&) {
  return value::make(go_sprint(arg_ptrs(a)));
}

value fn_println(const std::vector<value>& a, const options&) {
  return value::make(go_sprintln(arg_ptrs(a)));
}

value fn_printf(const std::vector<value>& a, const options&) {
  std::vector<value> rest(a.begin() + 1, a.end());
  return value::make(go_sprintf(a[0].get().get_ref<const std::string&>(), arg_ptrs(rest)));
}

/// evalArgs of html/js/urlquery: a lone string as is, else fmt.Sprint with nil as "<no value>".
std::string eval_args(const std::vector<value>& a) {
  if (a.size() == 1 && a[0].valid() && a[0].get().is_string())
    return a[0].get().get<std::string>();
  static const json no_value = "<no value>";
  std::vector<const json*> ptrs;
  for (auto& v : a)
    ptrs.push_back(v.is_nil() ? &no_value : &v.get());
  return go_sprint(ptrs);
}

value fn_html(const std::vector<value>& a, const options&) {
  std::string out;
  for (char c : eval_args(a)) {
    switch (c) {
      case '\0': out += "\xef\xbf\xbd"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return value::make(std::move(out));
}

value fn_js(const std::vector<value>& a, const options&) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : eval_args(a)) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      case '"': out += "\\\""; break;
      case '<': out += "\\u003C"; break;
      case '>': out += "\\u003E"; break;
      case '&': out += "\\u0026"; break;
      case '=': out += "\\u003D"; break;
      default:
        if (c < ' ') {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0xf];
        } else {
          out += ch; // printable ASCII and UTF-8 pass through
        }
    }
  }
  return value::make(std::move(out));
}

value fn_urlquery(const std::vector<value>& a, const options&) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : eval_args(a)) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return value::make(std::move(out));
}

// -- Lima's functions (pkg/textutil) ----------------------------------------------------------

value fn_json(const std::vector<value>& a, const options& opts) {
  return value::make(go_json(go_ordered(a[0], opts)));
}

value fn_yaml(const std::vector<value>& a, const options& opts) {
  if (!opts.yaml_encoder)
    throw func_error("no YAML encoder configured");
  std::string y;
  try {
    y = opts.yaml_encoder(go_ordered(a[0], opts));
  } catch (const std::exception& e) {
    throw func_error(std::string("failed to marshal as YAML: ") + e.what());
  }
  if (!y.empty() && y.back() == '\n')
    y.pop_back();
  return value::make("---\n" + y);
}

void check_arity(const std::vector<value>& a) {
  if (a.empty())
    throw func_error("function takes at least one string argument");
  if (a.size() > 2)
    throw func_error("function takes at most 2 arguments");
}

value fn_indent(const std::vector<value>& a, const options&) {
  check_arity(a);
  std::int64_t size = 2;
  if (a.size() > 1) {
    if (a[0].kind_of() != kind::integer)
      throw func_error("optional first argument must be an integer");
    size = a[0].get().get<std::int64_t>();
  }
  const value& text = a.back();
  if (text.kind_of() != kind::string)
    throw func_error("last argument must be a string");
  std::string prefix(static_cast<std::size_t>(std::max<std::int64_t>(size, 0)), ' ');
  // PrefixString: prefix every non-empty line.
  const auto& s = text.get().get_ref<const std::string&>();
  std::string out;
  std::size_t start = 0;
  for (;;) {
    auto nl = s.find('\n', start);
    std::string_view line(s.data() + start, (nl == std::string::npos ? s.size() : nl) - start);
    if (!line.empty())
      out += prefix;
    out += line;
    if (nl == std::string::npos)
      break;
    out += '\n';
    start = nl + 1;
  }
  return value::make(std::move(out));
}

value fn_missing(const std::vector<value>& a, const options&) {
  check_arity(a);
  std::string message = "<missing>";
  if (a.size() > 1) {
    if (a[0].kind_of() != kind::string)
      throw func_error("optional first argument must be a string");
    message = a[0].get().get<std::string>();
  }
  const value& text = a.back();
  if (text.is_nil()) // a missing map key: treat like an empty string
    return value::make(message);
  if (text.kind_of() != kind::string)
    throw func_error("last argument must be a string");
  if (text.get().get_ref<const std::string&>().empty())
    return value::make(message);
  return text;
}

const std::map<std::string, builtin>& go_builtins() {
  static const std::map<std::string, builtin> table = {
      {"and", {{param::value}, true, param::value, nullptr}},
      {"or", {{param::value}, true, param::value, nullptr}},
      {"call", {{param::value}, true, param::value, nullptr}},
      {"html", {{}, true, param::any, fn_html}},
      {"js", {{}, true, param::any, fn_js}},
      {"urlquery", {{}, true, param::any, fn_urlquery}},
      {"print", {{}, true, param::any, fn_print}},
      {"println", {{}, true, param::any, fn_println}},
      {"printf", {{param::string}, true, param::any, fn_printf}},
      {"index", {{param::value}, true, param::value, fn_index}},
      {"slice", {{param::value}, true, param::value, fn_slice}},
      {"len", {{param::value}, false, param::any, fn_len}},
      {"not", {{param::value}, false, param::any, fn_not}},
      {"eq", {{param::value}, true, param::value, fn_eq}},
      {"ne", {{param::value, param::value}, false, param::any, fn_ne}},
      {"lt", {{param::value, param::value}, false, param::any, fn_lt}},
      {"le", {{param::value, param::value}, false, param::any, fn_le}},
      {"gt", {{param::value, param::value}, false, param::any, fn_gt}},
      {"ge", {{param::value, param::value}, false, param::any, fn_ge}},
  };
  return table;
}

const std::map<std::string, builtin>& lima_functions() {
  static const std::map<std::string, builtin> table = {
      {"json", {{param::any}, false, param::any, fn_json}},
      {"yaml", {{param::any}, false, param::any, fn_yaml}},
      {"indent", {{}, true, param::any, fn_indent}},
      {"missing", {{}, true, param::any, fn_missing}},
  };
  return table;
}

} // namespace

const builtin* find_builtin(const std::string& name, const options& opts) {
  if (opts.lima_functions) {
    auto& lima = lima_functions();
    if (auto it = lima.find(name); it != lima.end())
      return &it->second;
  }
  auto& go = go_builtins();
  auto it = go.find(name);
  return it == go.end() ? nullptr : &it->second;
}

json go_ordered(const value& v, const options& opts) {
  if (v.is_nil())
    return nullptr;
  return normalize(v.get(), v.map_ctx(), opts);
}

} // namespace calima::go_template::detail
