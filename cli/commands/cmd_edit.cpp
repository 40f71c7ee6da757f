/// `limactl edit`, `clone`, `rename` (spec §6.7, §6.8).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/edit_flags.hpp"
#include "cli/instance_ops.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/store/store.hpp"
#include "config/limayaml/validate.hpp"
#include "config/yq/yq.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace calima::cli {

namespace {

// -- editor --------------------------------------------------------------------

/// `$VISUAL`, `$EDITOR`, then the first of editor, vim, vi, emacs on PATH.
std::string find_editor() {
  for (auto* var : {"VISUAL", "EDITOR"})
    if (const char* v = std::getenv(var); v && *v)
      return v;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (auto* cand : {"editor", "vim", "vi", "emacs"}) {
    size_t start = 0;
    for (;;) {
      auto end = dirs.find(':', start);
      auto dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
      auto full = (dir.empty() ? "." : dir) + "/" + cand;
      if (::access(full.c_str(), X_OK) == 0)
        return full;
      if (end == std::string::npos)
        break;
      start = end + 1;
    }
  }
  throw cli_error("could not detect a text editor binary, try setting $EDITOR");
}

/// The warning block of §2.2 for non-empty `_config/default.yaml` / `override.yaml`.
std::string config_warning_header() {
  std::string out;
  auto home = store::lima_home();
  for (auto* f : {"default.yaml", "override.yaml"}) {
    auto path = home + "/_config/" + f;
    auto text = fs::read_file(path);
    if (!text || text->empty())
      continue;
    out += fmt::format("# WARNING: {} includes the following settings,\n", path);
    out += "# which are applied before applying this YAML:\n# -----------\n";
    size_t pos = 0;
    while (pos < text->size()) {
      auto eol = text->find('\n', pos);
      auto line = text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
      out += line.empty() ? "#\n" : "# " + line + "\n";
      pos = eol == std::string::npos ? text->size() : eol + 1;
    }
    out += "# -----------\n";
  }
  return out;
}

/// Opens `content` (prefixed by `header`) in the editor; returns the edited text without the
/// header. Editor failures propagate as child_exit.
std::string open_editor(const std::string& content, const std::string& header) {
  auto editor = find_editor();
  char tmpl[] = "/tmp/lima-edit-XXXXXX.yaml";
  int fd = ::mkstemps(tmpl, 5);
  if (fd < 0)
    throw cli_error(fs::path_error("open", tmpl, errno));
  ::close(fd);
  std::string path = tmpl;
  fs::write_file_atomic(path, header + content, 0600);
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string cmd = editor + " \"$1\"";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), "sh", path.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  auto edited = fs::read_file(path).value_or("");
  ::unlink(path.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw child_exit{WIFEXITED(status) ? WEXITSTATUS(status) : 1};
  if (edited.rfind(header, 0) == 0)
    edited = edited.substr(header.size());
  return edited;
}

// -- shared edit path -------------------------------------------------------------

struct edit_options {
  bool start = false;
  edit_flags flags;
};

void warn_deprecated_yes() {
  if (globals().yes)
    log::warn("--yes flag is deprecated (--tty=false is still supported and works in the same way. "
              "Also consider using --start)");
}

void run_edit(edit_options& o, const std::vector<std::string>& args, CLI::App* cmd) {
  warn_deprecated_yes();
  check_args(args, 0, 1, "limactl edit", "limactl edit INSTANCE|FILE.yaml",
             "Edit an instance of Lima or a template");
  std::string arg = args.empty() ? "default" : args[0];
  std::string name;
  std::string path;
  if (!instance_name_error(arg)) {
    name = arg;
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const store::not_found&) {
      throw cli_error(fmt::format("instance {} not found", go_backquote(name)));
    }
    if (inst.state == store::status::running)
      throw cli_error("cannot edit a running instance");
    path = inst.dir + "/lima.yaml";
  } else {
    path = fs::absolute(arg);
  }
  auto old = fs::read_file(path);
  if (!old)
    throw cli_error(fs::path_error("open", path, errno));
  std::string text;
  if (o.flags.any()) {
    text = yq_edit_yaml(*old, o.flags.to_yq(true));
  } else if (globals().tty) {
    std::string header =
      name.empty() ? fmt::format("# Please edit the following configuration {}\n", go_backquote(path))
                   : fmt::format("# Please edit the following configuration for Lima instance {}\n",
                                 go_backquote(name));
    header += "# and an empty file will abort the edit.\n" + config_warning_header() + "\n";
    text = open_editor(*old, header);
  } else {
    text.clear();
  }
  bool blank = text.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) {
    log::info("Aborting, as requested by saving the file with empty content");
    return;
  }
  if (text == *old) {
    log::info("Aborting, no changes made to the instance");
    return;
  }
  if (name.empty()) {
    // A template file: validate it as Lima does, under its own name.
    auto base = path.substr(path.rfind('/') + 1);
    name = base.substr(0, base.find('.'));
  }
  write_edited(name, path, text, *old);
  log::info(fmt::format("Instance {} configuration edited", go_backquote(name)));
  (void)cmd;
  if (o.start)
    start_instance(name, 0);
}

// -- clone / rename ------------------------------------------------------------------

bool skipped_in_copy(const std::string& rel) {
  auto ends = [&](const char* s) {
    std::string suf = s;
    return rel.size() >= suf.size() && rel.compare(rel.size() - suf.size(), suf.size(), suf) == 0;
  };
  return rel == "protected" || rel == "swtpm" || rel.rfind("swtpm/", 0) == 0 || ends(".pid") ||
         ends(".sock") || ends(".tmp");
}

