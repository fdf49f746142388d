//! `cargo xtask test`: host unit tests, then boot tests that type into Keel's shell over serial
//! and check what it prints. Every step has a timeout, so a hang fails fast; a kernel fault fails
//! the test and shows the kernel's report.

mod boot;
mod compiled;
mod disk;
mod fault;
mod firmware;
mod fs;
mod harness;
mod hostile;
mod jobs;
mod native;
pub(crate) mod net;
mod programs;
mod share;
mod shell;
pub(crate) mod smp;
mod wasm;

use std::process::Command;
use std::time::Instant;

use crate::build;
use crate::qemu::Options;

use harness::{indent, TestFn};
pub use hostile::fuzz_command;

const TESTS: &[(&str, TestFn)] = &[
    ("boot::prompt", boot::boot_to_prompt),
    ("boot::q35", boot::q35_boots_too),
    ("firmware::image_under_bios", firmware::image_boots_under_bios),
    ("firmware::image_under_uefi", firmware::image_boots_under_uefi),
    ("firmware::no_pit_needed", firmware::no_pit_needed),
    ("firmware::announced_mmio_devices", firmware::announced_mmio_devices),
    ("console::screen_and_keyboard", boot::screen_console_and_keyboard),
    ("shell::echo_and_help", shell::echo_and_help),
    ("shell::unknown_command_and_bad_arguments", shell::unknown_command_and_bad_arguments),
    ("shell::line_editing", shell::line_editing_over_serial),
    ("shell::pipes_and_connectors", shell::pipes_and_connectors),
    ("shell::ctrl_c_stops_sleep", shell::ctrl_c_stops_sleep),
    ("shell::ctrl_c_stops_builtins", shell::ctrl_c_stops_builtins),
    ("time::uptime", boot::uptime_advances),
    ("time::date", boot::date_is_the_host_date),
    ("mem::report", boot::mem_reports_pages_and_heap),
    ("mem::memory_comes_back", boot::memory_comes_back),
    ("power::exit_status", boot::exit_status_reaches_the_host),
    ("power::reboot", boot::reboot_comes_back),
    ("fs::extra_files_match_the_host", fs::extra_files_match_the_host),
    ("fs::extra_files_are_read_only", fs::extra_files_are_read_only),
    ("fs::tmp_works_like_unix_tmp", fs::tmp_works_like_unix_tmp),
    ("fs::big_extra_files_are_not_copied", fs::big_extra_files_are_not_copied),
    ("fs::deep_paths", fs::deep_paths),
    ("shell::source", shell::source_runs_scripts),
    ("shell::environment_and_quoting", shell::shell_environment_and_quoting),
    ("shell::tab_completes_paths", shell::tab_completes_paths),
    ("wasm::calc_session", wasm::calc_session),
    ("wasm::wasi_from_rust_std", wasm::wasi_from_rust_std),
    ("wasm::exit_codes_and_pipes", wasm::exit_codes_and_pipes),
    ("wasm::traps_and_bad_modules", wasm::traps_and_bad_modules),
    ("wasm::ctrl_c_stops_a_runaway_guest", wasm::ctrl_c_stops_a_runaway_guest),
    ("wasm::long_loops_int_and_float", wasm::long_loops_int_and_float),
    ("wasm::timeout_ends_programs", wasm::timeout_ends_programs),
    ("wasm::ctrl_c_stops_huge_wasi_calls", wasm::ctrl_c_stops_huge_wasi_calls),
    ("wasm::poll_on_console_stdin_times_out", wasm::poll_on_console_stdin_times_out),
    ("wasm::bundled_tools_take_common_options", wasm::bundled_tools_take_common_options),
    ("oneshot::command_line", programs::oneshot_command_line),
    ("jobs::twenty_programs_at_once", jobs::twenty_programs_at_once),
    ("jobs::kill_one_while_others_finish", jobs::kill_one_while_others_finish),
    ("jobs::foreground_ctrl_c_spares_background_jobs", jobs::foreground_ctrl_c_spares_background_jobs),
    ("jobs::pipes_stream_with_backpressure", jobs::pipes_stream_with_backpressure),
    ("jobs::memory_bombs_cannot_starve_the_kernel", jobs::memory_bombs_cannot_starve_the_kernel),
    ("jobs::repeated_programs_do_not_leak", jobs::repeated_programs_do_not_leak),
    ("native::same_output_as_on_linux", native::same_output_as_on_linux),
    ("native::eight_at_once_and_in_pipelines", native::eight_at_once_and_in_pipelines),
    ("native::crashes_end_only_the_program", native::crashes_end_only_the_program),
    ("native::mmap_stress_gives_pages_back", native::mmap_stress_gives_pages_back),
    ("native::kill_ctrl_c_and_trace", native::kill_ctrl_c_and_trace),
    ("native::hostile_system_calls", native::hostile_system_calls),
    ("smp::every_cpu_computes", smp::every_cpu_computes),
    ("smp::twenty_programs_on_four_cpus", smp::twenty_programs_on_four_cpus),
    ("smp::pipelines_across_cpus", smp::pipelines_across_cpus),
    ("smp::kill_races_exit_across_cpus", smp::kill_races_exit_across_cpus),
    ("smp::lock_order_checked", smp::lock_order_checked),
    ("net::fetch_files_and_run_one", net::fetch_files_and_run_one),
    ("net::fetch_failures_are_clear", net::fetch_failures_are_clear),
    ("net::https_with_a_test_ca", net::https_with_a_test_ca),
    ("net::ctrl_c_stops_a_download", net::ctrl_c_stops_a_download),
    ("net::without_a_card", net::without_a_card),
    ("net::wasm_server_under_load", net::wasm_server_under_load),
    ("disk::files_survive_a_reboot", disk::files_survive_a_reboot),
    ("disk::wasi_programs_use_it_sandboxed", disk::wasi_programs_use_it_sandboxed),
    ("disk::power_cuts_leave_old_or_new", disk::power_cuts_leave_old_or_new),
    ("disk::damaged_images_are_refused_or_read_only", disk::damaged_images_are_refused_or_read_only),
    ("disk::second_disk_mkfs_mount_umount", disk::second_disk_mkfs_mount_umount),
    ("share::round_trip", share::share_round_trip),
    ("share::wasm_tools_and_sandbox", share::share_wasm_tools_and_sandbox),
    ("share::read_only_and_vanishing", share::share_read_only_and_vanishing),
    ("hostile::guests", hostile::hostile_guests),
    ("hostile::fuzzed_modules_in_keel", hostile::fuzzed_modules_in_keel),
    ("hostile::fuzzed_console", hostile::fuzzed_console),
    ("wasi_testsuite::assemblyscript", programs::wasi_testsuite_assemblyscript),
    ("wasi_testsuite::c", programs::wasi_testsuite_c),
    ("wasi_testsuite::rust", programs::wasi_testsuite_rust),
    ("corpus::matches_wasmtime", programs::corpus_matches_wasmtime),
    ("corpus::through_the_shell", programs::corpus_through_the_shell),
    ("compiled::wasi_testsuite", programs::wasi_testsuite_compiled),
    ("compiled::corpus_matches_wasmtime", programs::corpus_matches_wasmtime_compiled),
    ("compiled::same_as_the_interpreter", compiled::same_as_the_interpreter),
    ("compiled::artefacts_are_checked", compiled::artefacts_are_checked),
    ("compiled::runaway_guests_stop", compiled::runaway_guests_stop),
    ("compiled::fuzzed_modules_in_keel", hostile::fuzzed_modules_compiled),
    ("compiled::shared_folder", compiled::shared_folder_compiled),
    ("fault::page_fault", fault::fault_page),
    ("fault::general_protection", fault::fault_gpf),
    ("fault::divide", fault::fault_divide),
    ("fault::invalid_opcode", fault::fault_invalid_opcode),
    ("fault::stack_overflow", fault::fault_stack_overflow),
    ("fault::panic", fault::fault_panic),
];

