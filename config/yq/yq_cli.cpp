#include "config/yq/yq_cli.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/yq/yaml_json.hpp"
#include "config/yq/yq.hpp"

#include <algorithm>
#include <cerrno>
#include <functional>
#include <istream>
#include <iterator>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace calima {

namespace {

using json = nlohmann::ordered_json;

/// A failure that ends the command: printed as `Error: <what>`, status 1.
struct cli_failure : std::runtime_error {
  using runtime_error::runtime_error;
};

enum class data_format { automatic, yaml, json };

struct yq_options {
  data_format output = data_format::automatic;
  data_format input = data_format::automatic;
  bool inplace = false;
  bool null_input = false;
  bool exit_status = false;
  std::optional<bool> unwrap_scalar;
  int indent = 2;
  bool no_doc = false;
  std::string from_file;
  bool env_ops = true;
  bool version = false;
  bool help = false;
  std::vector<std::string> positional;
};

data_format parse_format(const std::string& flag, const std::string& value) {
  if (value == "auto" || value == "a")
    return data_format::automatic;
  if (value == "yaml" || value == "y" || value == "yml")
    return data_format::yaml;
  if (value == "json" || value == "j")
    return data_format::json;
  static const char* yq_only[] = {"props", "p", "xml", "x", "csv", "c", "tsv", "t", "toml",
                                  "ini",   "i", "base64", "uri", "sh", "shell", "s", "lua", "l"};
  for (const char* f : yq_only)
    if (value == f)
      throw cli_failure("format " + value + " (" + flag
                        + ") is not supported by calima's yq: use yaml or json");
  throw cli_failure("unknown format '" + value + "' for " + flag
                    + ": calima's yq reads and writes yaml and json");
}

bool parse_bool(const std::string& flag, const std::string& value) {
  if (value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE"
      || value == "True")
    return true;
  if (value == "0" || value == "f" || value == "F" || value == "false" || value == "FALSE"
      || value == "False")
    return false;
  throw cli_failure("invalid argument " + go_quote(value) + " for " + go_quote(flag)
                    + " flag: strconv.ParseBool: parsing " + go_quote(value) + ": invalid syntax");
}

struct flag_spec {
  const char* name;
  char shorthand;
  bool takes_value; ///< false: boolean (optional `=value`)
  std::function<void(yq_options&, const std::string& flag, const std::string& value)> set;
};

const std::vector<flag_spec>& flag_table() {
  static const std::vector<flag_spec> table = {
      {"output-format", 'o', true,
       [](auto& o, auto& f, auto& v) { o.output = parse_format(f, v); }},
      {"input-format", 'p', true, [](auto& o, auto& f, auto& v) { o.input = parse_format(f, v); }},
      {"inplace", 'i', false, [](auto& o, auto& f, auto& v) { o.inplace = parse_bool(f, v); }},
      {"null-input", 'n', false,
       [](auto& o, auto& f, auto& v) { o.null_input = parse_bool(f, v); }},
      {"exit-status", 'e', false,
       [](auto& o, auto& f, auto& v) { o.exit_status = parse_bool(f, v); }},
      {"unwrapScalar", 'r', false,
       [](auto& o, auto& f, auto& v) { o.unwrap_scalar = parse_bool(f, v); }},
      {"indent", 'I', true,
       [](auto& o, auto& f, auto& v) {
         try {
           size_t used = 0;
           o.indent = std::stoi(v, &used);
           if (used != v.size() || o.indent < 0)
             throw std::invalid_argument(v);
         } catch (const std::exception&) {
           throw cli_failure("invalid argument " + go_quote(v) + " for " + go_quote(f)
                             + " flag: strconv.ParseInt: parsing " + go_quote(v)
                             + ": invalid syntax");
         }
       }},
      // calima's YAML writer always prints block style, and never colours.
      {"prettyPrint", 'P', false, [](auto&, auto& f, auto& v) { parse_bool(f, v); }},
      {"colors", 'C', false, [](auto&, auto& f, auto& v) { parse_bool(f, v); }},
      {"no-colors", 'M', false, [](auto&, auto& f, auto& v) { parse_bool(f, v); }},
      {"no-doc", 'N', false, [](auto& o, auto& f, auto& v) { o.no_doc = parse_bool(f, v); }},
      {"from-file", '\0', true, [](auto& o, auto&, auto& v) { o.from_file = v; }},
      {"security-disable-env-ops", '\0', false,
       [](auto& o, auto& f, auto& v) { o.env_ops = !parse_bool(f, v); }},
      // file operations (`load`, `load_str`) are always disabled in calima's yq
      {"security-disable-file-ops", '\0', false, [](auto&, auto& f, auto& v) { parse_bool(f, v); }},
      {"version", 'V', false, [](auto& o, auto& f, auto& v) { o.version = parse_bool(f, v); }},
      {"help", 'h', false, [](auto& o, auto& f, auto& v) { o.help = parse_bool(f, v); }},
  };
  return table;
}

const flag_spec* find_long(const std::string& name) {
  for (const auto& f : flag_table())
    if (name == f.name)
      return &f;
  return nullptr;
}

const flag_spec* find_short(char c) {
  for (const auto& f : flag_table())
    if (f.shorthand != '\0' && f.shorthand == c)
      return &f;
  return nullptr;
}

yq_options parse_args(const std::vector<std::string>& args) {
  yq_options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      o.positional.insert(o.positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0) {
      auto eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const flag_spec* f = find_long(name);
      if (f == nullptr)
        throw cli_failure("unknown flag: --" + name);
      std::string flag = "--" + name;
      if (eq != std::string::npos) {
        f->set(o, flag, a.substr(eq + 1));
      } else if (!f->takes_value) {
        f->set(o, flag, "true");
      } else if (i + 1 < args.size()) {
        f->set(o, flag, args[++i]);
      } else {
        throw cli_failure("flag needs an argument: " + flag);
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      for (size_t j = 1; j < a.size(); ++j) {
        const flag_spec* f = find_short(a[j]);
        if (f == nullptr)
          throw cli_failure(std::string("unknown shorthand flag: '") + a[j] + "' in " + a);
        std::string flag = std::string("-") + a[j];
        std::string rest = a.substr(j + 1);
        if (!f->takes_value) {
          if (!rest.empty() && rest[0] == '=') {
            f->set(o, flag, rest.substr(1));
            break;
          }
          f->set(o, flag, "true");
          continue;
        }
        if (!rest.empty()) {
          f->set(o, flag, rest[0] == '=' ? rest.substr(1) : rest);
        } else if (i + 1 < args.size()) {
          f->set(o, flag, args[++i]);
        } else {
          throw cli_failure(std::string("flag needs an argument: '") + a[j] + "' in " + a);
        }
        break;
      }
      continue;
    }
    o.positional.push_back(a);
  }
  return o;
}

data_format format_of_path(const std::string& path) {
  auto dot = path.rfind('.');
  auto slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
    return data_format::yaml;
  auto ext = path.substr(dot + 1);
  return ext == "json" ? data_format::json : data_format::yaml;
}

std::string read_input(const std::string& path, std::istream& in) {
  if (path == "-")
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  auto content = fs::read_file(path);
  if (!content)
    throw cli_failure(fs::path_error("open", path, errno));
  return *content;
}

std::vector<json> parse_documents(const std::string& path, const std::string& text,
                                  data_format format) {
  try {
    if (format == data_format::json) {
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        return {json()};
      return {json::parse(text)};
    }
    auto documents = parse_yaml_stream_to_json(text);
    if (documents.empty())
      documents.emplace_back(); // yq evaluates an empty input as one null document
    return documents;
  } catch (const std::exception& e) {
    throw cli_failure("bad file '" + path + "': " + e.what());
  }
}

std::string render(const json& v, data_format format, const yq_options& o) {
  if (format == data_format::json) {
    if (v.is_string() && o.unwrap_scalar.value_or(false))
      return v.get<std::string>() + "\n";
    return v.dump(o.indent == 0 ? -1 : o.indent, ' ', false, json::error_handler_t::replace)
           + "\n";
  }
  if (v.is_object() || v.is_array() || !o.unwrap_scalar.value_or(true))
    return json_to_yaml(v);
  return yq_print_scalar_or_json(v) + "\n";
}

bool truthy(const json& v) {
  return !(v.is_null() || (v.is_boolean() && !v.get<bool>()));
}

/// Replaces a file in place (atomically) keeping its mode and, where allowed, its owner.
void replace_file(const std::string& path, const std::string& text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw cli_failure(fs::path_error("stat", path, errno));
  std::optional<std::pair<uid_t, gid_t>> owner;
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid())
    owner = std::make_pair(st.st_uid, st.st_gid);
  fs::write_file_atomic(path, text, st.st_mode & 07777, owner);
}