void copy_file(const std::string& from, const std::string& to, mode_t mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0)
    throw cli_error(fs::path_error("open", from, errno));
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
  if (out < 0) {
    int err = errno;
    ::close(in);
    throw cli_error(fs::path_error("open", to, err));
  }
  struct stat st {};
  ::fstat(in, &st);
  off_t left = st.st_size;
  while (left > 0) {
    auto n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    if (n <= 0) {
      n = ::sendfile(out, in, nullptr, static_cast<size_t>(left));
      if (n <= 0) {
        int err = errno;
        ::close(in);
        ::close(out);
        throw cli_error(fs::path_error("write", to, err));
      }
    }
    left -= n;
  }
  ::close(in);
  if (::fchmod(out, mode & 07777) != 0 || ::close(out) != 0)
    throw cli_error(fs::path_error("write", to, errno));
}

/// Lima's clone/rename walk: recreate directories with their modes, copy (or move) files,
/// skip the protection marker, swtpm and temporary files, empty `vz-identifier`.
void copy_tree(const std::string& from, const std::string& to, const std::string& rel, bool move) {
  DIR* d = ::opendir(from.c_str());
  if (!d)
    throw cli_error(fs::path_error("open", from, errno));
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      names.push_back(n);
  }
  ::closedir(d);
  for (auto& n : names) {
    auto r = rel.empty() ? n : rel + "/" + n;
    if (skipped_in_copy(r))
      continue;
    auto src = from + "/" + n;
    auto dst = to + "/" + n;
    struct stat st {};
    if (::lstat(src.c_str(), &st) != 0)
      throw cli_error(fs::path_error("lstat", src, errno));
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), st.st_mode & 07777) != 0)
        throw cli_error(fs::path_error("mkdir", dst, errno));
      copy_tree(src, dst, r, move);
    } else if (r == "vz-identifier") {
      fs::write_file_atomic(dst, "", st.st_mode & 07777);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      auto len = ::readlink(src.c_str(), buf, sizeof buf - 1);
      if (len < 0 || ::symlink(std::string(buf, static_cast<size_t>(len)).c_str(), dst.c_str()) != 0)
        throw cli_error(fs::path_error("symlink", dst, errno));
    } else if (move) {
      if (::rename(src.c_str(), dst.c_str()) != 0)
        throw cli_error(fs::path_error("rename", src, errno));
    } else {
      copy_file(src, dst, st.st_mode);
    }
  }
}

void run_clone(edit_options& o, const std::vector<std::string>& args, bool rename) {
  warn_deprecated_yes();
  const char* verb = rename ? "rename" : "clone";
  check_args(args, 2, 2, fmt::format("limactl {}", verb),
             fmt::format("limactl {} OLDINST NEWINST", verb),
             rename ? "Rename an instance of Lima" : "Clone an instance of Lima");
  auto& old_name = args[0];
  auto& new_name = args[1];
  store::instance old;
  try {
    old = store::inspect(old_name);
  } catch (const store::not_found&) {
    throw cli_error(fmt::format("instance {} not found", go_backquote(old_name)));
  }
  if (old.state == store::status::running)
    throw cli_error(fmt::format("cannot {} a running instance", verb));
  if (auto err = instance_name_error(new_name))
    throw cli_error(*err);
  if (old_name == new_name)
    throw cli_error(fmt::format("new instance name {} must be different from {}",
                                go_backquote(new_name), go_backquote(old_name)));
  auto new_dir = store::instance_dir(new_name);
  if (fs::lexists(new_dir))
    throw cli_error(fmt::format("instance {} already exists", go_backquote(new_name)));
  if (auto err = socket_path_error(new_name, new_dir))
    throw cli_error(*err);
  struct stat st {};
  ::stat(old.dir.c_str(), &st);
  if (::mkdir(new_dir.c_str(), st.st_mode & 07777) != 0)
    throw cli_error(fs::path_error("mkdir", new_dir, errno));
  try {
    copy_tree(old.dir, new_dir, "", rename);
  } catch (...) {
    if (!rename) // a failed clone leaves nothing behind; a failed rename keeps both halves
      fs::remove_all(new_dir);
    throw;
  }
  if (rename)
    fs::remove_all(old.dir);
  if (o.flags.any()) {
    auto path = new_dir + "/lima.yaml";
    auto text = fs::read_file(path).value_or("");
    auto edited = yq_edit_yaml(text, o.flags.to_yq(true));
    if (edited != text)
      write_edited(new_name, path, edited, text);
  }
  if (o.start)
    start_instance(new_name, 0);
}

} // namespace

void register_edit(CLI::App& root) {
  {
    auto o = std::make_shared<edit_options>();
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = root.add_subcommand("edit", "Edit an instance of Lima or a template");
    cmd->group("Basic Commands");
    cmd->add_flag("--start", o->start, "Start the instance after editing");
    o->flags.add_to(cmd, false);
    cmd->add_option("args", *args);
    set_action(cmd, [o, args, cmd] { run_edit(*o, *args, cmd); });
  }
  for (bool rename : {false, true}) {
    auto o = std::make_shared<edit_options>();
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = root.add_subcommand(rename ? "rename" : "clone",
                                    rename ? "Rename an instance of Lima" : "Clone an instance of Lima");
    cmd->group("Advanced Commands");
    cmd->add_flag("--start", o->start, "Start the instance after cloning");
    o->flags.add_to(cmd, false);
    cmd->add_option("args", *args);
    set_action(cmd, [o, args, rename] { run_clone(*o, *args, rename); });
  }
}

} // namespace calima::cli