/// Runs the host tests and the boot tests; returns the exit code.
pub fn run_all(args: &[String]) -> Result<i32, String> {
    let mut filter: Option<&str> = None;
    let mut host = true;
    for a in args {
        match a.as_str() {
            "--boot-only" => host = false,
            f if !f.starts_with('-') => filter = Some(f),
            other => return Err(format!("test: unknown option '{other}'")),
        }
    }
    if host {
        println!("== host tests (cargo test --workspace)");
        let st = Command::new("cargo")
            .args(["test", "--workspace", "--locked"])
            .current_dir(build::root())
            .status()
            .map_err(|e| format!("cannot run cargo test: {e}"))?;
        if !st.success() {
            return Err("host tests failed".into());
        }
        // The compiled tier's engine needs the pinned nightly (wasmtime 50): its host tests run
        // in keel-aot's workspace, the engine cases shared with the interpreter's.
        println!("== host tests of the compiled tier (xtask/aot, pinned nightly)");
        build::ensure_toolchain()?;
        let st = build::kernel_cargo()?
            .current_dir(build::root().join("xtask/aot"))
            .args(["test", "--release", "--locked"])
            .status()
            .map_err(|e| format!("cannot run cargo test: {e}"))?;
        if !st.success() {
            return Err("host tests of the compiled tier failed".into());
        }
    }
    println!("== building the boot image");
    let image = build::build_all()?;
    if host {
        println!("== fuzzing on the host (20 s, fixed seed)");
        let failures = crate::fuzz::fuzz_host(20, 2026);
        let saved = crate::fuzz::save(&failures);
        for ((what, _), path) in failures.iter().zip(&saved) {
            println!("fuzz FAILED {what}\n    input kept in {}", path.display());
        }
        if !failures.is_empty() {
            return Err("fuzzing found failures".into());
        }
    }
    build::ensure_qemu()?;
    println!("== boot tests in QEMU ({})", crate::qemu::accel_name(&Options::default()));
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, test) in TESTS {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let t = Instant::now();
        match test(&image) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                println!("test {name} ... FAILED ({:.1}s)\n{}", t.elapsed().as_secs_f64(), indent(&e));
                failed.push(*name);
            }
        }
    }
    println!();
    if !failed.is_empty() {
        println!("failed boot tests: {}", failed.join(", "));
    }
    println!("qemu: {passed} passed, {} failed", failed.len());
    Ok(if failed.is_empty() { 0 } else { 1 })
}
