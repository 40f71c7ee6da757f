// Values of Go template execution: kinds, truth, Go float formatting and encoding/json output.
#include "config/gotemplate/go_template_value.hpp"

#include "config/util/go_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace calima::go_template::detail {

// -- value ------------------------------------------------------------------------------------

value value::make(json j, bool map_ctx) {
  value v;
  v.holder_ = std::make_shared<const json>(std::move(j));
  v.ptr_ = v.holder_.get();
  v.map_ctx_ = map_ctx;
  return v;
}

value value::ref(const json& j, bool map_ctx, bool root) {
  value v;
  v.ptr_ = &j;
  v.map_ctx_ = map_ctx;
  v.root_ = root;
  return v;
}

value value::child(const json& j, bool map_ctx) const {
  value v;
  v.holder_ = holder_;
  v.ptr_ = &j;
  v.map_ctx_ = map_ctx;
  return v;
}

kind value::kind_of() const {
  if (!ptr_)
    return kind::invalid;
  kind k = detail::kind_of(*ptr_);
  if (k == kind::map && !map_ctx_)
    return kind::object;
  return k;
}

kind kind_of(const json& j) {
  switch (j.type()) {
    case json::value_t::boolean: return kind::boolean;
    case json::value_t::number_integer: return kind::integer;
    case json::value_t::number_unsigned:
      return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                 ? kind::integer
                 : kind::uinteger;
    case json::value_t::number_float: return kind::floating;
    case json::value_t::string: return kind::string;
    case json::value_t::array: return kind::array;
    case json::value_t::object: return kind::map;
    default: return kind::nil;
  }
}

std::string type_name(const json& j) {
  switch (kind_of(j)) {
    case kind::boolean: return "bool";
    case kind::integer: return "int";
    case kind::uinteger: return "uint64";
    case kind::floating: return "float64";
    case kind::string: return "string";
    case kind::array: return "[]interface {}";
    case kind::map:
    case kind::object: return "map[string]interface {}";
    default: return "<nil>";
  }
}

bool truth(const value& v) {
  switch (v.kind_of()) {
    case kind::invalid:
    case kind::nil: return false;
    case kind::boolean: return v.get().get<bool>();
    case kind::integer: return v.get().get<std::int64_t>() != 0;
    case kind::uinteger: return v.get().get<std::uint64_t>() != 0;
    case kind::floating: return v.get().get<double>() != 0;
    case kind::string: return !v.get().get_ref<const std::string&>().empty();
    case kind::array:
    case kind::map: return !v.get().empty();
    case kind::object: return true; // struct values are always true
  }
  return false;
}

// -- floats -----------------------------------------------------------------------------------

namespace {

/// Decimal digits of a non-negative finite double: value = 0.d[0]d[1]… × 10^dp; no trailing zeros.
struct decimal {
  std::string d;
  int dp = 0;
};

/// `sig` significant digits (correctly rounded), or the shortest round-tripping digits if sig < 0.
decimal digits_of(double a, int sig) {
  decimal out;
  if (a == 0)
    return out;
  char buf[64];
  auto res = sig < 0 ? std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific)
                     : std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific, sig - 1);
  std::string_view s(buf, static_cast<std::size_t>(res.ptr - buf));
  auto e = s.find('e');
  for (char c : s.substr(0, e))
    if (c != '.')
      out.d += c;
  int exp = 0;
  auto exp_text = s.substr(e + 1);
  if (!exp_text.empty() && exp_text[0] == '+')
    exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  out.dp = exp + 1;
  while (!out.d.empty() && out.d.back() == '0')
    out.d.pop_back();
  if (out.d.empty())
    out.dp = 0;
  return out;
}

std::string fmt_e(bool neg, const decimal& dg, int prec, char fmt) {
  std::string out = neg ? "-" : "";
  int nd = static_cast<int>(dg.d.size());
  out += nd == 0 ? '0' : dg.d[0];
  if (prec > 0) {
    out += '.';
    int i = 1;
    int m = std::min(nd, prec + 1);
    if (i < m) {
      out.append(dg.d, 1, static_cast<std::size_t>(m - 1));
      i = m;
    }
    for (; i <= prec; ++i)
      out += '0';
  }
  out += fmt;
  int exp = nd == 0 ? 0 : dg.dp - 1;
  out += exp < 0 ? '-' : '+';
  exp = std::abs(exp);
  if (exp < 10)
    out += '0';
  out += std::to_string(exp);
  return out;
}

