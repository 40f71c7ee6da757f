/// `limactl completion bash|zsh|fish|powershell` (hidden, as in Lima): prints a completion script
/// generated from the command tree that limactl itself parses with, so new commands and flags are
/// completed without editing the scripts.
///
/// The scripts resolve the command path from the words typed so far (sub-commands and their
/// aliases, skipping flags and the values of flags that take one), then offer the sub-commands
/// and flags of that command, fixed values for a few flags (`--mode`, `--log-level`, ...), and
/// names for arguments: instance names from `limactl list --quiet`, network names from
/// `limactl network list`, disk names from `limactl disk list`. Everything else falls back to
/// the shell's file completion. Unlike cobra's scripts there is no hidden `__complete` command:
/// the tables are in the script, and only the name lists call limactl.
///
/// zsh reuses the bash script through zsh's bashcompinit; fish and PowerShell get native scripts
/// built from the same tables.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/util/go_format.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fmt/format.h>
#include <map>
#include <set>

namespace calima::cli {

namespace {

// -- the command tree as the scripts need it ---------------------------------------------------

struct flag_info {
  std::vector<std::string> longs;  ///< without dashes
  std::vector<std::string> shorts; ///< single characters
  std::string description;
  bool takes_value = false;
  bool hidden = false;
};

struct command_info {
  std::string path; ///< "" for limactl itself, "disk list" for a sub-command of a sub-command
  std::string name;
  std::vector<std::string> aliases;
  std::string description;
  bool hidden = false;
  std::vector<flag_info> flags;
  std::vector<size_t> children; ///< indices into the tree
  std::string parent_path;
};

/// Names that can go into every script unquoted-safe (command, alias and flag names).
bool safe_word(const std::string& s) {
  if (s.empty())
    return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == '+' || c == ':';
    if (!ok)
      return false;
  }
  return s[0] != '-';
}

void collect(const CLI::App* app, const std::string& path, const std::string& parent_path, bool hidden,
             std::vector<command_info>& tree) {
  size_t index = tree.size();
  tree.emplace_back();
  {
    auto& c = tree.back();
    c.path = path;
    c.parent_path = parent_path;
    c.name = app->get_name();
    c.hidden = hidden;
    c.description = app->get_description();
    for (auto& a : app->get_aliases())
      if (safe_word(a))
        c.aliases.push_back(a);
    for (auto* opt : app->get_options()) {
      if (!opt->nonpositional())
        continue;
      flag_info f;
      for (auto& l : opt->get_lnames())
        if (safe_word(l))
          f.longs.push_back(l);
      for (auto& s : opt->get_snames())
        if (s.size() == 1 && safe_word(s))
          f.shorts.push_back(s);
      if (f.longs.empty() && f.shorts.empty())
        continue;
      f.description = opt->get_description();
      f.takes_value = opt->get_expected_max() != 0;
      f.hidden = opt->get_group().empty();
      c.flags.push_back(std::move(f));
    }
  }
  for (auto* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    if (!safe_word(sub->get_name()))
      continue;
    auto sub_path = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    size_t child = tree.size();
    collect(sub, sub_path, path, hidden || sub->get_group().empty(), tree);
    tree[index].children.push_back(child);
  }
}

/// What the positional arguments of a command are (Lima's ValidArgsFunction for it).
enum class arg_kind { none, instance, instance_first, network, disk, disk_first, command };

arg_kind kind_of(const std::string& path) {
  static const std::map<std::string, arg_kind> kinds = {
      {"list", arg_kind::instance},
      {"delete", arg_kind::instance},
      {"stop", arg_kind::instance},
      {"protect", arg_kind::instance},
      {"unprotect", arg_kind::instance},
      {"watch", arg_kind::instance},
      {"start", arg_kind::instance_first},
      {"restart", arg_kind::instance_first},
      {"shell", arg_kind::instance_first},
      {"edit", arg_kind::instance_first},
      {"clone", arg_kind::instance_first},
      {"rename", arg_kind::instance_first},
      {"show-ssh", arg_kind::instance_first},
      {"factory-reset", arg_kind::instance_first},
      {"start-at-login", arg_kind::instance_first},
      {"autostart enable", arg_kind::instance_first},
      {"autostart disable", arg_kind::instance_first},
      {"tunnel", arg_kind::instance_first},
      {"snapshot create", arg_kind::instance_first},
      {"snapshot delete", arg_kind::instance_first},
      {"snapshot apply", arg_kind::instance_first},
      {"snapshot list", arg_kind::instance_first},
      {"network list", arg_kind::network},
      {"network delete", arg_kind::network},
      {"disk list", arg_kind::disk},
      {"disk delete", arg_kind::disk},
      {"disk unlock", arg_kind::disk},
      {"disk resize", arg_kind::disk_first},
      {"help", arg_kind::command},
  };
  auto it = kinds.find(path);
  return it == kinds.end() ? arg_kind::none : it->second;
}

/// Fixed values of a flag: by command path and flag, or for the flag anywhere (path "*").
std::vector<std::string> flag_values(const std::string& path, const std::string& flag) {
  static const std::map<std::pair<std::string, std::string>, std::vector<std::string>> values = {
      {{"*", "log-level"}, {"trace", "debug", "info", "warn", "error"}},
      {{"*", "log-format"}, {"text", "json"}},
      {{"network create", "mode"}, {"user-v2", "host", "shared", "bridged"}},
      {{"autostart enable", "condition"}, {"login", "boot"}},
      {{"list", "format"}, {"json", "yaml", "table"}},
      {{"disk create", "format"}, {"qcow2", "raw"}},
      {{"disk import", "format"}, {"qcow2", "raw"}},
      {{"*", "vm-type"}, {"qemu", "vz", "wsl2"}},
      {{"*", "mount-type"}, {"reverse-sshfs", "9p", "virtiofs"}},
      {{"*", "arch"}, {"x86_64", "aarch64", "riscv64", "armv7l", "s390x", "ppc64le"}},
      {{"*", "containerd"}, {"user", "system", "user+system", "none"}},
  };
  if (auto it = values.find({path, flag}); it != values.end())
    return it->second;
  if (auto it = values.find({"*", flag}); it != values.end())
    return it->second;
  return {};
}

const char* kind_word(arg_kind k) {
  switch (k) {
  case arg_kind::instance:
    return "instance";
  case arg_kind::instance_first:
    return "instance1";
  case arg_kind::network:
    return "network";
  case arg_kind::disk:
    return "disk";
  case arg_kind::disk_first:
    return "disk1";
  case arg_kind::command:
    return "command";
  case arg_kind::none:
    break;
  }
  return "";
}

/// POSIX-shell single quoting.
std::string sq(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

/// Whether `f` is one of the global flags (CLI11 copies `-h,--help` into every sub-command;
/// completing it for both would list it twice).
bool covered_by_root(const flag_info& f, const command_info& root) {
  for (auto& r : root.flags)
    if (r.longs == f.longs && r.shorts == f.shorts)
      return true;
  return false;
}

/// All flag spellings of a command (`--json`, `-f`), visible ones only unless `with_hidden`.
std::vector<std::string> flag_words(const command_info& c, bool with_hidden, bool values_only,
                                    const command_info* root = nullptr) {
  std::vector<std::string> out;
  for (auto& f : c.flags) {
    if ((f.hidden && !with_hidden) || (values_only && !f.takes_value))
      continue;
    if (root && root != &c && covered_by_root(f, *root))
      continue;
    for (auto& l : f.longs)
      out.push_back("--" + l);
    for (auto& s : f.shorts)
      out.push_back("-" + s);
  }
  return out;
}

std::vector<std::string> visible_children(const std::vector<command_info>& tree, const command_info& c) {
  std::vector<std::string> out;
  for (auto i : c.children)
    if (!tree[i].hidden)
      out.push_back(tree[i].name);
  return out;
}

// -- bash (and zsh through bashcompinit) -------------------------------------------------------

/// The shell functions shared by the bash and zsh scripts. They use only what bash and zsh's
/// bashcompinit both provide (no compopt, mapfile or `read -a`).
std::string bash_functions(const std::vector<command_info>& tree) {
  const auto& root = tree.front();
  std::string s;

  s += "__limactl_child() {\n"
       "  # $1: command path (\"\" for limactl itself), $2: a word; prints the path of the\n"
       "  # sub-command the word names, nothing when it names none\n"
       "  case \"$1|$2\" in\n";
  for (auto& c : tree) {
    if (&c == &root)
      continue;
    std::vector<std::string> pats;
    pats.push_back(sq(c.parent_path + "|" + c.name));
    for (auto& a : c.aliases)
      pats.push_back(sq(c.parent_path + "|" + a));
    s += fmt::format("    {}) echo {} ;;\n", join(pats, "|"), sq(c.path));
  }
  s += "  esac\n}\n\n";

  s += "__limactl_commands() {\n"
       "  # $1: command path; prints its sub-commands\n"
       "  case \"$1\" in\n";
  for (auto& c : tree) {
    auto kids = visible_children(tree, c);
    if (!kids.empty())
      s += fmt::format("    {}) echo {} ;;\n", sq(c.path), sq(join(kids, " ")));
  }
  s += "  esac\n}\n\n";

  auto root_flags = flag_words(root, false, false);
  s += "__limactl_flags() {\n"
       "  # $1: command path; prints its flags and the global ones\n"
       "  case \"$1\" in\n";
  for (auto& c : tree) {
    if (&c == &root)
      continue;
    auto own = flag_words(c, false, false, &root);
    if (!own.empty())
      s += fmt::format("    {}) echo {} ;;\n", sq(c.path), sq(join(own, " ")));
  }
  s += "  esac\n";
  s += fmt::format("  echo {}\n}}\n\n", sq(join(root_flags, " ")));

  s += "__limactl_takes_value() {\n"
       "  # $1: command path, $2: a flag; succeeds when the flag takes a value\n"
       "  case \"$1|$2\" in\n";
  for (auto& c : tree) {
    if (&c == &root)
      continue;
    std::vector<std::string> pats;
    for (auto& f : flag_words(c, true, true))
      pats.push_back(sq(c.path + "|" + f));
    if (!pats.empty())
      s += fmt::format("    {}) return 0 ;;\n", join(pats, "|"));
  }
  {
    std::vector<std::string> pats;
    for (auto& f : flag_words(root, true, true))
      pats.push_back("*" + sq("|" + f));
    if (!pats.empty())
      s += fmt::format("    {}) return 0 ;;\n", join(pats, "|"));
  }
  s += "  esac\n  return 1\n}\n\n";

  s += "__limactl_flag_values() {\n"
       "  # $1: command path, $2: a flag; prints the values it accepts, when they are fixed\n"
       "  case \"$1|$2\" in\n";
  for (auto& c : tree) {
    for (auto& f : c.flags) {
      if (!f.takes_value)
        continue;
      for (auto& l : f.longs) {
        auto vals = flag_values(c.path, l);
        if (vals.empty())
          continue;
        std::vector<std::string> pats;
        auto prefix = &c == &root ? std::string("*") : "";
        pats.push_back(prefix + sq((&c == &root ? "" : c.path) + "|--" + l));
        for (auto& sh : f.shorts)
          pats.push_back(prefix + sq((&c == &root ? "" : c.path) + "|-" + sh));
        s += fmt::format("    {}) echo {} ;;\n", join(pats, "|"), sq(join(vals, " ")));
      }
    }
  }
  s += "  esac\n}\n\n";

  s += "__limactl_arg_kind() {\n"
       "  # $1: command path; prints what its arguments name (instance1: only the first one)\n"
       "  case \"$1\" in\n";
  for (auto& c : tree) {
    auto k = kind_of(c.path);
    if (k != arg_kind::none && &c != &root)
      s += fmt::format("    {}) echo {} ;;\n", sq(c.path), kind_word(k));
  }
  s += "  esac\n}\n\n";

  s += R"~(__limactl_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local prev=""
  local exe="${COMP_WORDS[0]}"
  local cmdpath="" word next npos=0 i=1 flag="" kind="" candidates=""
  COMPREPLY=()
  case "$exe" in
    "~/"*) exe="$HOME/${exe#\~/}" ;;
  esac
  if [ "$COMP_CWORD" -gt 1 ]; then
    prev="${COMP_WORDS[COMP_CWORD-1]}"
  fi

  # Walk the words before the cursor: sub-commands extend the path until the first argument.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    word="${COMP_WORDS[i]}"
    i=$((i + 1))
    case "$word" in
      --)
        return 0 ;;
      -*=*)
        continue ;;
      -*)
        if [ "$i" -lt "$COMP_CWORD" ] && [ "${COMP_WORDS[i]}" = "=" ]; then
          i=$((i + 2))
        elif __limactl_takes_value "$cmdpath" "$word"; then
          i=$((i + 1))
        fi
        continue ;;
    esac
    if [ "$npos" -eq 0 ]; then
      next="$(__limactl_child "$cmdpath" "$word")"
      if [ -n "$next" ]; then
        cmdpath="$next"
        continue
      fi
    fi
    npos=$((npos + 1))
  done

  # The value of a flag: "--flag value", "--flag=value" (bash makes "=" a word of its own).
  if [ "$cur" = "=" ]; then
    case "$prev" in -*) flag="$prev"; cur="" ;; esac
  elif [ "$prev" = "=" ] && [ "$COMP_CWORD" -gt 2 ]; then
    case "${COMP_WORDS[COMP_CWORD-2]}" in -*) flag="${COMP_WORDS[COMP_CWORD-2]}" ;; esac
  else
    case "$cur" in
      -*=*)
        flag="${cur%%=*}"
        cur="${cur#*=}" ;;
      *)
        case "$prev" in
          -*=*) ;;
          -*) if __limactl_takes_value "$cmdpath" "$prev"; then flag="$prev"; fi ;;
        esac ;;
    esac
  fi
  if [ -n "$flag" ]; then
    candidates="$(__limactl_flag_values "$cmdpath" "$flag")"
    if [ -n "$candidates" ]; then
      COMPREPLY=( $(compgen -W "$candidates" -- "$cur") )
    fi
    return 0
  fi

  case "$cur" in
    -*)
      COMPREPLY=( $(compgen -W "$(__limactl_flags "$cmdpath")" -- "$cur") )
      return 0 ;;
  esac

  if [ "$npos" -eq 0 ]; then
    candidates="$(__limactl_commands "$cmdpath")"
  fi
  kind="$(__limactl_arg_kind "$cmdpath")"
  case "$kind" in
    instance)
      candidates="$candidates $("$exe" list --quiet 2>/dev/null)" ;;
    instance1)
      if [ "$npos" -eq 0 ]; then
        candidates="$candidates $("$exe" list --quiet 2>/dev/null)"
      fi ;;
    network)
      candidates="$candidates $("$exe" network list 2>/dev/null | awk 'NR > 1 { print $1 }')" ;;
    disk)
      candidates="$candidates $("$exe" disk list 2>/dev/null | awk 'NR > 1 { print $1 }')" ;;
    disk1)
      if [ "$npos" -eq 0 ]; then
        candidates="$candidates $("$exe" disk list 2>/dev/null | awk 'NR > 1 { print $1 }')"
      fi ;;
    command)
      candidates="$candidates $(__limactl_commands "")" ;;
  esac
  if [ -n "${candidates// /}" ]; then
    COMPREPLY=( $(compgen -W "$candidates" -- "$cur") )
  fi
  return 0
}
)~";
  return s;
}

