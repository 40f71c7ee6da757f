#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// Lima-style diagnostics on stderr (spec §1.2): logrus text lines
/// `time="..." level=warning msg="..." key=value`, coloured `WARN[0000] msg` on a terminal, or
/// JSON lines with `--log-format json`. Library code logs through these functions; limactl
/// configures the format and level once at start.
namespace calima::log {

enum class level { trace, debug, info, warning, error, fatal };

/// One extra logrus field (`error=...`, `comment=...`); printed sorted by key after `msg`.
using field = std::pair<std::string, std::string>;
using fields = std::vector<field>;

enum class format { text, json };

/// Sets the minimum level printed (default info), the format, and whether stderr is a terminal
/// (coloured text). Not thread-safe: call before other threads log.
void configure(level min_level, format fmt, bool colour);

/// Parses logrus level names (`trace`, `debug`, `info`, `warn`, `warning`, `error`, `fatal`).
bool parse_level(std::string_view name, level& out);

level min_level();

void write(level lvl, std::string_view msg, const fields& extra = {});

inline void debug(std::string_view msg, const fields& f = {}) { write(level::debug, msg, f); }
inline void info(std::string_view msg, const fields& f = {}) { write(level::info, msg, f); }
inline void warn(std::string_view msg, const fields& f = {}) { write(level::warning, msg, f); }
inline void error(std::string_view msg, const fields& f = {}) { write(level::error, msg, f); }
inline void fatal_line(std::string_view msg, const fields& f = {}) { write(level::fatal, msg, f); }

/// Renders one line without printing it (used by tests and by the event log).
std::string render(level lvl, std::string_view msg, const fields& extra, format fmt, bool colour);

} // namespace calima::log
