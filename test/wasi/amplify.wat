;; Attacks on the host's memory through WASI (hb_beamr_wasi_limits_tests,
;; the stress run). Two pages: a 64 KiB buffer at 0 and, at 65536, room for
;; 8,192 iovecs that may all point at it, so one call names 512 MiB.
;; Every export returns the WASI errno; the count (or new fd) is at 8.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 512) "big0big1")
  (global $iovs i32 (i32.const 65536))

  ;; n iovecs at 65536, each {0, len}.
  (func $fill (export "fill") (param $n i32) (param $len i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.add (global.get $iovs) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
        (i32.store (i32.add (global.get $iovs) (i32.add (i32.shl (local.get $i) (i32.const 3)) (i32.const 4)))
                   (local.get $len))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func (export "count") (result i32) (i32.load (i32.const 8)))
  (func $write (export "write") (param $fd i32) (param $n i32) (result i32)
    (call $fd_write (local.get $fd) (global.get $iovs) (local.get $n) (i32.const 8)))
  (func (export "read") (param $fd i32) (param $n i32) (result i32)
    (call $fd_read (local.get $fd) (global.get $iovs) (local.get $n) (i32.const 8)))
  (func $pwrite (export "pwrite") (param $fd i32) (param $n i32) (param $at i64) (result i32)
    (call $fd_pwrite (local.get $fd) (global.get $iovs) (local.get $n) (local.get $at) (i32.const 8)))
  (func (export "pread") (param $fd i32) (param $n i32) (param $at i64) (result i32)
    (call $fd_pread (local.get $fd) (global.get $iovs) (local.get $n) (local.get $at) (i32.const 8)))
  (func (export "set_size") (param $fd i32) (param $size i64) (result i32)
    (call $set_size (local.get $fd) (local.get $size)))
  ;; Opens "big<k>" under the first preopen with oflags (1 creat, 8 trunc),
  ;; every right.
  (func $open (export "open") (param $k i32) (param $oflags i32) (result i32)
    (call $path_open (i32.const 3) (i32.const 0) (i32.add (i32.const 512) (i32.shl (local.get $k) (i32.const 2)))
          (i32.const 4) (local.get $oflags) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 8)))

  ;; Both attacks in one command: fd_write of 8,192 aliased 64 KiB iovecs
  ;; until it fails (at most 64 times), then one byte at 2^30 - 1 of two
  ;; new files. Exits with the errno of the last fd_pwrite.
  (func (export "_start")
    (local $i i32) (local $e i32) (local $k i32)
    (call $fill (i32.const 8192) (i32.const 65536))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 64)))
        (br_if $done (call $write (i32.const 1) (i32.const 8192)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $fill (i32.const 1) (i32.const 1))
    (block $files
      (loop $file
        (br_if $files (i32.ge_u (local.get $k) (i32.const 2)))
        (local.set $e (call $open (local.get $k) (i32.const 1)))
        (br_if $files (local.get $e))
        (local.set $e (call $pwrite (i32.load (i32.const 8)) (i32.const 1) (i64.const 1073741823)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $file)))
    (call $proc_exit (local.get $e))
    (unreachable)))