std::string bash_script(const std::vector<command_info>& tree) {
  std::string s = R"~(# bash completion for limactl                              -*- shell-script -*-
#
# Generated by `limactl completion bash`. To load it in the current shell:
#   source <(limactl completion bash)
# To load it in every session, save it as
#   ~/.local/share/bash-completion/completions/limactl   (for your user), or
#   /etc/bash_completion.d/limactl                        (for everybody).
# Instance, network and disk names are read by running limactl when completing.

)~";
  s += bash_functions(tree);
  s += "\ncomplete -o default -F __limactl_complete limactl\n";
  return s;
}

std::string zsh_script(const std::vector<command_info>& tree) {
  std::string s = R"~(#compdef limactl
# zsh completion for limactl
#
# Generated by `limactl completion zsh`. To load it in the current shell:
#   source <(limactl completion zsh)
# To load it in every session, save it as `_limactl` in a directory of $fpath (before
# compinit runs in ~/.zshrc). It drives the bash completion functions below through zsh's
# bashcompinit.

if ! (( $+functions[compdef] )); then
  autoload -Uz compinit && compinit
fi
if ! (( $+functions[complete] )); then
  autoload -U +X bashcompinit && bashcompinit
fi

)~";
  s += bash_functions(tree);
  s += R"~(