std::string usage(const std::string& program) {
  return "Usage:\n  " + program
         + " [eval|eval-all] [flags] EXPRESSION [FILE...]\n\n"
           "yq's command line, evaluated by calima with jq 1.6 semantics (docs/yq-vs-jq.md).\n\n"
           "Flags:\n"
           "  -e, --exit-status                 exit 1 when nothing, null or false is returned\n"
           "      --from-file string            read the expression from a file\n"
           "  -h, --help                        help for yq\n"
           "  -I, --indent int                  indent of JSON output (YAML: 2) (default 2)\n"
           "  -i, --inplace                     update the given files in place\n"
           "  -p, --input-format string         [auto|yaml|json] (default \"auto\")\n"
           "  -N, --no-doc                      do not print document separators (---)\n"
           "  -n, --null-input                  evaluate the expression without reading input\n"
           "  -o, --output-format string        [auto|yaml|json] (default \"auto\")\n"
           "  -P, --prettyPrint                 block-style YAML (always the case)\n"
           "      --security-disable-env-ops    make env(), strenv(), $ENV fail\n"
           "      --security-disable-file-ops   load() and load_str() (always disabled)\n"
           "  -r, --unwrapScalar                print scalars without quotes (default: yaml yes, json no)\n"
           "  -V, --version                     print the version\n";
}

