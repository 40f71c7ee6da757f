#include "config/util/lazy_curl.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace calima::lazy_curl {

namespace {

struct loaded {
  api fns{};
  std::string error;
};

template <class F>
void bind(void* lib, const char* name, F& slot, std::string& error) {
  slot = reinterpret_cast<F>(::dlsym(lib, name));
  if (slot == nullptr && error.empty())
    error = std::string("libcurl.so.4 has no ") + name;
}

loaded load() {
  loaded l;
  void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    l.error = std::string("cannot load libcurl.so.4 (downloads need it): ")
              + (why != nullptr ? why : "unknown error");
    return l;
  }
  bind(lib, "curl_global_init", l.fns.global_init, l.error);
  bind(lib, "curl_easy_init", l.fns.easy_init, l.error);
  bind(lib, "curl_easy_cleanup", l.fns.easy_cleanup, l.error);
  bind(lib, "curl_easy_setopt", l.fns.easy_setopt, l.error);
  bind(lib, "curl_easy_perform", l.fns.easy_perform, l.error);
  bind(lib, "curl_easy_getinfo", l.fns.easy_getinfo, l.error);
  bind(lib, "curl_easy_strerror", l.fns.easy_strerror, l.error);
  bind(lib, "curl_slist_append", l.fns.slist_append, l.error);
  bind(lib, "curl_slist_free_all", l.fns.slist_free_all, l.error);
  return l; // the library stays loaded for the life of the process
}

} // namespace

const api& get() {
  static const loaded l = load();
  if (!l.error.empty())
    throw std::runtime_error(l.error);
  return l.fns;
}

} // namespace calima::lazy_curl
