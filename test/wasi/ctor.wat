;; A command whose start function calls WASI while the module instantiates,
;; as emscripten's constructors do (hb_beamr_wasi_tests): it writes "ctor\n",
;; and exits with 4 right there when the environment is not empty; `_start'
;; writes "main\n".
;; Memory: counts at 0 and 4, an iovec at 8, the number written at 16, text
;; at 32 ("ctor\n") and 48 ("main\n").
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "ctor\n")
  (data (i32.const 48) "main\n")
  (func $print (param $text i32)
    (i32.store (i32.const 8) (local.get $text))
    (i32.store (i32.const 12) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16))))
  (func $ctor
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (call $print (i32.const 32))
    (if (i32.load (i32.const 0)) (then (call $proc_exit (i32.const 4)))))
  (start $ctor)
  (func (export "_start")
    (call $print (i32.const 48))))
