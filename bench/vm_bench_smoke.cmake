# ctest vm_bench_<mode>_smoke: `calima-vm-bench MODE --quick --json` exits 0 and prints one JSON
# object with the mode's figures as numbers; no timing is asserted. Skipped (77) without the
# test guest.
execute_process(COMMAND "${BENCH}" ${MODE} --quick --json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 380)
if(rc EQUAL 77)
  message(STATUS "vm-bench skipped: ${err}")
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "calima-vm-bench ${MODE} exited with ${rc}\nstdout: ${out}\nstderr: ${err}")
endif()
if(MODE STREQUAL "forward")
  set(keys calima_gbps calima_down_gbps calima_4x_gbps calima_4x_down_gbps hostfwd_gbps ssh_gbps
           calima_connect_p99_us hostfwd_connect_p99_us ssh_connect_p99_us calima_vs_hostfwd
           calima_vs_ssh calima_vs_hostfwd_4x_down)
elseif(MODE STREQUAL "start")
  set(keys bare_boot_done_s calima_start_s start_overhead_s bare_stop_s calima_stop_s)
else()
  set(keys rss_mib_per_instance threads_per_instance idle_cpu_percent_at_most)
endif()
foreach(key ${keys})
  string(JSON type ERROR_VARIABLE jerr TYPE "${out}" ${key})
  if(jerr OR NOT type STREQUAL "NUMBER")
    message(FATAL_ERROR "${key} is not a number (${jerr})\n${out}\nstderr: ${err}")
  endif()
endforeach()
message(STATUS "${out}")