complete -o default -F __limactl_complete limactl

# Autoloaded from $fpath as _limactl: complete the word this first call was made for.
if [[ "${funcstack[1]}" == _limactl ]] && (( $+functions[_bash_complete] )); then
  _bash_complete -o default -F __limactl_complete
fi
)~";
  return s;
}

// -- fish --------------------------------------------------------------------------------------

/// A fish single-quoted string.
std::string fish_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "'";
}

/// First line of a description, for completion menus.
std::string one_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

std::string fish_script(const std::vector<command_info>& tree, bool descriptions) {
  const auto& root = tree.front();
  std::string s = R"~(# fish completion for limactl
#
# Generated by `limactl completion fish`. To load it in the current shell:
#   limactl completion fish | source
# To load it in every session, save it as ~/.config/fish/completions/limactl.fish

function __limactl_child
    # $argv[1]: command path ('' for limactl itself), $argv[2]: a word
    switch "$argv[1]|$argv[2]"
)~";
  for (auto& c : tree) {
    if (&c == &root)
      continue;
    std::vector<std::string> pats;
    pats.push_back(fish_quote(c.parent_path + "|" + c.name));
    for (auto& a : c.aliases)
      pats.push_back(fish_quote(c.parent_path + "|" + a));
    s += fmt::format("        case {}\n            echo {}\n", join(pats, " "), fish_quote(c.path));
  }
  s += "    end\nend\n\n";

  s += "function __limactl_takes_value\n"
       "    # $argv[1]: command path, $argv[2]: a flag\n"
       "    switch \"$argv[1]|$argv[2]\"\n";
  {
    std::vector<std::string> pats;
    for (auto& c : tree) {
      if (&c == &root) {
        for (auto& f : flag_words(c, true, true))
          pats.push_back(fish_quote("*|" + f));
      } else {
        for (auto& f : flag_words(c, true, true))
          pats.push_back(fish_quote(c.path + "|" + f));
      }
    }
    if (!pats.empty())
      s += fmt::format("        case {}\n            return 0\n", join(pats, " "));
  }
  s += "    end\n    return 1\nend\n\n";

  s += "function __limactl_arg_kind\n"
       "    switch \"$argv[1]\"\n";
  for (auto& c : tree) {
    auto k = kind_of(c.path);
    if (k != arg_kind::none && &c != &root)
      s += fmt::format("        case {}\n            echo {}\n", fish_quote(c.path), kind_word(k));
  }
  s += "    end\nend\n\n";

  s += R"~(function __limactl_state
    # Sets __limactl_path (the command path) and __limactl_npos (arguments typed after it).
    set -l words (commandline -opc)
    set -e words[1]
    set -g __limactl_path ''
    set -g __limactl_npos 0
    set -l skip 0
    for w in $words
        if test $skip -eq 1
            set skip 0
            continue
        end
        if test "x$w" = 'x--'
            set __limactl_npos (math $__limactl_npos + 1)
            continue
        end
        switch "x$w"
            case 'x-*=*'
                continue
            case 'x-*'
                if __limactl_takes_value "$__limactl_path" "$w"
                    set skip 1
                end
                continue
        end
        if test $__limactl_npos -eq 0
            set -l next (__limactl_child "$__limactl_path" "$w")
            if test -n "$next"
                set __limactl_path $next
                continue
            end
        end
        set __limactl_npos (math $__limactl_npos + 1)
    end
