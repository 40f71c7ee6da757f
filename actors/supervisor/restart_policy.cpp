#include "actors/supervisor/restart_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace calima::actors {

const char* to_string(restart_mode m) {
  switch (m) {
    case restart_mode::permanent: return "permanent";
    case restart_mode::transient: return "transient";
    case restart_mode::never: return "never";
  }
  return "permanent";
}

bool parse_restart_mode(const std::string& name, restart_mode& out) {
  for (auto m : {restart_mode::permanent, restart_mode::transient, restart_mode::never})
    if (name == to_string(m)) {
      out = m;
      return true;
    }
  return false;
}

std::size_t restarts_in_window(const restart_history& history, restart_time now,
                               const restart_params& p) {
  return static_cast<std::size_t>(std::count_if(
    history.begin(), history.end(), [&](restart_time t) { return now - t < p.window; }));
}

restart_span backoff_delay(std::size_t restarts, const restart_params& p) {
  // Computed in double to avoid overflow, then clamped to [0, max_backoff].
  double scaled = static_cast<double>(p.initial_backoff.count()) *
                  std::pow(std::max(p.factor, 1.0), static_cast<double>(restarts));
  auto max = static_cast<double>(p.max_backoff.count());
  if (!(scaled < max))
    return p.max_backoff;
  return restart_span{static_cast<restart_span::rep>(scaled)};
}

restart_decision decide(const restart_history& history, restart_time now, const restart_params& p,
                        bool abnormal) {
  restart_decision d;
  bool restartable = p.mode == restart_mode::permanent ||
                     (p.mode == restart_mode::transient && abnormal);
  if (!restartable) {
    d.kind = abnormal ? restart_decision::escalate : restart_decision::let_go;
    return d;
  }
  auto k = restarts_in_window(history, now, p);
  if (k >= p.max_restarts) {
    d.kind = restart_decision::escalate;
    d.attempt = k;
    d.intensity_exceeded = true;
    return d;
  }
  d.kind = restart_decision::restart;
  d.delay = backoff_delay(k, p);
  d.attempt = k + 1;
  return d;
}

void record_restart(restart_history& history, restart_time now, const restart_params& p) {
  while (!history.empty() && !(now - history.front() < p.window))
    history.pop_front();
  history.push_back(now);
}

std::string describe_intensity(const restart_params& p) {
  return std::to_string(p.max_restarts) + (p.max_restarts == 1 ? " restart" : " restarts") +
         " within " + format_duration(p.window);
}

namespace {

/// `v` with up to `digits` fractional digits, trailing zeros dropped (Go's fmtFrac).
std::string fraction(long long whole, long long frac, int digits) {
  std::string out = std::to_string(whole);
  if (frac == 0)
    return out;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld", digits, frac);
  std::string f = buf;
  while (!f.empty() && f.back() == '0')
    f.pop_back();
  return out + "." + f;
}

} // namespace

std::string format_duration(restart_span d) {
  long long ns = d.count();
  if (ns == 0)
    return "0s";
  std::string sign = ns < 0 ? "-" : "";
  unsigned long long u = ns < 0 ? static_cast<unsigned long long>(-(ns + 1)) + 1
                                : static_cast<unsigned long long>(ns);
  auto v = static_cast<long long>(u);
  if (u < 1'000ULL)
    return sign + std::to_string(v) + "ns";
  if (u < 1'000'000ULL)
    return sign + fraction(v / 1'000, v % 1'000, 3) + "\u00b5s";
  if (u < 1'000'000'000ULL)
    return sign + fraction(v / 1'000'000, v % 1'000'000, 6) + "ms";
  long long secs = v / 1'000'000'000;
  long long frac = v % 1'000'000'000;
  long long h = secs / 3600;
  long long m = (secs % 3600) / 60;
  long long s = secs % 60;
  std::string out = sign;
  if (h > 0)
    out += std::to_string(h) + "h";
  if (h > 0 || m > 0)
    out += std::to_string(m) + "m";
  return out + fraction(s, frac, 9) + "s";
}

} // namespace calima::actors