int run(const std::vector<std::string>& args, yq_cli_io& io) {
  yq_options o = parse_args(args);
  if (o.help) {
    io.out << usage(io.program);
    return 0;
  }
  if (o.version) {
    io.out << yq_version_text() << "\n";
    return 0;
  }
  auto& pos = o.positional;
  if (!pos.empty() && (pos[0] == "eval" || pos[0] == "e" || pos[0] == "eval-all" || pos[0] == "ea"))
    pos.erase(pos.begin()); // eval-all: each document is evaluated on its own, as by eval
  std::string expression;
  std::vector<std::string> files;
  if (!o.from_file.empty()) {
    auto content = fs::read_file(o.from_file);
    if (!content)
      throw cli_failure(fs::path_error("open", o.from_file, errno));
    expression = *content;
    files = pos;
  } else if (pos.size() == 1 && !o.null_input && fs::is_regular(pos[0])) {
    expression = "."; // `yq file.yaml` prints the file
    files = pos;
  } else {
    if (pos.empty())
      throw cli_failure("no expression given; usage: " + io.program + " EXPRESSION [FILE...]");
    expression = pos[0];
    files.assign(pos.begin() + 1, pos.end());
  }
  if (o.inplace && (files.empty() || o.null_input))
    throw cli_failure(
        "write in place flag only applicable when giving an expression and at least one file");
  if (o.inplace && std::find(files.begin(), files.end(), "-") != files.end())
    throw cli_failure("cannot update stdin in place");
  if (files.empty())
    files.emplace_back("-");

  yq_access access;
  access.env = o.env_ops;
  bool any_truthy = false;
  for (const auto& file : files) {
    data_format in_format = o.input;
    if (in_format == data_format::automatic)
      in_format = file == "-" ? data_format::yaml : format_of_path(file);
    data_format out_format = o.output == data_format::automatic ? in_format : o.output;
    if (out_format == data_format::yaml && o.indent != 2)
      throw cli_failure("calima's yq writes YAML with an indent of 2 (-I " + std::to_string(o.indent)
                        + " works with -o json)");
    std::vector<json> documents = o.null_input ? std::vector<json>{json()}
                                               : parse_documents(file, read_input(file, io.in),
                                                                 in_format);
    std::string text;
    for (size_t d = 0; d < documents.size(); ++d) {
      std::vector<json> results;
      try {
        results = yq_eval(expression, documents[d], access);
      } catch (const yq_syntax_error& e) {
        throw cli_failure(std::string("invalid input: ") + e.what());
      } catch (const yq_error& e) {
        throw cli_failure(e.what());
      }
      if (d > 0 && out_format == data_format::yaml && !o.no_doc && !results.empty())
        text += "---\n";
      for (auto& r : results) {
        yq_keep_input_numbers(r, documents[d]);
        any_truthy |= truthy(r);
        text += render(r, out_format, o);
      }
    }
    if (o.inplace) {
      replace_file(file, text);
      continue;
    }
    io.out << text;
    if (o.null_input)
      break;
  }
  io.out.flush();
  if (o.exit_status && !any_truthy)
    throw cli_failure("no matches found");
  return 0;
}

} // namespace

std::string yq_version_text() {
  return "yq (https://github.com/mikefarah/yq/) version v4.53.3";
}

int run_yq_cli(const std::vector<std::string>& args, yq_cli_io io) {
  try {
    return run(args, io);
  } catch (const cli_failure& e) {
    io.out.flush();
    io.err << "Error: " << e.what() << "\n";
  } catch (const std::exception& e) { // fs::error from an in-place write
    io.out.flush();
    io.err << "Error: " << e.what() << "\n";
  }
  return 1;
}

} // namespace calima
