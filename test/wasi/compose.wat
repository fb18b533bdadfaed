;; WASI next to an import of the caller's own (hb_beamr_wasi_tests):
;; go(X) writes "hello" to stdout with fd_write, then returns env.double(X).
;; Memory: an iovec at 0, the number of bytes written at 8, text at 16;
;; 1024.. is free for tests that call hb_beamr_wasi:handle/4 directly.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_advise" (func $fd_advise (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "env" "double" (func $double (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (func (export "go") (param $x i32) (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $double (local.get $x)))
  ;; An unserved WASI function: its errno (ENOSYS, 52).
  (func (export "advise") (result i32)
    (call $fd_advise (i32.const 1) (i64.const 0) (i64.const 0) (i32.const 0)))
  ;; Writes "hello", then exits with `code'; never returns.
  (func (export "quit") (param $code i32)
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (local.get $code))
    (unreachable)))