end

function __limactl_at
    # Succeeds when the command path is $argv[1].
    __limactl_state
    test "$__limactl_path" = "$argv[1]"
end

function __limactl_at_commands
    # Succeeds when the command path is $argv[1] and no argument was typed yet.
    __limactl_state
    test "$__limactl_path" = "$argv[1]"; and test $__limactl_npos -eq 0
end

function __limactl_args_are
    # Succeeds when the word being completed is an argument naming a $argv[1].
    __limactl_state
    set -l want $argv[1]
    set -l kind (__limactl_arg_kind "$__limactl_path")
    switch "x$kind"
        case "x$want"
            return 0
        case "x$want"1
            test $__limactl_npos -eq 0
            return $status
    end
    return 1
end

function __limactl_names
    set -l exe (commandline -opc)[1]
    switch $argv[1]
        case instance
            command $exe list --quiet 2>/dev/null
        case network
            command $exe network list 2>/dev/null | awk 'NR > 1 { print $1 }'
        case disk
            command $exe disk list 2>/dev/null | awk 'NR > 1 { print $1 }'
    end
end

)~";
  auto describe = [&](const std::string& d) {
    return descriptions && !d.empty() ? " -d " + fish_quote(one_line(d)) : std::string();
  };
  for (auto& c : tree) {
    for (auto i : c.children) {
      auto& kid = tree[i];
      if (kid.hidden)
        continue;
      s += fmt::format("complete -c limactl -n {} -f -a {}{}\n",
                       fish_quote("__limactl_at_commands " + sq(c.path)), fish_quote(kid.name),
                       describe(kid.description));
    }
  }
  for (auto& c : tree) {
    for (auto& f : c.flags) {
      if (f.hidden || (&c != &root && covered_by_root(f, root)))
        continue;
      std::string line = "complete -c limactl";
      if (&c != &root)
        line += " -n " + fish_quote("__limactl_at " + sq(c.path));
      for (auto& l : f.longs)
        line += " -l " + l;
      for (auto& sh : f.shorts)
        line += " -s " + sh;
      if (f.takes_value) {
        std::vector<std::string> vals;
        for (auto& l : f.longs)
          if (vals.empty())
            vals = flag_values(c.path, l);
        line += vals.empty() ? " -r" : " -x -a " + fish_quote(join(vals, " "));
      }
      line += describe(f.description);
      s += line + "\n";
    }
  }
  s += "complete -c limactl -n '__limactl_args_are instance' -f -a '(__limactl_names instance)'\n"
       "complete -c limactl -n '__limactl_args_are network' -f -a '(__limactl_names network)'\n"
       "complete -c limactl -n '__limactl_args_are disk' -f -a '(__limactl_names disk)'\n"
       "complete -c limactl -n '__limactl_args_are command' -f -a " +
       fish_quote(join(visible_children(tree, root), " ")) + "\n";
  return s;
}

