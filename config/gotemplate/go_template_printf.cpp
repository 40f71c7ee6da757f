// Go's fmt.Sprintf/Sprint/Sprintln over JSON values: a transliteration of the parts of
// fmt/print.go and fmt/format.go that apply to bool, int, float64, string, []interface{} and
// map[string]interface{}.
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template_value.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace calima::go_template::detail {

namespace {

std::size_t rune_count(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80)
      ++n;
  return n;
}

void append_rune(std::string& out, std::uint32_t r) {
  if (r > 0x10ffff || (r >= 0xd800 && r < 0xe000))
    r = 0xfffd;
  append_utf8(out, static_cast<char32_t>(r));
}

/// strconv.QuoteRune.
std::string quote_rune(std::uint32_t r) {
  if (r == '\'')
    return "'\\''";
  if (r == '"')
    return "'\"'";
  std::string enc;
  append_rune(enc, r);
  std::string q = go_quote(enc);
  return "'" + q.substr(1, q.size() - 2) + "'";
}

bool too_large(std::int64_t x) {
  return x > 1000000 || x < -1000000;
}

/// The formatting state of one verb (Go's fmt.fmtFlags plus width and precision).
struct flags {
  bool plus = false, minus = false, sharp = false, space = false, zero = false;
  bool plus_v = false, sharp_v = false;
  bool wid_present = false, prec_present = false;
  int wid = 0, prec = 0;
};

class printer {
public:
  std::string buf;
  flags f;
  bool reordered = false;
  bool good_arg_num = true;

  // -- padding --

  void write_padding(int n) {
    if (n <= 0)
      return;
    buf.append(static_cast<std::size_t>(n), f.zero && !f.minus ? '0' : ' ');
  }

  void pad(std::string_view s) {
    if (!f.wid_present || f.wid == 0) {
      buf += s;
      return;
    }
    int width = f.wid - static_cast<int>(rune_count(s));
    if (!f.minus) {
      write_padding(width);
      buf += s;
    } else {
      buf += s;
      write_padding(width);
    }
  }

  // -- verbs by type --

  void bad_verb(char32_t verb, const json* arg) {
    buf += "%!";
    append_rune(buf, verb);
    buf += '(';
    if (arg) {
      buf += type_name(*arg);
      buf += '=';
      print_value(*arg, 'v', 0);
    } else {
      buf += "<nil>";
    }
    buf += ')';
  }

  void fmt_bool(bool v, char32_t verb, const json& arg) {
    if (verb == 't' || verb == 'v')
      pad(v ? "true" : "false");
    else
      bad_verb(verb, &arg);
  }

  void fmt_integer(std::uint64_t u, bool negative, int base, char32_t verb, bool upper) {
    const char* digits = upper ? "0123456789ABCDEFX" : "0123456789abcdefx";
    int prec = 0;
    if (f.prec_present) {
      prec = f.prec;
      if (prec == 0 && u == 0) { // precision 0 and value 0 means "print nothing" but padding
        bool old = f.zero;
        f.zero = false;
        write_padding(f.wid);
        f.zero = old;
        return;
      }
    } else if (f.zero && !f.minus && f.wid_present) { // zero padding is allowed only to the left
      prec = f.wid;
      if (negative || f.plus || f.space)
        --prec; // leave room for sign
    }
    std::string s;
    do {
      s += digits[u % static_cast<unsigned>(base)];
      u /= static_cast<unsigned>(base);
    } while (u);
    while (static_cast<int>(s.size()) < prec)
      s += '0';
    if (f.sharp) {
      if (base == 2)
        s += "b0";
      else if (base == 8 && s.back() != '0')
        s += '0';
      else if (base == 16)
        s += std::string{digits[16], '0'};
    }
    if (verb == 'O')
      s += "o0";
    if (negative)
      s += '-';
    else if (f.plus)
      s += '+';
    else if (f.space)
      s += ' ';
    std::reverse(s.begin(), s.end());
    bool old = f.zero;
    f.zero = false; // already handled like precision above
    pad(s);
    f.zero = old;
  }

  void fmt_int(const json& arg, char32_t verb) {
    bool is_unsigned = kind_of(arg) == kind::uinteger;
    std::uint64_t u = 0;
    bool negative = false;
    if (arg.is_number_unsigned()) {
      u = arg.get<std::uint64_t>();
    } else {
      std::int64_t i = arg.get<std::int64_t>();
      negative = i < 0;
      u = negative ? 0 - static_cast<std::uint64_t>(i) : static_cast<std::uint64_t>(i);
    }
    switch (verb) {
      case 'v':
        if (f.sharp_v && is_unsigned) {
          bool old = f.sharp;
          f.sharp = true;
          fmt_integer(u, false, 16, 'x', false);
          f.sharp = old;
        } else {
          fmt_integer(u, negative, 10, verb, false);
        }
        break;
      case 'd': fmt_integer(u, negative, 10, verb, false); break;
      case 'b': fmt_integer(u, negative, 2, verb, false); break;
      case 'o':
      case 'O': fmt_integer(u, negative, 8, verb, false); break;
      case 'x': fmt_integer(u, negative, 16, verb, false); break;
      case 'X': fmt_integer(u, negative, 16, verb, true); break;
      case 'c': {
        std::string s;
        append_rune(s, negative || u > 0x10ffff ? 0xfffd : static_cast<std::uint32_t>(u));
        pad(s);
        break;
      }
      case 'q': pad(quote_rune(negative || u > 0x10ffff ? 0xfffd : static_cast<std::uint32_t>(u))); break;
      case 'U': {
        std::string s = fmt::format("U+{:04X}", u);
        if (f.sharp && !negative && u <= 0x10ffff && u >= 0x20 && u != 0x7f) {
          s += " '";
          append_rune(s, static_cast<std::uint32_t>(u));
          s += "'";
        }
        pad(s);
        break;
      }
      default: bad_verb(verb, &arg);
    }
  }

  void fmt_float(double v, char32_t verb, const json& arg) {
    char fmt_char = 0;
    int prec = -1;
    switch (verb) {
      case 'v': fmt_char = 'g'; break;
      case 'g':
      case 'G': fmt_char = static_cast<char>(verb); break;
      case 'f':
      case 'F': fmt_char = 'f'; prec = 6; break;
      case 'e':
      case 'E': fmt_char = static_cast<char>(verb); prec = 6; break;
      default: bad_verb(verb, &arg); return;
    }
    if (f.prec_present)
      prec = f.prec;
    std::string num = format_float(v, fmt_char, prec);
    if (num[0] != '-' && num[0] != '+')
      num.insert(num.begin(), '+');
    if (f.space && num[0] == '+' && !f.plus)
      num[0] = ' ';
    if (num[1] == 'I' || num[1] == 'N') { // infinities and NaN are not zero-padded
      bool old = f.zero;
      f.zero = false;
      if (num[1] == 'N' && !f.space && !f.plus)
        num.erase(0, 1);
      pad(num);
      f.zero = old;
      return;
    }
    if (f.plus || num[0] != '+') {
      // When zero padding, the sign goes before the zeros.
      if (f.zero && !f.minus && f.wid_present && f.wid > static_cast<int>(num.size())) {
        buf += num[0];
        write_padding(f.wid - static_cast<int>(num.size()));
        buf.append(num, 1, std::string::npos);
        return;
      }
      pad(num);
      return;
    }
    pad(std::string_view(num).substr(1));
  }

  std::string truncate(const std::string& s) const {
    if (!f.prec_present)
      return s;
    std::size_t i = 0;
    for (int n = 0; i < s.size(); ++n) {
      if (n == f.prec)
        return s.substr(0, i);
      ++i;
      while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80)
        ++i;
    }
    return s;
  }

  void fmt_q(const std::string& s) {
    std::string t = truncate(s);
    pad(f.sharp ? go_backquote(t) : go_quote(t));
  }

  void fmt_sx(const std::string& s, bool upper) {
    const char* digits = upper ? "0123456789ABCDEFX" : "0123456789abcdefx";
    int length = static_cast<int>(s.size());
    if (f.prec_present && f.prec < length)
      length = f.prec;
    int width = 2 * length;
    if (width > 0) {
      if (f.space) {
        if (f.sharp)
          width *= 2;
        width += length - 1;
      } else if (f.sharp) {
        width += 2;
      }
    } else {
      if (f.wid_present)
        write_padding(f.wid);
      return;
    }
    if (f.wid_present && f.wid > width && !f.minus)
      write_padding(f.wid - width);
    if (f.sharp) {
      buf += '0';
      buf += digits[16];
    }
    for (int i = 0; i < length; ++i) {
      if (f.space && i > 0) {
        buf += ' ';
        if (f.sharp) {
          buf += '0';
          buf += digits[16];
        }
      }
      auto c = static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
      buf += digits[c >> 4];
      buf += digits[c & 0xf];
    }
    if (f.wid_present && f.wid > width && f.minus)
      write_padding(f.wid - width);
  }

  void fmt_string(const std::string& s, char32_t verb, const json& arg) {
    switch (verb) {
      case 'v':
        if (f.sharp_v)
          fmt_q(s);
        else
          pad(truncate(s));
        break;
      case 's': pad(truncate(s)); break;
      case 'x': fmt_sx(s, false); break;
      case 'X': fmt_sx(s, true); break;
      case 'q': fmt_q(s); break;
      default: bad_verb(verb, &arg);
    }
  }

  // -- dispatch --

  /// printArg: a top-level argument; nullptr is nil.
  void print_arg(const json* arg, char32_t verb) {
    if (!arg || arg->is_null()) {
      if (verb == 'T' || verb == 'v')
        pad("<nil>");
      else
        bad_verb(verb, nullptr);
      return;
    }
    if (verb == 'T') {
      pad(truncate(type_name(*arg)));
      return;
    }
    print_value(*arg, verb, 0);
  }

  /// printValue: also used for elements of arrays and maps (depth > 0), where nil is an
  /// interface{} holding nothing.
  void print_value(const json& j, char32_t verb, int depth) {
    switch (kind_of(j)) {
      case kind::boolean: fmt_bool(j.get<bool>(), verb, j); return;
      case kind::integer:
      case kind::uinteger: fmt_int(j, verb); return;
      case kind::floating: fmt_float(j.get<double>(), verb, j); return;
      case kind::string: fmt_string(j.get_ref<const std::string&>(), verb, j); return;
      case kind::array:
        if (f.sharp_v) {
          buf += "[]interface {}{";
          bool first = true;
          for (auto& e : j) {
            if (!first)
              buf += ", ";
            first = false;
            print_value(e, verb, depth + 1);
          }
          buf += '}';
        } else {
          buf += '[';
          bool first = true;
          for (auto& e : j) {
            if (!first)
              buf += ' ';
            first = false;
            print_value(e, verb, depth + 1);
          }
          buf += ']';
        }
        return;
      case kind::map:
      case kind::object: {
        std::vector<std::pair<std::string, const json*>> sorted;
        for (auto& [k, v] : j.items())
          sorted.emplace_back(k, &v);
        std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
        buf += f.sharp_v ? "map[string]interface {}{" : "map[";
        bool first = true;
        for (auto& [k, v] : sorted) {
          if (!first)
            buf += f.sharp_v ? ", " : " ";
          first = false;
          fmt_string(k, verb, json(k));
          buf += ':';
          print_value(*v, verb, depth + 1);
        }
        buf += f.sharp_v ? '}' : ']';
        return;
      }
      default:
        if (depth == 0)
          print_arg(nullptr, verb);
        else
          buf += f.sharp_v ? "interface {}(nil)" : "<nil>";
        return;
    }
  }

  // -- Printf --

  static bool parse_num(std::string_view s, std::size_t start, std::size_t end, int& num, std::size_t& newi) {
    num = 0;
    bool isnum = false;
    if (start >= end) {
      newi = end;
      return false;
    }
    for (newi = start; newi < end && s[newi] >= '0' && s[newi] <= '9'; ++newi) {
      if (too_large(num)) {
        newi = end;
        num = 0;
        return false;
      }
      num = num * 10 + (s[newi] - '0');
      isnum = true;
    }
    return isnum;
  }

  /// argNumber: an explicit `[n]` argument index at format[i], if any.
  std::size_t arg_number(std::size_t& arg_num, std::string_view format, std::size_t i, std::size_t num_args,
                         bool& found) {
    found = false;
    if (format.size() <= i || format[i] != '[')
      return i;
    reordered = true;
    std::string_view rest = format.substr(i);
    std::size_t wid = 1;
    bool ok = false;
    int index = 0;
    if (rest.size() >= 3) {
      for (std::size_t k = 1; k < rest.size(); ++k) {
        if (rest[k] == ']') {
          int width = 0;
          std::size_t newi = 0;
          ok = parse_num(rest, 1, k, width, newi) && newi == k;
          index = width - 1;
          wid = k + 1;
          break;
        }
      }
    }
    if (ok && index >= 0 && static_cast<std::size_t>(index) < num_args) {
      arg_num = static_cast<std::size_t>(index);
      found = true;
      return i + wid;
    }
    good_arg_num = false;
    found = ok;
    return i + wid;
  }

  bool int_from_arg(const std::vector<const json*>& a, std::size_t& arg_num, int& num) {
    bool is_int = false;
    num = 0;
    if (arg_num < a.size()) {
      const json* arg = a[arg_num];
      if (arg && (arg->is_number_integer())) {
        auto k = kind_of(*arg);
        if (k == kind::integer) {
          std::int64_t v = arg->get<std::int64_t>();
          if (!too_large(v)) {
            num = static_cast<int>(v);
            is_int = true;
          }
        }
      }
      ++arg_num;
    }
    return is_int;
  }

  void do_printf(std::string_view format, const std::vector<const json*>& a) {
    std::size_t end = format.size();
    std::size_t arg_num = 0;
    bool after_index = false;
    for (std::size_t i = 0; i < end;) {
      good_arg_num = true;
      std::size_t lasti = i;
      while (i < end && format[i] != '%')
        ++i;
      if (i > lasti)
        buf += format.substr(lasti, i - lasti);
      if (i >= end)
        break;
      ++i; // skip %
      f = flags{};
      bool simple_done = false;
      for (; i < end; ++i) {
        char c = format[i];
        if (c == '#') {
          f.sharp = true;
        } else if (c == '0') {
          f.zero = !f.minus; // only allow zero padding to the left
        } else if (c == '+') {
          f.plus = true;
        } else if (c == '-') {
          f.minus = true;
          f.zero = false;
        } else if (c == ' ') {
          f.space = true;
        } else {
          // Fast path: flags and a lower-case verb without width, precision or index.
          if (c >= 'a' && c <= 'z' && arg_num < a.size()) {
            if (c == 'v') {
              f.sharp_v = f.sharp;
              f.sharp = false;
              f.plus_v = f.plus;
              f.plus = false;
            }
            print_arg(a[arg_num], static_cast<char32_t>(c));
            ++arg_num;
            ++i;
            simple_done = true;
          }
          break;
        }
      }
      if (simple_done)
        continue;

      i = arg_number(arg_num, format, i, a.size(), after_index);

      if (i < end && format[i] == '*') { // width from an argument
        ++i;
        f.wid_present = int_from_arg(a, arg_num, f.wid);
        if (!f.wid_present)
          buf += "%!(BADWIDTH)";
        if (f.wid < 0) {
          f.wid = -f.wid;
          f.minus = true;
          f.zero = false;
        }
        after_index = false;
      } else {
        f.wid_present = parse_num(format, i, end, f.wid, i);
        if (after_index && f.wid_present) // "%[3]2d"
          good_arg_num = false;
      }

      if (i + 1 < end && format[i] == '.') {
        ++i;
        if (after_index) // "%[3].2d"
          good_arg_num = false;
        i = arg_number(arg_num, format, i, a.size(), after_index);
        if (i < end && format[i] == '*') {
          ++i;
          f.prec_present = int_from_arg(a, arg_num, f.prec);
          if (f.prec < 0) {
            f.prec = 0;
            f.prec_present = false;
          }
          if (!f.prec_present)
            buf += "%!(BADPREC)";
          after_index = false;
        } else {
          f.prec_present = parse_num(format, i, end, f.prec, i);
          if (!f.prec_present) {
            f.prec = 0;
            f.prec_present = true;
          }
        }
      }

      if (!after_index)
        i = arg_number(arg_num, format, i, a.size(), after_index);

      if (i >= end) {
        buf += "%!(NOVERB)";
        break;
      }

      char32_t verb = static_cast<unsigned char>(format[i]);
      std::size_t size = 1;
      if (verb >= 0x80) { // decode a multi-byte verb
        std::size_t len = (verb >> 5) == 6 ? 2 : (verb >> 4) == 14 ? 3 : (verb >> 3) == 30 ? 4 : 1;
        if (len > 1 && i + len <= end) {
          verb &= 0x7fu >> len;
          for (std::size_t k = 1; k < len; ++k)
            verb = (verb << 6) | (static_cast<unsigned char>(format[i + k]) & 0x3f);
          size = len;
        } else {
          verb = 0xfffd;
        }
      }
      i += size;

      if (verb == '%') {
        buf += '%';
      } else if (!good_arg_num) {
        buf += "%!";
        append_rune(buf, verb);
        buf += "(BADINDEX)";
      } else if (arg_num >= a.size()) {
        buf += "%!";
        append_rune(buf, verb);
        buf += "(MISSING)";
      } else {
        if (verb == 'v') {
          f.sharp_v = f.sharp;
          f.sharp = false;
          f.plus_v = f.plus;
          f.plus = false;
        }
        print_arg(a[arg_num], verb);
        ++arg_num;
      }
    }
    if (!reordered && arg_num < a.size()) {
      f = flags{};
      buf += "%!(EXTRA ";
      for (std::size_t k = arg_num; k < a.size(); ++k) {
        if (k > arg_num)
          buf += ", ";
        if (!a[k] || a[k]->is_null()) {
          buf += "<nil>";
        } else {
          buf += type_name(*a[k]);
          buf += '=';
          print_arg(a[k], 'v');
        }
      }
      buf += ')';
    }
  }
};

bool is_string_arg(const json* a) {
  return a && a->is_string();
}

} // namespace

std::string sprint_value(const json& j) {
  printer p;
  p.print_arg(&j, 'v');
  return std::move(p.buf);
}

std::string go_sprintf(std::string_view format, const std::vector<const json*>& args) {
  printer p;
  p.do_printf(format, args);
  return std::move(p.buf);
}

std::string go_sprint(const std::vector<const json*>& args) {
  printer p;
  bool prev_string = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    bool is_string = is_string_arg(args[i]);
    if (i > 0 && !is_string && !prev_string)
      p.buf += ' ';
    p.print_arg(args[i], 'v');
    prev_string = is_string;
  }
  return std::move(p.buf);
}

std::string go_sprintln(const std::vector<const json*>& args) {
  printer p;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0)
      p.buf += ' ';
    p.print_arg(args[i], 'v');
  }
  p.buf += '\n';
  return std::move(p.buf);
}

} // namespace calima::go_template::detail
