#pragma once

#include "messages/instance_run.hpp"

#include <optional>
#include <string>
#include <vector>

/// Making the run value of messages/instance_run.hpp, and its record in the instance directory.
///
///     prepare_run ──a QEMU of this instance still runs──▶ read_run_record (adopted run)
///          │
///          └── otherwise ──▶ drivers::prepare_instance ──▶ write_run_record ──▶ fresh run
///
/// Plain C++, no CAF: everything here blocks (it reads lima.yaml, downloads images, runs qemu-img)
/// and runs on a thread of its own, never on an actor or the io thread.
namespace calima::actors {

/// `$INST/calima-run.json`.
std::string run_record_path(const std::string& dir);

/// Writes the record of `run` (atomically, mode 0644): what a later supervisor needs to adopt the
/// VM (everything but the command line).
void write_run_record(const instance_run& run);

/// Reads the record in `dir` back into a run with `adopted` set. Throws std::runtime_error
/// naming the file when it is missing or unreadable.
instance_run read_run_record(const std::string& dir);

/// The pid of the VM process of instance `name` when `qemu.pid` names this instance's live QEMU
/// (process_identity.hpp rules); nullopt otherwise, with `why` (if given) saying why a live
/// process of the pid file was not taken.
std::optional<int> live_vm_pid(const std::string& lima_home, const std::string& name,
                               std::string* why = nullptr);

/// Instances whose VM process still runs: the ones a starting supervisor re-adopts.
std::vector<std::string> instances_with_live_vm(const std::string& lima_home);

/// The run for a `start` of instance `name`: the adopted run when its VM still runs, else a
/// freshly prepared one (lima.yaml read once, image, disk, cidata, SSH port, command line) whose
/// record is written before it is returned. Throws std::runtime_error with the reason, naming the
/// file or key at fault.
instance_run prepare_run(const std::string& lima_home, const std::string& name, bool debug);

} // namespace calima::actors
