#pragma once

// libcurl, loaded on first use instead of at program start. Linking it costs every limactl
// process about 6 ms (libcurl pulls in some 25 shared libraries: TLS, LDAP, Kerberos, IDN, ...)
// and only downloads need it (bench/list_bench.cpp, docs/performance.md).
//
// Include this instead of <curl/curl.h>: the curl_* functions used by calima become calls
// through the table that lazy_curl::get() loads with dlopen("libcurl.so.4").

#define CURL_DISABLE_TYPECHECK 1 // curl's type-checking macros would call the linked functions
#include <curl/curl.h>

namespace calima::lazy_curl {

struct api {
  CURLcode (*global_init)(long flags);
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL* handle);
  CURLcode (*easy_setopt)(CURL* handle, CURLoption option, ...);
  CURLcode (*easy_perform)(CURL* handle);
  CURLcode (*easy_getinfo)(CURL* handle, CURLINFO info, ...);
  const char* (*easy_strerror)(CURLcode code);
  curl_slist* (*slist_append)(curl_slist* list, const char* text);
  void (*slist_free_all)(curl_slist* list);
};

/// The functions, loaded once per process. Throws std::runtime_error naming the library when it
/// cannot be loaded (`cannot load libcurl.so.4: ...`).
const api& get();

} // namespace calima::lazy_curl

#define curl_global_init ::calima::lazy_curl::get().global_init
#define curl_easy_init ::calima::lazy_curl::get().easy_init
#define curl_easy_cleanup ::calima::lazy_curl::get().easy_cleanup
#define curl_easy_setopt ::calima::lazy_curl::get().easy_setopt
#define curl_easy_perform ::calima::lazy_curl::get().easy_perform
#define curl_easy_getinfo ::calima::lazy_curl::get().easy_getinfo
#define curl_easy_strerror ::calima::lazy_curl::get().easy_strerror
#define curl_slist_append ::calima::lazy_curl::get().slist_append
#define curl_slist_free_all ::calima::lazy_curl::get().slist_free_all
