//! The signatures of all 46 WASI preview1 functions, as WAT imports (for generated modules).

/// (name, parameter types, has an i32 result)
pub const SIGNATURES: [(&str, &str, bool); 46] = [
    ("args_get", "i32 i32", true),
    ("args_sizes_get", "i32 i32", true),
    ("environ_get", "i32 i32", true),
    ("environ_sizes_get", "i32 i32", true),
    ("clock_res_get", "i32 i32", true),
    ("clock_time_get", "i32 i64 i32", true),
    ("fd_advise", "i32 i64 i64 i32", true),
    ("fd_allocate", "i32 i64 i64", true),
    ("fd_close", "i32", true),
    ("fd_datasync", "i32", true),
    ("fd_fdstat_get", "i32 i32", true),
    ("fd_fdstat_set_flags", "i32 i32", true),
    ("fd_fdstat_set_rights", "i32 i64 i64", true),
    ("fd_filestat_get", "i32 i32", true),
    ("fd_filestat_set_size", "i32 i64", true),
    ("fd_filestat_set_times", "i32 i64 i64 i32", true),
    ("fd_pread", "i32 i32 i32 i64 i32", true),
    ("fd_prestat_get", "i32 i32", true),
    ("fd_prestat_dir_name", "i32 i32 i32", true),
    ("fd_pwrite", "i32 i32 i32 i64 i32", true),
    ("fd_read", "i32 i32 i32 i32", true),
    ("fd_readdir", "i32 i32 i32 i64 i32", true),
    ("fd_renumber", "i32 i32", true),
    ("fd_seek", "i32 i64 i32 i32", true),
    ("fd_sync", "i32", true),
    ("fd_tell", "i32 i32", true),
    ("fd_write", "i32 i32 i32 i32", true),
    ("path_create_directory", "i32 i32 i32", true),
    ("path_filestat_get", "i32 i32 i32 i32 i32", true),
    ("path_filestat_set_times", "i32 i32 i32 i32 i64 i64 i32", true),
    ("path_link", "i32 i32 i32 i32 i32 i32 i32", true),
    ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", true),
    ("path_readlink", "i32 i32 i32 i32 i32 i32", true),
    ("path_remove_directory", "i32 i32 i32", true),
    ("path_rename", "i32 i32 i32 i32 i32 i32", true),
    ("path_symlink", "i32 i32 i32 i32 i32", true),
    ("path_unlink_file", "i32 i32 i32", true),
    ("poll_oneoff", "i32 i32 i32 i32", true),
    ("proc_exit", "i32", false),
    ("proc_raise", "i32", true),
    ("sched_yield", "", true),
    ("random_get", "i32 i32", true),
    ("sock_accept", "i32 i32 i32", true),
    ("sock_recv", "i32 i32 i32 i32 i32 i32", true),
    ("sock_send", "i32 i32 i32 i32 i32", true),
    ("sock_shutdown", "i32 i32", true),
];

/// A module importing every WASI function (wasm-smith's `available_imports`).
pub fn all_imports_wat() -> String {
    let mut s = String::from("(module\n");
    for (name, params, result) in SIGNATURES {
        let r = if result { " (result i32)" } else { "" };
        let p = if params.is_empty() { String::new() } else { format!(" (param {params})") };
        s.push_str(&format!("  (import \"wasi_snapshot_preview1\" \"{name}\" (func{p}{r}))\n"));
    }
    s.push(')');
    s
}

/// A module that calls every WASI function (except proc_exit) with hostile arguments: pointers
/// at the very end of the address space, huge lengths and counts, absurd descriptors. It must
/// get an errno back from each (never crash the kernel), then exits with 0.
pub fn bad_pointers_wat() -> String {
    let mut s = all_imports_wat();
    s.pop();
    s.push_str("  (import \"wasi_snapshot_preview1\" \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))\n");
    s.push_str(
        "  (memory (export \"memory\") 1)\n  (data (i32.const 16) \"survived\\n\")\n  (func (export \"_start\")\n",
    );
    for (i, (name, params, result)) in SIGNATURES.iter().enumerate() {
        if *name == "proc_exit" {
            continue;
        }
        for variant in 0..3 {
            let args: Vec<String> = params
                .split_whitespace()
                .enumerate()
                .map(|(k, t)| {
                    let v: i64 = match (variant, k % 3) {
                        (0, _) => -8,
                        (1, 0) => 3,
                        (1, _) => 0x7fff_fff0,
                        (_, 0) => 0,
                        (_, 1) => 65530,
                        _ => 0xffff_ffff,
                    };
                    format!("({t}.const {v})")
                })
                .collect();
            s.push_str(&format!("    (call {i} {})", args.join(" ")));
            if *result {
                s.push_str(" drop");
            }
            s.push('\n');
        }
    }
    // The calls above may have scribbled anywhere in memory (random_get at 0, ...): write the
    // message again.
    let word = u64::from_le_bytes(*b"survived");
    s.push_str(&format!(
        "    (i64.store (i32.const 16) (i64.const {}))\n    (i32.store8 (i32.const 24) (i32.const 10))\n",
        word as i64
    ));
    s.push_str("    (i32.store (i32.const 0) (i32.const 16))\n    (i32.store (i32.const 4) (i32.const 9))\n");
    s.push_str("    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))\n");
    s
}
