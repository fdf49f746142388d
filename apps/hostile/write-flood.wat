;; Asks for 5.9 GiB in every fd_write to stdout (6000 iovecs over one 1 MiB buffer), forever.
;; Keel moves at most 4 MiB per call (a short write), so Ctrl-C and kill act between calls.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 18)
  (func (export "_start") (local $i i32)
    ;; the iovec table at 1 MiB + 64 KiB: 6000 x (ptr 0, len 1 MiB)
    (loop $fill
      (i32.store (i32.add (i32.const 1114112) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
      (i32.store (i32.add (i32.const 1114116) (i32.shl (local.get $i) (i32.const 3))) (i32.const 1048576))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 6000))))
    (loop $forever
      (drop (call $w (i32.const 1) (i32.const 1114112) (i32.const 6000) (i32.const 1048576)))
      (br $forever))))
