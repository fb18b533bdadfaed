;; State beyond exported memory: a module whose stack pointer lives in a
;; mutable global it does not export (as C compilers do), with more mutable
;; globals of every type, and memory that grows.
(module
  (memory (export "memory") 1 8)
  (global $sp (mut i32) (i32.const 65536))
  (global $wide (mut i64) (i64.const 0))
  (global $f (mut f32) (f32.const 0))
  (global $d (mut f64) (f64.const 0))
  (global (export "limit") i32 (i32.const 8))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "pages") (result i32) (memory.size))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "set_all") (param i32 i64 f32 f64)
    (global.set $sp (local.get 0))
    (global.set $wide (local.get 1))
    (global.set $f (local.get 2))
    (global.set $d (local.get 3)))
  (func (export "sp") (result i32) (global.get $sp))
  (func (export "wide") (result i64) (global.get $wide))
  (func (export "f") (result f32) (global.get $f))
  (func (export "d") (result f64) (global.get $d)))