std::string fmt_f(bool neg, const decimal& dg, int prec) {
  std::string out = neg ? "-" : "";
  int nd = static_cast<int>(dg.d.size());
  if (dg.dp > 0) {
    int m = std::min(nd, dg.dp);
    out.append(dg.d, 0, static_cast<std::size_t>(m));
    for (; m < dg.dp; ++m)
      out += '0';
  } else {
    out += '0';
  }
  if (prec > 0) {
    out += '.';
    for (int i = 1; i <= prec; ++i) {
      int j = dg.dp + i - 1;
      out += j >= 0 && j < nd ? dg.d[static_cast<std::size_t>(j)] : '0';
    }
  }
  return out;
}

} // namespace

std::string format_float(double v, char fmt, int prec) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  bool neg = std::signbit(v);
  double a = std::fabs(v);
  bool shortest = prec < 0;
  char lower = static_cast<char>(fmt | 0x20);
  if (!shortest && lower == 'f') {
    char buf[400];
    auto res = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::fixed, prec);
    return (neg ? "-" : "") + std::string(buf, res.ptr);
  }
  if (!shortest && lower == 'e')
    return fmt_e(neg, digits_of(a, prec + 1), prec, fmt);
  if (lower == 'g' && prec == 0)
    prec = 1;
  decimal dg = digits_of(a, shortest ? -1 : prec);
  int nd = static_cast<int>(dg.d.size());
  if (shortest) {
    switch (lower) {
      case 'e': prec = std::max(nd - 1, 0); break;
      case 'f': prec = std::max(nd - dg.dp, 0); break;
      default: prec = nd; break;
    }
  }
  if (lower == 'e')
    return fmt_e(neg, dg, prec, fmt);
  if (lower == 'f')
    return fmt_f(neg, dg, prec);
  // %g: %e for large and small exponents, %f otherwise.
  int eprec = prec;
  if (eprec > nd && nd >= dg.dp)
    eprec = nd;
  if (shortest)
    eprec = 6;
  int exp = dg.dp - 1;
  if (exp < -4 || exp >= eprec) {
    if (prec > nd)
      prec = nd;
    return fmt_e(neg, dg, prec - 1, fmt == 'G' ? 'E' : 'e');
  }
  if (prec > dg.dp)
    prec = nd;
  return fmt_f(neg, dg, std::max(prec - dg.dp, 0));
}

// -- encoding/json ----------------------------------------------------------------------------

namespace {

void json_string(std::string& out, const std::string& s, bool escape_html) {
  static const char hex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      switch (b) {
        case '\\':
        case '"':
          out += '\\';
          out += static_cast<char>(b);
          break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (b < 0x20 || (escape_html && (b == '<' || b == '>' || b == '&'))) {
            out += "\\u00";
            out += hex[b >> 4];
            out += hex[b & 0xf];
          } else {
            out += static_cast<char>(b);
          }
      }
      ++i;
      continue;
    }
    char32_t r = 0;
    std::size_t len = decode_utf8(s, i, r);
    if (len == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (r == 0x2028 || r == 0x2029)
      out += r == 0x2028 ? "\\u2028" : "\\u2029";
    else
      out.append(s, i, len);
    i += len;
  }
  out += '"';
}

void json_value(std::string& out, const json& j, bool escape_html) {
  switch (j.type()) {
    case json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; break;
    case json::value_t::number_integer: out += std::to_string(j.get<std::int64_t>()); break;
    case json::value_t::number_unsigned: out += std::to_string(j.get<std::uint64_t>()); break;
    case json::value_t::number_float: {
      double f = j.get<double>();
      double a = std::fabs(f);
      char fmt = a != 0 && (a < 1e-6 || a >= 1e21) ? 'e' : 'f';
      std::string s = format_float(f, fmt, -1);
      auto n = s.size();
      if (fmt == 'e' && n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') {
        s.erase(n - 2, 1); // e-09 → e-9
      }
      out += s;
      break;
    }
    case json::value_t::string: json_string(out, j.get_ref<const std::string&>(), escape_html); break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (auto& e : j) {
        if (!first)
          out += ',';
        first = false;
        json_value(out, e, escape_html);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto& [k, v] : j.items()) {
        if (!first)
          out += ',';
        first = false;
        json_string(out, k, escape_html);
        out += ':';
        json_value(out, v, escape_html);
      }
      out += '}';
      break;
    }
    default: out += "null"; break;
  }
}

} // namespace

std::string go_json(const json& j, bool escape_html) {
  std::string out;
  json_value(out, j, escape_html);
  return out;
}

} // namespace calima::go_template::detail