// -- PowerShell --------------------------------------------------------------------------------

/// A PowerShell single-quoted string.
std::string ps_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += '\'';
    out += c;
  }
  return out + "'";
}

std::string ps_array(const std::vector<std::string>& items) {
  std::vector<std::string> q;
  for (auto& i : items)
    q.push_back(ps_quote(i));
  return "@(" + join(q, ", ") + ")";
}

std::string powershell_script(const std::vector<command_info>& tree, bool descriptions) {
  const auto& root = tree.front();
  std::string s = R"~(# powershell completion for limactl
#
# Generated by `limactl completion powershell`. To load it in the current shell:
#   limactl completion powershell | Out-String | Invoke-Expression
# To load it in every session, add that line to your PowerShell profile ($PROFILE).

)~";
  // Hashtable keys are case-insensitive in PowerShell and a literal must not repeat one: the
  // first spelling wins (flags differing only in case are not told apart).
  std::set<std::string> seen;
  auto entry = [&](const std::string& key, const std::string& value) {
    std::string lower = key;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!seen.insert(lower).second)
      return;
    s += fmt::format("    {} = {}\n", ps_quote(key), value);
  };
  auto open = [&](const char* name) {
    seen.clear();
    s += fmt::format("$global:{} = @{{\n", name);
  };
  auto close = [&] { s += "}\n\n"; };

  open("__limactlChildren");
  for (auto& c : tree) {
    if (&c == &root)
      continue;
    entry(c.parent_path + "|" + c.name, ps_quote(c.path));
    for (auto& a : c.aliases)
      entry(c.parent_path + "|" + a, ps_quote(c.path));
  }
  close();
  open("__limactlCommands");
  for (auto& c : tree) {
    auto kids = visible_children(tree, c);
    if (!kids.empty())
      entry(c.path, ps_array(kids));
  }
  close();
  open("__limactlDescriptions");
  if (descriptions) {
    for (auto& c : tree)
      if (&c != &root && !c.hidden && !c.description.empty())
        entry(c.path, ps_quote(one_line(c.description)));
  }
  close();
  open("__limactlFlags");
  for (auto& c : tree) {
    auto own = flag_words(c, false, false, &root);
    if (!own.empty())
      entry(c.path, ps_array(own));
  }
  close();
  open("__limactlValueFlags");
  for (auto& c : tree)
    for (auto& f : flag_words(c, true, true))
      entry(c.path + "|" + f, "$true");
  close();
  open("__limactlFlagValues");
  for (auto& c : tree) {
    for (auto& f : c.flags) {
      if (!f.takes_value)
        continue;
      for (auto& l : f.longs) {
        auto vals = flag_values(c.path, l);
        if (vals.empty())
          continue;
        entry(c.path + "|--" + l, ps_array(vals));
        for (auto& sh : f.shorts)
          entry(c.path + "|-" + sh, ps_array(vals));
      }
    }
  }
  close();
  open("__limactlArgKinds");
  for (auto& c : tree) {
    auto k = kind_of(c.path);
    if (k != arg_kind::none && &c != &root)
      entry(c.path, ps_quote(kind_word(k)));
  }
  close();
  s += R"~(Register-ArgumentCompleter -Native -CommandName 'limactl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $first = $commandAst.CommandElements[0]
    if ($first -is [System.Management.Automation.Language.StringConstantExpressionAst]) {
        $exe = $first.Value
    } else {
        $exe = $first.Extent.Text
    }
    # The words before the one being completed.
    $words = @()
    foreach ($element in $commandAst.CommandElements) {
        if ($element.Extent.EndOffset -lt $cursorPosition) {
            $words += $element.Extent.Text
        }
    }

    $path = ''
    $npos = 0
    $i = 1
    while ($i -lt $words.Count) {
        $w = $words[$i]
        $i++
        if ($w -eq '--') {
            return
        }
        if ($w.StartsWith('-')) {
            if (-not $w.Contains('=') -and ($global:__limactlValueFlags.ContainsKey("$path|$w") -or $global:__limactlValueFlags.ContainsKey("|$w"))) {
                $i++
            }
            continue
        }
        if ($npos -eq 0 -and $global:__limactlChildren.ContainsKey("$path|$w")) {
            $path = $global:__limactlChildren["$path|$w"]
            continue
        }
        $npos++
    }

    $prefix = ''
    $current = $wordToComplete
    $flag = $null
    if ($current -match '^(-[^=]+)=(.*)$') {
        $flag = $Matches[1]
        $prefix = $flag + '='
        $current = $Matches[2]
    } elseif ($words.Count -gt 1) {
        $prev = $words[$words.Count - 1]
        if ($prev.StartsWith('-') -and -not $prev.Contains('=') -and ($global:__limactlValueFlags.ContainsKey("$path|$prev") -or $global:__limactlValueFlags.ContainsKey("|$prev"))) {
            $flag = $prev
        }
    }

    $candidates = @()
    if ($null -ne $flag) {
        if ($global:__limactlFlagValues.ContainsKey("$path|$flag")) {
            $candidates = $global:__limactlFlagValues["$path|$flag"]
        } elseif ($global:__limactlFlagValues.ContainsKey("|$flag")) {
            $candidates = $global:__limactlFlagValues["|$flag"]
        } else {
            return
        }
    } elseif ($current.StartsWith('-')) {
        if ($path -ne '' -and $global:__limactlFlags.ContainsKey($path)) {
            $candidates += $global:__limactlFlags[$path]
        }
        if ($global:__limactlFlags.ContainsKey('')) {
            $candidates += $global:__limactlFlags['']
        }
    } else {
        if ($npos -eq 0 -and $global:__limactlCommands.ContainsKey($path)) {
            $candidates += $global:__limactlCommands[$path]
        }
        $kind = $global:__limactlArgKinds[$path]
        if ($kind -eq 'instance' -or ($kind -eq 'instance1' -and $npos -eq 0)) {
            $candidates += @(& $exe list --quiet 2>$null)
        } elseif ($kind -eq 'network') {
            $candidates += @(& $exe network list 2>$null | Select-Object -Skip 1 | ForEach-Object { ($_ -split '\s+')[0] })
        } elseif ($kind -eq 'disk' -or ($kind -eq 'disk1' -and $npos -eq 0)) {
            $candidates += @(& $exe disk list 2>$null | Select-Object -Skip 1 | ForEach-Object { ($_ -split '\s+')[0] })
        } elseif ($kind -eq 'command') {
            $candidates += $global:__limactlCommands['']
        }
    }

    foreach ($c in $candidates) {
        if ($null -eq $c -or $c -eq '') {
            continue
        }
        $text = [string]$c
        if (-not $text.StartsWith($current)) {
            continue
        }
        $tip = $text
        $sub = if ($path -eq '') { $text } else { "$path $text" }
        if ($global:__limactlDescriptions.ContainsKey($sub)) {
            $tip = $global:__limactlDescriptions[$sub]
        }
        [System.Management.Automation.CompletionResult]::new($prefix + $text, $text, 'ParameterValue', $tip)
    }
}
)~";
  return s;
}

// -- the command -------------------------------------------------------------------------------

void print_script(const CLI::App& root, const std::string& shell, bool descriptions,
                  const std::vector<std::string>& extra) {
  if (!extra.empty())
    throw cli_error(fmt::format("unknown command {} for {}", go_quote(extra[0]),
                                go_quote("limactl completion " + shell)));
  std::vector<command_info> tree;
  collect(&root, "", "", false, tree);
  std::string out;
  if (shell == "bash")
    out = bash_script(tree);
  else if (shell == "zsh")
    out = zsh_script(tree);
  else if (shell == "fish")
    out = fish_script(tree, descriptions);
  else
    out = powershell_script(tree, descriptions);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

} // namespace

void register_completion(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto* completion = root.add_subcommand("completion",
                                         "Generate the autocompletion script for the specified shell");
  completion->group(""); // hidden, as in Lima
  completion->require_subcommand(0, 1);
  completion->footer("Supported shells: bash, zsh, fish, powershell.\n"
                     "Run `limactl completion SHELL --help` for how to load each script.");
  completion->add_option("shell", *args);
  const CLI::App* root_ptr = &root;
  set_action(completion, [completion, args] {
    if (args->empty()) {
      std::fputs(completion->help("limactl").c_str(), stdout);
      return;
    }
    throw cli_error(fmt::format("unknown command {} for {}", go_quote((*args)[0]),
                                go_quote("limactl completion")));
  });

  struct shell_info {
    const char* name;
    const char* footer;
  };
  const shell_info shells[] = {
      {"bash", "To load completions in the current shell:\n  source <(limactl completion bash)\n"
               "For every new session, save the output as\n"
               "  ~/.local/share/bash-completion/completions/limactl\n"},
      {"zsh", "To load completions in the current shell:\n  source <(limactl completion zsh)\n"
              "For every new session, save the output as _limactl in a directory of $fpath.\n"},
      {"fish", "To load completions in the current shell:\n  limactl completion fish | source\n"
               "For every new session, save the output as ~/.config/fish/completions/limactl.fish\n"},
      {"powershell", "To load completions in the current shell:\n"
                     "  limactl completion powershell | Out-String | Invoke-Expression\n"
                     "For every new session, add that line to your PowerShell profile.\n"},
  };
  for (auto& sh : shells) {
    auto extra = std::make_shared<std::vector<std::string>>();
    auto no_desc = std::make_shared<bool>(false);
    auto* cmd = completion->add_subcommand(sh.name, fmt::format("Generate the autocompletion script for {}", sh.name));
    cmd->footer(sh.footer);
    cmd->add_flag("--no-descriptions", *no_desc, "disable completion descriptions");
    cmd->add_option("args", *extra);
    std::string name = sh.name;
    set_action(cmd, [root_ptr, name, no_desc, extra] { print_script(*root_ptr, name, !*no_desc, *extra); });
  }
}

} // namespace calima::cli
